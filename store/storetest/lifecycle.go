package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

func testReopen(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	for i := range 50 {
		id := fmt.Sprintf("w%03d", i)
		e.mustUpdate(func(tx *store.Txn) error {
			w := widget(id, fmt.Sprintf("p%d", i%3), id)
			w.Tags = []string{"t", id}
			return tx.Insert(widgets, w)
		})
	}
	w := e.mustGet("w007")
	w.Count = 42
	e.mustUpdate(func(tx *store.Txn) error { return tx.Update(widgets, w) })
	e.mustUpdate(func(tx *store.Txn) error { return tx.Delete(widgets, "w010") })
	rev := e.st.Revision()
	want := e.mustGet("w007")

	e.reopen()
	if got := e.st.Revision(); got < rev {
		t.Fatalf("revision after reopen %d, want at least %d", got, rev)
	}
	got := e.mustGet("w007")
	if got.Count != 42 || got.Revision != want.Revision || len(got.Tags) != 2 || got.Tags[1] != "w007" {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
	seq, err := store.List[Widget](nil, e.st.Snapshot(), widgets, "project", "p1")
	if n := len(collect(seq, err)); n != 16 { // w001, w004 ... w049 less w010
		t.Fatalf("p1 has %d widgets after reopen, want 16", n)
	}
	if _, err := e.get("w010"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted record back after reopen: %v", err)
	}
	// Revisions keep increasing after a reopen.
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("new", "p", "new")) })
	if n := e.mustGet("new"); n.Revision <= rev {
		t.Fatalf("first revision after reopen %d, want more than %d", n.Revision, rev)
	}
}

// testBackendRevisions drives the Backend directly: revisions increase,
// a change computed from a stale revision is refused whole, and Load
// reports every record with its revision.
func testBackendRevisions(t *testing.T, cfg Config) {
	dir := t.TempDir()
	ctx := ctxT(t)
	b, err := cfg.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, prev uint64) (uint64, error) {
		return b.Commit(ctx, []store.Change{{Table: widgets, Key: key, Value: []byte(`{"id":"` + key + `"}`), Prev: prev}})
	}
	r1, err := put("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := put("a", 0); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("creating an existing key: %v, want ErrConflict", err)
	}
	r2, err := put("b", 0)
	if err != nil || r2 <= r1 {
		t.Fatalf("second commit at %d (%v), want > %d", r2, err, r1)
	}
	r3, err := put("a", r1)
	if err != nil || r3 <= r2 {
		t.Fatalf("update at %d (%v), want > %d", r3, err, r2)
	}
	if _, err := put("a", r1); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("update from a stale revision: %v, want ErrConflict", err)
	}
	// A commit with one stale change applies none of its changes.
	_, err = b.Commit(ctx, []store.Change{
		{Table: widgets, Key: "c", Value: []byte(`{"id":"c"}`)},
		{Table: widgets, Key: "b", Prev: r1},
	})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("commit with a stale delete: %v, want ErrConflict", err)
	}
	r4, err := b.Commit(ctx, []store.Change{{Table: widgets, Key: "b", Prev: r2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = cfg.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := map[string]uint64{}
	rev, err := b.Load(ctx, func(table string, key, value []byte, rev uint64) error {
		if table == widgets {
			got[string(key)] = rev
		}
		return nil
	})
	if err != nil || rev < r4 {
		t.Fatalf("Load: revision %d (%v), want at least %d", rev, err, r4)
	}
	if len(got) != 1 || got["a"] != r3 {
		t.Fatalf("Load: %v, want only a at %d (c never committed, b deleted)", got, r3)
	}
}

// faulty fails commits on demand, as a full disk or a failed fsync would.
type faulty struct {
	store.Backend
	fail atomic.Bool
}

var errDiskFull = fmt.Errorf("write stratus.db: %w", syscall.ENOSPC)

func (f *faulty) Commit(ctx context.Context, changes []store.Change) (uint64, error) {
	if f.fail.Load() {
		return 0, errDiskFull
	}
	return f.Backend.Commit(ctx, changes)
}

func testFailedCommit(t *testing.T, cfg Config) {
	var f *faulty
	e := &env{t: t, cfg: cfg, dir: t.TempDir(), clock: newClock()}
	e.wrap = func(b store.Backend) store.Backend { f = &faulty{Backend: b}; return f }
	e.open()
	t.Cleanup(func() { _ = e.st.Close() })

	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("ok1", "p", "ok1")) })
	rev := e.st.Revision()
	f.fail.Store(true)
	err := e.update(func(tx *store.Txn) error {
		if err := tx.Insert(widgets, widget("lost", "p", "lost")); err != nil {
			return err
		}
		return tx.Emit("test.widget.create", "lost", "p", nil)
	})
	if !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit on a full disk: %v, want ErrUnavailable wrapping ENOSPC", err)
	}
	if _, err := e.get("lost"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a write whose commit failed is visible: %v", err)
	}
	if e.st.Revision() != rev {
		t.Fatalf("revision moved to %d on a failed commit", e.st.Revision())
	}
	f.fail.Store(false)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("ok2", "p", "ok2")) })
	e.reopen()
	if _, err := e.get("lost"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("failed write present after reopen: %v", err)
	}
	e.mustGet("ok1")
	e.mustGet("ok2")
	for ev := range must(store.Events(nil, e.st.Snapshot(), 0)) {
		if ev.ResourceID == "lost" {
			t.Fatal("event of a failed commit present after reopen")
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testClosed(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("w", "p", "w")) })
	snap := e.st.Snapshot()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	err := e.st.Update(ctxT(t), func(tx *store.Txn) error { return nil })
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("update after close: %v, want ErrClosed", err)
	}
	if _, err := store.Get[Widget](nil, snap, widgets, "w"); err != nil {
		t.Fatalf("snapshot taken before close: %v", err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	e.st = nil
	e.open()
	if err := e.st.Update(ctx, func(tx *store.Txn) error { return tx.Insert(widgets, widget("x", "p", "x")) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("update with a cancelled context: %v", err)
	}
	if _, err := e.get("x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("write with a cancelled context committed: %v", err)
	}
}
