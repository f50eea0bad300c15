// Package etcdstore is the store.Backend for clouds that outgrow one
// machine: several controllers (Stratus processes) share one etcd cluster,
// each keeping a full in-memory replica that follows etcd's watch.
//
// Records live under a key prefix, one key per record:
// <prefix>t/<table>/<key>, whose value is the record's JSON and whose etcd
// mod revision is the record's store revision. Each store commit (a batch of
// transactions) is one etcd transaction that compares the revision of every
// key it writes with the revision the controller's replica had, so a stale
// controller gets errdefs.ErrConflict, never a lost update.
//
// A commit whose outcome is unknown (the connection or the leader was lost
// after the request left) is resolved before the call returns: every commit
// also moves this controller's own marker key, and after an ambiguous
// failure the backend either finds the marker moved by that commit
// (committed) or moves it itself, which makes the lost commit impossible to
// apply later (not committed). A caller is therefore never told "error"
// for a commit that took effect.
//
// etcd must accept transactions as large as the store's batches: run it
// with --max-txn-ops of at least a few thousand and --max-request-bytes of
// a few MiB (the defaults, 128 operations and 1.5 MiB, are too small for
// bulk loads).
package etcdstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

var (
	_ store.Backend = (*Backend)(nil)
	_ store.Watcher = (*Backend)(nil)
)

// Options tunes a Backend. nil means the defaults.
type Options struct {
	// Prefix is the key prefix under which the cloud lives. Default
	// "/stratus/". Clouds sharing an etcd cluster use different prefixes.
	Prefix string
	// DialTimeout bounds the first connection. Default 5s.
	DialTimeout time.Duration
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
}

// Backend is a store.Backend on an etcd cluster.
type Backend struct {
	cli    *clientv3.Client
	owned  bool
	prefix string
	log    *slog.Logger

	mu      sync.Mutex
	id      string // this controller's marker key
	markRev int64  // the marker's mod revision, 0 before the first commit
	closed  chan struct{}
	once    sync.Once
}

// Open connects to the etcd cluster at endpoints.
func Open(ctx context.Context, endpoints []string, opts *Options) (*Backend, error) {
	o := withDefaults(opts)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: o.DialTimeout,
		Context:     context.WithoutCancel(ctx),
		// The client's own retry chatter would go to stderr; the store
		// reports what matters through its logger.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdstore: connect %v: %w", endpoints, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	b := newBackend(cli, o)
	b.owned = true
	// Check the cluster answers now rather than at first use.
	sctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if _, err := cli.Get(sctx, b.prefix+"probe"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcdstore: %v does not answer: %w", endpoints, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	return b, nil
}

// New returns a Backend on an existing client, which Close leaves open.
func New(cli *clientv3.Client, opts *Options) *Backend { return newBackend(cli, withDefaults(opts)) }

func withDefaults(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "/stratus/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func newBackend(cli *clientv3.Client, o Options) *Backend {
	b := &Backend{cli: cli, prefix: o.Prefix, log: o.Logger.With("component", "etcdstore"), closed: make(chan struct{})}
	b.id = o.Prefix + "controllers/" + rand.Text()
	return b
}

// Client returns the etcd client, for leader election and tests.
func (b *Backend) Client() *clientv3.Client { return b.cli }

// Prefix returns the cloud's key prefix.
func (b *Backend) Prefix() string { return b.prefix }

// Durable reports true: etcd acknowledges a write once a quorum has it in
// its fsync'd log.
func (b *Backend) Durable() bool { return true }

func (b *Backend) tablesPrefix() string { return b.prefix + "t/" }

func (b *Backend) recordKey(table, key string) string { return b.tablesPrefix() + table + "/" + key }

// splitKey turns an etcd key back into table and record key.
func (b *Backend) splitKey(k []byte) (table, key string, ok bool) {
	rest, ok := bytes.CutPrefix(k, []byte(b.tablesPrefix()))
	if !ok {
		return "", "", false
	}
	t, r, ok := bytes.Cut(rest, []byte("/"))
	return string(t), string(r), ok
}

const loadPage = 1000

// Load implements store.Backend: a consistent read of every record at one
// revision, in pages.
func (b *Backend) Load(ctx context.Context, fn func(table string, key, value []byte, rev uint64) error) (uint64, error) {
	start := b.tablesPrefix()
	end := clientv3.GetPrefixRangeEnd(start)
	var rev int64
	for key := start; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := b.cli.Get(ctx, key, opts...)
		if err != nil {
			return 0, fmt.Errorf("etcdstore: load: %w", classify(err))
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			table, k, ok := b.splitKey(kv.Key)
			if !ok {
				continue
			}
			if err := fn(table, []byte(k), kv.Value, uint64(kv.ModRevision)); err != nil {
				return 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return uint64(rev), nil
}

// Commit implements store.Backend: one etcd transaction comparing the
// revision of every key it writes.
func (b *Backend) Commit(ctx context.Context, changes []store.Change) (uint64, error) {
	return b.commit(ctx, changes, nil)
}

// CommitFenced implements store.FencedCommitter: the commit also compares
// the leadership key's creation revision, so it applies only while that
// leadership term holds.
func (b *Backend) CommitFenced(ctx context.Context, changes []store.Change, fence store.Fence) (uint64, error) {
	rev, err := b.commit(ctx, changes, []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(fence.Key), "=", int64(fence.Rev)),
	})
	if err != nil && errors.Is(err, errdefs.ErrConflict) {
		if resp, gerr := b.cli.Get(ctx, fence.Key); gerr == nil && (len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != int64(fence.Rev)) {
			return 0, fmt.Errorf("etcdstore: leadership %s (term %d) has ended: %w", fence.Key, fence.Rev, errdefs.ErrConflict)
		}
	}
	return rev, err
}

func (b *Backend) commit(ctx context.Context, changes []store.Change, guards []clientv3.Cmp) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cmps := make([]clientv3.Cmp, 0, len(changes)+1+len(guards))
	cmps = append(cmps, guards...)
	ops := make([]clientv3.Op, 0, len(changes)+1)
	for _, c := range changes {
		k := b.recordKey(c.Table, c.Key)
		if c.Prev == 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", int64(c.Prev)))
		}
		if c.Value == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(c.Value)))
		}
	}
	nonce := rand.Text()
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.id), "=", b.markRev))
	ops = append(ops, clientv3.OpPut(b.id, nonce))

	resp, err := b.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		rev, committed, rerr := b.resolve(ctx, nonce)
		if rerr != nil {
			return 0, rerr
		}
		if committed {
			b.markRev = rev
			return uint64(rev), nil
		}
		return 0, fmt.Errorf("etcdstore: commit: %w", classify(err))
	}
	if !resp.Succeeded {
		if _, mine, err := b.marker(ctx); err == nil && mine != b.markRev {
			return 0, fmt.Errorf("etcdstore: controller marker %s moved (revision %d, expected %d): another process uses this controller's identity: %w",
				b.id, mine, b.markRev, errdefs.ErrConflict)
		}
		return 0, fmt.Errorf("etcdstore: commit refused: one of %d records changed since this controller read it: %w",
			len(changes), errdefs.ErrConflict)
	}
	b.markRev = resp.Header.Revision
	return uint64(resp.Header.Revision), nil
}

// marker reads this controller's marker key.
func (b *Backend) marker(ctx context.Context) (value string, modRev int64, err error) {
	resp, err := b.cli.Get(ctx, b.id)
	if err != nil {
		return "", 0, err
	}
	if len(resp.Kvs) == 0 {
		return "", 0, nil
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision, nil
}

// resolve settles a commit whose outcome is unknown. If the marker carries
// the commit's nonce, it committed at the marker's revision. Otherwise the
// marker is moved (compare-and-swap on the revision the lost commit
// compared against), so the lost commit can never apply; if that fails,
// the marker moved meanwhile and is read again. It retries until etcd
// answers or the backend is closed.
func (b *Backend) resolve(ctx context.Context, nonce string) (rev int64, committed bool, err error) {
	backoff := 50 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		resp, err := b.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(b.id), "=", b.markRev)).
			Then(clientv3.OpPut(b.id, "fence-"+rand.Text())).
			Else(clientv3.OpGet(b.id)).
			Commit()
		cancel()
		if err == nil {
			if resp.Succeeded {
				b.markRev = resp.Header.Revision
				return 0, false, nil
			}
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 1 && string(kvs[0].Value) == nonce {
				return kvs[0].ModRevision, true, nil
			}
			// Someone else moved the marker: only a process sharing this
			// controller's identity could. Refuse, without guessing.
			return 0, false, fmt.Errorf("etcdstore: controller marker %s moved by another process: %w", b.id, errdefs.ErrConflict)
		}
		b.log.Warn("commit outcome unknown; resolving", "err", err, "retry_in", backoff)
		select {
		case <-b.closed:
			return 0, false, fmt.Errorf("etcdstore: closed while resolving a commit of unknown outcome: %w", errdefs.ErrUnavailable)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Watch implements store.Watcher.
func (b *Backend) Watch(ctx context.Context, after uint64, fn func(rev uint64, changes []store.Change) error) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := b.cli.Watch(wctx, b.tablesPrefix(), clientv3.WithPrefix(), clientv3.WithRev(int64(after)+1))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("etcdstore: watch from %d: compacted at %d: %w", after+1, resp.CompactRevision, store.ErrCompacted)
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("etcdstore: watch: %w", store.ErrCompacted)
			}
			return fmt.Errorf("etcdstore: watch: %w", classify(err))
		}
		var rev int64
		var changes []store.Change
		flush := func() error {
			if len(changes) == 0 {
				return nil
			}
			err := fn(uint64(rev), changes)
			changes = nil
			return err
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision != rev {
				if err := flush(); err != nil {
					return err
				}
				rev = ev.Kv.ModRevision
			}
			table, key, ok := b.splitKey(ev.Kv.Key)
			if !ok {
				continue
			}
			c := store.Change{Table: table, Key: key}
			if ev.Type == mvccpb.PUT {
				c.Value = ev.Kv.Value
			}
			changes = append(changes, c)
		}
		if err := flush(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("etcdstore: watch ended: %w", errdefs.ErrUnavailable)
}

// Close implements store.Backend. It removes this controller's marker key
// and, if Open made the client, closes it.
func (b *Backend) Close() error {
	b.once.Do(func() { close(b.closed) })
	b.mu.Lock()
	if b.markRev != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = b.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(b.id), "=", b.markRev)).Then(clientv3.OpDelete(b.id)).Commit()
		cancel()
		b.markRev = 0
	}
	b.mu.Unlock()
	if b.owned {
		return b.cli.Close()
	}
	return nil
}

// classify marks transport and cluster failures as errdefs.ErrUnavailable.
func classify(err error) error {
	if errdefs.Kind(err) != nil || errors.Is(err, context.Canceled) {
		return err
	}
	return errdefs.Wrap(errdefs.ErrUnavailable, err)
}
