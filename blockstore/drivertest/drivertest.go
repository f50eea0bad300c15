// Package drivertest is the conformance suite every blockstore.Backend
// passes, the fake and the real (filevol) alike. A driver's test file calls
// Run with a function that opens a fresh, empty backend.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/errdefs"
)

// NewID returns a fresh random uuid.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Run runs the suite; newBackend returns a fresh empty backend that the
// test may use until it ends.
func Run(t *testing.T, newBackend func(t *testing.T) blockstore.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b blockstore.Backend, pool string)
	}{
		{"BlankReadsZeros", testBlank},
		{"WriteAndRead", testWriteRead},
		{"DeletedBytesNeverReappear", testNoOldBytes},
		{"SnapshotIsPointInTime", testSnapshot},
		{"CloneCopies", testClone},
		{"FromImage", testFromImage},
		{"UnsafeOrLargeImageRefused", testBadImage},
		{"Extend", testExtend},
		{"ConnectDisconnect", testConnect},
		{"MissingIsNotFound", testMissing},
		{"ListAndPools", testListPools},
		{"CanceledContext", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			pools, err := b.Pools(context.Background())
			if err != nil || len(pools) == 0 {
				t.Fatalf("Pools = %v, %v; want at least one pool", pools, err)
			}
			tc.fn(t, b, pools[0].Name)
		})
	}
}

const mib = 1 << 20

func pattern(seed byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i%251)
	}
	return p
}

func create(t *testing.T, b blockstore.Backend, pool string, size int, src blockstore.Source) string {
	t.Helper()
	id := NewID()
	if err := b.CreateVolume(context.Background(), blockstore.VolumeSpec{ID: id, SizeGiB: size, Pool: pool}, src); err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	return id
}

// read returns the first n bytes of a volume and its total size.
func read(t *testing.T, b blockstore.Backend, id string, n int) ([]byte, int64) {
	t.Helper()
	rc, err := b.OpenVolume(context.Background(), id)
	if err != nil {
		t.Fatalf("OpenVolume: %v", err)
	}
	defer rc.Close()
	head := make([]byte, n)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatalf("read: %v", err)
	}
	if sk, ok := rc.(io.Seeker); ok { // a file: its size is its end
		end, err := sk.Seek(0, io.SeekEnd)
		if err != nil {
			t.Fatalf("seek: %v", err)
		}
		return head, end
	}
	rest, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, rc, make([]byte, 4*mib))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return head, int64(n) + rest
}

func write(t *testing.T, b blockstore.Backend, id string, data []byte) {
	t.Helper()
	if err := b.WriteVolume(context.Background(), id, bytes.NewReader(data), "raw"); err != nil {
		t.Fatalf("WriteVolume: %v", err)
	}
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: bytes differ at offset %d", what, i)
	}
}

func testBlank(t *testing.T, b blockstore.Backend, pool string) {
	id := create(t, b, pool, 1, blockstore.Source{})
	head, size := read(t, b, id, 4*mib)
	if size != 1<<30 {
		t.Fatalf("size = %d, want 1 GiB", size)
	}
	wantBytes(t, "blank volume", head, make([]byte, 4*mib))
}

func testWriteRead(t *testing.T, b blockstore.Backend, pool string) {
	id := create(t, b, pool, 1, blockstore.Source{})
	data := pattern(7, 3*mib+17)
	write(t, b, id, data)
	head, size := read(t, b, id, 4*mib)
	if size != 1<<30 {
		t.Fatalf("size after write = %d, want 1 GiB", size)
	}
	wantBytes(t, "written data", head[:len(data)], data)
	wantBytes(t, "after the data", head[len(data):], make([]byte, 4*mib-len(data)))
}

// testNoOldBytes: a volume made after another was deleted reads zeros
// where the deleted one had data (the class of OSSA-2023-003).
func testNoOldBytes(t *testing.T, b blockstore.Backend, pool string) {
	old := create(t, b, pool, 1, blockstore.Source{})
	write(t, b, old, pattern(9, 4*mib))
	if err := b.DeleteVolume(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{NewID(), old} {
		if err := b.CreateVolume(context.Background(), blockstore.VolumeSpec{ID: id, SizeGiB: 1, Pool: pool}, blockstore.Source{}); err != nil {
			t.Fatal(err)
		}
		head, _ := read(t, b, id, 4*mib)
		wantBytes(t, "new volume", head, make([]byte, 4*mib))
	}
}

func testSnapshot(t *testing.T, b blockstore.Backend, pool string) {
	ctx := context.Background()
	vol := create(t, b, pool, 1, blockstore.Source{})
	first := pattern(1, mib)
	write(t, b, vol, first)
	snap := NewID()
	if err := b.CreateSnapshot(ctx, vol, snap); err != nil {
		t.Fatal(err)
	}
	write(t, b, vol, pattern(2, mib))
	child := create(t, b, pool, 2, blockstore.Source{SnapshotID: snap})
	head, size := read(t, b, child, mib)
	wantBytes(t, "volume from snapshot", head, first)
	if size != 2<<30 {
		t.Fatalf("volume from snapshot: size %d, want 2 GiB", size)
	}
	if err := b.DeleteSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteSnapshot(ctx, snap); err != nil {
		t.Fatalf("second DeleteSnapshot: %v", err)
	}
	head, _ = read(t, b, child, mib)
	wantBytes(t, "volume from a deleted snapshot", head, first)
	if err := b.CreateVolume(ctx, blockstore.VolumeSpec{ID: NewID(), SizeGiB: 1, Pool: pool}, blockstore.Source{SnapshotID: snap}); !errdefs.IsNotFound(err) {
		t.Fatalf("volume from a deleted snapshot: %v, want not found", err)
	}
}

func testClone(t *testing.T, b blockstore.Backend, pool string) {
	src := create(t, b, pool, 1, blockstore.Source{})
	data := pattern(3, 2*mib)
	write(t, b, src, data)
	clone := create(t, b, pool, 1, blockstore.Source{VolumeID: src})
	write(t, b, src, pattern(4, mib)) // the clone is independent
	head, _ := read(t, b, clone, 2*mib)
	wantBytes(t, "clone", head, data)
	if err := b.CreateVolume(context.Background(), blockstore.VolumeSpec{ID: NewID(), SizeGiB: 1, Pool: pool}, blockstore.Source{VolumeID: NewID()}); !errdefs.IsNotFound(err) {
		t.Fatalf("clone of a missing volume: %v, want not found", err)
	}
}

func imageSource(id string, data []byte, opens *int) *blockstore.ImageSource {
	return &blockstore.ImageSource{ID: id, Checksum: "c0ffee", Format: "raw", Open: func(context.Context) (io.ReadCloser, error) {
		if opens != nil {
			*opens++
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func testFromImage(t *testing.T, b blockstore.Backend, pool string) {
	data := pattern(5, 2*mib+3)
	img := imageSource(NewID(), data, nil)
	for range 2 {
		id := create(t, b, pool, 1, blockstore.Source{Image: img})
		head, size := read(t, b, id, 3*mib)
		wantBytes(t, "volume from image", head[:len(data)], data)
		wantBytes(t, "after the image", head[len(data):], make([]byte, 3*mib-len(data)))
		if size != 1<<30 {
			t.Fatalf("size = %d", size)
		}
		write(t, b, id, pattern(6, mib)) // writes never reach the image
	}
}

func testBadImage(t *testing.T, b blockstore.Backend, pool string) {
	ctx := context.Background()
	id := create(t, b, pool, 1, blockstore.Source{})
	// Too large: one byte more than the volume.
	big := io.MultiReader(io.LimitReader(zeroReader{}, 1<<30), strings.NewReader("x"))
	if err := b.WriteVolume(ctx, id, big, "raw"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("image larger than the volume: %v, want invalid", err)
	}
	if err := b.WriteVolume(ctx, id, strings.NewReader("data"), "vmdk-or-worse"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("unknown format: %v, want invalid", err)
	}
	head, _ := read(t, b, id, mib)
	wantBytes(t, "volume after refused writes", head, make([]byte, mib))
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func testExtend(t *testing.T, b blockstore.Backend, pool string) {
	id := create(t, b, pool, 1, blockstore.Source{})
	data := pattern(8, mib)
	write(t, b, id, data)
	if err := b.ExtendVolume(context.Background(), id, 3); err != nil {
		t.Fatal(err)
	}
	head, size := read(t, b, id, mib)
	wantBytes(t, "extended volume", head, data)
	if size != 3<<30 {
		t.Fatalf("size after extend = %d, want 3 GiB", size)
	}
}

func testConnect(t *testing.T, b blockstore.Backend, pool string) {
	ctx := context.Background()
	id := create(t, b, pool, 1, blockstore.Source{})
	ci, err := b.Connect(ctx, id, blockstore.Connector{Host: "h1", IP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if ci.DriverVolumeType != blockstore.DriverVolumeFile || ci.File == nil || !strings.Contains(ci.File.Path, id) ||
		!slices.Contains([]string{"raw", "qcow2"}, ci.File.Format) {
		t.Fatalf("connection info = %+v", ci)
	}
	for range 2 {
		if err := b.Disconnect(ctx, id, blockstore.Connector{Host: "h1"}); err != nil {
			t.Fatalf("Disconnect: %v", err)
		}
	}
}

func testMissing(t *testing.T, b blockstore.Backend, pool string) {
	ctx := context.Background()
	id := NewID()
	check := func(what string, err error) {
		t.Helper()
		if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), id) {
			t.Errorf("%s of a missing volume: %v, want not found naming %s", what, err, id)
		}
	}
	_, err := b.OpenVolume(ctx, id)
	check("OpenVolume", err)
	check("ExtendVolume", b.ExtendVolume(ctx, id, 2))
	check("CreateSnapshot", b.CreateSnapshot(ctx, id, NewID()))
	_, err = b.Connect(ctx, id, blockstore.Connector{Host: "h"})
	check("Connect", err)
	check("WriteVolume", b.WriteVolume(ctx, id, strings.NewReader("x"), "raw"))
	if err := b.DeleteVolume(ctx, id); err != nil {
		t.Errorf("DeleteVolume of a missing volume: %v, want nil", err)
	}
	if err := b.DeleteSnapshot(ctx, id); err != nil {
		t.Errorf("DeleteSnapshot of a missing snapshot: %v, want nil", err)
	}
	if err := b.CreateVolume(ctx, blockstore.VolumeSpec{ID: NewID(), SizeGiB: 1, Pool: "no-such-pool"}, blockstore.Source{}); err == nil {
		t.Error("CreateVolume in a missing pool succeeded")
	}
}

func testListPools(t *testing.T, b blockstore.Backend, pool string) {
	ctx := context.Background()
	before, err := b.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := create(t, b, pool, 1, blockstore.Source{})
	c := create(t, b, pool, 1, blockstore.Source{})
	write(t, b, a, pattern(1, 8*mib))
	ids, err := b.ListVolumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, a) || !slices.Contains(ids, c) {
		t.Fatalf("ListVolumes = %v, want %s and %s", ids, a, c)
	}
	after, err := b.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after[0].AllocatedBytes < before[0].AllocatedBytes+4*mib {
		t.Errorf("allocated %d -> %d after writing 8 MiB", before[0].AllocatedBytes, after[0].AllocatedBytes)
	}
	if after[0].Thin && after[0].AllocatedBytes > before[0].AllocatedBytes+512*mib {
		t.Errorf("thin pool allocated %d bytes for 2 GiB provisioned and 8 MiB written", after[0].AllocatedBytes-before[0].AllocatedBytes)
	}
	if err := b.DeleteVolume(ctx, a); err != nil {
		t.Fatal(err)
	}
	ids, _ = b.ListVolumes(ctx)
	if slices.Contains(ids, a) {
		t.Fatalf("deleted volume still listed")
	}
}

func testCanceled(t *testing.T, b blockstore.Backend, pool string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := NewID()
	if err := b.CreateVolume(ctx, blockstore.VolumeSpec{ID: id, SizeGiB: 1, Pool: pool}, blockstore.Source{Image: imageSource(NewID(), []byte("x"), nil)}); err == nil {
		t.Fatal("CreateVolume with a canceled context succeeded")
	}
	ids, _ := b.ListVolumes(context.Background())
	if slices.Contains(ids, id) {
		t.Fatal("a canceled create left a volume")
	}
}
