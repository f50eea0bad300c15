// Package fsobj is an objectstore.Backend on local directories: Backend
// on one directory, and Cluster, which replicates containers and objects
// across several directories acting as devices (see Cluster, Replicator
// and Auditor).
//
// # Layout
//
//	DIR/index.db              bbolt: per-container listings and usage, expiry index
//	DIR/objects/<xx>/<id>.data  an object's bytes, then its checksums and metadata
//	DIR/objects/<xx>/<id>.meta  metadata set by SetMeta after the write, if any
//	DIR/tmp/                  files being written
//
// A device of a Cluster adds:
//
//	DIR/device.json           the device's id, which its ring entry names
//	DIR/ring.json             the ring (every device keeps the newest version)
//	DIR/quarantined/          bad copies the auditor took out
//
// and keeps, in index.db, each object's version (its LastModified, equal
// on every replica), tombstones of deleted objects and containers, and
// containers' creation times.
//
// Files are named by a random id, never by the object's name, so no name
// can reach outside DIR. A write goes to DIR/tmp, is fsynced, renamed into
// DIR/objects and the directory fsynced; only then does one bbolt
// transaction point the container's index at it (and the old version's
// file is removed). A crash at any point leaves either the old or the new
// version listed, never a partial one; files no index entry references are
// removed when the backend opens.
//
// Objects of at most InlineSize bytes are kept in the index itself, with
// their CRC-32C, and written by one bbolt transaction: no file, no
// directory entry.
//
// Each 64 KiB chunk of an object has a CRC-32C kept in the file's trailer.
// Readers verify each chunk before returning any of its bytes and fail
// with objectstore.ErrCorrupt instead of returning bytes that differ from
// those written.
//
// # Replication
//
// A Cluster places each container, with its listing and its objects, on
// Replicas devices chosen by a ring (objectstore/ring) and writes to all
// of them, succeeding at a quorum. A Replicator compares per-suffix hashes
// of each partition between replicas and pushes what is missing or older;
// an Auditor reads every copy at a bounded rate and quarantines bad ones
// for the replicator to restore. One container's bytes are bounded by its
// devices' space: the ring spreads containers, not one container's
// objects.
package fsobj

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

var _ objectstore.Backend = (*Backend)(nil)

// ChunkSize is the unit of checksumming: each ChunkSize bytes of an
// object carry their own CRC-32C.
const ChunkSize = 64 << 10

// InlineSize is the largest object kept in the index rather than in a
// file of its own.
const InlineSize = 16 << 10

// MaxNameLen bounds object names (bytes); the Service's limit is lower.
const MaxNameLen = 4096

const (
	magic      = 0x7374726f626a3031 // "strobj01"
	footerSize = 24                 // dataSize u64, trailerLen u32, trailerCRC u32, magic u64
	ioBufSize  = 1 << 20            // a multiple of ChunkSize
	ioBufs     = 8
	syncEvery  = 8 << 20 // start writeback every this many bytes
	mmapMin    = 4 << 20 // reads this large map the file
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Bucket names.
var (
	bucketContainers = []byte("containers")
	bucketExpiry     = []byte("expiry")
	bucketObjects    = []byte("objects")
	keyStats         = []byte("stats")
)

// Options tune a Backend. The zero value is the durable default.
type Options struct {
	// NoSync skips fsync, for tests that do not test durability.
	NoSync bool
	// Clock returns the current time. Default: time.Now.
	Clock func() time.Time
}

// Backend is an objectstore.Backend on one local directory.
type Backend struct {
	dir    string
	db     *bolt.DB
	noSync bool
	now    func() time.Time
	bufs   sync.Pool // *[]byte of ioBufSize
	heads  sync.Pool // *[]byte of InlineSize+1
	commit *committer
}

// record is an object's entry in its container's index: its information
// and either the id of its file or, for a small object, its bytes and
// their CRC-32C.
type record struct {
	ID   string
	Info objectstore.ObjectInfo
	Data []byte
	CRC  uint32
}

// trailer is the metadata kept in an object's file after its bytes.
type trailer struct {
	Account   string                 `json:"account"`
	Container string                 `json:"container"`
	Info      objectstore.ObjectInfo `json:"info"`
}

// Open opens (creating if needed) the backend in dir and removes what an
// interrupted write left behind.
func Open(dir string, opts *Options) (*Backend, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	for _, d := range []string{dir, filepath.Join(dir, "objects"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("fsobj: %w", err)
		}
	}
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(dir, "objects", fmt.Sprintf("%02x", i)), 0o750); err != nil {
			return nil, fmt.Errorf("fsobj: %w", err)
		}
	}
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: o.NoSync, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("fsobj: open index: %w", err)
	}
	b := &Backend{dir: dir, db: db, noSync: o.NoSync, now: o.Clock}
	b.bufs.New = func() any { p := make([]byte, ioBufSize); return &p }
	b.heads.New = func() any { p := make([]byte, InlineSize+1); return &p }
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketContainers, bucketExpiry} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = b.sweep()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("fsobj: %w", err)
	}
	b.commit = newCommitter(db)
	return b, nil
}

// sweep removes files that no index entry references: writes that a crash
// interrupted before their commit, and old versions whose removal it
// interrupted after.
func (b *Backend) sweep() error {
	if err := os.RemoveAll(filepath.Join(b.dir, "tmp")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b.dir, "tmp"), 0o750); err != nil {
		return err
	}
	live := map[string]bool{}
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEachBucket(func(k []byte) error {
			return tx.Bucket(bucketContainers).Bucket(k).Bucket(bucketObjects).ForEach(func(_, v []byte) error {
				r, err := decodeRecord(v, false)
				if err != nil {
					return err
				}
				live[r.ID] = true
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	dirs, err := os.ReadDir(filepath.Join(b.dir, "objects"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		sub := filepath.Join(b.dir, "objects", d.Name())
		files, err := os.ReadDir(sub)
		if err != nil {
			return err
		}
		for _, f := range files {
			id, _, _ := strings.Cut(f.Name(), ".")
			if !live[id] {
				if err := os.Remove(filepath.Join(sub, f.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Close implements objectstore.Backend.
func (b *Backend) Close() error {
	b.commit.close()
	return b.db.Close()
}

// Dir returns the backend's directory.
func (b *Backend) Dir() string { return b.dir }

// DataPath returns the file that holds key's bytes, for tests and tools
// that inspect the disk (a corruption test flips a byte in it).
func (b *Backend) DataPath(key objectstore.ObjectKey) (string, error) {
	var id string
	err := b.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err == nil {
			id = r.ID
		}
		return err
	})
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("fsobj: %s is stored in the index: %w", key, errdefs.ErrNotFound)
	}
	return b.path(id, ".data"), nil
}

func (b *Backend) path(id, ext string) string {
	return filepath.Join(b.dir, "objects", id[:2], id+ext)
}

func containerKey(account, cont string) ([]byte, error) {
	if account == "" || cont == "" || strings.IndexByte(account, 0) >= 0 || strings.IndexByte(cont, 0) >= 0 {
		return nil, errdefs.Invalid("container", "account and container names must be non-empty and free of NUL")
	}
	return []byte(account + "\x00" + cont), nil
}

func containerBucket(tx *bolt.Tx, account, cont string) (*bolt.Bucket, error) {
	k, err := containerKey(account, cont)
	if err != nil {
		return nil, err
	}
	c := tx.Bucket(bucketContainers).Bucket(k)
	if c == nil {
		return nil, fmt.Errorf("fsobj: container %s/%s: %w", account, cont, errdefs.ErrNotFound)
	}
	return c, nil
}

// loadRecord reads key's record in a read transaction of its own.
func (b *Backend) loadRecord(key objectstore.ObjectKey) (*record, error) {
	var r *record
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, key)
		return err
	})
	return r, err
}

func getRecord(tx *bolt.Tx, key objectstore.ObjectKey) (*record, error) {
	c, err := containerBucket(tx, key.Account, key.Container)
	if err != nil {
		return nil, err
	}
	v := c.Bucket(bucketObjects).Get([]byte(key.Name))
	if v == nil {
		return nil, fmt.Errorf("fsobj: object %s: %w", key, errdefs.ErrNotFound)
	}
	r, err := decodeRecord(v, true)
	if err != nil {
		return nil, fmt.Errorf("fsobj: index entry of %s: %w", key, err)
	}
	r.Info.Name = key.Name
	return r, nil
}

func getStats(c *bolt.Bucket) objectstore.ContainerStats {
	v := c.Get(keyStats)
	if len(v) != 16 {
		return objectstore.ContainerStats{}
	}
	return objectstore.ContainerStats{Objects: int64(binary.BigEndian.Uint64(v)), Bytes: int64(binary.BigEndian.Uint64(v[8:]))}
}

func addStats(c *bolt.Bucket, objects, bytes int64) error {
	st := getStats(c)
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], uint64(st.Objects+objects))
	binary.BigEndian.PutUint64(v[8:], uint64(st.Bytes+bytes))
	return c.Put(keyStats, v[:])
}

// CreateContainer implements objectstore.Backend.
func (b *Backend) CreateContainer(_ context.Context, account, cont string) error {
	k, err := containerKey(account, cont)
	if err != nil {
		return err
	}
	return b.commit.update(func(tx *bolt.Tx) error {
		c, err := tx.Bucket(bucketContainers).CreateBucketIfNotExists(k)
		if err != nil {
			return err
		}
		_, err = c.CreateBucketIfNotExists(bucketObjects)
		return err
	})
}

// DeleteContainer implements objectstore.Backend.
func (b *Backend) DeleteContainer(_ context.Context, account, cont string) error {
	return b.commit.update(func(tx *bolt.Tx) error {
		c, err := containerBucket(tx, account, cont)
		if err != nil {
			return err
		}
		if k, _ := c.Bucket(bucketObjects).Cursor().First(); k != nil {
			return fmt.Errorf("fsobj: container %s/%s is not empty: %w", account, cont, errdefs.ErrConflict)
		}
		k, _ := containerKey(account, cont)
		return tx.Bucket(bucketContainers).DeleteBucket(k)
	})
}

// ContainerStats implements objectstore.Backend.
func (b *Backend) ContainerStats(_ context.Context, account, cont string) (objectstore.ContainerStats, error) {
	var st objectstore.ContainerStats
	err := b.db.View(func(tx *bolt.Tx) error {
		c, err := containerBucket(tx, account, cont)
		if err == nil {
			st = getStats(c)
		}
		return err
	})
	return st, err
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func expiryKey(at int64, key objectstore.ObjectKey) []byte {
	k := make([]byte, 8, 8+len(key.Account)+len(key.Container)+len(key.Name)+2)
	binary.BigEndian.PutUint64(k, uint64(at))
	k = append(k, key.Account...)
	k = append(k, 0)
	k = append(k, key.Container...)
	k = append(k, 0)
	return append(k, key.Name...)
}

// parseExpiryKey returns the object of an expiry key (expiryKey's
// inverse), or false for a malformed key.
func parseExpiryKey(k []byte) (objectstore.ObjectKey, bool) {
	parts := bytes.SplitN(k[8:], []byte{0}, 3)
	if len(parts) != 3 {
		return objectstore.ObjectKey{}, false
	}
	return objectstore.ObjectKey{Account: string(parts[0]), Container: string(parts[1]), Name: string(parts[2])}, true
}

func checkName(key objectstore.ObjectKey) error {
	if key.Name == "" || len(key.Name) > MaxNameLen {
		return errdefs.Invalid("name", "object names must have 1 to %d bytes", MaxNameLen)
	}
	_, err := containerKey(key.Account, key.Container)
	return err
}

// Put implements objectstore.Backend.
func (b *Backend) Put(ctx context.Context, key objectstore.ObjectKey, r io.Reader, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	return b.put(ctx, key, r, opts, b.now(), false)
}

// put stores the object as version at. If cond, it stores it only if at
// is newer than the version and tombstone it has (errStale otherwise).
func (b *Backend) put(ctx context.Context, key objectstore.ObjectKey, r io.Reader, opts objectstore.PutOptions, at time.Time, cond bool) (*objectstore.ObjectInfo, error) {
	if err := checkName(key); err != nil {
		return nil, err
	}
	if err := b.db.View(func(tx *bolt.Tx) error { _, err := containerBucket(tx, key.Account, key.Container); return err }); err != nil {
		return nil, err
	}
	hp := b.heads.Get().(*[]byte)
	defer b.heads.Put(hp)
	head := *hp
	n, err := io.ReadFull(r, head)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return b.putInline(ctx, key, head[:n], opts, at, cond)
	case err != nil:
		return nil, fmt.Errorf("fsobj: put %s: %w", key, err)
	}
	r = io.MultiReader(bytes.NewReader(head), r)
	id := newID()
	tmp := filepath.Join(b.dir, "tmp", id)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("fsobj: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
			os.Remove(b.path(id, ".data"))
		}
	}()
	size, etag, crcs, err := b.writeData(ctx, f, r)
	if err != nil {
		return nil, fmt.Errorf("fsobj: put %s: %w", key, err)
	}
	if opts.ETag != "" && !strings.EqualFold(opts.ETag, etag) {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
	}
	info := newInfo(key.Name, opts, at)
	info.Size, info.ETag = size, etag
	if err := writeTrailer(f, key, info, crcs); err != nil {
		return nil, fmt.Errorf("fsobj: put %s: %w", key, err)
	}
	if err := b.sync(f); err != nil {
		return nil, fmt.Errorf("fsobj: put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("fsobj: put %s: %w", key, err)
	}
	if err := b.install(tmp, b.path(id, ".data")); err != nil {
		return nil, fmt.Errorf("fsobj: put %s: %w", key, err)
	}
	oldID, err := b.commitPut(key, &record{ID: id, Info: *info}, cond)
	if err != nil {
		return nil, err
	}
	committed = true
	if oldID != "" {
		b.removeFiles(oldID)
	}
	return info.Clone(), nil
}

// putInline stores a small object in the index.
func (b *Backend) putInline(ctx context.Context, key objectstore.ObjectKey, data []byte, opts objectstore.PutOptions, at time.Time, cond bool) (*objectstore.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:])
	if opts.ETag != "" && !strings.EqualFold(opts.ETag, etag) {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
	}
	info := newInfo(key.Name, opts, at)
	info.Size, info.ETag = int64(len(data)), etag
	rec := &record{Info: *info, Data: data, CRC: crc32.Checksum(data, castagnoli)}
	oldID, err := b.commitPut(key, rec, cond)
	if err != nil {
		return nil, err
	}
	if oldID != "" {
		b.removeFiles(oldID)
	}
	return info.Clone(), nil
}

// commitPut makes rec the object's index entry and returns the id of the
// file of the version it replaced, if any.
func (b *Backend) commitPut(key objectstore.ObjectKey, rec *record, cond bool) (oldID string, err error) {
	err = b.commit.update(func(tx *bolt.Tx) error {
		oldID = ""
		c, err := containerBucket(tx, key.Account, key.Container)
		if err != nil {
			return err
		}
		var dObjects, dBytes int64 = 1, rec.Info.Size
		at := rec.Info.LastModified.UnixNano()
		if cond && tombstone(c, key.Name) >= at {
			return errStale
		}
		if err := clearTombstone(c, key.Name); err != nil {
			return err
		}
		if old, err := getRecord(tx, key); err == nil {
			if cond && old.Info.LastModified.UnixNano() == at {
				return errAlready // the replicator copied this very write here first
			}
			if cond && old.Info.LastModified.UnixNano() > at {
				return errStale
			}
			oldID = old.ID
			dObjects, dBytes = 0, rec.Info.Size-old.Info.Size
			if old.Info.DeleteAt != 0 {
				if err := tx.Bucket(bucketExpiry).Delete(expiryKey(old.Info.DeleteAt, key)); err != nil {
					return err
				}
			}
		}
		if err := putRecord(tx, c, key, rec); err != nil {
			return err
		}
		return addStats(c, dObjects, dBytes)
	})
	return oldID, err
}

func putRecord(tx *bolt.Tx, c *bolt.Bucket, key objectstore.ObjectKey, r *record) error {
	v := encodeRecord(r)
	if r.Info.DeleteAt != 0 {
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(r.Info.DeleteAt, key), nil); err != nil {
			return err
		}
	}
	return c.Bucket(bucketObjects).Put([]byte(key.Name), v)
}

func (b *Backend) removeFiles(id string) {
	if id == "" {
		return
	}
	_ = os.Remove(b.path(id, ".data"))
	_ = os.Remove(b.path(id, ".meta"))
}

func newInfo(name string, opts objectstore.PutOptions, now time.Time) *objectstore.ObjectInfo {
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	info := &objectstore.ObjectInfo{Name: name, ContentType: ct, LastModified: now.UTC(), DeleteAt: opts.DeleteAt}
	if len(opts.Headers) > 0 {
		info.Headers = make(map[string]string, len(opts.Headers))
		for k, v := range opts.Headers {
			info.Headers[k] = v
		}
	}
	return info
}

// writeData copies r to f, computing the MD5 in a second goroutine and the
// per-chunk CRCs, and starts the disk's writeback as it goes so that the
// final fsync has little left to do.
func (b *Backend) writeData(ctx context.Context, f *os.File, r io.Reader) (size int64, etag string, crcs []uint32, err error) {
	free := make(chan []byte, ioBufs)
	for range ioBufs {
		free <- *b.bufs.Get().(*[]byte)
	}
	full := make(chan []byte, ioBufs)
	h := md5.New()
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for p := range full {
			h.Write(p)
			free <- p[:cap(p)]
		}
	}()
	finished := false
	finish := func() {
		if !finished {
			finished = true
			close(full)
			<-hashed
		}
	}
	defer func() {
		finish()
		for range ioBufs {
			p := <-free
			b.bufs.Put(&p)
		}
	}()
	var synced int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, "", nil, err
		}
		p := <-free
		n, rerr := io.ReadFull(r, p)
		if n > 0 {
			if _, err := f.Write(p[:n]); err != nil {
				free <- p
				return 0, "", nil, err
			}
			for off := 0; off < n; off += ChunkSize {
				crcs = append(crcs, crc32.Checksum(p[off:min(off+ChunkSize, n)], castagnoli))
			}
			size += int64(n)
			full <- p[:n]
			if !b.noSync && size-synced >= syncEvery {
				_ = unix.SyncFileRange(int(f.Fd()), synced, size-synced, unix.SYNC_FILE_RANGE_WRITE)
				synced = size
			}
		} else {
			free <- p
		}
		switch {
		case errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF):
			// Flush the data while the MD5 catches up; the final fsync
			// then has only the trailer left.
			flushed := make(chan struct{})
			go func() {
				defer close(flushed)
				if !b.noSync && size > synced {
					_ = unix.SyncFileRange(int(f.Fd()), 0, size, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
				}
			}()
			finish()
			<-flushed
			return size, hex.EncodeToString(h.Sum(nil)), crcs, nil
		case rerr != nil:
			return 0, "", nil, rerr
		}
	}
}

func writeTrailer(f *os.File, key objectstore.ObjectKey, info *objectstore.ObjectInfo, crcs []uint32) error {
	meta, err := json.Marshal(trailer{Account: key.Account, Container: key.Container, Info: *info})
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 4*len(crcs)+len(meta)+footerSize)
	for _, c := range crcs {
		buf = binary.BigEndian.AppendUint32(buf, c)
	}
	buf = append(buf, meta...)
	tcrc := crc32.Checksum(buf, castagnoli)
	buf = binary.BigEndian.AppendUint64(buf, uint64(info.Size))
	buf = binary.BigEndian.AppendUint32(buf, uint32(4*len(crcs)+len(meta)))
	buf = binary.BigEndian.AppendUint32(buf, tcrc)
	buf = binary.BigEndian.AppendUint64(buf, magic)
	_, err = f.Write(buf)
	return err
}

func (b *Backend) sync(f *os.File) error {
	if b.noSync {
		return nil
	}
	return f.Sync()
}

// install renames tmp to final and makes the rename durable.
func (b *Backend) install(tmp, final string) error {
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if b.noSync {
		return nil
	}
	d, err := os.Open(filepath.Dir(final))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get implements objectstore.Backend.
func (b *Backend) Get(_ context.Context, key objectstore.ObjectKey, offset, length int64) (io.ReadCloser, *objectstore.ObjectInfo, error) {
	for attempt := 0; ; attempt++ {
		r, err := b.loadRecord(key)
		if err != nil {
			return nil, nil, err
		}
		if offset < 0 || offset > r.Info.Size {
			return nil, nil, errdefs.Invalid("offset", "%d is outside the object's %d bytes", offset, r.Info.Size)
		}
		end := r.Info.Size
		if length >= 0 && offset+length < end {
			end = offset + length
		}
		if r.ID == "" {
			if crc32.Checksum(r.Data, castagnoli) != r.CRC {
				return nil, nil, errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("%s: %w", key, objectstore.ErrCorrupt))
			}
			return io.NopCloser(bytes.NewReader(r.Data[offset:end])), r.Info.Clone(), nil
		}
		f, err := os.Open(b.path(r.ID, ".data"))
		if errors.Is(err, os.ErrNotExist) && attempt < 3 {
			continue // replaced between the lookup and the open
		}
		if err != nil {
			return nil, nil, fmt.Errorf("fsobj: open %s: %w", key, err)
		}
		crcs, err := readTrailer(f, r.Info.Size)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("fsobj: %s: %w", key, err)
		}
		rd := &reader{f: f, crcs: crcs, size: r.Info.Size, pos: offset - offset%ChunkSize, skip: offset % ChunkSize, end: end, pool: &b.bufs}
		if end-offset >= mmapMin {
			// Large reads verify and send straight from the page cache.
			if m, err := unix.Mmap(int(f.Fd()), 0, int(r.Info.Size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
				_ = unix.Madvise(m, unix.MADV_SEQUENTIAL)
				rd.mapped = m
			}
		}
		return rd, r.Info.Clone(), nil
	}
}

func readTrailer(f *os.File, size int64) ([]uint32, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < size+footerSize {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, objectstore.ErrCorrupt)
	}
	var foot [footerSize]byte
	if _, err := f.ReadAt(foot[:], st.Size()-footerSize); err != nil {
		return nil, err
	}
	dataSize := int64(binary.BigEndian.Uint64(foot[:]))
	tlen := int64(binary.BigEndian.Uint32(foot[8:]))
	if binary.BigEndian.Uint64(foot[16:]) != magic || dataSize != size || size+tlen+footerSize != st.Size() {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, objectstore.ErrCorrupt)
	}
	nchunks := (size + ChunkSize - 1) / ChunkSize
	buf := make([]byte, tlen)
	if _, err := f.ReadAt(buf, size); err != nil {
		return nil, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(foot[12:]) || int64(len(buf)) < 4*nchunks {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, objectstore.ErrCorrupt)
	}
	crcs := make([]uint32, nchunks)
	for i := range crcs {
		crcs[i] = binary.BigEndian.Uint32(buf[4*i:])
	}
	return crcs, nil
}

// reader returns an object's bytes from pos+skip to end, verifying each
// chunk's CRC before it returns any of the chunk's bytes.
type reader struct {
	f    *os.File
	crcs []uint32
	size int64
	pos  int64 // file offset of the next chunk to load
	skip int64 // bytes to drop from the next chunk
	end  int64
	buf  []byte
	cur  []byte
	err  error
	pool *sync.Pool
	// mapped, if set, is the data mapped read-only: chunks are verified
	// and returned in place instead of copied into buf.
	mapped []byte
}

func (r *reader) Read(p []byte) (int, error) {
	if len(r.cur) == 0 {
		if err := r.load(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo writes the verified bytes to w a loaded window at a time,
// sparing io.Copy's intermediate buffer.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.cur) == 0 {
			if err := r.load(); err != nil {
				if errors.Is(err, io.EOF) {
					return total, nil
				}
				return total, err
			}
		}
		n, err := w.Write(r.cur)
		total += int64(n)
		r.cur = r.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

func (r *reader) load() (err error) {
	if r.mapped != nil {
		// A disk error under the mapping faults: make it this read's
		// error rather than the process's end.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if v := recover(); v != nil {
				r.err = errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("fsobj: reading mapped object: %v", v))
				err = r.err
			}
		}()
	}
	if r.err != nil {
		return r.err
	}
	if r.pos >= r.end || r.pos >= r.size {
		r.err = io.EOF
		return r.err
	}
	// Load several chunks at a time, verifying each.
	n := min(int64(ioBufSize), r.size-r.pos)
	if lim := (r.end - r.pos + ChunkSize - 1) / ChunkSize * ChunkSize; n > lim {
		n = lim
	}
	var win []byte
	if r.mapped != nil {
		win = r.mapped[r.pos : r.pos+n]
	} else {
		if r.buf == nil {
			r.buf = *r.pool.Get().(*[]byte)
		}
		win = r.buf[:n]
		if _, err := r.f.ReadAt(win, r.pos); err != nil {
			r.err = err
			return err
		}
	}
	for off := int64(0); off < n; off += ChunkSize {
		chunk := win[off:min(off+ChunkSize, n)]
		if crc32.Checksum(chunk, castagnoli) != r.crcs[(r.pos+off)/ChunkSize] {
			r.err = errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("chunk at offset %d: %w", r.pos+off, objectstore.ErrCorrupt))
			return r.err
		}
	}
	stop := min(n, r.end-r.pos)
	r.cur = win[r.skip:stop]
	r.skip = 0
	r.pos += n
	return nil
}

func (r *reader) Close() error {
	if r.buf != nil {
		buf := r.buf
		r.pool.Put(&buf)
		r.buf = nil
	}
	r.cur = nil
	if r.mapped != nil {
		_ = unix.Munmap(r.mapped)
		r.mapped = nil
	}
	if r.err == nil {
		r.err = errors.New("fsobj: reader closed")
	}
	return r.f.Close()
}

// Head implements objectstore.Backend.
func (b *Backend) Head(_ context.Context, key objectstore.ObjectKey) (*objectstore.ObjectInfo, error) {
	r, err := b.loadRecord(key)
	if err != nil {
		return nil, err
	}
	return &r.Info, nil
}

// SetMeta implements objectstore.Backend. The new metadata is written
// beside the data (<id>.meta) before the index takes it.
func (b *Backend) SetMeta(ctx context.Context, key objectstore.ObjectKey, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	return b.setMeta(ctx, key, opts, b.now(), false)
}

// setMeta sets the metadata as version at; if cond, only if at is newer
// than the object's version (errStale otherwise).
func (b *Backend) setMeta(_ context.Context, key objectstore.ObjectKey, opts objectstore.PutOptions, at time.Time, cond bool) (*objectstore.ObjectInfo, error) {
	cur, err := b.Head(context.Background(), key)
	if err != nil {
		return nil, err
	}
	var out *objectstore.ObjectInfo
	for attempt := 0; ; attempt++ {
		r, err := b.loadRecord(key)
		if err != nil {
			return nil, err
		}
		info := newInfo(key.Name, opts, at)
		info.Size, info.ETag = cur.Size, cur.ETag
		meta, err := json.Marshal(trailer{Account: key.Account, Container: key.Container, Info: *info})
		if err != nil {
			return nil, err
		}
		if r.ID != "" {
			if err := b.writeFile(b.path(r.ID, ".meta"), meta); err != nil {
				return nil, fmt.Errorf("fsobj: set metadata of %s: %w", key, err)
			}
		}
		changed := false
		err = b.commit.update(func(tx *bolt.Tx) error {
			c, err := containerBucket(tx, key.Account, key.Container)
			if err != nil {
				return err
			}
			now, err := getRecord(tx, key)
			if err != nil {
				return err
			}
			if now.ID != r.ID || (r.ID == "" && now.Info.ETag != r.Info.ETag) {
				changed = true
				return nil
			}
			if cond && now.Info.LastModified.Equal(at) {
				return errAlready
			}
			if cond && now.Info.LastModified.After(at) {
				return errStale
			}
			if now.Info.DeleteAt != 0 {
				if err := tx.Bucket(bucketExpiry).Delete(expiryKey(now.Info.DeleteAt, key)); err != nil {
					return err
				}
			}
			info.Size, info.ETag = now.Info.Size, now.Info.ETag
			out = info
			return putRecord(tx, c, key, &record{ID: r.ID, Info: *info, Data: now.Data, CRC: now.CRC})
		})
		if err != nil {
			return nil, err
		}
		if !changed || attempt >= 3 {
			return out.Clone(), nil
		}
	}
}

// writeFile writes data to path atomically and durably.
func (b *Backend) writeFile(path string, data []byte) error {
	tmp := filepath.Join(b.dir, "tmp", newID())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = b.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.install(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Delete implements objectstore.Backend.
func (b *Backend) Delete(_ context.Context, key objectstore.ObjectKey) error {
	var id string
	err := b.commit.update(func(tx *bolt.Tx) error {
		var err error
		id, err = deleteRecord(tx, key)
		return err
	})
	if err != nil {
		return err
	}
	b.removeFiles(id)
	return nil
}

func deleteRecord(tx *bolt.Tx, key objectstore.ObjectKey) (string, error) {
	c, err := containerBucket(tx, key.Account, key.Container)
	if err != nil {
		return "", err
	}
	r, err := getRecord(tx, key)
	if err != nil {
		return "", err
	}
	if r.Info.DeleteAt != 0 {
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(r.Info.DeleteAt, key)); err != nil {
			return "", err
		}
	}
	if err := c.Bucket(bucketObjects).Delete([]byte(key.Name)); err != nil {
		return "", err
	}
	return r.ID, addStats(c, -1, -r.Info.Size)
}

// List implements objectstore.Backend.
func (b *Backend) List(_ context.Context, account, cont string, opts objectstore.ListOptions) ([]objectstore.Entry, error) {
	var out []objectstore.Entry
	err := b.db.View(func(tx *bolt.Tx) error {
		c, err := containerBucket(tx, account, cont)
		if err != nil {
			return err
		}
		cur := &boltCursor{c: c.Bucket(bucketObjects).Cursor()}
		objectstore.Scan(cur, opts, func(name string, subdir bool) bool {
			if subdir {
				out = append(out, objectstore.Entry{Subdir: name})
				return true
			}
			var r *record
			if r, err = decodeRecord(cur.v, false); err != nil {
				return false
			}
			r.Info.Name = name
			out = append(out, objectstore.Entry{Object: &r.Info})
			return true
		})
		return err
	})
	return out, err
}

// boltCursor is an objectstore.NameCursor over a bbolt cursor; v is the
// value at the current name.
type boltCursor struct {
	c *bolt.Cursor
	v []byte
}

func (b *boltCursor) ret(k, v []byte) (string, bool) {
	b.v = v
	if k == nil {
		return "", false
	}
	return string(k), true
}

func (b *boltCursor) Seek(name string) (string, bool) { return b.ret(b.c.Seek([]byte(name))) }

func (b *boltCursor) SeekBefore(name string) (string, bool) {
	if name == "" {
		return b.ret(b.c.Last())
	}
	k, _ := b.c.Seek([]byte(name))
	if k == nil {
		return b.ret(b.c.Last())
	}
	return b.ret(b.c.Prev())
}

func (b *boltCursor) Next() (string, bool) { return b.ret(b.c.Next()) }
func (b *boltCursor) Prev() (string, bool) { return b.ret(b.c.Prev()) }

// ReapExpired implements objectstore.Backend.
func (b *Backend) ReapExpired(_ context.Context, now time.Time, limit int) ([]objectstore.ObjectKey, error) {
	var reaped []objectstore.ObjectKey
	var ids []string
	err := b.commit.update(func(tx *bolt.Tx) error {
		reaped, ids = nil, nil
		exp := tx.Bucket(bucketExpiry)
		var stale [][]byte
		c := exp.Cursor()
		for k, _ := c.First(); k != nil && len(reaped) < limit; k, _ = c.Next() {
			at := int64(binary.BigEndian.Uint64(k))
			if at > now.Unix() {
				break
			}
			key, ok := parseExpiryKey(k)
			if !ok {
				stale = append(stale, bytes.Clone(k))
				continue
			}
			r, err := getRecord(tx, key)
			if err != nil || r.Info.DeleteAt != at {
				stale = append(stale, bytes.Clone(k))
				continue
			}
			reaped = append(reaped, key)
			ids = append(ids, r.ID)
		}
		for _, k := range stale {
			if err := exp.Delete(k); err != nil {
				return err
			}
		}
		for _, key := range reaped {
			if _, err := deleteRecord(tx, key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		b.removeFiles(id)
	}
	return reaped, nil
}
