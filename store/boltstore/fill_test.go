package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
)

// TestAppendsPackPages: commits that only add keys after a table's last
// (time-ordered ids) leave its pages nearly full; inserts among existing
// keys keep bbolt's default half-full split.
func TestAppendsPackPages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := boltstore.Open(ctx, path, &boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 200)
	commit := func(table string, keys []string) {
		t.Helper()
		var ch []store.Change
		for _, k := range keys {
			ch = append(ch, store.Change{Table: table, Key: k, Value: val})
		}
		if _, err := b.Commit(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		var app, mixed []string
		for j := range 16 {
			n := i*16 + j
			app = append(app, fmt.Sprintf("1%07d", n))
			mixed = append(mixed, fmt.Sprintf("1%07d", n))
		}
		// The same keys, and in each commit one before them all.
		mixed = append(mixed, fmt.Sprintf("0%07d", i))
		commit("appends", app)
		commit("mixed", mixed)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fill := func(table string) float64 {
		var f float64
		_ = db.View(func(tx *bolt.Tx) error {
			st := tx.Bucket([]byte("tables")).Bucket([]byte(table)).Stats()
			f = float64(st.LeafInuse) / float64(st.LeafPageN*db.Info().PageSize)
			return nil
		})
		return f
	}
	app, mixed := fill("appends"), fill("mixed")
	t.Logf("leaf pages in use: %.0f%% appending, %.0f%% with an insert among the keys in each commit", app*100, mixed*100)
	if app < 0.85 {
		t.Errorf("appended table's leaves %.0f%% full, want at least 85%%", app*100)
	}
	if mixed > 0.75 {
		t.Errorf("mixed table's leaves %.0f%% full: the append fill applied to a commit that was not only appends", mixed*100)
	}
}
