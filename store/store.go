package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
)

// ErrClosed is returned by writes to a closed store.
var ErrClosed = errors.New("store: closed")

// maxBatch bounds how many transaction functions one commit carries.
const maxBatch = 256

// gatherWindow and maxGatherWindow bound how long the committer waits for
// writers to join a batch (see batcher.run).
const (
	gatherWindow    = 100 * time.Microsecond
	maxGatherWindow = time.Millisecond
)

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's log lines. Default: slog.Default().
	Logger *slog.Logger
	// TombstoneRetention is how long deleted records stay queryable as
	// tombstones before compaction purges them. Default: 7 days.
	TombstoneRetention time.Duration
	// EventRetention is the least time an event is kept, even once every
	// consumer has passed it. Default: 24 hours.
	EventRetention time.Duration
	// CompactInterval is how often compaction runs in the background.
	// Default: 10 minutes; negative disables it (call Compact yourself).
	CompactInterval time.Duration
	// Clock returns the current time. Default: time.Now. Tests set it.
	Clock func() time.Time
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TombstoneRetention <= 0 {
		c.TombstoneRetention = 7 * 24 * time.Hour
	}
	if c.EventRetention <= 0 {
		c.EventRetention = 24 * time.Hour
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = 10 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Store holds the control plane's state: go-memdb tables with their
// indexes, made durable by a Backend. Reads are lock-free snapshots; writes
// go through one committer that batches concurrent transactions into one
// durable backend commit (group commit) and makes them visible only once
// that commit is durable. A Store is safe for concurrent use.
type Store struct {
	db      *memdb.MemDB
	backend Backend
	tables  map[string]Table
	opts    Options
	log     *slog.Logger

	rev atomic.Uint64

	reqs      chan *request
	applies   chan *remote
	elections localElections
	closing   chan struct{}
	stopped   chan struct{} // closed when the committer has stopped
	once      sync.Once
	wg        sync.WaitGroup
}

type request struct {
	ctx     context.Context
	fn      func(*Txn) error
	fence   *Fence // set for a leader's fenced update, which commits alone
	done    chan error
	settled bool
}

// Open loads every record from b into memory and returns a Store ready for
// reads and writes. tables are the tables of every service the host runs;
// records of tables not listed are left untouched in the backend. Records
// written by an older version of a table are upgraded and written back.
// The Store owns b from then on: Close closes it, and so does a failed Open.
func Open(ctx context.Context, b Backend, tables []Table, opts *Options) (*Store, error) {
	s, err := open(ctx, b, tables, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return s, nil
}

func open(ctx context.Context, b Backend, tables []Table, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	s := &Store{
		backend: b,
		tables:  make(map[string]Table),
		opts:    o,
		log:     o.Logger.With("component", "store"),
		reqs:    make(chan *request, maxBatch),
		applies: make(chan *remote),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	schema := &memdb.DBSchema{Tables: make(map[string]*memdb.TableSchema)}
	add := func(t Table, internal bool) error {
		if err := t.validate(internal); err != nil {
			return err
		}
		if _, dup := s.tables[t.Name]; dup {
			return fmt.Errorf("store: table %q declared twice", t.Name)
		}
		s.tables[t.Name] = t
		schema.Tables[t.Name] = t.schema()
		return nil
	}
	for _, t := range internalTables() {
		if err := add(t, true); err != nil {
			return nil, err
		}
	}
	for _, t := range tables {
		if err := add(t, false); err != nil {
			return nil, err
		}
	}
	db, err := memdb.NewMemDB(schema)
	if err != nil {
		return nil, fmt.Errorf("store: schema: %w", err)
	}
	s.db = db

	start := time.Now()
	txn := db.Txn(true)
	var upgraded []Change
	var upRecs []Record
	records, unknown := 0, map[string]int{}
	rev, err := b.Load(ctx, func(table string, key, value []byte, rev uint64) error {
		t, ok := s.tables[table]
		if !ok {
			unknown[table]++
			return nil
		}
		rec, up, err := t.decode(value, rev)
		if err != nil {
			return err
		}
		if rec.StoreKey() != string(key) {
			return fmt.Errorf("store: table %q: record stored under %q has key %q", table, key, rec.StoreKey())
		}
		if up {
			raw, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			upgraded = append(upgraded, Change{Table: table, Key: rec.StoreKey(), Value: raw, Prev: rev})
			upRecs = append(upRecs, rec)
		}
		records++
		return txn.Insert(table, rec)
	})
	if err != nil {
		txn.Abort()
		return nil, fmt.Errorf("store: load: %w", err)
	}
	if len(upgraded) > 0 {
		urev, err := b.Commit(ctx, upgraded)
		if err != nil {
			txn.Abort()
			return nil, fmt.Errorf("store: write back %d upgraded records: %w", len(upgraded), err)
		}
		for _, rec := range upRecs {
			rec.StoreMeta().Revision = urev // not indexed: safe before commit
		}
		rev = urev
	}
	txn.Commit()
	s.rev.Store(rev)
	for t, n := range unknown {
		s.log.Warn("records of an undeclared table left untouched", "table", t, "records", n)
	}
	s.log.Debug("store loaded", "records", records, "upgraded", len(upgraded), "revision", rev, "took", time.Since(start))

	if w, ok := b.(Watcher); ok {
		s.wg.Add(1)
		go s.follow(w, rev)
	}
	s.wg.Add(1)
	go s.commitLoop()
	if o.CompactInterval > 0 {
		s.wg.Add(1)
		go s.compactLoop()
	}
	return s, nil
}

// Close stops the committer, fails writes still queued with ErrClosed, and
// closes the backend. Reads of snapshots taken before still work.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		s.wg.Wait()
		err = s.backend.Close()
	})
	return err
}

// Durable reports whether the store's backend survives a crash.
func (s *Store) Durable() bool { return s.backend.Durable() }

// Revision returns the revision of the last durable commit.
func (s *Store) Revision() uint64 { return s.rev.Load() }

// HasTables returns an error naming the first of names the store was not
// opened with. Services call it from New so that a missing table fails at
// start, not at first use.
func (s *Store) HasTables(names ...string) error {
	for _, n := range names {
		if _, ok := s.tables[n]; !ok {
			return fmt.Errorf("store: table %q was not passed to store.Open", n)
		}
	}
	return nil
}

// Now returns the store clock's current time.
func (s *Store) Now() time.Time { return s.opts.Clock() }

// Snapshot returns a read-only transaction on the current state. It never
// blocks and never sees a write that is not yet durable.
func (s *Store) Snapshot() *Txn {
	return &Txn{tx: s.db.Txn(false), st: s}
}

// Update runs fn in a write transaction and returns once its changes are
// durable and visible, or with fn's error, or with the backend's error (in
// which case nothing of fn's is applied).
//
// fn may run more than once (when a transaction sharing its batch fails
// after writing, the batch runs again without it), so it must do no I/O and
// have no effect outside the transaction. Do checks before writes: a
// function that fails before its first write is simply dropped. Once fn has
// been handed to the committer, Update waits for the outcome even if ctx is
// cancelled, so that the caller always learns whether it committed.
func (s *Store) Update(ctx context.Context, fn func(*Txn) error) error {
	return s.update(ctx, fn, nil)
}

func (s *Store) update(ctx context.Context, fn func(*Txn) error, fence *Fence) error {
	if fence != nil {
		if _, ok := s.backend.(FencedCommitter); !ok {
			return fmt.Errorf("store: backend %T cannot fence commits: %w", s.backend, errdefs.ErrUnsupported)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	r := &request{ctx: ctx, fn: fn, fence: fence, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-s.stopped:
		// The committer has stopped: it answered r before, or never will.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

func (s *Store) commitLoop() {
	defer s.wg.Done()
	defer close(s.stopped)
	b := &batcher{s: s, reqs: make([]*request, 0, maxBatch), target: 1, window: gatherWindow, timer: time.NewTimer(time.Hour)}
	b.timer.Stop()
	for {
		if b.next != nil {
			first := b.next
			b.next = nil
			b.run(first)
			continue
		}
		select {
		case first := <-s.reqs:
			b.run(first)
		case r := <-s.applies:
			s.applyRemote(r)
		case <-s.closing:
			return
		}
	}
}

// batcher is the committer's state between batches.
type batcher struct {
	s    *Store
	reqs []*request
	// target is how many writers to wait for: the previous batch's size,
	// plus the writers that queued while it committed (they were not in
	// it, and will be back together with it). Without the second term two
	// halves of the writers, split once by a slow caller, would go on
	// alternating, each paying its own commit.
	target int
	// window is how long to wait for them: half the previous commit's
	// time, within [gatherWindow, maxGatherWindow]. A writer that misses
	// the batch waits a whole commit more, so waiting for it is worth up
	// to about half a commit; on a slow disk that is more than the
	// 100 µs a writer takes to come back on an idle machine.
	window time.Duration
	timer  *time.Timer
	next   *request // a fenced request met while gathering: it runs next, alone
}

// run gathers a batch starting with first and commits it. Each function
// runs as soon as it arrives, so that executing the batch overlaps with
// gathering it.
//
// The writers the previous commit acknowledged are likely to come straight
// back but may not have resubmitted yet: the batch waits up to b.window
// for as many as b.target, so that they share this commit's fsync instead
// of each waiting a whole commit. A lone writer never waits.
func (b *batcher) run(first *request) {
	s := b.s
	rev := s.rev.Load() + 1
	now := s.opts.Clock().UTC()
	mtx := s.db.Txn(true)
	mtx.TrackChanges()
	tx := &Txn{tx: mtx, write: true, rev: rev, now: now, st: s}
	dirty := false // a function failed after writing: the batch must rerun
	reqs := append(b.reqs[:0], first)
	exec := func(r *request) {
		if err := r.ctx.Err(); err != nil {
			r.finish(err)
			return
		}
		tx.wrote = false
		if err := runFn(tx, r.fn); err != nil {
			r.finish(err)
			dirty = dirty || tx.wrote
		}
	}
	exec(first)
	var timeout <-chan time.Time
gather:
	for len(reqs) < maxBatch && first.fence == nil {
		var r *request
		select {
		case r = <-s.reqs:
		default:
			if len(reqs) >= b.target {
				break gather
			}
			if timeout == nil {
				b.timer.Reset(b.window)
				timeout = b.timer.C
			}
			select {
			case r = <-s.reqs:
			case <-timeout:
				timeout = nil
				break gather
			}
		}
		if r.fence != nil {
			b.next = r
			break
		}
		reqs = append(reqs, r)
		if !dirty {
			exec(r) // once dirty, the batch reruns from scratch anyway
		}
	}
	if timeout != nil && !b.timer.Stop() {
		<-b.timer.C
	}
	var queued int
	committing := time.Now()
	if dirty {
		mtx.Abort()
		queued = s.rerunBatch(reqs, rev, now)
	} else {
		queued = s.finishBatch(mtx, reqs, rev, first.fence)
	}
	b.target = min(len(reqs)+queued, maxBatch)
	b.window = min(max(time.Since(committing)/2, gatherWindow), maxGatherWindow)
	clear(reqs)
	b.reqs = reqs[:0]
}

// rerunBatch runs the unsettled functions of a batch again, from scratch,
// until a pass completes with no function failing after its writes; each
// such failure removes its function from the batch. It returns what
// finishBatch returns.
func (s *Store) rerunBatch(batch []*request, rev uint64, now time.Time) int {
	for {
		mtx := s.db.Txn(true)
		mtx.TrackChanges()
		tx := &Txn{tx: mtx, write: true, rev: rev, now: now, st: s}
		rerun := false
		for _, r := range batch {
			if r.settled {
				continue
			}
			if err := r.ctx.Err(); err != nil {
				r.finish(err)
				continue
			}
			tx.wrote = false
			if err := runFn(tx, r.fn); err != nil {
				r.finish(err)
				if tx.wrote {
					rerun = true
					break
				}
			}
		}
		if !rerun {
			return s.finishBatch(mtx, batch, rev, batch[0].fence)
		}
		mtx.Abort()
	}
}

// finishBatch commits a batch's transaction to the backend, then makes it
// visible and answers every caller not yet answered. It returns how many
// writers queued meanwhile, counted before the batch's are answered.
func (s *Store) finishBatch(mtx *memdb.Txn, batch []*request, spec uint64, fence *Fence) int {
	rev, err := s.persist(mtx, spec, fence)
	queued := len(s.reqs)
	if err != nil {
		mtx.Abort()
		for _, r := range batch {
			r.finish(err)
		}
		return queued
	}
	if _, replicated := s.backend.(Watcher); replicated && rev != 0 {
		// Other controllers commit too: apply this commit as the watch
		// delivers it, in the backend's order, so that a later apply of an
		// older commit never undoes it. Wait for it: read-your-writes.
		mtx.Abort()
		s.waitApplied(rev)
	} else {
		mtx.Commit()
		if rev > s.rev.Load() {
			s.rev.Store(rev)
		}
	}
	for _, r := range batch {
		r.finish(nil)
	}
	return queued
}

// waitApplied applies what the watch delivers until the replica has
// reached rev (or the store closes: the commit is durable either way).
func (s *Store) waitApplied(rev uint64) {
	for s.rev.Load() < rev {
		select {
		case r := <-s.applies:
			s.applyRemote(r)
		case <-s.closing:
			return
		}
	}
}

func (r *request) finish(err error) {
	if r.settled {
		return
	}
	r.settled = true
	r.done <- err
}

// runFn runs fn, turning a panic into an error for its caller alone. A
// panicking function is treated as having written, so its batch reruns.
func runFn(tx *Txn, fn func(*Txn) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			tx.wrote = true
			err = fmt.Errorf("store: transaction panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(tx)
}

// persist writes the transaction's changes to the backend and returns the
// commit's revision, or 0 if there was nothing to write. spec is the
// revision the transaction stamped on its records; if the backend assigned
// another (other controllers committed meanwhile), the records in the
// transaction are restamped before it commits.
func (s *Store) persist(mtx *memdb.Txn, spec uint64, fence *Fence) (uint64, error) {
	mc := mtx.Changes()
	if len(mc) == 0 {
		return 0, nil
	}
	changes := make([]Change, 0, len(mc))
	for _, c := range mc {
		ch := Change{Table: c.Table}
		if c.Before != nil {
			ch.Prev = c.Before.(Record).StoreMeta().Revision
		}
		if c.After != nil {
			rec := c.After.(Record)
			ch.Key = rec.StoreKey()
			raw, err := json.Marshal(rec)
			if err != nil {
				return 0, fmt.Errorf("store: table %q: encode %q: %w", c.Table, ch.Key, err)
			}
			ch.Value = raw
		} else {
			ch.Key = c.Before.(Record).StoreKey()
		}
		changes = append(changes, ch)
	}
	var rev uint64
	var err error
	if fence != nil {
		rev, err = s.backend.(FencedCommitter).CommitFenced(context.Background(), changes, *fence)
	} else {
		rev, err = s.backend.Commit(context.Background(), changes)
	}
	if err != nil {
		if errdefs.Kind(err) == nil {
			err = errdefs.Wrap(errdefs.ErrUnavailable, err)
		}
		return 0, fmt.Errorf("store: commit: %w", err)
	}
	if rev != spec {
		for _, c := range mc {
			if c.After == nil {
				continue
			}
			rec := c.After.(Record)
			rec.StoreMeta().Revision = rev // not indexed: safe before commit
			if ev, ok := rec.(*Event); ok {
				// Seq is indexed: reinsert rather than change in place.
				ne := *ev
				ne.Seq = eventSeq(rev, ev.N)
				if err := mtx.Insert(eventTable, &ne); err != nil {
					return 0, fmt.Errorf("store: restamp event: %w", err)
				}
			}
		}
	}
	return rev, nil
}

// Backup writes a consistent copy of the whole store to w, if the backend
// can (store.Snapshotter); otherwise it fails with errdefs.ErrUnsupported.
// For bbolt the copy is itself a database file that boltstore.Open accepts.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	sn, ok := s.backend.(Snapshotter)
	if !ok {
		return 0, fmt.Errorf("store: backup: backend %T: %w", s.backend, errdefs.ErrUnsupported)
	}
	return sn.Snapshot(ctx, w)
}
