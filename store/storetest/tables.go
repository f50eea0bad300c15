package storetest

import (
	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/store"
)

// The suite's tables.
const (
	widgets  = "test.widgets"
	gadgets  = "test.gadgets"
	counters = "test.counters"
)

// Widget is the suite's main record: indexed by project and by a unique
// name.
type Widget struct {
	store.Meta
	ID      string   `json:"id"`
	Project string   `json:"project"`
	Name    string   `json:"name"`
	Count   int      `json:"count"`
	Tags    []string `json:"tags,omitempty"`
}

// StoreKey implements store.Record.
func (w *Widget) StoreKey() string { return w.ID }

// Gadget is written together with widgets by multi-table transactions.
type Gadget struct {
	store.Meta
	ID     string `json:"id"`
	Widget string `json:"widget"`
}

// StoreKey implements store.Record.
func (g *Gadget) StoreKey() string { return g.ID }

// Counter is a single counter record.
type Counter struct {
	store.Meta
	ID    string `json:"id"`
	Value int    `json:"value"`
}

// StoreKey implements store.Record.
func (c *Counter) StoreKey() string { return c.ID }

// Tables returns the suite's tables.
func Tables() []store.Table {
	return []store.Table{
		{Name: widgets, New: func() store.Record { return new(Widget) }, Indexes: []*memdb.IndexSchema{
			{Name: "project", Indexer: &memdb.StringFieldIndex{Field: "Project"}},
			{Name: "name", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		}},
		{Name: gadgets, New: func() store.Record { return new(Gadget) }, Indexes: []*memdb.IndexSchema{
			{Name: "widget", Indexer: &memdb.StringFieldIndex{Field: "Widget"}},
		}},
		{Name: counters, New: func() store.Record { return new(Counter) }},
	}
}
