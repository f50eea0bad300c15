package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

func TestOpenValidatesTables(t *testing.T) {
	newF := func() store.Record { return new(Flavor) }
	cases := []struct {
		name   string
		tables []store.Table
		want   string
	}{
		{"no name", []store.Table{{New: newF}}, "no name"},
		{"slash", []store.Table{{Name: "a/b", New: newF}}, "contains '/'"},
		{"reserved", []store.Table{{Name: "store.x", New: newF}}, "reserved"},
		{"no New", []store.Table{{Name: "a.b"}}, "New is nil"},
		{"twice", []store.Table{flavorTable, flavorTable}, "declared twice"},
		{"id index", []store.Table{{Name: "a.b", New: newF, Indexes: []*memdb.IndexSchema{
			{Name: "id", Indexer: &memdb.StringFieldIndex{Field: "ID"}}}}}, "duplicate index"},
		{"bad index", []store.Table{{Name: "a.b", New: newF, Indexes: []*memdb.IndexSchema{{Name: "x"}}}}, "no name or indexer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := store.Open(t.Context(), memstore.New(), c.tables, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestHasTablesAndBackup(t *testing.T) {
	st, err := store.Open(t.Context(), memstore.New(), []store.Table{flavorTable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.HasTables("compute.flavors"); err != nil {
		t.Fatal(err)
	}
	if err := st.HasTables("compute.flavors", "compute.servers"); err == nil || !strings.Contains(err.Error(), "compute.servers") {
		t.Fatalf("HasTables with a missing table: %v", err)
	}
	if st.Durable() {
		t.Fatal("memstore reported durable")
	}
	if _, err := st.Backup(t.Context(), nil); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Fatalf("Backup on memstore: %v, want ErrUnsupported", err)
	}
}

func TestUpdateAfterUpdateInOneTransaction(t *testing.T) {
	st, err := store.Open(t.Context(), memstore.New(), []store.Table{flavorTable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	err = st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Insert("compute.flavors", &Flavor{ID: "f", Name: "a"}); err != nil {
			return err
		}
		// Re-read inside the transaction to update what it just wrote.
		f, err := store.Get[Flavor](nil, tx, "compute.flavors", "f")
		if err != nil {
			return err
		}
		f.VCPUs = 4
		return tx.Update("compute.flavors", f)
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := store.Get[Flavor](nil, st.Snapshot(), "compute.flavors", "f")
	if f.VCPUs != 4 || f.Revision != st.Revision() {
		t.Fatalf("%+v at store revision %d", f, st.Revision())
	}
	// A function that changes nothing commits nothing.
	rev := st.Revision()
	if err := st.Update(ctx, func(tx *store.Txn) error { return nil }); err != nil || st.Revision() != rev {
		t.Fatalf("empty update: %v, revision %d -> %d", err, rev, st.Revision())
	}
}

// TestEventIDsFollowCommitOrder: event ids sort as their events, so a
// backend writes a commit's events side by side (one page, not one each).
func TestEventIDsFollowCommitOrder(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, memstore.New(), nil, &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range 20 {
		err := st.Update(ctx, func(tx *store.Txn) error {
			for range 3 {
				if err := tx.Emit("test.thing.create", "", "", nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	evs, err := store.Events(nil, st.Snapshot(), 0)
	if err != nil {
		t.Fatal(err)
	}
	prev, n := "", 0
	for ev := range evs {
		if ev.ID <= prev {
			t.Fatalf("event %d id %q sorts before the previous %q", ev.Seq, ev.ID, prev)
		}
		prev = ev.ID
		n++
	}
	if n != 60 {
		t.Fatalf("%d events, want 60", n)
	}
}

func TestExists(t *testing.T) {
	st, err := store.Open(t.Context(), memstore.New(), []store.Table{flavorTable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(t.Context(), func(tx *store.Txn) error {
		if ok, err := store.Exists(tx, "compute.flavors", "name", "m1.small"); ok || err != nil {
			t.Errorf("before the insert: Exists = %v, %v", ok, err)
		}
		if err := tx.Insert("compute.flavors", &Flavor{ID: "f1", Name: "m1.small"}); err != nil {
			return err
		}
		// A write transaction sees its own writes.
		if ok, err := store.Exists(tx, "compute.flavors", "name", "m1.small"); !ok || err != nil {
			t.Errorf("after the insert: Exists = %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tx := st.Snapshot()
	if ok, err := store.Exists(tx, "compute.flavors", store.IDIndex, "f1"); !ok || err != nil {
		t.Errorf("Exists(f1) = %v, %v", ok, err)
	}
	if ok, err := store.Exists(tx, "compute.flavors", store.IDIndex, "f2"); ok || err != nil {
		t.Errorf("Exists(f2) = %v, %v", ok, err)
	}
	if _, err := store.Exists(tx, "compute.flavors", "nope", "x"); err == nil {
		t.Error("Exists on a missing index: no error")
	}
}
