package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/etcdstore"
	"github.com/stratuskit/stratus/store/storetest"
)

// threeMembers starts a 3-member cluster for one test.
func threeMembers(t *testing.T) *etcdtest.Cluster {
	t.Helper()
	c, err := etcdtest.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// controller opens one store (one controller) on the cluster under prefix.
func controller(t *testing.T, endpoints []string, prefix string) *store.Store {
	t.Helper()
	b, err := etcdstore.Open(t.Context(), endpoints, &etcdstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), b, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// waitFor waits until cond holds on st's replica.
func waitFor(t *testing.T, st *store.Store, what string, cond func(tx *store.Txn, ws memdb.WatchSet) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ws := memdb.NewWatchSet()
		if cond(st.Snapshot(), ws) {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-ws.WatchCh(t.Context()):
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func hasWidget(id string) func(tx *store.Txn, ws memdb.WatchSet) bool {
	return func(tx *store.Txn, ws memdb.WatchSet) bool {
		_, err := store.Get[storetest.Widget](ws, tx, "test.widgets", id)
		return err == nil
	}
}

func insert(ctx context.Context, st *store.Store, id string) error {
	return st.Update(ctx, func(tx *store.Txn) error {
		return tx.Insert("test.widgets", &storetest.Widget{ID: id, Project: "p", Name: id})
	})
}

func TestControllersShareState(t *testing.T) {
	c := threeMembers(t)
	a := controller(t, c.Endpoints()[:1], "/multi/")
	b := controller(t, c.Endpoints()[1:2], "/multi/")
	ctx := t.Context()

	if err := insert(ctx, a, "from-a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "a's write on b", hasWidget("from-a"))

	// b updates what a wrote; a sees it; a's stale copy is refused.
	stale, _ := store.Get[storetest.Widget](nil, a.Snapshot(), "test.widgets", "from-a")
	w, _ := store.Get[storetest.Widget](nil, b.Snapshot(), "test.widgets", "from-a")
	w.Count = 5
	if err := b.Update(ctx, func(tx *store.Txn) error { return tx.Update("test.widgets", w) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a, "b's update on a", func(tx *store.Txn, ws memdb.WatchSet) bool {
		w, err := store.Get[storetest.Widget](ws, tx, "test.widgets", "from-a")
		return err == nil && w.Count == 5
	})
	// A copy read before b's update is refused.
	stale.Count = 99
	err := a.Update(ctx, func(tx *store.Txn) error { return tx.Update("test.widgets", stale) })
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("write from a stale revision: %v, want ErrConflict", err)
	}

	// Deletes and their tombstones, and events, reach the other replica.
	if err := a.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete("test.widgets", "from-a"); err != nil {
			return err
		}
		return tx.Emit("test.widget.delete", "from-a", "p", nil)
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "the delete on b", func(tx *store.Txn, ws memdb.WatchSet) bool {
		_, err := store.Get[storetest.Widget](ws, tx, "test.widgets", "from-a")
		_, terr := store.GetTombstone(ws, tx, "test.widgets", "from-a")
		return errors.Is(err, errdefs.ErrNotFound) && terr == nil
	})
	evs, err := b.Consumer("on-b").Next(ctx, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "test.widget.delete" {
		t.Fatalf("events on b: %v %v", evs, err)
	}
}

// TestCASOneWinnerPerRound: three controllers race to update the same
// record from the same revision; exactly one wins each round.
func TestCASOneWinnerPerRound(t *testing.T) {
	c := threeMembers(t)
	ctls := []*store.Store{
		controller(t, c.Endpoints()[0:1], "/cas/"),
		controller(t, c.Endpoints()[1:2], "/cas/"),
		controller(t, c.Endpoints()[2:3], "/cas/"),
	}
	ctx := t.Context()
	if err := ctls[0].Update(ctx, func(tx *store.Txn) error {
		return tx.Insert("test.counters", &storetest.Counter{ID: "c"})
	}); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 20; round++ {
		// Every controller reads the same revision first.
		var base []*storetest.Counter
		for _, st := range ctls {
			waitFor(t, st, fmt.Sprintf("round %d start", round), func(tx *store.Txn, ws memdb.WatchSet) bool {
				cn, err := store.Get[storetest.Counter](ws, tx, "test.counters", "c")
				return err == nil && cn.Value == round-1
			})
			cn, _ := store.Get[storetest.Counter](nil, st.Snapshot(), "test.counters", "c")
			base = append(base, cn)
		}
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for i, st := range ctls {
			wg.Go(func() {
				cn := base[i]
				cn.Value = round
				// The local replica may or may not have seen the winner
				// yet: either its check or etcd's compare refuses.
				err := st.Update(ctx, func(tx *store.Txn) error { return tx.Update("test.counters", cn) })
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, errdefs.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 2 {
			t.Fatalf("round %d: %d winners, %d conflicts; want exactly one winner", round, wins.Load(), conflicts.Load())
		}
	}
}

// widgetCounter is a reconciler on controller b that counts widgets whose
// Count is below 1 and sets it to 1.
type widgetCounter struct{ st *store.Store }

func (w *widgetCounter) Pending(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	all, err := store.List[storetest.Widget](ws, tx, "test.widgets", store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []reconcile.Item
	for x := range all {
		if x.Count == 0 {
			out = append(out, reconcile.Item{Key: x.ID, Revision: x.Revision})
		}
	}
	return out, nil
}

func (w *widgetCounter) Reconcile(ctx context.Context, key string) error {
	return w.st.Update(ctx, func(tx *store.Txn) error {
		x, err := store.Get[storetest.Widget](nil, tx, "test.widgets", key)
		if err != nil {
			return err
		}
		x.Count = 1
		return tx.Update("test.widgets", x)
	})
}

func TestReconcilerSeesOtherControllersWrites(t *testing.T) {
	ep := os.Getenv(endpointsEnv)
	a := controller(t, []string{ep}, "/reconcile/")
	b := controller(t, []string{ep}, "/reconcile/")
	loop := reconcile.New("widgets", b, &widgetCounter{st: b}, nil)
	loop.Start(t.Context())
	defer loop.Stop()
	for i := range 5 {
		if err := insert(t.Context(), a, fmt.Sprintf("w%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// b's reconciler acted on a's writes, and a sees the results.
	waitFor(t, a, "b's reconciler's updates on a", func(tx *store.Txn, ws memdb.WatchSet) bool {
		all, _ := store.List[storetest.Widget](ws, tx, "test.widgets", store.IDIndex)
		n := 0
		for x := range all {
			if x.Count == 1 {
				n++
			}
		}
		return n == 5
	})
}

func TestMemberLossKeepsStoreWritable(t *testing.T) {
	c := threeMembers(t)
	st := controller(t, c.Endpoints(), "/loss/")
	ctx := t.Context()
	if err := insert(ctx, st, "before"); err != nil {
		t.Fatal(err)
	}
	// Stop a follower: the quorum remains.
	var follower *etcdtest.Member
	for _, m := range c.Members() {
		if m != c.Leader() {
			follower = m
			break
		}
	}
	follower.Stop()
	for i := range 20 {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := insert(wctx, st, fmt.Sprintf("during-%d", i))
		cancel()
		if err != nil {
			t.Fatalf("write %d with one member down: %v", i, err)
		}
	}
	if err := follower.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, st, "after"); err != nil {
		t.Fatal(err)
	}
}

// TestLeaderKillCommitsOrFails kills the leader while writers run: every
// write either committed (and is there) or failed (and is not), never both.
func TestLeaderKillCommitsOrFails(t *testing.T) {
	c := threeMembers(t)
	st := controller(t, c.Endpoints(), "/leaderkill/")
	ctx := t.Context()
	type result struct {
		id  string
		err error
	}
	results := make(chan result, 10000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%05d", w, i)
				wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				results <- result{id, insert(wctx, st, id)}
				cancel()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	leader := c.Leader()
	if leader == nil {
		t.Fatal("no leader")
	}
	leader.Stop()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(results)
	if err := leader.Restart(); err != nil {
		t.Fatal(err)
	}

	// Check against etcd itself, through a fresh client.
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ok, failed := 0, 0
	for r := range results {
		resp, err := cli.Get(ctx, "/leaderkill/t/test.widgets/"+r.id)
		if err != nil {
			t.Fatal(err)
		}
		present := len(resp.Kvs) == 1
		switch {
		case r.err == nil && !present:
			t.Errorf("%s acknowledged but absent", r.id)
		case r.err != nil && present:
			t.Errorf("%s reported failed (%v) but committed", r.id, r.err)
		case r.err == nil:
			ok++
		default:
			failed++
		}
	}
	t.Logf("leader killed mid-write: %d committed, %d failed cleanly", ok, failed)
	if ok == 0 {
		t.Fatal("no write committed at all")
	}
}

// compactOnce makes the first Watch call report a compacted history, as
// after a long disconnection.
type compactOnce struct {
	*etcdstore.Backend
	once sync.Once
}

func (c *compactOnce) Watch(ctx context.Context, after uint64, fn func(uint64, []store.Change) error) error {
	compacted := false
	c.once.Do(func() { compacted = true })
	if compacted {
		// Let the other controller write while this one is "away".
		time.Sleep(500 * time.Millisecond)
		return fmt.Errorf("test: %w", store.ErrCompacted)
	}
	return c.Backend.Watch(ctx, after, fn)
}

func TestReloadAfterCompaction(t *testing.T) {
	ep := []string{os.Getenv(endpointsEnv)}
	a := controller(t, ep, "/compact/")
	ctx := t.Context()
	for _, id := range []string{"keep", "drop"} {
		if err := insert(ctx, a, id); err != nil {
			t.Fatal(err)
		}
	}
	eb, err := etcdstore.Open(ctx, ep, &etcdstore.Options{Prefix: "/compact/"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Open(ctx, &compactOnce{Backend: eb}, storetest.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := insert(ctx, a, "new"); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, func(tx *store.Txn) error { return tx.Delete("test.widgets", "drop") }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "reload after compaction", func(tx *store.Txn, ws memdb.WatchSet) bool {
		_, e1 := store.Get[storetest.Widget](ws, tx, "test.widgets", "new")
		_, e2 := store.Get[storetest.Widget](ws, tx, "test.widgets", "drop")
		_, e3 := store.Get[storetest.Widget](ws, tx, "test.widgets", "keep")
		return e1 == nil && errors.Is(e2, errdefs.ErrNotFound) && e3 == nil
	})
	// And b follows the watch again afterwards.
	if err := insert(ctx, a, "later"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "writes after the reload", hasWidget("later"))
}

func TestWatchReportsCompaction(t *testing.T) {
	ep := []string{os.Getenv(endpointsEnv)}
	b, err := etcdstore.Open(t.Context(), ep, &etcdstore.Options{Prefix: "/watchcompact/"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var last uint64
	for i := range 3 {
		last, err = b.Commit(t.Context(), []store.Change{{Table: "test.widgets", Key: fmt.Sprint(i), Value: []byte(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Client().Compact(t.Context(), int64(last)); err != nil {
		t.Fatal(err)
	}
	err = b.Watch(t.Context(), 1, func(uint64, []store.Change) error { return nil })
	if !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("watch from before the compaction: %v, want ErrCompacted", err)
	}
}
