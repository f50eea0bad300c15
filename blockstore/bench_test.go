package blockstore_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/fakevol"
	"github.com/stratuskit/stratus/blockstore/filevol"
)

// benchImageMiB is the image size of BenchmarkVolumeFromImage:
// STRATUS_BENCH_IMAGE_MB (make bench: 1024, shared with image), default 16.
func benchImageMiB() int {
	if n, err := strconv.Atoi(os.Getenv("STRATUS_BENCH_IMAGE_MB")); err == nil && n > 0 {
		return n
	}
	return 16
}

// BenchmarkVolumeFromImage makes a 10 GiB volume from a raw image full of
// data on filevol: copy-on-write (a qcow2 overlay of the cached image)
// versus a full copy (qemu-img convert). The ratio of the two ns/op is the
// figure.
func BenchmarkVolumeFromImage(b *testing.B) {
	data := bytes.Repeat([]byte{0xa5, 0x5a, 1, 2, 3, 4, 5, 6}, benchImageMiB()<<17)
	img := &blockstore.ImageSource{ID: "bench-image", Checksum: "x", Format: "raw",
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	for _, mode := range []struct {
		name string
		opts filevol.Options
	}{{"CopyOnWrite", filevol.Options{Format: "qcow2"}}, {"FullCopy", filevol.Options{Format: "qcow2", FullCopy: true}}} {
		b.Run(mode.name, func(b *testing.B) {
			be, err := filevol.Open(b.TempDir(), &mode.opts)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := be.CreateVolume(ctx, blockstore.VolumeSpec{ID: "warm", SizeGiB: 10, Pool: "pool1"}, blockstore.Source{Image: img}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := "v" + strconv.Itoa(i)
				if err := be.CreateVolume(ctx, blockstore.VolumeSpec{ID: id, SizeGiB: 10, Pool: "pool1"}, blockstore.Source{Image: img}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = be.DeleteVolume(ctx, id)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkAttachDetach is one attach (reserve, connect, complete) and
// detach cycle through the service on fakevol; cycles/min is 6e10/ns.
func BenchmarkAttachDetach(b *testing.B) {
	e := newEnv(b, newStore(b), fakevol.New(nil))
	ctx := project("p1")
	v := must(e.svc.CreateVolume(ctx, blockstore.CreateVolumeOpts{SizeGiB: 1}))
	e.wait(b, ctx, v.ID, blockstore.StatusAvailable)
	for b.Loop() {
		at := must(e.svc.CreateAttachment(ctx, blockstore.CreateAttachmentOpts{VolumeID: v.ID, InstanceID: "srv", Connector: &blockstore.Connector{Host: "h"}}))
		if err := e.svc.CompleteAttachment(ctx, at.ID); err != nil {
			b.Fatal(err)
		}
		if err := e.svc.DeleteAttachment(ctx, at.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "cycles/min")
}
