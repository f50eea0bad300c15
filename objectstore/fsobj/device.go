package fsobj

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

// What a Backend keeps for a Cluster, one Backend per device: versions
// (LastModified, set by the cluster and equal on every replica),
// tombstones of deleted objects and containers, and containers' creation
// times. Writes the cluster makes are conditional: a version older than
// what the device holds is refused with errStale, so the replicator and a
// late writer can never put an old version back.

var (
	bucketDeleted           = []byte("deleted")           // in a container: name → tombstone time
	bucketDeletedContainers = []byte("deletedContainers") // container key → tombstone time
	keyCreated              = []byte("created")           // in a container: creation time
)

// errStale is a conditional write's refusal: the device holds a newer
// version or tombstone.
var errStale = errors.New("fsobj: the device holds a newer version")

// errAlready is a conditional write's answer when the device holds that
// very version already (versions are unique): the replicator copied a
// write in flight to a replica before the write reached it. It counts as
// success.
var errAlready = errors.New("fsobj: the device holds this version already")

func u64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func getU64(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func tombstone(c *bolt.Bucket, name string) int64 {
	if d := c.Bucket(bucketDeleted); d != nil {
		return getU64(d.Get([]byte(name)))
	}
	return 0
}

func clearTombstone(c *bolt.Bucket, name string) error {
	if d := c.Bucket(bucketDeleted); d != nil && d.Get([]byte(name)) != nil {
		return d.Delete([]byte(name))
	}
	return nil
}

func setTombstone(c *bolt.Bucket, name string, at int64) error {
	d, err := c.CreateBucketIfNotExists(bucketDeleted)
	if err != nil {
		return err
	}
	if getU64(d.Get([]byte(name))) >= at {
		return nil
	}
	return d.Put([]byte(name), u64(at))
}

// version is what a device holds of an object: a record or a tombstone.
type version struct {
	rec  *record // nil if absent
	tomb int64   // tombstone time, 0 if none
}

// ts is the version's time: the record's or the tombstone's.
func (v version) ts() int64 {
	if v.rec != nil {
		return v.rec.Info.LastModified.UnixNano()
	}
	return v.tomb
}

// lookup returns the device's version of key; NotFound only if the
// container is missing.
func (b *Backend) lookup(key objectstore.ObjectKey) (version, error) {
	var v version
	err := b.db.View(func(tx *bolt.Tx) error {
		c, err := containerBucket(tx, key.Account, key.Container)
		if err != nil {
			return err
		}
		v.tomb = tombstone(c, key.Name)
		r, err := getRecord(tx, key)
		if err == nil {
			v.rec = r
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		return nil
	})
	return v, err
}

// deleteAt deletes key as of at, leaving a tombstone: errStale if the
// device holds a newer version. It reports whether a record was removed.
func (b *Backend) deleteAt(key objectstore.ObjectKey, at int64) (bool, error) {
	var id string
	var removed bool
	err := b.commit.update(func(tx *bolt.Tx) error {
		id, removed = "", false
		c, err := containerBucket(tx, key.Account, key.Container)
		if err != nil {
			return err
		}
		if r, err := getRecord(tx, key); err == nil {
			if r.Info.LastModified.UnixNano() >= at {
				return errStale
			}
			if id, err = deleteRecord(tx, key); err != nil {
				return err
			}
			removed = true
		}
		return setTombstone(c, key.Name, at)
	})
	if err != nil {
		return false, err
	}
	b.removeFiles(id)
	return removed, nil
}

// reapAt deletes key if its record still expires at deleteAt, leaving a
// tombstone just newer than the reaped version (so that a newer version
// elsewhere wins over it).
func (b *Backend) reapAt(key objectstore.ObjectKey, deleteAt int64) (bool, error) {
	var id string
	var removed bool
	err := b.commit.update(func(tx *bolt.Tx) error {
		id, removed = "", false
		c, err := containerBucket(tx, key.Account, key.Container)
		if err != nil {
			return err
		}
		r, err := getRecord(tx, key)
		if errors.Is(err, errdefs.ErrNotFound) || (err == nil && r.Info.DeleteAt != deleteAt) {
			return nil // gone or rewritten since listed
		}
		if err != nil {
			return err
		}
		if id, err = deleteRecord(tx, key); err != nil {
			return err
		}
		removed = true
		return setTombstone(c, key.Name, r.Info.LastModified.UnixNano()+1)
	})
	if err != nil {
		return false, err
	}
	b.removeFiles(id)
	return removed, nil
}

// expired returns up to limit keys whose expiry is at or before now, with
// their DeleteAt.
func (b *Backend) expired(now time.Time, limit int) ([]objectstore.ObjectKey, []int64, error) {
	var keys []objectstore.ObjectKey
	var ats []int64
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketExpiry).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			at := int64(binary.BigEndian.Uint64(k))
			if at > now.Unix() {
				break
			}
			if key, ok := parseExpiryKey(k); ok {
				keys = append(keys, key)
				ats = append(ats, at)
			}
		}
		return nil
	})
	return keys, ats, err
}

// containerState is what a device holds of a container.
type containerState struct {
	Account, Container string
	Exists             bool
	Created            int64 // creation time if Exists
	Deleted            int64 // tombstone time, 0 if none
}

// ts is the state's time: creation's if the container exists, else the
// tombstone's.
func (s containerState) ts() int64 {
	if s.Exists {
		return s.Created
	}
	return s.Deleted
}

func (b *Backend) container(account, cont string) (containerState, error) {
	st := containerState{Account: account, Container: cont}
	k, err := containerKey(account, cont)
	if err != nil {
		return st, err
	}
	err = b.db.View(func(tx *bolt.Tx) error {
		if c := tx.Bucket(bucketContainers).Bucket(k); c != nil {
			st.Exists, st.Created = true, getU64(c.Get(keyCreated))
		}
		if d := tx.Bucket(bucketDeletedContainers); d != nil {
			st.Deleted = getU64(d.Get(k))
		}
		return nil
	})
	return st, err
}

// createContainerAt makes the container exist as of at: errStale if it
// was deleted at or after at.
func (b *Backend) createContainerAt(account, cont string, at int64) error {
	k, err := containerKey(account, cont)
	if err != nil {
		return err
	}
	return b.commit.update(func(tx *bolt.Tx) error {
		d, err := tx.CreateBucketIfNotExists(bucketDeletedContainers)
		if err != nil {
			return err
		}
		if t := getU64(d.Get(k)); t != 0 && t >= at {
			return errStale
		}
		c := tx.Bucket(bucketContainers).Bucket(k)
		if c == nil {
			if c, err = tx.Bucket(bucketContainers).CreateBucket(k); err != nil {
				return err
			}
			if _, err := c.CreateBucket(bucketObjects); err != nil {
				return err
			}
		}
		if created := getU64(c.Get(keyCreated)); created == 0 || created > at {
			if err := c.Put(keyCreated, u64(at)); err != nil {
				return err
			}
		}
		if d.Get(k) != nil {
			return d.Delete(k)
		}
		return nil
	})
}

// deleteContainerAt deletes an empty container as of at, leaving a
// tombstone (also where the container is missing). errStale if it was
// created after at; Conflict if it holds objects. With force (the
// replicator's push of a deletion this device missed), objects older than
// at go with it: the container was empty when it was deleted, so they
// were deleted before; a newer object is still a Conflict.
func (b *Backend) deleteContainerAt(account, cont string, at int64, force bool) error {
	k, err := containerKey(account, cont)
	if err != nil {
		return err
	}
	var ids []string
	err = b.commit.update(func(tx *bolt.Tx) error {
		ids = nil
		if c := tx.Bucket(bucketContainers).Bucket(k); c != nil {
			if getU64(c.Get(keyCreated)) > at {
				return errStale
			}
			conflict := fmt.Errorf("fsobj: container %s/%s is not empty: %w", account, cont, errdefs.ErrConflict)
			if !force {
				if first, _ := c.Bucket(bucketObjects).Cursor().First(); first != nil {
					return conflict
				}
			}
			var expiry [][]byte
			err := c.Bucket(bucketObjects).ForEach(func(name, v []byte) error {
				r, err := decodeRecord(v, false)
				if err != nil {
					return err
				}
				if r.Info.LastModified.UnixNano() >= at {
					return conflict
				}
				if r.ID != "" {
					ids = append(ids, r.ID)
				}
				if r.Info.DeleteAt != 0 {
					expiry = append(expiry, expiryKey(r.Info.DeleteAt, objectstore.ObjectKey{Account: account, Container: cont, Name: string(name)}))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, ek := range expiry {
				if err := tx.Bucket(bucketExpiry).Delete(ek); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketContainers).DeleteBucket(k); err != nil {
				return err
			}
		}
		d, err := tx.CreateBucketIfNotExists(bucketDeletedContainers)
		if err != nil {
			return err
		}
		if getU64(d.Get(k)) >= at {
			return nil
		}
		return d.Put(k, u64(at))
	})
	if err == nil {
		for _, id := range ids {
			b.removeFiles(id)
		}
	}
	return err
}

// containers returns every container the device holds or holds a
// tombstone of.
func (b *Backend) containers() ([]containerState, error) {
	var out []containerState
	err := b.db.View(func(tx *bolt.Tx) error {
		byKey := map[string]int{}
		err := tx.Bucket(bucketContainers).ForEachBucket(func(k []byte) error {
			a, c, _ := bytes.Cut(k, []byte{0})
			byKey[string(k)] = len(out)
			out = append(out, containerState{Account: string(a), Container: string(c), Exists: true, Created: getU64(tx.Bucket(bucketContainers).Bucket(k).Get(keyCreated))})
			return nil
		})
		if err != nil {
			return err
		}
		if d := tx.Bucket(bucketDeletedContainers); d != nil {
			return d.ForEach(func(k, v []byte) error {
				if i, ok := byKey[string(k)]; ok {
					out[i].Deleted = getU64(v)
					return nil
				}
				a, c, _ := bytes.Cut(k, []byte{0})
				out = append(out, containerState{Account: string(a), Container: string(c), Deleted: getU64(v)})
				return nil
			})
		}
		return nil
	})
	return out, err
}

// entry is one object's version on a device, for the replicator.
type entry struct {
	Name    string
	TS      int64
	Deleted bool
	ETag    string
}

// entries returns the versions (records and tombstones) of a container's
// objects whose names keep reports true.
func (b *Backend) entries(account, cont string, keep func(name string) bool) ([]entry, error) {
	var out []entry
	err := b.db.View(func(tx *bolt.Tx) error {
		c, err := containerBucket(tx, account, cont)
		if err != nil {
			return err
		}
		err = c.Bucket(bucketObjects).ForEach(func(k, v []byte) error {
			if !keep(string(k)) {
				return nil
			}
			r, err := decodeRecord(v, false)
			if err != nil {
				return err
			}
			out = append(out, entry{Name: string(k), TS: r.Info.LastModified.UnixNano(), ETag: r.Info.ETag})
			return nil
		})
		if err != nil {
			return err
		}
		if d := c.Bucket(bucketDeleted); d != nil {
			return d.ForEach(func(k, v []byte) error {
				if keep(string(k)) {
					out = append(out, entry{Name: string(k), TS: getU64(v), Deleted: true})
				}
				return nil
			})
		}
		return nil
	})
	return out, err
}

// dropKnown removes from the device what a handoff pushed to the
// primaries: the versions in known (name → time) of the container's
// objects and tombstones, then the container itself (or its tombstone) if
// nothing else is left and it is still as st describes. It leaves no
// tombstones. A version written since st and known were read stays.
func (b *Backend) dropKnown(st containerState, known map[string]int64) error {
	k, err := containerKey(st.Account, st.Container)
	if err != nil {
		return err
	}
	var ids []string
	err = b.commit.update(func(tx *bolt.Tx) error {
		ids = nil
		if c := tx.Bucket(bucketContainers).Bucket(k); c != nil && st.Exists {
			objs := c.Bucket(bucketObjects)
			var drop [][]byte
			var dropped []*record
			err := objs.ForEach(func(name, v []byte) error {
				r, err := decodeRecord(v, false)
				if err != nil {
					return err
				}
				if ts, ok := known[string(name)]; ok && ts == r.Info.LastModified.UnixNano() {
					drop = append(drop, bytes.Clone(name))
					dropped = append(dropped, r)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for i, name := range drop {
				r := dropped[i]
				if r.Info.DeleteAt != 0 {
					if err := tx.Bucket(bucketExpiry).Delete(expiryKey(r.Info.DeleteAt, objectstore.ObjectKey{Account: st.Account, Container: st.Container, Name: string(name)})); err != nil {
						return err
					}
				}
				if err := objs.Delete(name); err != nil {
					return err
				}
				if err := addStats(c, -1, -r.Info.Size); err != nil {
					return err
				}
				if r.ID != "" {
					ids = append(ids, r.ID)
				}
			}
			empty := true
			if k, _ := objs.Cursor().First(); k != nil {
				empty = false
			}
			if d := c.Bucket(bucketDeleted); d != nil {
				var old [][]byte
				_ = d.ForEach(func(name, v []byte) error {
					if ts, ok := known[string(name)]; ok && ts == getU64(v) {
						old = append(old, bytes.Clone(name))
					}
					return nil
				})
				for _, name := range old {
					if err := d.Delete(name); err != nil {
						return err
					}
				}
				if k, _ := d.Cursor().First(); k != nil {
					empty = false
				}
			}
			if empty && getU64(c.Get(keyCreated)) == st.Created {
				if err := tx.Bucket(bucketContainers).DeleteBucket(k); err != nil {
					return err
				}
			}
		}
		if d := tx.Bucket(bucketDeletedContainers); d != nil && st.Deleted != 0 && getU64(d.Get(k)) == st.Deleted {
			return d.Delete(k)
		}
		return nil
	})
	for _, id := range ids {
		b.removeFiles(id)
	}
	return err
}

// auditItem is an object the auditor checks.
type auditItem struct {
	Key  objectstore.ObjectKey
	ID   string
	Size int64
}

// auditItems lists the device's objects.
func (b *Backend) auditItems() ([]auditItem, error) {
	var out []auditItem
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEachBucket(func(ck []byte) error {
			a, cn, _ := bytes.Cut(ck, []byte{0})
			return tx.Bucket(bucketContainers).Bucket(ck).Bucket(bucketObjects).ForEach(func(k, v []byte) error {
				r, err := decodeRecord(v, false)
				if err != nil {
					return err
				}
				out = append(out, auditItem{Key: objectstore.ObjectKey{Account: string(a), Container: string(cn), Name: string(k)}, ID: r.ID, Size: r.Info.Size})
				return nil
			})
		})
	})
	return out, err
}

// audit reads the object of it through w (which may pace the reading)
// verifying every chunk. It returns errCorruptCopy if the copy is bad:
// bytes or trailer that fail their checksum, or a missing file.
func (b *Backend) audit(ctx context.Context, it auditItem, w io.Writer) error {
	if it.ID == "" {
		var r *record
		err := b.db.View(func(tx *bolt.Tx) error {
			var err error
			r, err = getRecord(tx, it.Key)
			return err
		})
		if err != nil || r.ID != "" {
			return nil // gone or replaced since listed
		}
		if crc32.Checksum(r.Data, castagnoli) != r.CRC {
			return errCorruptCopy
		}
		_, err = w.Write(r.Data)
		return err
	}
	f, err := os.Open(b.path(it.ID, ".data"))
	if errors.Is(err, os.ErrNotExist) {
		if _, lerr := b.lookupID(it.Key, it.ID); lerr != nil {
			return nil // replaced since listed
		}
		return errCorruptCopy
	}
	if err != nil {
		return err
	}
	crcs, err := readTrailer(f, it.Size)
	if err != nil {
		f.Close()
		if errors.Is(err, objectstore.ErrCorrupt) {
			return errCorruptCopy
		}
		return err
	}
	rd := &reader{f: f, crcs: crcs, size: it.Size, end: it.Size, pool: &b.bufs}
	defer rd.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := rd.load(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, objectstore.ErrCorrupt) {
				return errCorruptCopy
			}
			return err
		}
		if _, err := w.Write(rd.cur); err != nil {
			return err
		}
		rd.cur = nil
	}
}

var errCorruptCopy = errors.New("fsobj: corrupt copy")

// lookupID returns key's record if it still has file id.
func (b *Backend) lookupID(key objectstore.ObjectKey, id string) (*record, error) {
	r, err := b.loadRecord(key)
	if err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, errdefs.Wrap(errdefs.ErrNotFound, errors.New("replaced"))
	}
	return r, nil
}

// quarantine removes a bad copy: the record goes (without a tombstone, so
// the replicator puts a good copy back) and the file moves to
// DIR/quarantined. It reports whether it removed anything.
func (b *Backend) quarantine(key objectstore.ObjectKey, id string) (bool, error) {
	removed := false
	err := b.commit.update(func(tx *bolt.Tx) error {
		removed = false
		r, err := getRecord(tx, key)
		if errors.Is(err, errdefs.ErrNotFound) || (err == nil && r.ID != id) {
			return nil // gone or replaced since audited
		}
		if err != nil {
			return err
		}
		if _, err := deleteRecord(tx, key); err != nil {
			return err
		}
		removed = true
		return nil
	})
	if err != nil || !removed || id == "" {
		return removed, err
	}
	q := filepath.Join(b.dir, "quarantined")
	if err := os.MkdirAll(q, 0o750); err != nil {
		return true, err
	}
	if err := os.Rename(b.path(id, ".data"), filepath.Join(q, id+".data")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, err
	}
	_ = os.Remove(b.path(id, ".meta"))
	return true, nil
}

// reclaim removes the object and container tombstones older than before
// and returns how many.
func (b *Backend) reclaim(before int64) (int, error) {
	// Look first: a pass with nothing to reclaim writes nothing.
	found := false
	_ = b.db.View(func(tx *bolt.Tx) error {
		return tombstoneBuckets(tx, func(d *bolt.Bucket) error {
			if !found {
				_ = d.ForEach(func(_, v []byte) error {
					found = found || getU64(v) < before
					return nil
				})
			}
			return nil
		})
	})
	if !found {
		return 0, nil
	}
	n := 0
	err := b.commit.update(func(tx *bolt.Tx) error {
		n = 0
		return tombstoneBuckets(tx, func(d *bolt.Bucket) error {
			var old [][]byte
			_ = d.ForEach(func(k, v []byte) error {
				if getU64(v) < before {
					old = append(old, bytes.Clone(k))
				}
				return nil
			})
			for _, k := range old {
				if err := d.Delete(k); err != nil {
					return err
				}
			}
			n += len(old)
			return nil
		})
	})
	return n, err
}

// tombstoneBuckets calls fn with each bucket of tombstones: every
// container's deleted objects, then the deleted containers.
func tombstoneBuckets(tx *bolt.Tx, fn func(d *bolt.Bucket) error) error {
	err := tx.Bucket(bucketContainers).ForEachBucket(func(k []byte) error {
		if d := tx.Bucket(bucketContainers).Bucket(k).Bucket(bucketDeleted); d != nil {
			return fn(d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d := tx.Bucket(bucketDeletedContainers); d != nil {
		return fn(d)
	}
	return nil
}
