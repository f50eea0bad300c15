// Package storetest is the conformance suite that every store.Backend
// passes: CRUD, indexes, compare-and-swap, watches, batch isolation, the
// events outbox, tombstones and compaction, reopen, failed commits, and —
// for durable backends — a crash test that kills a writing process with
// SIGKILL again and again and checks that every acknowledged transaction
// survives whole and no transaction is half-applied.
//
// A backend's test file is a few lines:
//
//	func TestMain(m *testing.M) { storetest.Main(m, config()) }
//	func TestConformance(t *testing.T) { storetest.Run(t, config()) }
//
// Main is needed for the crash test, which re-executes the test binary as
// the writing child process.
package storetest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Config describes the backend under test.
type Config struct {
	// Open opens the backend whose state lives in the directory dir,
	// creating it if needed. Opened again on the same dir after Close, it
	// must see every committed write.
	Open func(ctx context.Context, dir string) (store.Backend, error)
	// Check, if not nil, checks the consistency of the closed state in dir
	// (for bbolt, its page-level check). The crash test runs it after
	// every kill.
	Check func(dir string) error
}

var crashes = flag.Int("storetest.crashes", 50, "how many times the crash test kills its writer")

var mainInstalled bool

// Main runs the tests of a backend package. In the crash test's child
// process it runs the writer instead. Call it from TestMain.
func Main(m *testing.M, cfg Config) {
	if IsCrashChild() {
		os.Exit(crashChild(os.Getenv(crashEnv), cfg))
	}
	os.Exit(RunMain(m))
}

// IsCrashChild reports whether this process is the crash test's writer, for
// a TestMain that must set things up (a server to connect to) only in the
// parent: call Main first thing in the child.
func IsCrashChild() bool { return os.Getenv(crashEnv) != "" }

// RunMain runs the tests, as Main does in the parent, and returns the exit
// code, for a TestMain that tears things down afterwards.
func RunMain(m *testing.M) int {
	mainInstalled = true
	return m.Run()
}

// Run runs the conformance suite against the backend cfg opens.
func Run(t *testing.T, cfg Config) {
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, cfg) })
	t.Run("Indexes", func(t *testing.T) { testIndexes(t, cfg) })
	t.Run("CompareAndSwap", func(t *testing.T) { testCAS(t, cfg) })
	t.Run("ConcurrentCAS", func(t *testing.T) { testConcurrentCAS(t, cfg) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, cfg) })
	t.Run("BatchIsolation", func(t *testing.T) { testBatchIsolation(t, cfg) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, cfg) })
	t.Run("Tombstones", func(t *testing.T) { testTombstones(t, cfg) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, cfg) })
	t.Run("BackendRevisions", func(t *testing.T) { testBackendRevisions(t, cfg) })
	t.Run("FailedCommit", func(t *testing.T) { testFailedCommit(t, cfg) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, cfg) })
	t.Run("Election", func(t *testing.T) { testElection(t, cfg) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, cfg) })
}

// clock is a settable clock for retention tests.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time               { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration)      { c.ns.Add(int64(d)) }
func testOptions(c *clock) *store.Options     { return &store.Options{CompactInterval: -1, Clock: c.Now} }
func ctxT(t *testing.T) context.Context       { return t.Context() }
func widget(id, project, name string) *Widget { return &Widget{ID: id, Project: project, Name: name} }

// env is one store on one backend state directory.
type env struct {
	t     *testing.T
	cfg   Config
	dir   string
	clock *clock
	st    *store.Store
	wrap  func(store.Backend) store.Backend
}

func newEnv(t *testing.T, cfg Config) *env {
	e := &env{t: t, cfg: cfg, dir: t.TempDir(), clock: newClock()}
	e.open()
	t.Cleanup(func() {
		if e.st != nil {
			_ = e.st.Close()
		}
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	b, err := e.cfg.Open(ctxT(e.t), e.dir)
	if err != nil {
		e.t.Fatalf("open backend: %v", err)
	}
	if e.wrap != nil {
		b = e.wrap(b)
	}
	st, err := store.Open(ctxT(e.t), b, Tables(), testOptions(e.clock))
	if err != nil {
		e.t.Fatalf("store.Open: %v", err)
	}
	e.st = st
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.st = nil
	e.open()
}

func (e *env) update(fn func(tx *store.Txn) error) error {
	return e.st.Update(ctxT(e.t), fn)
}

func (e *env) mustUpdate(fn func(tx *store.Txn) error) {
	e.t.Helper()
	if err := e.update(fn); err != nil {
		e.t.Fatalf("update: %v", err)
	}
}

func (e *env) get(id string) (*Widget, error) {
	return store.Get[Widget](nil, e.st.Snapshot(), widgets, id)
}

func (e *env) mustGet(id string) *Widget {
	e.t.Helper()
	w, err := e.get(id)
	if err != nil {
		e.t.Fatalf("get %q: %v", id, err)
	}
	return w
}

// collect gathers a listing. A listing error is a bug in the suite.
func collect[T any](seq iter.Seq[*T], err error) []*T {
	if err != nil {
		panic(err)
	}
	var out []*T
	for v := range seq {
		out = append(out, v)
	}
	return out
}

func ids(ws []*Widget) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

func testCRUD(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("w1", "p1", "one")) })
	w := e.mustGet("w1")
	if w.Name != "one" || w.Project != "p1" || w.Revision == 0 || w.SchemaVersion != 1 {
		t.Fatalf("got %+v", w)
	}
	if w.Revision != e.st.Revision() {
		t.Fatalf("record revision %d, store revision %d", w.Revision, e.st.Revision())
	}

	err := e.update(func(tx *store.Txn) error { return tx.Insert(widgets, widget("w1", "p1", "again")) })
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("duplicate insert: %v, want ErrConflict", err)
	}

	// The returned record is a copy: changing it changes nothing stored.
	w.Name = "changed locally"
	if got := e.mustGet("w1"); got.Name != "one" {
		t.Fatalf("stored record changed through a returned copy: %q", got.Name)
	}

	w.Count = 7
	e.mustUpdate(func(tx *store.Txn) error { return tx.Update(widgets, w) })
	got := e.mustGet("w1")
	if got.Count != 7 || got.Name != "changed locally" || got.Revision <= w.Revision {
		t.Fatalf("after update: %+v", got)
	}

	err = e.update(func(tx *store.Txn) error { return tx.Update(widgets, widget("nope", "p1", "x")) })
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("update of a missing record: %v, want ErrNotFound", err)
	}

	e.mustUpdate(func(tx *store.Txn) error { return tx.Delete(widgets, "w1") })
	if _, err := e.get("w1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	} else if !strings.Contains(err.Error(), "w1") {
		t.Fatalf("not-found message %q does not name the key", err)
	}
	err = e.update(func(tx *store.Txn) error { return tx.Delete(widgets, "w1") })
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}

	// Writes in a read-only transaction fail.
	if err := e.st.Snapshot().Insert(widgets, widget("w2", "p", "n")); err == nil {
		t.Fatal("insert in a snapshot succeeded")
	}
	// Unknown tables and wrong types are errors, not panics.
	if err := e.update(func(tx *store.Txn) error { return tx.Insert("test.nope", widget("x", "p", "x")) }); err == nil {
		t.Fatal("insert into an undeclared table succeeded")
	}
	if _, err := store.Get[Gadget](nil, e.st.Snapshot(), widgets, "w1"); err == nil {
		t.Fatal("Get with the wrong type succeeded")
	}
}

func testIndexes(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	e.mustUpdate(func(tx *store.Txn) error {
		for i, p := range []string{"p1", "p2", "p1", "p3", "p1"} {
			if err := tx.Insert(widgets, widget(fmt.Sprintf("w%d", i), p, fmt.Sprintf("name-%d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	tx := e.st.Snapshot()
	seq, err := store.List[Widget](nil, tx, widgets, "project", "p1")
	if got := ids(collect(seq, err)); !slices.Equal(got, []string{"w0", "w2", "w4"}) {
		t.Fatalf("by project p1: %v", got)
	}
	w, err := store.First[Widget](nil, tx, widgets, "name", "name-3")
	if err != nil || w.ID != "w3" {
		t.Fatalf("by name: %v %v", w, err)
	}
	if _, err := store.First[Widget](nil, tx, widgets, "name", "missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing name: %v", err)
	}
	seq, err = store.List[Widget](nil, tx, widgets, store.IDIndex)
	if got := ids(collect(seq, err)); len(got) != 5 {
		t.Fatalf("all: %v", got)
	}
	seq, err = store.ListFrom[Widget](nil, tx, widgets, store.IDIndex, "w2")
	if got := ids(collect(seq, err)); !slices.Equal(got, []string{"w2", "w3", "w4"}) {
		t.Fatalf("from w2: %v", got)
	}
	seq, err = store.List[Widget](nil, tx, widgets, store.IDIndex+"_prefix", "w")
	if got := ids(collect(seq, err)); len(got) != 5 {
		t.Fatalf("prefix w: %v", got)
	}
	// A unique index refuses a duplicate name... memdb replaces silently,
	// so the store's callers check; an index update follows a rename.
	w.Name = "renamed"
	e.mustUpdate(func(tx *store.Txn) error { return tx.Update(widgets, w) })
	tx = e.st.Snapshot()
	if _, err := store.First[Widget](nil, tx, widgets, "name", "name-3"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("old name still indexed: %v", err)
	}
	if got, err := store.First[Widget](nil, tx, widgets, "name", "renamed"); err != nil || got.ID != "w3" {
		t.Fatalf("new name: %v %v", got, err)
	}
	if _, err := store.List[Widget](nil, tx, widgets, "no-such-index"); err == nil {
		t.Fatal("list by an unknown index succeeded")
	}
}

func testCAS(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("w1", "p", "n")) })
	a := e.mustGet("w1")
	b := e.mustGet("w1")
	a.Count = 1
	e.mustUpdate(func(tx *store.Txn) error { return tx.Update(widgets, a) })
	b.Count = 2
	err := e.update(func(tx *store.Txn) error { return tx.Update(widgets, b) })
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if got := e.mustGet("w1"); got.Count != 1 {
		t.Fatalf("stale update applied: count %d", got.Count)
	}
}

func testConcurrentCAS(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(counters, &Counter{ID: "c"}) })
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					c, err := store.Get[Counter](nil, e.st.Snapshot(), counters, "c")
					if err != nil {
						t.Error(err)
						return
					}
					c.Value++
					err = e.update(func(tx *store.Txn) error { return tx.Update(counters, c) })
					if err == nil {
						break
					}
					if !errors.Is(err, errdefs.ErrConflict) {
						t.Error(err)
						return
					}
					conflicts.Add(1)
				}
			}
		})
	}
	wg.Wait()
	c, err := store.Get[Counter](nil, e.st.Snapshot(), counters, "c")
	if err != nil || c.Value != workers*each {
		t.Fatalf("counter %v (%v), want %d", c, err, workers*each)
	}
	t.Logf("%d increments, %d CAS conflicts retried", workers*each, conflicts.Load())
}

func testWatch(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("w1", "p1", "n1")) })
	ws := memdb.NewWatchSet()
	w, err := store.Get[Widget](ws, e.st.Snapshot(), widgets, "w1")
	if err != nil {
		t.Fatal(err)
	}
	listWS := memdb.NewWatchSet()
	if _, err := store.List[Widget](listWS, e.st.Snapshot(), widgets, "project", "p2"); err != nil {
		t.Fatal(err)
	}
	if watchFired(ws) || watchFired(listWS) {
		t.Fatal("watch fired before any change")
	}
	w.Count++
	e.mustUpdate(func(tx *store.Txn) error { return tx.Update(widgets, w) })
	if !watchFired(ws) {
		t.Fatal("record watch did not fire on update")
	}
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("w2", "p2", "n2")) })
	if !watchFired(listWS) {
		t.Fatal("list watch did not fire on an insert matching it")
	}
	// A write that fails does not fire watches.
	ws = memdb.NewWatchSet()
	if _, err := store.Get[Widget](ws, e.st.Snapshot(), widgets, "w1"); err != nil {
		t.Fatal(err)
	}
	_ = e.update(func(tx *store.Txn) error {
		w, _ := store.Get[Widget](nil, tx, widgets, "w1")
		w.Count = 100
		if err := tx.Update(widgets, w); err != nil {
			return err
		}
		return errors.New("fail after write")
	})
	if watchFired(ws) {
		t.Fatal("watch fired for a write that did not commit")
	}
}

func watchFired(ws memdb.WatchSet) bool {
	timeout := time.After(200 * time.Millisecond)
	return !ws.Watch(timeout)
}

// testBatchIsolation holds the committer with one transaction so that the
// next ones queue into one batch, then checks that functions failing before
// and after their writes, and one panicking, affect only their own callers.
func testBatchIsolation(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	var wg sync.WaitGroup
	var first sync.Once
	wg.Go(func() {
		_ = e.update(func(tx *store.Txn) error {
			// Only the first run holds the committer: a re-run must not.
			first.Do(func() {
				held <- struct{}{}
				<-hold
			})
			return nil
		})
	})
	<-held

	type result struct {
		rev uint64
		err error
	}
	const n = 12
	results := make([]result, n)
	started := make(chan struct{}, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("w%02d", i)
			started <- struct{}{}
			results[i].err = e.update(func(tx *store.Txn) error {
				results[i].rev = tx.Revision()
				switch i % 4 {
				case 1: // fails before writing
					return fmt.Errorf("check failed %d", i)
				case 2: // fails after writing, in two tables
					if err := tx.Insert(widgets, widget(id, "p", id)); err != nil {
						return err
					}
					if err := tx.Insert(gadgets, &Gadget{ID: id, Widget: id}); err != nil {
						return err
					}
					return fmt.Errorf("late failure %d", i)
				case 3:
					if i == 7 {
						if err := tx.Insert(widgets, widget(id, "p", id)); err != nil {
							return err
						}
						panic("boom")
					}
				}
				if err := tx.Insert(widgets, widget(id, "p", id)); err != nil {
					return err
				}
				if err := tx.Insert(gadgets, &Gadget{ID: id, Widget: id}); err != nil {
					return err
				}
				return tx.Emit("test.widget.create", id, "p", nil)
			})
		})
	}
	for range n {
		<-started
	}
	time.Sleep(50 * time.Millisecond) // let every writer reach the committer's queue
	close(hold)
	wg.Wait()

	var okRevs []uint64
	for i, r := range results {
		id := fmt.Sprintf("w%02d", i)
		_, werr := e.get(id)
		_, gerr := store.Get[Gadget](nil, e.st.Snapshot(), gadgets, id)
		fails := i%4 == 1 || i%4 == 2 || i == 7
		switch {
		case fails && r.err == nil:
			t.Errorf("%s: failing function reported success", id)
		case fails && (werr == nil || gerr == nil):
			t.Errorf("%s: failing function's writes are visible", id)
		case !fails && r.err != nil:
			t.Errorf("%s: healthy function failed because of a batch mate: %v", id, r.err)
		case !fails && (werr != nil || gerr != nil):
			t.Errorf("%s: committed writes missing: %v %v", id, werr, gerr)
		case !fails:
			okRevs = append(okRevs, r.rev)
		}
		if i == 7 && (r.err == nil || !strings.Contains(r.err.Error(), "boom")) {
			t.Errorf("panicking function: %v, want an error naming the panic", r.err)
		}
		if i%4 == 2 && (r.err == nil || !strings.Contains(r.err.Error(), "late failure")) {
			t.Errorf("%s: got %v, want its own error", id, r.err)
		}
	}
	slices.Sort(okRevs)
	if len(okRevs) > 0 && okRevs[0] != okRevs[len(okRevs)-1] {
		t.Logf("healthy functions committed at revisions %v (expected one batch)", okRevs)
	}
	if len(okRevs) > 1 && len(slices.Compact(okRevs)) == len(okRevs) {
		t.Errorf("no two healthy functions shared a commit: %v (no group commit)", okRevs)
	}
	events := collect(store.Events(nil, e.st.Snapshot(), 0))
	if len(events) != len(okRevs) {
		t.Errorf("%d events, want one per committed function (%d)", len(events), len(okRevs))
	}
}
