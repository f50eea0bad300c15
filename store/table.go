package store

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// IDIndex is the name of every table's primary index. It is built by the
// store from each record's StoreKey; tables must not declare it.
const IDIndex = "id"

// Record is implemented by every stored value. Embed [Meta] to get StoreMeta.
type Record interface {
	// StoreKey returns the record's primary key, unique in its table. It
	// must not change once the record is stored.
	StoreKey() string
	// StoreMeta returns the record's store bookkeeping.
	StoreMeta() *Meta
}

// Meta is the store's bookkeeping carried by every record. Embed it in each
// record type. The store sets it on every write; services read it but
// never set it, except that Revision is the revision an update expects.
type Meta struct {
	// Revision is the store revision of the commit that last wrote the
	// record. An update carries the revision it read, and fails with
	// errdefs.ErrConflict if the record changed since (compare-and-swap).
	//
	// The revision is kept by the backend beside the record, not in it.
	Revision uint64 `json:"-"`
	// SchemaVersion is the version of the record's table that wrote it.
	// Records of older versions are upgraded on load (see Table.Upgrades).
	SchemaVersion int `json:"_v,omitempty"`
}

// StoreMeta returns m, so that any struct embedding Meta has the method.
func (m *Meta) StoreMeta() *Meta { return m }

// Upgrade turns one record of version N into version N+1, in place, on the
// record's JSON object. It must be a pure function of its input.
type Upgrade func(fields map[string]json.RawMessage) error

// Table declares one table: its name, how to make an empty record, its
// secondary indexes and the upgrades from older record versions. Each
// service declares its tables beside its records and exports them from a
// Tables function; the host passes all of them to [Open].
type Table struct {
	// Name is the table's namespaced name, such as "compute.servers". It
	// must not contain '/' and must not start with "store.".
	Name string
	// New returns a new, empty record of the table's type (a pointer).
	New func() Record
	// Indexes are the table's secondary indexes. Their Name must be set and
	// must not be "id". The "id" index, over StoreKey, is added by the store.
	Indexes []*memdb.IndexSchema
	// Upgrades[i] converts a record of version i+1 to version i+2. The
	// table's current version is len(Upgrades)+1.
	Upgrades []Upgrade
}

// Version returns the table's current record version.
func (t Table) Version() int { return len(t.Upgrades) + 1 }

func (t Table) validate(internal bool) error {
	switch {
	case t.Name == "":
		return fmt.Errorf("store: table with no name")
	case strings.Contains(t.Name, "/"):
		return fmt.Errorf("store: table %q: name contains '/'", t.Name)
	case !internal && strings.HasPrefix(t.Name, "store."):
		return fmt.Errorf("store: table %q: the store. prefix is reserved", t.Name)
	case t.New == nil:
		return fmt.Errorf("store: table %q: New is nil", t.Name)
	}
	seen := map[string]bool{IDIndex: true}
	for _, ix := range t.Indexes {
		if ix == nil || ix.Name == "" || ix.Indexer == nil {
			return fmt.Errorf("store: table %q: index with no name or indexer", t.Name)
		}
		if seen[ix.Name] {
			return fmt.Errorf("store: table %q: duplicate index %q", t.Name, ix.Name)
		}
		seen[ix.Name] = true
	}
	return nil
}

func (t Table) schema() *memdb.TableSchema {
	s := &memdb.TableSchema{Name: t.Name, Indexes: map[string]*memdb.IndexSchema{
		IDIndex: {Name: IDIndex, Unique: true, Indexer: keyIndexer{}},
	}}
	for _, ix := range t.Indexes {
		s.Indexes[ix.Name] = ix
	}
	return s
}

// keyIndexer indexes records by StoreKey. It also serves prefix lookups
// ("id_prefix"), which composite keys such as "project/user" use.
type keyIndexer struct{}

func (keyIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(Record)
	if !ok {
		return false, nil, fmt.Errorf("store: %T is not a Record", obj)
	}
	k := r.StoreKey()
	if k == "" {
		return false, nil, fmt.Errorf("store: %T has an empty key", obj)
	}
	return true, append([]byte(k), 0), nil
}

func (keyIndexer) FromArgs(args ...any) ([]byte, error) {
	k, err := keyArg(args)
	if err != nil {
		return nil, err
	}
	return append([]byte(k), 0), nil
}

func (keyIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	k, err := keyArg(args)
	return []byte(k), err
}

func keyArg(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("store: id index takes one argument, got %d", len(args))
	}
	k, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("store: id index argument must be a string, got %T", args[0])
	}
	return k, nil
}

// decode turns a stored value, last written at rev, into a record of t,
// upgrading it from an older version when needed. upgraded reports whether
// it did.
func (t Table) decode(value []byte, rev uint64) (rec Record, upgraded bool, err error) {
	rec, upgraded, err = t.decodeVersion(value)
	if err != nil {
		return nil, false, err
	}
	rec.StoreMeta().Revision = rev
	if ev, ok := rec.(*Event); ok {
		ev.Seq = eventSeq(rev, ev.N)
	}
	return rec, upgraded, nil
}

func (t Table) decodeVersion(value []byte) (rec Record, upgraded bool, err error) {
	rec = t.New()
	if err := json.Unmarshal(value, rec); err != nil {
		return nil, false, fmt.Errorf("store: table %q: decode: %w", t.Name, err)
	}
	v := max(rec.StoreMeta().SchemaVersion, 1)
	switch {
	case v == t.Version():
		return rec, false, nil
	case v > t.Version():
		return nil, false, fmt.Errorf("store: table %q: record %q has version %d, newer than this program's %d",
			t.Name, rec.StoreKey(), v, t.Version())
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(value, &fields); err != nil {
		return nil, false, fmt.Errorf("store: table %q: decode: %w", t.Name, err)
	}
	for ; v < t.Version(); v++ {
		if err := t.Upgrades[v-1](fields); err != nil {
			return nil, false, fmt.Errorf("store: table %q: upgrade record %q from version %d: %w", t.Name, rec.StoreKey(), v, err)
		}
	}
	fields["_v"] = json.RawMessage(fmt.Sprint(t.Version()))
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, false, err
	}
	rec = t.New()
	if err := json.Unmarshal(raw, rec); err != nil {
		return nil, false, fmt.Errorf("store: table %q: decode upgraded record: %w", t.Name, err)
	}
	return rec, true, nil
}
