package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

func testOutbox(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	a, b := e.st.Consumer("metering"), e.st.Consumer("orchestration")
	ctx := ctxT(t)

	// Registering before any event exists: both consumers start at the
	// beginning and wait.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := a.Next(short, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty outbox: %v, want deadline", err)
	}
	cancel()
	if _, err := b.Next(short, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty outbox: %v, want deadline", err)
	}

	// Next blocks until an event commits.
	got := make(chan []*store.Event, 1)
	go func() {
		evs, err := a.Next(ctx, 10)
		if err != nil {
			t.Error(err)
		}
		got <- evs
	}()
	time.Sleep(20 * time.Millisecond)
	for i := range 5 {
		id := fmt.Sprintf("w%d", i)
		e.mustUpdate(func(tx *store.Txn) error {
			if err := tx.Insert(widgets, widget(id, "p1", id)); err != nil {
				return err
			}
			return tx.Emit("test.widget.create", id, "p1", map[string]string{"name": id})
		})
	}
	// A transaction that fails leaves no event.
	_ = e.update(func(tx *store.Txn) error {
		if err := tx.Emit("test.widget.create", "ghost", "p1", nil); err != nil {
			return err
		}
		return errors.New("rolled back")
	})
	select {
	case evs := <-got:
		if len(evs) == 0 || evs[0].ResourceID != "w0" {
			t.Fatalf("woken with %v", evs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake on a new event")
	}

	evs, err := a.Next(ctx, 3)
	if err != nil || len(evs) != 3 {
		t.Fatalf("Next(3): %d events, %v", len(evs), err)
	}
	for i, ev := range evs {
		if want := fmt.Sprintf("w%d", i); ev.ResourceID != want || ev.Type != "test.widget.create" || ev.ProjectID != "p1" {
			t.Fatalf("event %d: %+v, want resource %s", i, ev, want)
		}
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Fatalf("events out of order: %d then %d", evs[i-1].Seq, ev.Seq)
		}
	}
	if string(evs[1].Payload) != `{"name":"w1"}` {
		t.Fatalf("payload %s", evs[1].Payload)
	}
	if err := a.Ack(ctx, evs[2].Seq); err != nil {
		t.Fatal(err)
	}
	rest, err := a.Next(ctx, 10)
	if err != nil || len(rest) != 2 || rest[0].ResourceID != "w3" {
		t.Fatalf("after ack: %v %v", rest, err)
	}
	all := collect(store.Events(nil, e.st.Snapshot(), 0))
	for _, ev := range all {
		if ev.ResourceID == "ghost" {
			t.Fatal("an event of a failed transaction is visible")
		}
	}

	// Cursors are durable, and independent per consumer.
	e.reopen()
	a, b = e.st.Consumer("metering"), e.st.Consumer("orchestration")
	rest, err = a.Next(ctx, 10)
	if err != nil || len(rest) != 2 || rest[0].ResourceID != "w3" {
		t.Fatalf("after reopen, metering: %v %v", rest, err)
	}
	bevs, err := b.Next(ctx, 10)
	if err != nil || len(bevs) != 5 {
		t.Fatalf("orchestration sees %d events (%v), want 5", len(bevs), err)
	}
	// A cursor never moves back.
	if err := a.Ack(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if rest, _ := a.Next(ctx, 10); rest[0].ResourceID != "w3" {
		t.Fatalf("cursor moved back: next is %s", rest[0].ResourceID)
	}

	// Compaction keeps what a consumer has not passed, and what is within
	// retention.
	if err := a.Ack(ctx, all[len(all)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, all[1].Seq); err != nil { // b has passed w0, w1
		t.Fatal(err)
	}
	st, err := e.st.Compact(ctx)
	if err != nil || st.Events != 0 {
		t.Fatalf("compaction within retention removed %d events (%v)", st.Events, err)
	}
	e.clock.Advance(25 * time.Hour)
	st, err = e.st.Compact(ctx)
	if err != nil || st.Events != 2 {
		t.Fatalf("compaction removed %d events (%v), want the 2 both consumers passed", st.Events, err)
	}
	left := collect(store.Events(nil, e.st.Snapshot(), 0))
	if len(left) != 3 || left[0].ResourceID != "w2" {
		t.Fatalf("left after compaction: %d events", len(left))
	}
	e.reopen()
	if left := collect(store.Events(nil, e.st.Snapshot(), 0)); len(left) != 3 {
		t.Fatalf("after compaction and reopen: %d events, want 3", len(left))
	}
}

func testTombstones(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	ctx := ctxT(t)
	e.mustUpdate(func(tx *store.Txn) error {
		for _, id := range []string{"a", "b", "c"} {
			if err := tx.Insert(widgets, widget(id, "p", id)); err != nil {
				return err
			}
		}
		return nil
	})
	deletedAt := e.clock.Now()
	e.mustUpdate(func(tx *store.Txn) error { return tx.Delete(widgets, "a") })
	e.clock.Advance(time.Hour)
	e.mustUpdate(func(tx *store.Txn) error { return tx.Delete(widgets, "b") })

	tss := collect(store.Tombstones(nil, e.st.Snapshot(), widgets))
	if len(tss) != 2 || tss[0].Key != "a" || !tss[0].DeletedAt.Equal(deletedAt) {
		t.Fatalf("tombstones: %+v", tss)
	}
	var w Widget
	if err := tss[0].Decode(&w); err != nil || w.Name != "a" || w.Project != "p" {
		t.Fatalf("tombstone holds %+v (%v)", w, err)
	}
	if _, err := store.GetTombstone(nil, e.st.Snapshot(), widgets, "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("tombstone of a live record: %v", err)
	}
	e.reopen()
	if tss := collect(store.Tombstones(nil, e.st.Snapshot(), widgets)); len(tss) != 2 {
		t.Fatalf("after reopen: %d tombstones, want 2", len(tss))
	}

	// Re-creating a key removes its tombstone.
	e.mustUpdate(func(tx *store.Txn) error { return tx.Insert(widgets, widget("b", "p", "b2")) })
	if _, err := store.GetTombstone(nil, e.st.Snapshot(), widgets, "b"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("tombstone survives re-creation: %v", err)
	}

	// Compaction purges tombstones past retention only.
	e.clock.Advance(7*24*time.Hour - 30*time.Minute) // "a" is past 7 days; nothing else is
	e.mustUpdate(func(tx *store.Txn) error { return tx.Delete(widgets, "c") })
	st, err := e.st.Compact(ctx)
	if err != nil || st.Tombstones != 1 {
		t.Fatalf("compaction purged %d tombstones (%v), want 1", st.Tombstones, err)
	}
	tss = collect(store.Tombstones(nil, e.st.Snapshot(), widgets))
	if len(tss) != 1 || tss[0].Key != "c" {
		t.Fatalf("left: %+v", tss)
	}
	e.reopen()
	if tss := collect(store.Tombstones(nil, e.st.Snapshot(), widgets)); len(tss) != 1 {
		t.Fatalf("after compaction and reopen: %d tombstones, want 1", len(tss))
	}
}
