package store

import (
	"context"
	"errors"
	"io"
)

// Backend makes the store durable. It is the store's driver: small, about
// the outside world only. Implementations: store/boltstore (one machine),
// store/memstore (tests), store/etcdstore (many controllers sharing one
// cloud). Every Backend passes store/storetest.
//
// Revisions belong to the backend: each commit gets a revision greater than
// every earlier one, and every record carries the revision of the commit
// that last wrote it. That revision is what compare-and-swap compares.
type Backend interface {
	// Durable reports whether a successful Commit survives a crash of the
	// process (and, for disk backends, of the machine).
	Durable() bool
	// Load calls fn for every stored record with the revision of the commit
	// that last wrote it, then returns the backend's revision: every record
	// it passed is as of that revision. key and value are valid only during
	// the call. An error from fn stops the load and is returned.
	Load(ctx context.Context, fn func(table string, key, value []byte, rev uint64) error) (rev uint64, err error)
	// Commit applies changes atomically and durably, and returns the
	// commit's revision. It checks every change first: the key's current
	// revision must be change.Prev (0: the key must not exist); otherwise
	// it fails with an error matching errdefs.ErrConflict and applies
	// nothing. It returns only once the whole commit would survive a
	// crash. A failed disk (full, fsync error) is returned, never hidden.
	Commit(ctx context.Context, changes []Change) (rev uint64, err error)
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
	// Prev is the revision of the key that the change was computed from,
	// or 0 if the key did not exist.
	Prev uint64
}

// Watcher is implemented by backends that several stores (controllers)
// share. The store follows the watch to apply the others' commits to its
// own in-memory replica.
type Watcher interface {
	// Watch calls fn, in commit order, for every commit after rev by any
	// store sharing the backend (this one's included), until ctx ends or
	// fn fails. A deleted key has a nil Value. If the history after rev is
	// no longer available (compacted), Watch returns an error matching
	// ErrCompacted, and the caller must Load again.
	Watch(ctx context.Context, after uint64, fn func(rev uint64, changes []Change) error) error
}

// ErrCompacted is returned by Watcher.Watch when the requested history has
// been compacted away.
var ErrCompacted = errors.New("store: watch history compacted")

// Snapshotter is implemented by backends that can write a consistent copy
// of their whole state, usable as a backup.
type Snapshotter interface {
	// Snapshot writes a consistent copy of the backend's state to w and
	// returns the number of bytes written.
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
}
