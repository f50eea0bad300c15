package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stratuskit/stratus/store"
)

// testElection: one campaigner leads at a time; the next leads once the
// first resigns; a resigned leader's fenced updates are refused.
func testElection(t *testing.T, cfg Config) {
	e := newEnv(t, cfg)
	ctx := ctxT(t)
	a, err := e.st.Campaign(ctx, "scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, func(tx *store.Txn) error { return tx.Insert(widgets, widget("by-a", "p", "by-a")) }); err != nil {
		t.Fatalf("leader's fenced update: %v", err)
	}
	won := make(chan *store.Leader, 1)
	go func() {
		b, err := e.st.Campaign(ctx, "scheduler")
		if err != nil {
			t.Error(err)
			return
		}
		won <- b
	}()
	select {
	case <-won:
		t.Fatal("a second campaigner led while the first still did")
	case <-time.After(300 * time.Millisecond):
	}
	// Another name is independent.
	other, err := e.st.Campaign(ctx, "compaction")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Resign(ctx) }()

	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost not closed after Resign")
	}
	err = a.Update(ctx, func(tx *store.Txn) error { return tx.Insert(widgets, widget("late", "p", "late")) })
	if !errors.Is(err, store.ErrNotLeader) {
		t.Fatalf("update by a resigned leader: %v, want ErrNotLeader", err)
	}
	var b *store.Leader
	select {
	case b = <-won:
	case <-time.After(10 * time.Second):
		t.Fatal("the second campaigner did not lead after the first resigned")
	}
	if err := b.Update(ctx, func(tx *store.Txn) error { return tx.Insert(widgets, widget("by-b", "p", "by-b")) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Resign(ctx); err != nil {
		t.Fatal(err)
	}
}
