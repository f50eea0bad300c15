// Package fakevol is an in-memory blockstore.Backend for tests, with fault
// injection through Hooks. Volumes are sparse: only written 64 KiB blocks
// take memory, so that a 10 GiB volume costs nothing until written.
package fakevol

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/errdefs"
)

const blockSize = 64 << 10

// Hooks inject faults: a hook that returns an error makes the call fail
// with it before the backend changes anything.
type Hooks struct {
	CreateVolume func(spec blockstore.VolumeSpec) error
	Connect      func(volumeID string) error
	WriteVolume  func(volumeID string) error
}

// Options configure a Backend.
type Options struct {
	// Pools names the pools; default one pool "pool1".
	Pools []string
	// CapacityGiB is each pool's capacity. Default 1000.
	CapacityGiB float64
	// Thin makes the pools thin with this over-subscription ratio (> 0).
	OverSubscription float64
	// Hooks inject faults.
	Hooks Hooks
}

type volume struct {
	pool   string
	size   int64
	blocks map[int64][]byte
}

func (v *volume) clone() *volume {
	c := &volume{pool: v.pool, size: v.size, blocks: make(map[int64][]byte, len(v.blocks))}
	for k, b := range v.blocks {
		c.blocks[k] = bytes.Clone(b)
	}
	return c
}

// Backend is the in-memory backend.
type Backend struct {
	opts  Options
	mu    sync.Mutex
	vols  map[string]*volume
	snaps map[string]*volume
	conns map[string]int // volume id -> connected hosts
}

var _ blockstore.Backend = (*Backend)(nil)

// New returns an empty backend; opts may be nil.
func New(opts *Options) *Backend {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if len(o.Pools) == 0 {
		o.Pools = []string{"pool1"}
	}
	if o.CapacityGiB == 0 {
		o.CapacityGiB = 1000
	}
	return &Backend{opts: o, vols: map[string]*volume{}, snaps: map[string]*volume{}, conns: map[string]int{}}
}

// SetHooks replaces the fault hooks.
func (b *Backend) SetHooks(h Hooks) {
	b.mu.Lock()
	b.opts.Hooks = h
	b.mu.Unlock()
}

// Connections returns how many hosts the volume is connected to.
func (b *Backend) Connections(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns[id]
}

func notFound(kind, id string) error {
	return fmt.Errorf("fakevol: %s %q: %w", kind, id, errdefs.ErrNotFound)
}

// Pools implements blockstore.Backend.
func (b *Backend) Pools(ctx context.Context) ([]blockstore.PoolStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	alloc := map[string]int64{}
	for _, m := range []map[string]*volume{b.vols, b.snaps} {
		for _, v := range m {
			alloc[v.pool] += int64(len(v.blocks)) * blockSize
		}
	}
	var out []blockstore.PoolStats
	for _, p := range b.opts.Pools {
		free := b.opts.CapacityGiB - float64(alloc[p])/(1<<30)
		ps := blockstore.PoolStats{Name: p, TotalGiB: b.opts.CapacityGiB, FreeGiB: free, AllocatedBytes: alloc[p], MaxOverSubscriptionRatio: 1}
		if b.opts.OverSubscription > 0 {
			ps.Thin, ps.MaxOverSubscriptionRatio = true, b.opts.OverSubscription
		}
		out = append(out, ps)
	}
	return out, nil
}

// CreateVolume implements blockstore.Backend.
func (b *Backend) CreateVolume(ctx context.Context, spec blockstore.VolumeSpec, src blockstore.Source) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if spec.SizeGiB <= 0 {
		return errdefs.Invalid("size", "fakevol: volume %q: size must be positive", spec.ID)
	}
	var data io.ReadCloser
	var format string
	if src.Image != nil {
		rc, err := src.Image.Open(ctx)
		if err != nil {
			return err
		}
		data, format = rc, src.Image.Format
	}
	if data != nil {
		defer data.Close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.opts.Hooks.CreateVolume; h != nil {
		if err := h(spec); err != nil {
			return err
		}
	}
	if !slices.Contains(b.opts.Pools, spec.Pool) {
		return fmt.Errorf("fakevol: pool %q: %w", spec.Pool, errdefs.ErrNotFound)
	}
	size := int64(spec.SizeGiB) << 30
	v := &volume{pool: spec.Pool, size: size, blocks: map[int64][]byte{}}
	switch {
	case src.SnapshotID != "":
		s, ok := b.snaps[src.SnapshotID]
		if !ok {
			return notFound("snapshot", src.SnapshotID)
		}
		v = s.clone()
	case src.VolumeID != "":
		s, ok := b.vols[src.VolumeID]
		if !ok {
			return notFound("volume", src.VolumeID)
		}
		v = s.clone()
	case data != nil:
		if err := fill(v, data, format); err != nil {
			return fmt.Errorf("fakevol: volume %q: %w", spec.ID, err)
		}
	}
	if size < v.size {
		return errdefs.Invalid("size", "fakevol: volume %q: %d GiB is smaller than its source", spec.ID, spec.SizeGiB)
	}
	v.size, v.pool = size, spec.Pool
	b.vols[spec.ID] = v
	return nil
}

// fill writes raw data into v.
func fill(v *volume, r io.Reader, format string) error {
	if format != "raw" {
		return errdefs.Invalid("disk_format", "fakevol handles raw images only, not %q", format)
	}
	var off int64
	buf := make([]byte, blockSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if off+int64(n) > v.size {
				return errdefs.Invalid("size", "the image is larger than the volume")
			}
			if !allZero(buf[:n]) {
				blk := make([]byte, blockSize)
				copy(blk, buf[:n])
				v.blocks[off/blockSize] = blk
			} else {
				delete(v.blocks, off/blockSize)
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var zeros = make([]byte, blockSize)

func allZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// DeleteVolume implements blockstore.Backend.
func (b *Backend) DeleteVolume(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.vols, id)
	delete(b.conns, id)
	return nil
}

// ExtendVolume implements blockstore.Backend.
func (b *Backend) ExtendVolume(ctx context.Context, id string, sizeGiB int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.vols[id]
	if !ok {
		return notFound("volume", id)
	}
	if int64(sizeGiB)<<30 < v.size {
		return errdefs.Invalid("new_size", "fakevol: volume %q cannot shrink", id)
	}
	v.size = int64(sizeGiB) << 30
	return nil
}

// WriteVolume implements blockstore.Backend.
func (b *Backend) WriteVolume(ctx context.Context, id string, r io.Reader, format string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	v, ok := b.vols[id]
	hook := b.opts.Hooks.WriteVolume
	b.mu.Unlock()
	if !ok {
		return notFound("volume", id)
	}
	if hook != nil {
		if err := hook(id); err != nil {
			return err
		}
	}
	nv := &volume{pool: v.pool, size: v.size, blocks: map[int64][]byte{}}
	if err := fill(nv, r, format); err != nil {
		return fmt.Errorf("fakevol: volume %q: %w", id, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.vols[id]; ok {
		cur.blocks = nv.blocks
		return nil
	}
	return notFound("volume", id)
}

// OpenVolume implements blockstore.Backend.
func (b *Backend) OpenVolume(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.vols[id]
	if !ok {
		return nil, notFound("volume", id)
	}
	return &reader{v: v.clone()}, nil
}

type reader struct {
	v   *volume
	off int64
}

func (r *reader) Read(p []byte) (int, error) {
	if r.off >= r.v.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.off < r.v.size {
		blk, in := r.off/blockSize, r.off%blockSize
		m := min(int64(len(p)-n), blockSize-in, r.v.size-r.off)
		if data, ok := r.v.blocks[blk]; ok {
			copy(p[n:n+int(m)], data[in:in+m])
		} else {
			clear(p[n : n+int(m)])
		}
		n += int(m)
		r.off += m
	}
	return n, nil
}

func (r *reader) Close() error { return nil }

// CreateSnapshot implements blockstore.Backend.
func (b *Backend) CreateSnapshot(ctx context.Context, volumeID, snapshotID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.vols[volumeID]
	if !ok {
		return notFound("volume", volumeID)
	}
	b.snaps[snapshotID] = v.clone()
	return nil
}

// DeleteSnapshot implements blockstore.Backend.
func (b *Backend) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.snaps, snapshotID)
	return nil
}

// Connect implements blockstore.Backend.
func (b *Backend) Connect(ctx context.Context, volumeID string, _ blockstore.Connector) (*blockstore.ConnectionInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.opts.Hooks.Connect; h != nil {
		if err := h(volumeID); err != nil {
			return nil, err
		}
	}
	if _, ok := b.vols[volumeID]; !ok {
		return nil, notFound("volume", volumeID)
	}
	b.conns[volumeID]++
	return &blockstore.ConnectionInfo{DriverVolumeType: blockstore.DriverVolumeFile,
		File: &blockstore.FileConnection{Path: "/fakevol/volume-" + volumeID, Format: "raw"}}, nil
}

// Disconnect implements blockstore.Backend.
func (b *Backend) Disconnect(ctx context.Context, volumeID string, _ blockstore.Connector) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns[volumeID] > 0 {
		b.conns[volumeID]--
	}
	return nil
}

// ListVolumes implements blockstore.Backend.
func (b *Backend) ListVolumes(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.vols)), nil
}

// Capabilities implements blockstore.Backend.
func (b *Backend) Capabilities() blockstore.Capabilities {
	return blockstore.Capabilities{OnlineExtend: true, Multiattach: true}
}
