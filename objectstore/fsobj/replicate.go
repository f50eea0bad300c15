package fsobj

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

// containersSuffix is the suffix whose hash covers a partition's
// containers (their creation and tombstones) rather than objects.
const containersSuffix = "containers"

// suffixOf returns the suffix of an object, as Swift's: the last three hex
// digits of the hash of its path.
func suffixOf(account, cont, name string) string {
	s := md5.Sum([]byte("/" + account + "/" + cont + "/" + name))
	return hex.EncodeToString(s[14:])[1:]
}

// partContents is what one device holds of one partition, by suffix.
type partContents struct {
	conts    []containerState
	bySuffix map[string][]pentry
	hashes   map[string]string
}

// pentry is an object's version with its container.
type pentry struct {
	cont containerState
	entry
}

// contents reads what d holds of the partition whose containers (on d)
// are conts, and hashes each suffix.
func contents(d *device, conts []containerState) (*partContents, error) {
	pc := &partContents{conts: conts, bySuffix: map[string][]pentry{}, hashes: map[string]string{}}
	ch := md5.New()
	for _, st := range conts {
		fmt.Fprintf(ch, "%s\x00%s\x00%t\x00%d\x00%d\n", st.Account, st.Container, st.Exists, st.Created, st.Deleted)
		if !st.Exists {
			continue
		}
		ents, err := d.b.entries(st.Account, st.Container, func(string) bool { return true })
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			s := suffixOf(st.Account, st.Container, e.Name)
			pc.bySuffix[s] = append(pc.bySuffix[s], pentry{st, e})
		}
	}
	if len(conts) > 0 {
		pc.hashes[containersSuffix] = hex.EncodeToString(ch.Sum(nil))
	}
	for s, ents := range pc.bySuffix {
		slices.SortFunc(ents, func(a, b pentry) int {
			if a.cont.Account != b.cont.Account {
				return cmpStr(a.cont.Account, b.cont.Account)
			}
			if a.cont.Container != b.cont.Container {
				return cmpStr(a.cont.Container, b.cont.Container)
			}
			if a.Name != b.Name {
				return cmpStr(a.Name, b.Name)
			}
			return boolInt(a.Deleted) - boolInt(b.Deleted)
		})
		h := md5.New()
		for _, e := range ents {
			fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00", e.cont.Account, e.cont.Container, e.Name, e.Deleted)
			_ = binary.Write(h, binary.BigEndian, e.TS)
		}
		pc.hashes[s] = hex.EncodeToString(h.Sum(nil))
	}
	return pc, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ReplicationStats count what a replication pass did.
type ReplicationStats struct {
	// Partitions is the number of (device, partition) pairs examined.
	Partitions int
	// SuffixesSynced is the number of suffixes whose hashes differed
	// between two replicas and were synced.
	SuffixesSynced int
	// Objects is the number of object versions copied.
	Objects int
	// Tombstones is the number of deletions copied.
	Tombstones int
	// Containers is the number of container creations and deletions
	// copied.
	Containers int
	// Reverted is the number of partitions a handoff device gave back to
	// their primaries and dropped.
	Reverted int
	// Reclaimed is the number of tombstones older than the reclaim age
	// removed.
	Reclaimed int
}

// DefaultReclaimAge is how long tombstones are kept, as Swift's
// reclaim_age: a device away for longer may bring deleted objects back.
const DefaultReclaimAge = 7 * 24 * time.Hour

// Replicator keeps a Cluster's replicas whole, as Swift's object
// replicator does: for each partition a device holds, it compares the
// hashes of the partition's suffixes with the other replicas' and syncs
// the suffixes that differ, pushing the newer versions (objects, their
// tombstones, containers). A handoff device pushes its partitions to
// their primaries and drops them once every primary holds them.
type Replicator struct {
	// ReclaimAge is how long tombstones are kept (set before Start or
	// Pass); default DefaultReclaimAge.
	ReclaimAge time.Duration

	c        *Cluster
	interval time.Duration
	logger   *slog.Logger
	pass     sync.Mutex // held by a pass; guards cache
	cache    map[cacheKey]cached
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// NewReplicator returns a replicator of c that runs a pass every interval
// (default 30 s) once started.
func NewReplicator(c *Cluster, interval time.Duration) *Replicator {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	return &Replicator{ReclaimAge: DefaultReclaimAge, c: c, interval: interval, logger: c.logger, cache: map[cacheKey]cached{}, stop: make(chan struct{})}
}

// Start starts the replicator's loop.
func (r *Replicator) Start() {
	r.wg.Go(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-r.stop; cancel() }()
		loop(ctx, r.interval, func() {
			if st, err := r.Pass(ctx); err != nil {
				r.logger.Warn("fsobj: replication pass", "err", err)
			} else if st.Objects+st.Tombstones+st.Containers+st.Reverted > 0 {
				r.logger.Info("fsobj: replication pass", "objects", st.Objects, "tombstones", st.Tombstones, "containers", st.Containers, "reverted", st.Reverted)
			}
		})
	})
}

// Close stops the loop and waits for a pass in progress.
func (r *Replicator) Close() error {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
	return nil
}

// loop runs fn every interval until ctx ends.
func loop(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Pass runs one replication pass over every device that is up.
func (r *Replicator) Pass(ctx context.Context) (ReplicationStats, error) {
	r.pass.Lock()
	defer r.pass.Unlock()
	c := r.c
	var st ReplicationStats
	var errs []error
	var up []*device
	for _, d := range c.devs {
		if d.up() {
			up = append(up, d)
		}
	}
	before := c.clock().Add(-r.ReclaimAge).UnixNano()
	for _, d := range up {
		n, err := d.b.reclaim(before)
		st.Reclaimed += n
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.dir, err))
		}
	}
	for _, d := range up {
		byPart, err := r.partsOf(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.dir, err))
			continue
		}
		parts := make([]int, 0, len(byPart))
		for p := range byPart {
			parts = append(parts, p)
		}
		slices.Sort(parts)
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			st.Partitions++
			if err := r.syncPart(ctx, d, p, byPart[p], &st); err != nil {
				errs = append(errs, fmt.Errorf("device %s partition %d: %w", d.dir, p, err))
			}
		}
	}
	if len(errs) == 0 {
		// Every device up now has received what it missed.
		for _, d := range up {
			if d.up() {
				d.stale.Store(false)
			}
		}
	}
	return st, errors.Join(errs...)
}

// cacheKey names what a device holds of a partition (part -1: its
// containers by partition).
type cacheKey struct {
	d    *device
	part int
}

// cached is a result computed when the device's index was at txid: it
// holds as long as the index has not changed since (no write at all), so
// that a pass over an idle cluster costs little.
type cached struct {
	txid  int
	parts map[int][]containerState
	pc    *partContents
}

// txid returns the id of the index's last committed transaction.
func (b *Backend) txid() int {
	var id int
	_ = b.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

// partsOf returns the containers d holds, by partition.
func (r *Replicator) partsOf(d *device) (map[int][]containerState, error) {
	k := cacheKey{d, -1}
	before := d.b.txid()
	if c, ok := r.cache[k]; ok && c.txid == before {
		return c.parts, nil
	}
	parts, err := partsOf(r.c, d)
	if err == nil && d.b.txid() == before {
		r.cache[k] = cached{txid: before, parts: parts}
	}
	return parts, err
}

// contents is contents, cached (the hashes only) while the device's
// index does not change.
func (r *Replicator) contents(d *device, part int, conts []containerState) (*partContents, error) {
	k := cacheKey{d, part}
	before := d.b.txid()
	if c, ok := r.cache[k]; ok && c.txid == before {
		return c.pc, nil
	}
	pc, err := contents(d, conts)
	if err == nil && d.b.txid() == before {
		// Only the hashes are kept: the entries are read again if a
		// suffix differs.
		r.cache[k] = cached{txid: before, pc: &partContents{conts: pc.conts, hashes: pc.hashes}}
	}
	return pc, err
}

// full returns pc with its entries, reading them if pc has only hashes.
func full(d *device, pc *partContents) (*partContents, error) {
	if pc.bySuffix != nil {
		return pc, nil
	}
	return contents(d, pc.conts)
}

// partsOf returns the containers d holds, by partition.
func partsOf(c *Cluster, d *device) (map[int][]containerState, error) {
	conts, err := d.b.containers()
	if err != nil {
		return nil, err
	}
	out := map[int][]containerState{}
	for _, st := range conts {
		p := c.part(st.Account, st.Container)
		out[p] = append(out[p], st)
	}
	return out, nil
}

// syncPart pushes what d holds of partition p to the other primaries,
// and drops it from d if d is a handoff and every primary now holds it.
func (r *Replicator) syncPart(ctx context.Context, d *device, p int, conts []containerState, st *ReplicationStats) error {
	c := r.c
	local, err := r.contents(d, p, conts)
	if err != nil {
		return err
	}
	primary := false
	allSynced := true
	var syncErr error
	for _, peer := range c.primaries(p) {
		if peer == d {
			primary = true
			continue
		}
		if !peer.up() {
			allSynced = false
			continue
		}
		peerParts, err := r.partsOf(peer)
		if err != nil {
			allSynced = false
			continue
		}
		remote, err := r.contents(peer, p, peerParts[p])
		if err != nil {
			allSynced = false
			continue
		}
		for suffix, h := range local.hashes {
			if remote.hashes[suffix] == h {
				continue
			}
			st.SuffixesSynced++
			if local, err = full(d, local); err == nil {
				remote, err = full(peer, remote)
			}
			if err != nil {
				syncErr = err
				allSynced = false
				break
			}
			if err := r.syncSuffix(ctx, d, peer, local, remote, suffix, st); err != nil {
				syncErr = fmt.Errorf("to %s, suffix %s: %w", peer.dir, suffix, err)
				allSynced = false
			}
		}
	}
	if primary || !allSynced {
		return syncErr
	}
	// d is a handoff and every primary has what it held: drop it,
	// exactly the versions pushed (a write that reached d meanwhile
	// stays for the next pass).
	if local, err = full(d, local); err != nil {
		return err
	}
	known := map[string]map[string]int64{}
	for _, ents := range local.bySuffix {
		for _, e := range ents {
			ck := e.cont.Account + "\x00" + e.cont.Container
			if known[ck] == nil {
				known[ck] = map[string]int64{}
			}
			known[ck][e.Name] = e.TS
		}
	}
	for _, cs := range conts {
		if err := d.b.dropKnown(cs, known[cs.Account+"\x00"+cs.Container]); err != nil {
			return err
		}
	}
	st.Reverted++
	return nil
}

// syncSuffix pushes the versions of one suffix that d holds newer than
// peer.
func (r *Replicator) syncSuffix(ctx context.Context, d, peer *device, local, remote *partContents, suffix string, st *ReplicationStats) error {
	if suffix == containersSuffix {
		var errs []error
		for _, cs := range local.conts {
			cur, err := peer.b.container(cs.Account, cs.Container)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if cs.ts() <= cur.ts() && (cs.Exists == cur.Exists || cs.ts() < cur.ts()) {
				continue
			}
			if cs.Exists {
				err = peer.b.createContainerAt(cs.Account, cs.Container, cs.Created)
			} else {
				err = peer.b.deleteContainerAt(cs.Account, cs.Container, cs.Deleted, true)
			}
			switch {
			case err == nil:
				st.Containers++
			case errors.Is(err, errStale), errors.Is(err, errdefs.ErrConflict):
			default:
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	theirs := map[string]int64{}
	for _, e := range remote.bySuffix[suffix] {
		k := e.cont.Account + "\x00" + e.cont.Container + "\x00" + e.Name
		theirs[k] = max(theirs[k], e.TS)
	}
	var errs []error
	for _, e := range local.bySuffix[suffix] {
		k := e.cont.Account + "\x00" + e.cont.Container + "\x00" + e.Name
		if t, ok := theirs[k]; ok && t >= e.TS {
			continue
		}
		key := objectstore.ObjectKey{Account: e.cont.Account, Container: e.cont.Container, Name: e.Name}
		if err := ensureContainer(peer, e.cont); err != nil {
			if !errors.Is(err, errStale) {
				errs = append(errs, err)
			}
			continue
		}
		var err error
		if e.Deleted {
			if _, err = peer.b.deleteAt(key, e.TS); err == nil {
				st.Tombstones++
			}
		} else if err = copyObject(ctx, d, peer, key, e.TS); err == nil {
			st.Objects++
		}
		if err != nil && !errors.Is(err, errStale) && !errors.Is(err, errAlready) && !errors.Is(err, errdefs.ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// copyObject copies version ts of key from d to peer, verifying the bytes
// as it reads them: a bad copy is never spread.
func copyObject(ctx context.Context, d, peer *device, key objectstore.ObjectKey, ts int64) error {
	rc, info, err := d.b.Get(ctx, key, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	if info.LastModified.UnixNano() != ts {
		return nil // changed since listed; the next pass sees it
	}
	opts := objectstore.PutOptions{ContentType: info.ContentType, Headers: info.Headers, DeleteAt: info.DeleteAt, ETag: info.ETag}
	_, err = peer.b.put(ctx, key, rc, opts, info.LastModified, true)
	return err
}

// AuditStats count what an audit pass did.
type AuditStats struct {
	// Objects is the number of object copies checked.
	Objects int
	// Bytes is the number of bytes read.
	Bytes int64
	// Quarantined is the number of bad copies removed.
	Quarantined int
}

// Auditor reads every object copy on a Cluster's devices at a bounded
// rate, verifying each chunk's checksum, and quarantines the bad copies
// it finds (bit rot, a truncated or missing file): the copy leaves the
// index, its file moves to DIR/quarantined, and the replicator restores
// a good copy from another replica.
type Auditor struct {
	c        *Cluster
	rate     int64
	interval time.Duration
	logger   *slog.Logger
	pass     sync.Mutex
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// NewAuditor returns an auditor of c that reads at most bytesPerSec
// (0: unbounded) and runs a pass every interval (default an hour) once
// started.
func NewAuditor(c *Cluster, bytesPerSec int64, interval time.Duration) *Auditor {
	if interval <= 0 {
		interval = time.Hour
	}
	return &Auditor{c: c, rate: bytesPerSec, interval: interval, logger: c.logger, stop: make(chan struct{})}
}

// Start starts the auditor's loop.
func (a *Auditor) Start() {
	a.wg.Go(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-a.stop; cancel() }()
		loop(ctx, a.interval, func() {
			if st, err := a.Pass(ctx); err != nil && ctx.Err() == nil {
				a.logger.Warn("fsobj: audit pass", "err", err)
			} else if st.Quarantined > 0 {
				a.logger.Warn("fsobj: audit quarantined bad copies", "count", st.Quarantined)
			}
		})
	})
}

// Close stops the loop and waits for a pass in progress.
func (a *Auditor) Close() error {
	a.once.Do(func() { close(a.stop) })
	a.wg.Wait()
	return nil
}

// pacer is a writer that discards and paces its caller to rate bytes/s.
type pacer struct {
	ctx   context.Context
	rate  int64
	start time.Time
	n     int64
}

func (p *pacer) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.rate > 0 {
		due := p.start.Add(time.Duration(float64(p.n) / float64(p.rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-p.ctx.Done():
				return 0, p.ctx.Err()
			}
		}
	}
	return len(b), nil
}

// Pass audits every copy on every device that is up.
func (a *Auditor) Pass(ctx context.Context) (AuditStats, error) {
	a.pass.Lock()
	defer a.pass.Unlock()
	var st AuditStats
	var errs []error
	p := &pacer{ctx: ctx, rate: a.rate, start: time.Now()}
	for _, d := range a.c.devs {
		if !d.up() {
			continue
		}
		items, err := d.b.auditItems()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, it := range items {
			err := d.b.audit(ctx, it, p)
			st.Objects++
			if errors.Is(err, errCorruptCopy) {
				removed, qerr := d.b.quarantine(it.Key, it.ID)
				if qerr != nil {
					errs = append(errs, qerr)
				}
				if removed {
					st.Quarantined++
					a.logger.Warn("fsobj: quarantined a bad copy", "device", d.dir, "object", it.Key.String())
				}
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				errs = append(errs, fmt.Errorf("%s on %s: %w", it.Key, d.dir, err))
			}
		}
	}
	st.Bytes = p.n
	return st, errors.Join(errs...)
}

var _ io.Writer = (*pacer)(nil)
