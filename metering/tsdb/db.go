package tsdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

// Options tune a DB. The zero value (or nil) means the defaults.
type Options struct {
	// CheckpointBytes is the write-ahead log size that makes the DB write a
	// checkpoint and start a new log; default 64 MiB.
	CheckpointBytes int64
	// NoSync skips fsync, for tests only.
	NoSync bool
	// Logger receives background errors; default slog.Default().
	Logger *slog.Logger
}

// DB is a time-series store in a directory of its own. Each series (one
// metric) has archives that are rolled up as measures arrive. Writes go to a
// write-ahead log, fsynced once per group of concurrent writers before any
// of them returns; a checkpoint of every series' archives, compactly
// encoded, replaces the log from time to time. All methods are safe for
// concurrent use.
type DB struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu     sync.RWMutex
	series map[string]*series

	walMu    sync.Mutex // held while the log is written or rotated
	wal      *os.File
	walGen   uint64
	walBytes int64

	reqs      chan *request
	stop      chan struct{}
	done      chan struct{}
	ckptMu    sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
}

type request struct {
	rec  []byte
	done chan error
}

const (
	recCreate   = 1
	recMeasures = 2
	recDelete   = 3

	ckptName   = "checkpoint"
	walPrefix  = "wal-"
	ckptMagic  = "STSDB1\n"
	frameBytes = 8
	// maxRecord bounds one log record (and so one Write).
	maxRecord = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Open opens (creating it if needed) the DB in dir: it loads the checkpoint
// and replays the log, dropping a torn record at its end (a write that was
// never acknowledged).
func Open(dir string, opts *Options) (*DB, error) {
	db := &DB{dir: dir, series: map[string]*series{}, reqs: make(chan *request, 1024),
		stop: make(chan struct{}), done: make(chan struct{}), closed: make(chan struct{})}
	if opts != nil {
		db.opts = *opts
	}
	if db.opts.CheckpointBytes <= 0 {
		db.opts.CheckpointBytes = 64 << 20
	}
	db.log = db.opts.Logger
	if db.log == nil {
		db.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tsdb: %w", err)
	}
	var nextGen uint64 = 1
	if b, err := os.ReadFile(filepath.Join(dir, ckptName)); err == nil {
		g, ss, err := decodeCheckpoint(b)
		if err != nil {
			return nil, fmt.Errorf("tsdb: checkpoint: %w", err)
		}
		nextGen, db.series = g, ss
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tsdb: %w", err)
	}
	gens, err := db.walGens()
	if err != nil {
		return nil, err
	}
	last := nextGen - 1
	for i, g := range gens {
		if g < nextGen {
			_ = os.Remove(db.walPath(g))
			continue
		}
		if err := db.replay(g, i == len(gens)-1); err != nil {
			return nil, err
		}
		last = g
	}
	if err := db.openWAL(max(last+1, nextGen)); err != nil {
		return nil, err
	}
	go db.commitLoop()
	return db, nil
}

func (db *DB) walPath(gen uint64) string {
	return filepath.Join(db.dir, fmt.Sprintf("%s%016x", walPrefix, gen))
}

func (db *DB) walGens() ([]uint64, error) {
	ents, err := os.ReadDir(db.dir)
	if err != nil {
		return nil, fmt.Errorf("tsdb: %w", err)
	}
	var gens []uint64
	for _, e := range ents {
		if g, ok := strings.CutPrefix(e.Name(), walPrefix); ok {
			if n, err := strconv.ParseUint(g, 16, 64); err == nil {
				gens = append(gens, n)
			}
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// replay applies one log file. In the newest file, a torn or corrupt record
// ends the log: the file is cut there. Elsewhere it is an error.
func (db *DB) replay(gen uint64, newest bool) error {
	path := db.walPath(gen)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tsdb: %w", err)
	}
	off := 0
	for off < len(b) {
		rec, n, ok := readFrame(b[off:])
		if !ok {
			if !newest {
				return fmt.Errorf("tsdb: %s: %w at offset %d", filepath.Base(path), errCorrupt, off)
			}
			db.log.Warn("tsdb: dropping torn log tail", "file", filepath.Base(path), "offset", off, "bytes", len(b)-off)
			if err := os.Truncate(path, int64(off)); err != nil {
				return fmt.Errorf("tsdb: %w", err)
			}
			break
		}
		if err := db.apply(rec); err != nil {
			return fmt.Errorf("tsdb: %s: %w", filepath.Base(path), err)
		}
		off += n
	}
	return nil
}

func readFrame(b []byte) (rec []byte, n int, ok bool) {
	if len(b) < frameBytes {
		return nil, 0, false
	}
	size := binary.LittleEndian.Uint32(b)
	if size > maxRecord || uint64(len(b)-frameBytes) < uint64(size) {
		return nil, 0, false
	}
	rec = b[frameBytes : frameBytes+int(size)]
	if crc32.Checksum(rec, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return rec, frameBytes + int(size), true
}

func appendFrame(b, rec []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(rec))) //nolint:gosec // bounded by maxRecord
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(rec, crcTable))
	return append(b, rec...)
}

func (db *DB) openWAL(gen uint64) error {
	f, err := os.OpenFile(db.walPath(gen), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("tsdb: %w", err)
	}
	if err := db.syncDir(); err != nil {
		f.Close()
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("tsdb: %w", err)
	}
	db.wal, db.walGen, db.walBytes = f, gen, st.Size()
	return nil
}

func (db *DB) syncDir() error {
	if db.opts.NoSync {
		return nil
	}
	d, err := os.Open(db.dir)
	if err != nil {
		return fmt.Errorf("tsdb: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("tsdb: sync directory: %w", err)
	}
	return nil
}

// commitLoop writes queued records to the log in groups: one write and one
// fsync for every record queued meanwhile, then applies them and answers
// their writers.
func (db *DB) commitLoop() {
	defer close(db.done)
	var batch []*request
	var buf []byte
	for {
		select {
		case r := <-db.reqs:
			batch = append(batch[:0], r)
		case <-db.stop:
			return
		}
	drain:
		for len(batch) < 4096 {
			select {
			case r := <-db.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = appendFrame(buf, r.rec)
		}
		db.walMu.Lock()
		err := db.writeWAL(buf)
		if err == nil {
			for _, r := range batch {
				if aerr := db.apply(r.rec); aerr != nil {
					// Records are checked before they are queued; this is a bug.
					db.log.Error("tsdb: apply", "err", aerr)
				}
			}
		}
		size := db.walBytes
		db.walMu.Unlock()
		for _, r := range batch {
			r.done <- err
		}
		if err == nil && size >= db.opts.CheckpointBytes {
			if err := db.Checkpoint(); err != nil {
				db.log.Error("tsdb: checkpoint", "err", err)
			}
		}
	}
}

func (db *DB) writeWAL(buf []byte) error {
	n, err := db.wal.Write(buf)
	db.walBytes += int64(n)
	if err != nil {
		// Cut what may have been half written so that later records do not
		// follow a torn one.
		_ = db.wal.Truncate(db.walBytes - int64(n))
		db.walBytes -= int64(n)
		return fmt.Errorf("tsdb: write log: %w", err)
	}
	if !db.opts.NoSync {
		if err := db.wal.Sync(); err != nil {
			return fmt.Errorf("tsdb: sync log: %w", err)
		}
	}
	return nil
}

// submit queues rec and waits until it is durable and applied.
func (db *DB) submit(ctx context.Context, rec []byte) error {
	if len(rec) > maxRecord {
		return fmt.Errorf("tsdb: %w: a write of %d bytes is larger than %d", errdefs.ErrInvalid, len(rec), maxRecord)
	}
	r := &request{rec: rec, done: make(chan error, 1)}
	select {
	case db.reqs <- r:
	case <-db.closed:
		return fmt.Errorf("tsdb: %w: closed", errdefs.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the record may be written: wait for the answer, so
	// that an acknowledged write is never reported as failed.
	select {
	case err := <-r.done:
		return err
	case <-db.done:
		select {
		case err := <-r.done:
			return err
		default:
			return fmt.Errorf("tsdb: %w: closed", errdefs.ErrUnavailable)
		}
	}
}

// apply changes memory for one record. Callers hold walMu or run alone.
func (db *DB) apply(rec []byte) error {
	r := &reader{b: rec}
	switch r.byte() {
	case recCreate:
		id := r.string()
		as := readArchives(r)
		if err := r.done(); err != nil {
			return err
		}
		db.mu.Lock()
		if _, ok := db.series[id]; !ok {
			db.series[id] = newSeries(id, as)
		}
		db.mu.Unlock()
	case recDelete:
		id := r.string()
		if err := r.done(); err != nil {
			return err
		}
		db.mu.Lock()
		delete(db.series, id)
		db.mu.Unlock()
	case recMeasures:
		ids := make([]*series, r.count(1))
		db.mu.Lock()
		defer db.mu.Unlock()
		for i := range ids {
			ids[i] = db.series[r.string()]
		}
		n := r.count(10)
		for range n {
			i := r.uvarint()
			t := r.varint()
			v := r.float64()
			if r.err != nil || i >= uint64(len(ids)) {
				r.fail()
				break
			}
			if s := ids[i]; s != nil {
				s.add(t, v)
			}
		}
		return r.done()
	default:
		return errCorrupt
	}
	return nil
}

func appendArchives(b []byte, as []Archive) []byte {
	b = appendUvarint(b, uint64(len(as)))
	for _, a := range as {
		b = appendUvarint(b, uint64(a.Granularity/time.Second))
		b = appendUvarint(b, uint64(a.Timespan/time.Second))
	}
	return b
}

func readArchives(r *reader) []Archive {
	n := r.count(2)
	as := make([]Archive, 0, n)
	for range n {
		g, ts := r.uvarint(), r.uvarint()
		if g > math.MaxInt64/uint64(time.Second) || ts > math.MaxInt64/uint64(time.Second) {
			r.fail()
			return nil
		}
		as = append(as, Archive{Granularity: time.Duration(g) * time.Second, Timespan: time.Duration(ts) * time.Second}) //nolint:gosec // checked above
	}
	if r.err == nil {
		if err := ValidateArchives(as); err != nil {
			r.fail()
		}
	}
	return as
}

// Create makes a series with the given archives. It fails with
// errdefs.ErrConflict if the series exists.
func (db *DB) Create(ctx context.Context, id string, archives []Archive) error {
	if id == "" || len(id) > 255 {
		return fmt.Errorf("tsdb: %w", &errdefs.ValidationError{Field: "id", Reason: "must be 1 to 255 bytes"})
	}
	if err := ValidateArchives(archives); err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrInvalid, err)
	}
	db.mu.RLock()
	_, ok := db.series[id]
	db.mu.RUnlock()
	if ok {
		return fmt.Errorf("tsdb: series %q: %w", id, errdefs.ErrConflict)
	}
	rec := append([]byte{recCreate}, appendUvarint(nil, uint64(len(id)))...)
	rec = append(rec, id...)
	return db.submit(ctx, appendArchives(rec, archives))
}

// Delete removes a series and its measures. It fails with
// errdefs.ErrNotFound if there is no such series.
func (db *DB) Delete(ctx context.Context, id string) error {
	if !db.Has(id) {
		return fmt.Errorf("tsdb: series %q: %w", id, errdefs.ErrNotFound)
	}
	rec := append([]byte{recDelete}, appendUvarint(nil, uint64(len(id)))...)
	return db.submit(ctx, append(rec, id...))
}

// Has reports whether the series exists.
func (db *DB) Has(id string) bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	_, ok := db.series[id]
	return ok
}

// Archives returns a series' archives, finest first.
func (db *DB) Archives(id string) ([]Archive, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	s, ok := db.series[id]
	if !ok {
		return nil, fmt.Errorf("tsdb: series %q: %w", id, errdefs.ErrNotFound)
	}
	return s.defs(), nil
}

// Write durably adds measures, in any order and to any series, in one log
// record: it returns once they are on disk and in the archives. It fails
// with errdefs.ErrNotFound, adding nothing, if a series does not exist.
func (db *DB) Write(ctx context.Context, ms []Measure) error {
	if len(ms) == 0 {
		return nil
	}
	idx := map[string]uint64{}
	var ids []string
	body := make([]byte, 0, len(ms)*14)
	db.mu.RLock()
	for _, m := range ms {
		i, ok := idx[m.Series]
		if !ok {
			if _, ok := db.series[m.Series]; !ok {
				db.mu.RUnlock()
				return fmt.Errorf("tsdb: series %q: %w", m.Series, errdefs.ErrNotFound)
			}
			i = uint64(len(ids))
			idx[m.Series] = i
			ids = append(ids, m.Series)
		}
		body = appendUvarint(body, i)
		body = appendVarint(body, m.Time.UnixNano())
		body = binary.LittleEndian.AppendUint64(body, math.Float64bits(m.Value))
	}
	db.mu.RUnlock()
	rec := make([]byte, 0, len(body)+16*len(ids)+16)
	rec = append(rec, recMeasures)
	rec = appendUvarint(rec, uint64(len(ids)))
	for _, id := range ids {
		rec = appendUvarint(rec, uint64(len(id)))
		rec = append(rec, id...)
	}
	rec = appendUvarint(rec, uint64(len(ms)))
	return db.submit(ctx, append(rec, body...))
}

// Query selects the points of one series.
type Query struct {
	// Granularity picks one archive; zero means every archive, coarsest
	// first.
	Granularity time.Duration
	// Method is the aggregate; default Mean.
	Method Method
	// Start and Stop bound the buckets' start times, [Start, Stop); zero
	// values are unbounded.
	Start, Stop time.Time
	// Rate gives, instead of each aggregate, its increase since the
	// previous bucket; a decrease is a counter reset (the counter restarted
	// from zero), so the increase is the new value itself.
	Rate bool
}

// Aggregate returns a series' points, oldest first within each
// granularity. It fails with errdefs.ErrNotFound for a missing series or
// granularity.
func (db *DB) Aggregate(id string, q Query) ([]Point, error) {
	return db.AppendAggregate(nil, id, q)
}

// AppendAggregate is Aggregate appending to dst.
func (db *DB) AppendAggregate(dst []Point, id string, q Query) ([]Point, error) {
	if q.Method == "" {
		q.Method = Mean
	}
	if !slices.Contains(Methods, q.Method) {
		return dst, fmt.Errorf("tsdb: %w", &errdefs.ValidationError{Field: "aggregation", Reason: fmt.Sprintf("unknown method %q", q.Method)})
	}
	var start, stop int64 = math.MinInt64, math.MinInt64
	if !q.Start.IsZero() {
		start = q.Start.UnixNano()
	}
	if !q.Stop.IsZero() {
		stop = q.Stop.UnixNano()
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	s, ok := db.series[id]
	if !ok {
		return dst, fmt.Errorf("tsdb: series %q: %w", id, errdefs.ErrNotFound)
	}
	found := false
	for i := len(s.archives) - 1; i >= 0; i-- {
		a := s.archives[i]
		if q.Granularity != 0 && a.Granularity != q.Granularity {
			continue
		}
		found = true
		bs := a.query(start, stop)
		if q.Rate {
			// The bucket before the window gives the first point's base.
			k := sort.Search(len(a.buckets), func(i int) bool { return a.buckets[i].t >= start })
			prev := math.NaN()
			if len(bs) > 0 && k > 0 && a.buckets[k-1].t == bs[0].t-int64(a.Granularity) {
				prev = a.buckets[k-1].value(q.Method)
			}
			for i := range bs {
				v := bs[i].value(q.Method)
				if !math.IsNaN(prev) {
					d := v - prev
					if d < 0 {
						d = v
					}
					dst = append(dst, Point{Time: time.Unix(0, bs[i].t).UTC(), Granularity: a.Granularity, Value: d})
				}
				prev = v
			}
			continue
		}
		for i := range bs {
			dst = append(dst, Point{Time: time.Unix(0, bs[i].t).UTC(), Granularity: a.Granularity, Value: bs[i].value(q.Method)})
		}
	}
	if !found {
		return dst, fmt.Errorf("tsdb: series %q has no granularity %s: %w", id, q.Granularity, errdefs.ErrNotFound)
	}
	return dst, nil
}

// Latest returns a series' newest measure; ok is false when it has none.
func (db *DB) Latest(id string) (m Measure, ok bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	s, found := db.series[id]
	if !found || !s.hasLast {
		return Measure{}, false
	}
	return Measure{Series: id, Time: time.Unix(0, s.lastT).UTC(), Value: s.lastV}, true
}

// Checkpoint writes every series' archives to the checkpoint file and drops
// the log it replaces. It runs by itself when the log grows past
// Options.CheckpointBytes, and at Close.
func (db *DB) Checkpoint() error {
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	db.walMu.Lock()
	if db.wal == nil {
		db.walMu.Unlock()
		return fmt.Errorf("tsdb: %w: closed", errdefs.ErrUnavailable)
	}
	old, oldGen := db.wal, db.walGen
	if err := db.openWAL(oldGen + 1); err != nil {
		db.walMu.Unlock()
		return err
	}
	db.mu.RLock()
	b := encodeCheckpoint(db.walGen, db.series)
	db.mu.RUnlock()
	db.walMu.Unlock()
	old.Close()

	tmp := filepath.Join(db.dir, ckptName+".tmp")
	if err := db.writeFile(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(db.dir, ckptName)); err != nil {
		return fmt.Errorf("tsdb: %w", err)
	}
	if err := db.syncDir(); err != nil {
		return err
	}
	gens, err := db.walGens()
	if err != nil {
		return err
	}
	for _, g := range gens {
		if g <= oldGen {
			_ = os.Remove(db.walPath(g))
		}
	}
	return nil
}

func (db *DB) writeFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("tsdb: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && !db.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tsdb: write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// DiskSize is the bytes the DB's files take now.
func (db *DB) DiskSize() (int64, error) {
	var n int64
	ents, err := os.ReadDir(db.dir)
	if err != nil {
		return 0, fmt.Errorf("tsdb: %w", err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n, nil
}

// Close writes a checkpoint and closes the DB. Writes still queued fail
// with errdefs.ErrUnavailable.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		close(db.closed)
		close(db.stop)
		<-db.done
		err = db.Checkpoint()
		db.walMu.Lock()
		if db.wal != nil {
			if cerr := db.wal.Close(); err == nil {
				err = cerr
			}
			db.wal = nil
		}
		db.walMu.Unlock()
	})
	return err
}

var _ io.Closer = (*DB)(nil)
