// Package boltstore is the store.Backend for one machine: every table is a
// bbolt bucket in one file, and every commit is one bbolt transaction made
// durable with fsync before it returns. Concurrent writers are batched by
// the store's committer into one commit (group commit), so the fsync cost is
// shared.
//
// File layout (storage version 1): a "meta" bucket holds "revision" (the
// last committed store revision, 8 bytes big-endian) and "storage_version";
// a "tables" bucket holds one bucket per table, keyed by record key, whose
// values are the revision of the commit that last wrote the record (8 bytes
// big-endian) followed by the record's JSON. A newer storage version is
// refused.
//
// The file is locked while open; a second process opening it fails with an
// error matching errdefs.ErrConflict.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

var (
	_ store.Backend     = (*Backend)(nil)
	_ store.Snapshotter = (*Backend)(nil)
)

// StorageVersion is the file layout version this package writes.
const StorageVersion = 1

var (
	metaBucket   = []byte("meta")
	tablesBucket = []byte("tables")
	revKey       = []byte("revision")
	versionKey   = []byte("storage_version")
)

// Options tunes a Backend. nil means the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file. Default: 1 second.
	LockTimeout time.Duration
	// NoSync skips fsync. It makes commits not durable: for tests only.
	NoSync bool
	// Preallocate, if positive, extends the file with written zeros to at
	// least this many bytes when it is opened. bbolt grows its file sparsely;
	// a commit that writes into a hole must also journal the new blocks at
	// fsync, which makes large commits cost markedly more here (about 20%
	// for 15 records). Zeros beyond the end of bbolt's data are never read.
	Preallocate int64
}

// Backend is a store.Backend on one bbolt file.
type Backend struct {
	db   *bolt.DB
	path string
}

// Open opens or creates the bbolt file at path.
func Open(ctx context.Context, path string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.Preallocate > 0 {
		if err := preallocate(path, o.Preallocate); err != nil {
			return nil, fmt.Errorf("boltstore: preallocate %s: %w", path, classify(err))
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("boltstore: %s is in use by another process (lock not released in %s): %w",
				path, o.LockTimeout, errdefs.Wrap(errdefs.ErrConflict, err))
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, classify(err))
	}
	b := &Backend{db: db, path: path}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(tablesBucket); err != nil {
			return err
		}
		v := meta.Get(versionKey)
		if v == nil {
			return meta.Put(versionKey, u64(StorageVersion))
		}
		if got := binary.BigEndian.Uint64(v); got > StorageVersion {
			return fmt.Errorf("storage version %d is newer than this program's %d", got, StorageVersion)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, classify(err))
	}
	return b, nil
}

// preallocate writes zeros from the end of the file at path up to size
// bytes. A missing file is first created as an empty bbolt file, so that
// bbolt still initialises it.
func preallocate(path string, size int64) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			return err
		}
		if err := db.Close(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= size {
		return nil
	}
	zeros := make([]byte, 1<<20)
	for off := st.Size(); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// Path returns the file's path.
func (b *Backend) Path() string { return b.path }

// Durable reports true: a commit returns only after fsync (unless the
// backend was opened with NoSync, which tests alone use).
func (b *Backend) Durable() bool { return !b.db.NoSync }

// Load implements store.Backend.
func (b *Backend) Load(ctx context.Context, fn func(table string, key, value []byte, rev uint64) error) (uint64, error) {
	var rev uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		rev = readRev(tx)
		n := 0
		tables := tx.Bucket(tablesBucket)
		return tables.ForEachBucket(func(name []byte) error {
			table := string(name)
			return tables.Bucket(name).ForEach(func(k, v []byte) error {
				if n++; n%4096 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				if len(v) < 8 {
					return fmt.Errorf("table %q: key %q: value of %d bytes has no revision", table, k, len(v))
				}
				return fn(table, k, v[8:], binary.BigEndian.Uint64(v))
			})
		})
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: load %s: %w", b.path, err)
	}
	return rev, nil
}

func readRev(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(metaBucket).Get(revKey); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Commit implements store.Backend: one bbolt transaction, fsync'd.
func (b *Backend) Commit(ctx context.Context, changes []store.Change) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := b.db.Update(func(tx *bolt.Tx) error {
		rev = readRev(tx) + 1
		tables := tx.Bucket(tablesBucket)
		var bk *bolt.Bucket
		var bkName string
		var app *appends
		seen := map[string]*appends{}
		for _, c := range changes {
			if bk == nil || bkName != c.Table {
				var err error
				if bk, err = tables.CreateBucketIfNotExists([]byte(c.Table)); err != nil {
					return fmt.Errorf("table %q: %w", c.Table, err)
				}
				bkName = c.Table
				if app = seen[c.Table]; app == nil {
					last, _ := bk.Cursor().Last()
					app = &appends{bucket: bk, last: last, only: true}
					seen[c.Table] = app
				}
			}
			key := []byte(c.Key)
			app.only = app.only && c.Value != nil && bytes.Compare(key, app.last) > 0
			var have uint64
			if v := bk.Get(key); len(v) >= 8 {
				have = binary.BigEndian.Uint64(v)
			}
			if have != c.Prev {
				return fmt.Errorf("%s %q is at revision %d, not %d: %w", c.Table, c.Key, have, c.Prev, errdefs.ErrConflict)
			}
			var err error
			if c.Value == nil {
				err = bk.Delete(key)
			} else {
				v := make([]byte, 8+len(c.Value))
				binary.BigEndian.PutUint64(v, rev)
				copy(v[8:], c.Value)
				err = bk.Put(key, v)
			}
			if err != nil {
				return fmt.Errorf("%s %q: %w", c.Table, c.Key, err)
			}
		}
		for _, a := range seen {
			if a.only {
				// Keys after every stored one (time-ordered ids): pack the
				// new pages full. bbolt's default, half full, suits inserts
				// among existing keys; for appends it only doubles the pages
				// each commit writes.
				a.bucket.FillPercent = appendFill
			}
		}
		return tx.Bucket(metaBucket).Put(revKey, u64(rev))
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: %s: %w", b.path, classify(err))
	}
	return rev, nil
}

// Snapshot implements store.Snapshotter: a consistent copy of the whole
// file, itself a valid bbolt file that Open accepts.
func (b *Backend) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("boltstore: snapshot %s: %w", b.path, err)
	}
	return n, nil
}

// Close implements store.Backend.
func (b *Backend) Close() error {
	if b == nil || b.db == nil {
		return nil
	}
	return b.db.Close()
}

// Check opens the closed file at path read-only and runs bbolt's
// consistency check on it, returning every problem found.
func Check(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("boltstore: check %s: %w", path, err)
	}
	defer db.Close()
	var problems []string
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("boltstore: check %s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("boltstore: check %s: %s", path, strings.Join(problems, "; "))
	}
	return nil
}

// classify marks a full disk or an I/O failure as errdefs.ErrUnavailable,
// keeping the raw error.
func classify(err error) error {
	if errdefs.Kind(err) != nil {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return errdefs.Wrap(errdefs.ErrUnavailable, err)
	}
	return err
}

// appends tracks whether a commit only adds keys after a bucket's last.
type appends struct {
	bucket *bolt.Bucket
	last   []byte
	only   bool
}

// appendFill is the fill of pages a commit that only appends writes.
const appendFill = 0.95

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
