package fsobj

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/ring"
)

var _ objectstore.Backend = (*Cluster)(nil)

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	// Devices are the directories acting as devices (one per disk, as a
	// rule). Required.
	Devices []string
	// Zones, if set, gives each device's zone (same length as Devices);
	// by default each device is its own zone.
	Zones []int
	// Replicas is the number of copies of each container and its objects;
	// default ring.DefaultReplicas (3).
	Replicas int
	// PartPower is the ring's partition power; default
	// ring.DefaultPartPower.
	PartPower int
	// NoSync skips fsync, for tests that do not test durability.
	NoSync bool
	// Clock returns the current time. Default: time.Now.
	Clock func() time.Time
	// Logger receives rebalances, replication and audit findings.
	Logger *slog.Logger
	// ErrorSuppression is how long a device whose write failed with an
	// I/O error counts as down (writes go to a handoff meanwhile);
	// default 30 s.
	ErrorSuppression time.Duration
}

// Cluster is an objectstore.Backend replicated across devices: local
// directories, each holding a Backend. A ring (objectstore/ring) maps each
// container, by the hash of its account and name, to a partition and the
// partition to Replicas devices in distinct zones; the container's
// listing and its objects live on those devices, so that every replica
// holds the whole listing and answers it alone, and a write is one atomic
// commit per replica.
//
// Writes go to every replica at once and succeed when a quorum (2 of 3)
// does; a device that is down (its directory or its device.json is gone)
// is replaced by a handoff device. Each write carries a version (its
// LastModified, equal on every replica); deletions leave tombstones.
// Reads ask every replica for its version and read the newest, verifying
// each chunk's checksum and failing over to another replica of the same
// version, mid-stream if need be. A Replicator repairs missing and stale
// replicas and moves handoffs back; an Auditor finds and quarantines bad
// copies.
//
// The ring is kept in every device (ring.json) and rebuilt, moving as
// little as it must, when the devices change.
type Cluster struct {
	ring    *ring.Ring
	devs    []*device // by index in ring.Devices
	quorum  int
	clock   func() time.Time
	logger  *slog.Logger
	mu      sync.Mutex
	lastTS  int64
	rebMove int
	// suppress is how long a device that failed counts as down.
	suppress time.Duration
}

// failed notes a device's failed write: an I/O error (not a refusal such
// as NotFound, Conflict, Invalid or a stale version) makes it count as
// down for a while, so that writes go to a handoff instead.
func (c *Cluster) failed(d *device, err error) {
	if err == nil || errors.Is(err, errStale) || errors.Is(err, errAlready) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrInvalid) {
		return
	}
	d.errUntil.Store(time.Now().Add(c.suppress).UnixNano())
	d.stale.Store(true)
	c.logger.Warn("fsobj: device failed; it counts as down for a while", "dir", d.dir, "for", c.suppress, "err", err)
}

// device is one directory of a Cluster.
type device struct {
	id     string
	zone   int
	dir    string
	b      *Backend
	marker string
	// errUntil (Unix ns) is when a device that failed a write stops
	// counting as down.
	errUntil atomic.Int64
	// stale is set when the device is seen down, and cleared by the
	// replicator's next full pass: until then its listings may lack what
	// it missed, and listings come from other replicas.
	stale atomic.Bool
}

// up reports whether the device is there: opened, and its marker file
// is there.
func (d *device) up() bool {
	if d.b == nil || time.Now().UnixNano() < d.errUntil.Load() {
		return false
	}
	if _, err := os.Stat(d.marker); err != nil {
		d.stale.Store(true)
		return false
	}
	return true
}

const (
	markerFile = "device.json"
	ringFile   = "ring.json"
)

type marker struct {
	ID string `json:"id"`
}

// OpenCluster opens (creating if needed) a replicated backend on the
// configured devices. If the devices differ from those of the stored
// ring, the ring is rebalanced and saved to every device; the replicator
// then moves the data. A device of the ring whose directory lacks its
// device.json (a disk not mounted) is down, not replaced: it stays down,
// and the ring as it was, until the cluster is opened again with it.
func OpenCluster(cfg ClusterConfig) (*Cluster, error) {
	if len(cfg.Devices) == 0 {
		return nil, errdefs.Invalid("devices", "a cluster needs at least one device")
	}
	if cfg.Zones != nil && len(cfg.Zones) != len(cfg.Devices) {
		return nil, errdefs.Invalid("zones", "one zone per device")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ErrorSuppression == 0 {
		cfg.ErrorSuppression = 30 * time.Second
	}
	c := &Cluster{clock: cfg.Clock, logger: cfg.Logger, suppress: cfg.ErrorSuppression}
	fail := func(err error) (*Cluster, error) {
		for _, d := range c.devs {
			if d.b != nil {
				d.b.Close()
			}
		}
		return nil, err
	}
	// First the markers and rings the directories hold.
	ids := make([]string, len(cfg.Devices))
	var stored *ring.Ring
	for i, dir := range cfg.Devices {
		id, err := readMarker(dir)
		if err != nil {
			return fail(err)
		}
		ids[i] = id
		if r, err := ring.Load(filepath.Join(dir, ringFile)); err == nil && (stored == nil || r.Version > stored.Version) {
			stored = r
		}
	}
	present := map[string]bool{}
	for _, id := range ids {
		present[id] = id != ""
	}
	var rdevs []ring.Device
	for i, dir := range cfg.Devices {
		zone := i + 1
		if cfg.Zones != nil {
			zone = cfg.Zones[i]
		}
		dir = filepath.Clean(dir)
		d := &device{id: ids[i], dir: dir, zone: zone, marker: filepath.Join(dir, markerFile)}
		if d.id == "" && stored != nil {
			// A device of the ring whose marker is missing (a disk not
			// mounted, a directory gone) is down, not new: no rebalance.
			for _, rd := range stored.Devices {
				if rd.Path == dir && !present[rd.ID] {
					d.id = rd.ID
					c.logger.Warn("fsobj: device missing; it stays down until the program restarts with it", "dir", dir)
					d.stale.Store(true)
				}
			}
		}
		if d.b == nil && (d.id == "" || present[d.id]) {
			if err := d.open(cfg); err != nil {
				return fail(err)
			}
		}
		c.devs = append(c.devs, d)
		rdevs = append(rdevs, ring.Device{ID: d.id, Zone: zone, Path: dir})
	}
	r := stored
	changed := false
	switch {
	case r == nil:
		var err error
		if r, err = ring.Build(rdevs, cfg.PartPower, cfg.Replicas); err != nil {
			return fail(err)
		}
		changed = true
	case !sameDevices(r.Devices, rdevs) || (cfg.Replicas != 0 && cfg.Replicas != r.Replicas):
		if cfg.Replicas != 0 {
			r.Replicas = cfg.Replicas
		}
		nr, moved, err := r.Rebalance(rdevs)
		if err != nil {
			return fail(err)
		}
		c.rebMove = moved
		c.logger.Info("fsobj: ring rebalanced", "version", nr.Version, "moved", moved, "of", nr.Parts()*len(nr.Assign))
		r, changed = nr, true
	}
	for _, d := range c.devs {
		if d.b == nil {
			continue
		}
		if !changed {
			if l, err := ring.Load(filepath.Join(d.dir, ringFile)); err == nil && l.Version == r.Version {
				continue
			}
		}
		data, err := json.Marshal(r)
		if err == nil {
			err = d.b.writeFile(filepath.Join(d.dir, ringFile), data)
		}
		if err != nil {
			return fail(fmt.Errorf("fsobj: save the ring in %s: %w", d.dir, err))
		}
	}
	// Order the devices as the ring does.
	byID := map[string]*device{}
	for _, d := range c.devs {
		byID[d.id] = d
	}
	c.devs = c.devs[:0]
	for _, rd := range r.Devices {
		c.devs = append(c.devs, byID[rd.ID])
	}
	c.ring = r
	c.quorum = len(r.Assign)/2 + 1
	return c, nil
}

func sameDevices(a, b []ring.Device) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(d ring.Device) string { return fmt.Sprintf("%s/%d/%g/%s", d.ID, d.Zone, d.Weight, d.Path) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// readMarker returns the id in dir's marker, "" if there is none.
func readMarker(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, markerFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("fsobj: device %s: %w", dir, err)
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("fsobj: device %s: malformed %s", dir, markerFile)
	}
	return m.ID, nil
}

// open opens the device's Backend, making the device (its marker) first
// if it is new.
func (d *device) open(cfg ClusterConfig) error {
	if d.id == "" {
		if err := os.MkdirAll(filepath.Join(d.dir, "tmp"), 0o750); err != nil {
			return fmt.Errorf("fsobj: device %s: %w", d.dir, err)
		}
		var id [8]byte
		_, _ = rand.Read(id[:])
		m := marker{ID: hex.EncodeToString(id[:])}
		data, _ := json.Marshal(m)
		if err := (&Backend{dir: d.dir, noSync: cfg.NoSync}).writeFile(d.marker, data); err != nil {
			return fmt.Errorf("fsobj: device %s: %w", d.dir, err)
		}
		d.id = m.ID
	}
	b, err := Open(d.dir, &Options{NoSync: cfg.NoSync, Clock: cfg.Clock})
	if err != nil {
		return err
	}
	d.b = b
	return nil
}

// Close implements objectstore.Backend.
func (c *Cluster) Close() error {
	var errs []error
	for _, d := range c.devs {
		if d.b != nil {
			errs = append(errs, d.b.Close())
		}
	}
	return errors.Join(errs...)
}

// Ring returns the cluster's ring.
func (c *Cluster) Ring() *ring.Ring { return c.ring }

// Moved returns how many partition replicas the ring's rebalance at open
// moved (0 if the devices had not changed).
func (c *Cluster) Moved() int { return c.rebMove }

// Device returns the Backend of the device in dir, for tests and tools
// that look at one replica (nil if dir is not a device).
func (c *Cluster) Device(dir string) *Backend {
	for _, d := range c.devs {
		if d.dir == filepath.Clean(dir) {
			return d.b
		}
	}
	return nil
}

// Replicas returns the directories of the devices that hold the
// container's primary replicas, in ring order.
func (c *Cluster) Replicas(account, cont string) []string {
	var out []string
	for _, d := range c.primaries(c.part(account, cont)) {
		out = append(out, d.dir)
	}
	return out
}

// next returns a new version time, later than every other this cluster
// gave.
func (c *Cluster) next() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := max(c.clock().UnixNano(), c.lastTS+1)
	c.lastTS = ts
	return ts
}

func (c *Cluster) part(account, cont string) int {
	return c.ring.Part("/" + account + "/" + cont)
}

func (c *Cluster) primaries(part int) []*device {
	out := make([]*device, 0, len(c.ring.Assign))
	for _, row := range c.ring.Assign {
		out = append(out, c.devs[row[part]])
	}
	return out
}

func (c *Cluster) handoffs(part int) []*device {
	idx := map[string]*device{}
	for _, d := range c.devs {
		idx[d.id] = d
	}
	var out []*device
	for _, h := range c.ring.Handoffs(part) {
		out = append(out, idx[h.ID])
	}
	return out
}

// targets returns where writes of part go: the primaries that are up and
// a handoff in place of each that is down.
func (c *Cluster) targets(part int) []*device {
	var out []*device
	down := 0
	for _, d := range c.primaries(part) {
		if d.up() {
			out = append(out, d)
		} else {
			down++
		}
	}
	for _, h := range c.handoffs(part) {
		if down == 0 {
			break
		}
		if h.up() {
			out = append(out, h)
			down--
		}
	}
	return out
}

// readSet returns where reads of part look: where writes go, the
// primaries that are up and as many handoffs as primaries are down (which
// took the writes meanwhile).
func (c *Cluster) readSet(part int) []*device { return c.targets(part) }

func unavailable(what string) error {
	return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("fsobj: %s: not enough devices answered", what))
}

// containerState returns the newest state of the container among the
// read set, and the devices that answered.
func (c *Cluster) containerState(account, cont string) (containerState, []*device, error) {
	if _, err := containerKey(account, cont); err != nil {
		return containerState{}, nil, err
	}
	var best containerState
	var answered []*device
	for _, d := range c.readSet(c.part(account, cont)) {
		st, err := d.b.container(account, cont)
		if err != nil {
			continue
		}
		answered = append(answered, d)
		if st.ts() > best.ts() || (st.ts() == best.ts() && st.Exists && !best.Exists) {
			best = st
		}
	}
	if len(answered) == 0 {
		return best, nil, unavailable("container " + account + "/" + cont)
	}
	return best, answered, nil
}

func notFoundContainer(account, cont string) error {
	return fmt.Errorf("fsobj: container %s/%s: %w", account, cont, errdefs.ErrNotFound)
}

// quorate returns nil if ok reached the quorum, else the first error.
func (c *Cluster) quorate(ok int, errs []error, what string) error {
	if ok >= c.quorum {
		return nil
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, errStale) && !errors.Is(err, errAlready) {
			return err
		}
	}
	return errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("fsobj: %s: %d of %d replicas wrote it, %d needed (%w)", what, ok, len(errs), c.quorum, errors.Join(errs...)))
}

// CreateContainer implements objectstore.Backend.
func (c *Cluster) CreateContainer(_ context.Context, account, cont string) error {
	st, _, err := c.containerState(account, cont)
	if err != nil {
		return err
	}
	at := st.Created
	if !st.Exists {
		at = c.next()
	}
	ok := 0
	var errs []error
	for _, d := range c.targets(c.part(account, cont)) {
		err := d.b.createContainerAt(account, cont, at)
		if err == nil {
			ok++
		}
		c.failed(d, err)
		errs = append(errs, err)
	}
	return c.quorate(ok, errs, "create container")
}

// DeleteContainer implements objectstore.Backend.
func (c *Cluster) DeleteContainer(_ context.Context, account, cont string) error {
	st, answered, err := c.containerState(account, cont)
	if err != nil {
		return err
	}
	if !st.Exists {
		return notFoundContainer(account, cont)
	}
	for _, d := range answered {
		if s, err := d.b.ContainerStats(context.Background(), account, cont); err == nil && s.Objects > 0 {
			return fmt.Errorf("fsobj: container %s/%s is not empty: %w", account, cont, errdefs.ErrConflict)
		}
	}
	at := c.next()
	ok := 0
	var errs []error
	for _, d := range c.targets(c.part(account, cont)) {
		err := d.b.deleteContainerAt(account, cont, at, false)
		if err == nil {
			ok++
		}
		errs = append(errs, err)
	}
	return c.quorate(ok, errs, "delete container")
}

// listDevice returns the device that answers the container's listing: a
// replica that holds it and has not missed writes, else any that holds
// it.
func (c *Cluster) listDevice(account, cont string) (*device, error) {
	st, answered, err := c.containerState(account, cont)
	if err != nil {
		return nil, err
	}
	if !st.Exists {
		return nil, notFoundContainer(account, cont)
	}
	var fallback *device
	for _, d := range answered {
		if s, err := d.b.container(account, cont); err != nil || !s.Exists {
			continue
		}
		if !d.stale.Load() {
			return d, nil
		}
		if fallback == nil {
			fallback = d
		}
	}
	if fallback == nil {
		return nil, notFoundContainer(account, cont)
	}
	return fallback, nil
}

// ContainerStats implements objectstore.Backend.
func (c *Cluster) ContainerStats(ctx context.Context, account, cont string) (objectstore.ContainerStats, error) {
	d, err := c.listDevice(account, cont)
	if err != nil {
		return objectstore.ContainerStats{}, err
	}
	return d.b.ContainerStats(ctx, account, cont)
}

// List implements objectstore.Backend.
func (c *Cluster) List(ctx context.Context, account, cont string, opts objectstore.ListOptions) ([]objectstore.Entry, error) {
	d, err := c.listDevice(account, cont)
	if err != nil {
		return nil, err
	}
	return d.b.List(ctx, account, cont, opts)
}

// replica is one device's version of an object.
type replica struct {
	d *device
	v version
}

// newest returns the replicas holding the newest version of key (none if
// it is a tombstone or missing): NotFound then.
func (c *Cluster) newest(key objectstore.ObjectKey) ([]replica, error) {
	if err := checkName(key); err != nil {
		return nil, err
	}
	var all []replica
	answered, missing := 0, 0
	var best int64
	var lastErr error
	for _, d := range c.readSet(c.part(key.Account, key.Container)) {
		v, err := d.b.lookup(key)
		if errors.Is(err, errdefs.ErrNotFound) {
			missing++
			continue
		}
		if err != nil {
			lastErr = err
			continue
		}
		answered++
		all = append(all, replica{d, v})
		best = max(best, v.ts())
	}
	if answered == 0 && missing == 0 {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("fsobj: object %s: no device answered: %w", key, lastErr))
	}
	var out []replica
	for _, r := range all {
		if r.v.rec != nil && r.v.ts() == best {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		if answered == 0 {
			return nil, notFoundContainer(key.Account, key.Container)
		}
		return nil, fmt.Errorf("fsobj: object %s: %w", key, errdefs.ErrNotFound)
	}
	// Replicas that have not missed writes first.
	slices.SortStableFunc(out, func(a, b replica) int {
		return cmp.Compare(boolInt(a.d.stale.Load()), boolInt(b.d.stale.Load()))
	})
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Head implements objectstore.Backend.
func (c *Cluster) Head(_ context.Context, key objectstore.ObjectKey) (*objectstore.ObjectInfo, error) {
	reps, err := c.newest(key)
	if err != nil {
		return nil, err
	}
	return reps[0].v.rec.Info.Clone(), nil
}

// Get implements objectstore.Backend: it reads the newest version from
// one of its replicas and, should that replica fail (a chunk failing its
// checksum, a missing file, an I/O error), goes on from the same offset
// on another.
func (c *Cluster) Get(ctx context.Context, key objectstore.ObjectKey, offset, length int64) (io.ReadCloser, *objectstore.ObjectInfo, error) {
	reps, err := c.newest(key)
	if err != nil {
		return nil, nil, err
	}
	info := reps[0].v.rec.Info.Clone()
	if offset < 0 || offset > info.Size {
		return nil, nil, errdefs.Invalid("offset", "%d is outside the object's %d bytes", offset, info.Size)
	}
	end := info.Size
	if length >= 0 && offset+length < end {
		end = offset + length
	}
	fr := &failoverReader{ctx: ctx, key: key, reps: reps, ts: reps[0].v.ts(), pos: offset, end: end}
	if err := fr.open(); err != nil {
		return nil, nil, err
	}
	return fr, info, nil
}

// failoverReader reads [pos, end) of one version from its replicas in
// turn.
type failoverReader struct {
	ctx      context.Context
	key      objectstore.ObjectKey
	reps     []replica
	ts       int64
	pos, end int64
	cur      io.ReadCloser
	lastErr  error
}

// open opens the next replica that answers at pos.
func (f *failoverReader) open() error {
	for len(f.reps) > 0 {
		r := f.reps[0]
		f.reps = f.reps[1:]
		rc, info, err := r.d.b.Get(f.ctx, f.key, f.pos, f.end-f.pos)
		if err != nil {
			f.lastErr = err
			continue
		}
		if info.LastModified.UnixNano() != f.ts {
			rc.Close()
			continue
		}
		f.cur = rc
		return nil
	}
	if f.lastErr == nil {
		f.lastErr = fmt.Errorf("fsobj: object %s: %w", f.key, errdefs.ErrNotFound)
	}
	return f.lastErr
}

// fail closes the failed replica and opens the next; it returns err if
// there is none.
func (f *failoverReader) fail(err error) error {
	f.cur.Close()
	f.cur = nil
	if f.open() != nil {
		f.lastErr = err
		return err
	}
	return nil
}

func (f *failoverReader) Read(p []byte) (int, error) {
	for {
		if f.pos >= f.end {
			return 0, io.EOF
		}
		if f.cur == nil {
			return 0, f.lastErr
		}
		n, err := f.cur.Read(p)
		f.pos += int64(n)
		if err != nil && f.pos < f.end {
			// The replica failed or ended early: go on from another.
			// What it returned was verified.
			_ = f.fail(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// countWriter counts what reaches w and keeps w's own error apart.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// WriteTo lets large reads go through the replica reader's own WriteTo.
func (f *failoverReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for f.cur != nil && f.pos < f.end {
		cw := &countWriter{w: w}
		_, err := io.Copy(cw, f.cur)
		f.pos += cw.n
		total += cw.n
		if cw.err != nil {
			return total, cw.err
		}
		if err == nil {
			if f.pos >= f.end {
				return total, nil
			}
			err = io.ErrUnexpectedEOF
		}
		if ferr := f.fail(err); ferr != nil {
			return total, ferr
		}
	}
	if f.cur == nil && f.pos < f.end {
		return total, f.lastErr
	}
	return total, nil
}

func (f *failoverReader) Close() error {
	if f.cur != nil {
		err := f.cur.Close()
		f.cur = nil
		f.lastErr = errors.New("fsobj: reader closed")
		return err
	}
	return nil
}

// ensureContainer makes the container exist on d as of st.
func ensureContainer(d *device, st containerState) error {
	cur, err := d.b.container(st.Account, st.Container)
	if err != nil {
		return err
	}
	if cur.Exists {
		return nil
	}
	return d.b.createContainerAt(st.Account, st.Container, st.Created)
}

// Put implements objectstore.Backend: the bytes stream to every target
// at once, and the write succeeds when a quorum of them committed it.
func (c *Cluster) Put(ctx context.Context, key objectstore.ObjectKey, r io.Reader, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	if err := checkName(key); err != nil {
		return nil, err
	}
	st, _, err := c.containerState(key.Account, key.Container)
	if err != nil {
		return nil, err
	}
	if !st.Exists {
		return nil, notFoundContainer(key.Account, key.Container)
	}
	var targets []*device
	for _, d := range c.targets(c.part(key.Account, key.Container)) {
		if err := ensureContainer(d, st); err != nil {
			c.failed(d, err)
			continue
		}
		targets = append(targets, d)
	}
	if len(targets) < c.quorum {
		return nil, errdefs.Wrap(errdefs.ErrUnavailable, fmt.Errorf("fsobj: put %s: %d devices up of %d needed", key, len(targets), c.quorum))
	}
	at := time.Unix(0, c.next()).UTC()
	infos := make([]*objectstore.ObjectInfo, len(targets))
	errs := make([]error, len(targets))
	feeds := make([]*feed, len(targets))
	var wg sync.WaitGroup
	for i, d := range targets {
		f := newFeed()
		feeds[i] = f
		wg.Go(func() {
			infos[i], errs[i] = d.b.put(ctx, key, f, opts, at, true)
			f.stop()
		})
	}
	srcErr := fanOut(r, feeds, &c.devs[0].b.bufs)
	wg.Wait()
	ok := 0
	var info *objectstore.ObjectInfo
	for i, d := range targets {
		switch {
		case errs[i] == nil:
			ok++
			info = infos[i]
		case errors.Is(errs[i], errAlready):
			ok++
		case srcErr == nil:
			c.failed(d, errs[i])
		}
	}
	if srcErr != nil {
		return nil, fmt.Errorf("fsobj: put %s: %w", key, srcErr)
	}
	if err := c.quorate(ok, errs, "put "+key.String()); err != nil {
		return nil, err
	}
	if info == nil { // every replica had it from the replicator first
		return c.Head(ctx, key)
	}
	return info, nil
}

// chunk is a buffer shared by the feeds of a fan-out; the last feed done
// with it returns it to the pool.
type chunk struct {
	p    []byte
	refs atomic.Int32
	pool *sync.Pool
}

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		buf := c.p[:cap(c.p)]
		c.pool.Put(&buf)
	}
}

// feed is one replica's io.Reader of a fan-out: chunks arrive on a
// buffered channel, so that replicas write at their own pace, up to
// feedDepth chunks apart.
type feed struct {
	ch      chan *chunk
	err     error // the source's error, set before ch closes
	cur     *chunk
	off     int
	stopped chan struct{}
	once    sync.Once
}

const feedDepth = 8

func newFeed() *feed {
	return &feed{ch: make(chan *chunk, feedDepth), stopped: make(chan struct{})}
}

func (f *feed) Read(p []byte) (int, error) {
	for f.cur == nil || f.off == len(f.cur.p) {
		if f.cur != nil {
			f.cur.release()
			f.cur = nil
		}
		c, ok := <-f.ch
		if !ok {
			if f.err != nil {
				return 0, f.err
			}
			return 0, io.EOF
		}
		f.cur, f.off = c, 0
	}
	n := copy(p, f.cur.p[f.off:])
	f.off += n
	return n, nil
}

// stop ends the replica's reading: what is queued or arrives is
// released.
func (f *feed) stop() {
	f.once.Do(func() { close(f.stopped) })
	if f.cur != nil {
		f.cur.release()
		f.cur = nil
	}
	go func() {
		for c := range f.ch {
			c.release()
		}
	}()
}

// fanOut reads r to its end into pooled chunks and sends each to every
// feed that has not stopped, then closes the feeds (with r's error if it
// failed, which it returns).
func fanOut(r io.Reader, feeds []*feed, pool *sync.Pool) error {
	live := slices.Clone(feeds)
	var srcErr error
	for len(live) > 0 {
		bp := pool.Get().(*[]byte)
		n, rerr := io.ReadFull(r, *bp)
		if n > 0 {
			c := &chunk{p: (*bp)[:n], pool: pool}
			c.refs.Store(int32(len(live)) + 1)
			kept := live[:0]
			for _, f := range live {
				select {
				case f.ch <- c:
					kept = append(kept, f)
				case <-f.stopped:
					c.release()
				}
			}
			live = kept
			c.release()
		} else {
			pool.Put(bp)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			srcErr = rerr
			break
		}
	}
	for _, f := range feeds {
		f.err = srcErr
		close(f.ch)
	}
	return srcErr
}

// SetMeta implements objectstore.Backend.
func (c *Cluster) SetMeta(ctx context.Context, key objectstore.ObjectKey, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	reps, err := c.newest(key)
	if err != nil {
		return nil, err
	}
	at := time.Unix(0, c.next()).UTC()
	ok := 0
	var errs []error
	var info *objectstore.ObjectInfo
	for _, r := range reps {
		i, err := r.d.b.setMeta(ctx, key, opts, at, true)
		switch {
		case err == nil:
			ok++
			info = i
		case errors.Is(err, errAlready):
			ok++
		}
		errs = append(errs, err)
	}
	if ok == 0 {
		return nil, c.quorate(ok, errs, "set metadata of "+key.String())
	}
	if info == nil {
		return c.Head(ctx, key)
	}
	return info, nil
}

// Delete implements objectstore.Backend: every target records a
// tombstone.
func (c *Cluster) Delete(_ context.Context, key objectstore.ObjectKey) error {
	if _, err := c.newest(key); err != nil {
		return err
	}
	st, _, err := c.containerState(key.Account, key.Container)
	if err != nil {
		return err
	}
	at := c.next()
	ok := 0
	var errs []error
	for _, d := range c.targets(c.part(key.Account, key.Container)) {
		err := ensureContainer(d, st)
		if err == nil {
			_, err = d.b.deleteAt(key, at)
		}
		if err == nil {
			ok++
		}
		c.failed(d, err)
		errs = append(errs, err)
	}
	return c.quorate(ok, errs, "delete "+key.String())
}

// ReapExpired implements objectstore.Backend.
func (c *Cluster) ReapExpired(_ context.Context, now time.Time, limit int) ([]objectstore.ObjectKey, error) {
	type cand struct {
		key objectstore.ObjectKey
		at  int64
	}
	seen := map[cand]bool{}
	var cands []cand
	for _, d := range c.devs {
		if !d.up() {
			continue
		}
		keys, ats, err := d.b.expired(now, limit)
		if err != nil {
			return nil, err
		}
		for i, k := range keys {
			if cd := (cand{k, ats[i]}); !seen[cd] {
				seen[cd] = true
				cands = append(cands, cd)
			}
		}
	}
	var out []objectstore.ObjectKey
	done := map[objectstore.ObjectKey]bool{}
	for _, cd := range cands {
		if len(out) >= limit {
			break
		}
		reaped := false
		for _, d := range c.readSet(c.part(cd.key.Account, cd.key.Container)) {
			if ok, err := d.b.reapAt(cd.key, cd.at); err == nil && ok {
				reaped = true
			}
		}
		if reaped && !done[cd.key] {
			done[cd.key] = true
			out = append(out, cd.key)
		}
	}
	return out, nil
}
