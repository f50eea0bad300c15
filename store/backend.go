package store

import (
	"context"
	"io"
)

// Backend makes the store durable. It is the store's driver: small, about
// the outside world only. Implementations: store/boltstore (one machine),
// store/memstore (tests), and an etcd backend for many controllers. Every
// Backend passes store/storetest.
type Backend interface {
	// Durable reports whether a successful Commit survives a crash of the
	// process (and, for disk backends, of the machine).
	Durable() bool
	// Load calls fn for every stored record, then returns the backend's
	// revision. key and value are valid only during the call. An error from
	// fn stops the load and is returned.
	Load(ctx context.Context, fn func(table string, key, value []byte) error) (rev uint64, err error)
	// Commit applies changes at revision rev atomically and durably: it
	// returns only once the whole commit would survive a crash, and on error
	// none of it is applied. It fails with an error matching
	// errdefs.ErrConflict if the backend's revision is not rev-1. A failed
	// disk (full, fsync error) is returned, never hidden.
	Commit(ctx context.Context, rev uint64, changes []Change) error
	// Close releases the backend. It must be safe to call once after a
	// partial open.
	Close() error
}

// Change is one record written or deleted by a commit.
type Change struct {
	// Table is the table's name.
	Table string
	// Key is the record's StoreKey.
	Key string
	// Value is the record's JSON encoding, or nil when the record is deleted.
	Value []byte
}

// Snapshotter is implemented by backends that can write a consistent copy
// of their whole state, usable as a backup.
type Snapshotter interface {
	// Snapshot writes a consistent copy of the backend's state to w and
	// returns the number of bytes written.
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
}
