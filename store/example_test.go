package store_test

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Flavor is a record: it embeds store.Meta and has a key.
type Flavor struct {
	store.Meta
	ID    string `json:"id"`
	Name  string `json:"name"`
	VCPUs int    `json:"vcpus"`
}

func (f *Flavor) StoreKey() string { return f.ID }

// flavorTable is declared beside the record, with a unique name index.
var flavorTable = store.Table{
	Name: "compute.flavors",
	New:  func() store.Record { return new(Flavor) },
	Indexes: []*memdb.IndexSchema{
		{Name: "name", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
	},
}

func Example() {
	ctx := context.Background()
	st, err := store.Open(ctx, memstore.New(), []store.Table{flavorTable}, nil)
	if err != nil {
		panic(err)
	}
	defer st.Close()

	// Write a record and its event in one durable transaction.
	err = st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Insert("compute.flavors", &Flavor{ID: "f1", Name: "m1.tiny", VCPUs: 1}); err != nil {
			return err
		}
		return tx.Emit("compute.flavor.create", "f1", "", nil)
	})
	if err != nil {
		panic(err)
	}

	// Read it back by a secondary index, change the copy, write it back
	// with compare-and-swap.
	f, err := store.First[Flavor](nil, st.Snapshot(), "compute.flavors", "name", "m1.tiny")
	if err != nil {
		panic(err)
	}
	f.VCPUs = 2
	if err := st.Update(ctx, func(tx *store.Txn) error { return tx.Update("compute.flavors", f) }); err != nil {
		panic(err)
	}

	// A consumer reads the outbox from its own cursor.
	events, _ := st.Consumer("metering").Next(ctx, 10)
	got, _ := store.Get[Flavor](nil, st.Snapshot(), "compute.flavors", "f1")
	fmt.Println(got.Name, got.VCPUs, events[0].Type)
	// Output: m1.tiny 2 compute.flavor.create
}
