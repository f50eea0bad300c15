package fsobj

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

// TestDropKnown: a handoff drops exactly the versions it pushed; a
// version written meanwhile, and so its container, stay.
func TestDropKnown(t *testing.T) {
	b, err := Open(t.TempDir(), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.createContainerAt("AUTH_p", "c", 10); err != nil {
		t.Fatal(err)
	}
	k := func(n string) objectstore.ObjectKey {
		return objectstore.ObjectKey{Account: "AUTH_p", Container: "c", Name: n}
	}
	big := bytes.Repeat([]byte("x"), 100_000)
	for i, n := range []string{"a", "b"} {
		if _, err := b.put(ctx, k(n), bytes.NewReader(big), objectstore.PutOptions{}, time.Unix(0, int64(100+i)), true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.deleteAt(k("gone"), 50); err != nil {
		t.Fatal(err)
	}
	// An older version is refused.
	if _, err := b.put(ctx, k("a"), bytes.NewReader(big), objectstore.PutOptions{}, time.Unix(0, 99), true); !errors.Is(err, errStale) {
		t.Fatalf("older put: %v, want errStale", err)
	}
	st, _ := b.container("AUTH_p", "c")
	// b was rewritten (at 101) after the pass read it at 90.
	if err := b.dropKnown(st, map[string]int64{"a": 100, "b": 90, "gone": 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, k("a")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a not dropped: %v", err)
	}
	if _, err := b.Head(ctx, k("b")); err != nil {
		t.Fatalf("b, written since, was dropped: %v", err)
	}
	if s, err := b.ContainerStats(ctx, "AUTH_p", "c"); err != nil || s.Objects != 1 || s.Bytes != int64(len(big)) {
		t.Fatalf("stats %+v %v", s, err)
	}
	if err := b.dropKnown(st, map[string]int64{"b": 101}); err != nil {
		t.Fatal(err)
	}
	if s, _ := b.container("AUTH_p", "c"); s.Exists {
		t.Fatal("empty container not dropped")
	}
}
