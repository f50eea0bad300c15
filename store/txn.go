package store

import (
	"errors"
	"fmt"
	"iter"
	"reflect"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
)

// Txn is a transaction on the store: a read-only snapshot from
// [Store.Snapshot], or a write transaction handed to a [Store.Update]
// function. Records read through it are copies: change them and write them
// back with Update; never change a slice or map they share with the stored
// record in place.
type Txn struct {
	tx     *memdb.Txn
	st     *Store
	write  bool
	rev    uint64
	now    time.Time
	wrote  bool
	events uint64
}

// Revision returns the revision this write transaction commits at. It is
// zero in a read-only transaction.
func (t *Txn) Revision() uint64 { return t.rev }

// Now returns the commit time of a write transaction (the same for every
// function in a batch), or the store clock's time in a read-only one.
func (t *Txn) Now() time.Time {
	if t.write {
		return t.now
	}
	return t.st.opts.Clock().UTC()
}

func (t *Txn) table(name string) (Table, error) {
	tb, ok := t.st.tables[name]
	if !ok {
		return Table{}, fmt.Errorf("store: no table %q", name)
	}
	return tb, nil
}

func (t *Txn) mustWrite() error {
	if !t.write {
		return errors.New("store: write in a read-only transaction")
	}
	return nil
}

// current prepares a write to table: it checks the table and that the
// transaction may write, and returns the stored record with key (nil if
// there is none).
func (t *Txn) current(table, key string) (Table, Record, error) {
	tb, err := t.table(table)
	if err != nil {
		return Table{}, nil, err
	}
	if err := t.mustWrite(); err != nil {
		return Table{}, nil, err
	}
	old, err := t.tx.First(table, IDIndex, key)
	if err != nil {
		return Table{}, nil, fmt.Errorf("store: %s %q: %w", table, key, err)
	}
	if old == nil {
		return tb, nil, nil
	}
	return tb, old.(Record), nil
}

// Insert adds a new record. It fails with errdefs.ErrConflict if a record
// with the same key exists. A tombstone left by an earlier record with the
// same key is removed.
func (t *Txn) Insert(table string, rec Record) error {
	key := rec.StoreKey()
	tb, old, err := t.current(table, key)
	if err != nil {
		return err
	}
	if old != nil {
		return fmt.Errorf("store: %s %q already exists: %w", table, key, errdefs.ErrConflict)
	}
	if err := t.purgeIfExists(tombstoneTable, tombstoneKey(table, key)); err != nil {
		return err
	}
	return t.put(tb, rec)
}

// Update replaces a record, compare-and-swap: rec's Revision must be the
// revision of the stored record (the one the caller read), else it fails
// with errdefs.ErrConflict. It fails with errdefs.ErrNotFound if there is no
// record with rec's key.
func (t *Txn) Update(table string, rec Record) error {
	key := rec.StoreKey()
	tb, old, err := t.current(table, key)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("store: %s %q: %w", table, key, errdefs.ErrNotFound)
	}
	if have, want := old.StoreMeta().Revision, rec.StoreMeta().Revision; have != want {
		return fmt.Errorf("store: %s %q changed since it was read (revision %d, now %d): %w",
			table, key, want, have, errdefs.ErrConflict)
	}
	return t.put(tb, rec)
}

// Put inserts or replaces a record without a revision check. Prefer Insert
// and Update; Put is for records that have a single writer.
func (t *Txn) Put(table string, rec Record) error {
	tb, _, err := t.current(table, rec.StoreKey())
	if err != nil {
		return err
	}
	return t.put(tb, rec)
}

func (t *Txn) put(tb Table, rec Record) error {
	// The store keeps its own copy, so that the caller's record never
	// aliases a stored one.
	rec = shallowCopy(rec)
	m := rec.StoreMeta()
	m.Revision = t.rev
	m.SchemaVersion = tb.Version()
	t.wrote = true
	if err := t.tx.Insert(tb.Name, rec); err != nil {
		return fmt.Errorf("store: %s %q: %w", tb.Name, rec.StoreKey(), err)
	}
	return nil
}

// Delete removes the record with key and leaves a tombstone holding its last
// value for the store's tombstone retention. It fails with
// errdefs.ErrNotFound if there is no such record.
func (t *Txn) Delete(table, key string) error {
	_, old, err := t.current(table, key)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("store: %s %q: %w", table, key, errdefs.ErrNotFound)
	}
	ts, err := newTombstone(table, old, t.now)
	if err != nil {
		return err
	}
	t.wrote = true
	if err := t.tx.Delete(table, old); err != nil {
		return fmt.Errorf("store: %s %q: %w", table, key, err)
	}
	return t.put(t.st.tables[tombstoneTable], ts)
}

func shallowCopy(rec Record) Record {
	v := reflect.ValueOf(rec)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return rec
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface().(Record)
}

// purgeIfExists removes a record without leaving a tombstone.
func (t *Txn) purgeIfExists(table, key string) error {
	old, err := t.tx.First(table, IDIndex, key)
	if err != nil || old == nil {
		return err
	}
	t.wrote = true
	return t.tx.Delete(table, old)
}

// Get returns a copy of the record of table with key, or an error matching
// errdefs.ErrNotFound. If ws is not nil, it is given a channel that fires
// when the record changes.
func Get[T any](ws memdb.WatchSet, tx *Txn, table, key string) (*T, error) {
	return First[T](ws, tx, table, IDIndex, key)
}

// First returns a copy of the first record of table whose index matches
// args, or an error matching errdefs.ErrNotFound.
func First[T any](ws memdb.WatchSet, tx *Txn, table, index string, args ...any) (*T, error) {
	ch, obj, err := tx.tx.FirstWatch(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s by %s: %w", table, index, err)
	}
	ws.Add(ch)
	if obj == nil {
		return nil, fmt.Errorf("store: %s %v: %w", table, args, errdefs.ErrNotFound)
	}
	return copyOf[T](obj)
}

// Exists reports whether table has a record whose index matches args. It
// copies nothing and makes no error for a missing record: for checks on hot
// paths, such as whether an address is taken.
func Exists(tx *Txn, table, index string, args ...any) (bool, error) {
	obj, err := tx.tx.First(table, index, args...)
	if err != nil {
		return false, fmt.Errorf("store: %s by %s: %w", table, index, err)
	}
	return obj != nil, nil
}

func copyOf[T any](obj any) (*T, error) {
	p, ok := obj.(*T)
	if !ok {
		var zero T
		return nil, fmt.Errorf("store: record is %T, not %T", obj, &zero)
	}
	c := *p
	return &c, nil
}

// List returns copies of the records of table whose index matches args, in
// index order. With index "id" and no args it lists the whole table; an
// index name with the suffix "_prefix" matches a prefix. If ws is not nil,
// it is given a channel that fires when the result may have changed.
func List[T any](ws memdb.WatchSet, tx *Txn, table, index string, args ...any) (iter.Seq[*T], error) {
	if err := checkType[T](tx, table); err != nil {
		return nil, err
	}
	it, err := tx.tx.Get(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s by %s: %w", table, index, err)
	}
	ws.Add(it.WatchCh())
	return seq[T](it), nil
}

// ListFrom is like List but starts at the first record whose index value is
// at or after args (memdb's LowerBound), for marker paging and range scans.
func ListFrom[T any](ws memdb.WatchSet, tx *Txn, table, index string, args ...any) (iter.Seq[*T], error) {
	if err := checkType[T](tx, table); err != nil {
		return nil, err
	}
	it, err := tx.tx.LowerBound(table, index, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s by %s: %w", table, index, err)
	}
	if ws != nil {
		// memdb cannot watch a lower bound: watch the whole table.
		all, err := tx.tx.Get(table, IDIndex)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", table, err)
		}
		ws.Add(all.WatchCh())
	}
	return seq[T](it), nil
}

func checkType[T any](tx *Txn, table string) error {
	tb, err := tx.table(table)
	if err != nil {
		return err
	}
	if _, ok := any(tb.New()).(*T); !ok {
		var zero T
		return fmt.Errorf("store: table %q holds %T, not %T", table, tb.New(), &zero)
	}
	return nil
}

func seq[T any](it memdb.ResultIterator) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for obj := it.Next(); obj != nil; obj = it.Next() {
			c := *obj.(*T)
			if !yield(&c) {
				return
			}
		}
	}
}
