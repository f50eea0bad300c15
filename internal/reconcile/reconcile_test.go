package reconcile_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Thing has a desired and an observed state.
type Thing struct {
	store.Meta
	ID       string
	Desired  string
	Observed string
}

func (t *Thing) StoreKey() string { return t.ID }

const things = "test.things"

var thingTable = store.Table{Name: things, New: func() store.Record { return new(Thing) }}

// converger makes Observed follow Desired, failing the first fails[key]
// attempts of a key.
type converger struct {
	st    *store.Store
	mu    sync.Mutex
	fails map[string]int
	calls map[string][]time.Time
}

func (c *converger) Pending(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	all, err := store.List[Thing](ws, tx, things, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []reconcile.Item
	for t := range all {
		if t.Desired != t.Observed {
			out = append(out, reconcile.Item{Key: t.ID, Revision: t.Revision})
		}
	}
	return out, nil
}

func (c *converger) Reconcile(ctx context.Context, key string) error {
	c.mu.Lock()
	c.calls[key] = append(c.calls[key], time.Now())
	if c.fails[key] > 0 {
		c.fails[key]--
		c.mu.Unlock()
		return errors.New("driver says no")
	}
	c.mu.Unlock()
	return c.st.Update(ctx, func(tx *store.Txn) error {
		t, err := store.Get[Thing](nil, tx, things, key)
		if err != nil {
			return err
		}
		t.Observed = t.Desired
		return tx.Update(things, t)
	})
}

func (c *converger) callTimes(key string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.calls[key]...)
}

func newStore(t *testing.T) *store.Store {
	st, err := store.Open(t.Context(), memstore.New(), []store.Table{thingTable}, &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func waitConverged(t *testing.T, st *store.Store, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ws := memdb.NewWatchSet()
		all, _ := store.List[Thing](ws, st.Snapshot(), things, store.IDIndex)
		done := true
		for th := range all {
			done = done && th.Desired == th.Observed
		}
		if done {
			return
		}
		ws.Watch(time.After(50 * time.Millisecond))
	}
	t.Fatal("did not converge")
}

func put(t *testing.T, st *store.Store, id, desired string) {
	t.Helper()
	err := st.Update(t.Context(), func(tx *store.Txn) error {
		th, err := store.Get[Thing](nil, tx, things, id)
		if err != nil {
			return tx.Insert(things, &Thing{ID: id, Desired: desired})
		}
		th.Desired = desired
		return tx.Update(things, th)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConvergesWithBackoff(t *testing.T) {
	st := newStore(t)
	c := &converger{st: st, fails: map[string]int{"b": 3}, calls: map[string][]time.Time{}}
	l := reconcile.New("things", st, c, &reconcile.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second, Workers: 2})
	l.Start(t.Context())
	defer l.Stop()

	put(t, st, "a", "on")
	put(t, st, "b", "on")
	waitConverged(t, st, 5*time.Second)

	calls := c.callTimes("b")
	if len(calls) != 4 {
		t.Fatalf("b reconciled %d times, want 4 (3 failures, 1 success)", len(calls))
	}
	// Backoff grows: each gap is at least half the nominal delay.
	for i, min := range []time.Duration{10, 20, 40} {
		if gap := calls[i+1].Sub(calls[i]); gap < min*time.Millisecond {
			t.Errorf("retry %d after %v, want at least %v", i+1, gap, min*time.Millisecond)
		}
	}
	if n := len(c.callTimes("a")); n != 1 {
		t.Fatalf("a reconciled %d times, want 1", n)
	}

	// A later change is picked up by the watch, not by polling.
	put(t, st, "a", "off")
	waitConverged(t, st, 5*time.Second)
	if n := len(c.callTimes("a")); n != 2 {
		t.Fatalf("a reconciled %d times after a change, want 2", n)
	}
}

// stuck never makes progress but reports success: the loop must not spin.
type stuck struct {
	mu    sync.Mutex
	calls int
}

func (s *stuck) Pending(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	_, err := store.List[Thing](ws, tx, things, store.IDIndex)
	return []reconcile.Item{{Key: "x", Revision: 1}}, err
}

func (s *stuck) Reconcile(context.Context, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return nil
}

func TestNoSpinOnUnchangedItem(t *testing.T) {
	st := newStore(t)
	s := &stuck{}
	l := reconcile.New("stuck", st, s, &reconcile.Options{Resync: 100 * time.Millisecond})
	l.Start(t.Context())
	time.Sleep(250 * time.Millisecond)
	l.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Once at start, then once per resync: 2 or 3, never thousands.
	if s.calls < 2 || s.calls > 4 {
		t.Fatalf("reconciled %d times in 250ms with a 100ms resync", s.calls)
	}
}

// panicky panics: the loop survives and backs off.
type panicky struct{ stuck }

func (p *panicky) Reconcile(context.Context, string) error {
	p.mu.Lock()
	p.calls++
	p.mu.Unlock()
	panic("driver bug")
}

func TestPanicIsRetried(t *testing.T) {
	st := newStore(t)
	p := &panicky{}
	l := reconcile.New("panicky", st, p, &reconcile.Options{MinBackoff: 10 * time.Millisecond})
	l.Start(t.Context())
	time.Sleep(150 * time.Millisecond)
	if l.Attempts("x") == 0 {
		t.Fatal("a panicking reconcile was not counted as a failure")
	}
	l.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls < 2 || p.calls > 10 {
		t.Fatalf("%d attempts in 150ms with 10ms backoff doubling", p.calls)
	}
}

func TestStopCancelsReconcile(t *testing.T) {
	st := newStore(t)
	started := make(chan struct{})
	b := &blocking{started: started}
	l := reconcile.New("blocking", st, b, nil)
	l.Start(t.Context())
	<-started
	done := make(chan struct{})
	go func() { l.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return: the reconcile's context was not cancelled")
	}
	l.Stop() // twice is fine
}

type blocking struct {
	stuck
	started chan struct{}
	once    sync.Once
}

func (b *blocking) Reconcile(ctx context.Context, _ string) error {
	b.once.Do(func() { close(b.started) })
	<-ctx.Done()
	return ctx.Err()
}
