package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/fakevol"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/standin"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// volBench is compute and block storage in one process on fake drivers,
// joined by the all-in-one's adapter, with one ACTIVE server and one
// available volume of project p1.
type volBench struct {
	compute *compute.Service
	vols    computeVolumes
	user    context.Context
	server  string
	volume  string
}

func newVolBench(b *testing.B) *volBench {
	b.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, memstore.New(), slices.Concat(compute.Tables(), blockstore.Tables()), &store.Options{Logger: quiet, CompactInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	bs, err := blockstore.New(blockstore.Config{Store: st, Logger: quiet, Backends: []blockstore.BackendConfig{{Name: "fake", Backend: fakevol.New(nil)}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := bs.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	svc, err := compute.New(compute.Config{Store: st, Logger: quiet, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	images := standin.NewImages()
	const imageID = "11111111-2222-4333-8444-555555555555"
	images.Add(compute.ImageInfo{ID: imageID, Name: "tiny", DiskFormat: "raw"}, []byte("x"), "")
	vb := &volBench{compute: svc, vols: computeVolumes{bs}, user: projectCtx(ctx, "p1")}
	svc.Use(compute.Deps{Images: images, Volumes: vb.vols})
	if _, err := svc.AddHost(ctx, compute.HostOpts{Name: "h1"}, fakevm.New(&fakevm.Options{Name: "h1"})); err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Close() })
	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	fl, err := svc.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m1", VCPUs: 1, RAMMB: 256, DiskGB: 1})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := svc.CreateServer(vb.user, compute.CreateServerOpts{Name: "s", ImageRef: imageID, FlavorRef: fl.ID})
	if err != nil {
		b.Fatal(err)
	}
	vb.server = srv.ID
	vb.wait(b, func(v *compute.Server) bool { return v.VMState == compute.VMActive })
	v, err := bs.CreateVolume(vb.user, blockstore.CreateVolumeOpts{SizeGiB: 1})
	if err != nil {
		b.Fatal(err)
	}
	vb.volume = v.ID
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if x, err := bs.GetVolume(vb.user, v.ID); err == nil && x.Status == blockstore.StatusAvailable {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the volume is not available")
		}
	}
	return vb
}

func (vb *volBench) wait(b *testing.B, done func(*compute.Server) bool) {
	b.Helper()
	ctx, cancel := context.WithTimeout(vb.user, 10*time.Second)
	defer cancel()
	if v, err := vb.compute.WaitServer(ctx, vb.server, done); err != nil {
		b.Fatalf("server %s: %v (%+v)", vb.server, err, v)
	}
}

// BenchmarkVolumeAttachCycle: attach → in-use → detach → available cycles,
// through compute's Service and conductor (the "compute" case, what
// os-volume_attachments does) and, as the baseline, the block storage
// attachment flow alone (reserve → connect → complete → delete: the
// "blockstore" case). Both report cycles/min.
func BenchmarkVolumeAttachCycle(b *testing.B) {
	vb := newVolBench(b)
	perMin := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "cycles/min")
	}
	b.Run("blockstore", func(b *testing.B) {
		ctx := context.Background()
		for range b.N {
			a, err := vb.vols.ReserveAttachment(ctx, "p1", vb.volume, vb.server)
			if err == nil {
				_, err = vb.vols.ConnectAttachment(ctx, a.ID, compute.HostConnector{Host: "h1"})
			}
			if err == nil {
				err = vb.vols.CompleteAttachment(ctx, a.ID)
			}
			if err == nil {
				err = vb.vols.DeleteAttachment(ctx, a.ID)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		perMin(b)
	})
	b.Run("compute", func(b *testing.B) {
		attached := func(v *compute.Server) bool {
			return len(v.BlockDevices) == 1 && v.BlockDevices[0].Pending == "" && v.BlockDevices[0].AttachmentID != ""
		}
		for range b.N {
			if _, err := vb.compute.AttachVolume(vb.user, vb.server, compute.AttachVolumeOpts{VolumeID: vb.volume}); err != nil {
				b.Fatal(err)
			}
			vb.wait(b, attached)
			if err := vb.compute.DetachVolume(vb.user, vb.server, vb.volume); err != nil {
				b.Fatal(err)
			}
			vb.wait(b, func(v *compute.Server) bool { return len(v.BlockDevices) == 0 })
		}
		perMin(b)
	})
}
