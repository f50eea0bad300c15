package filevol_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/drivertest"
	"github.com/stratuskit/stratus/blockstore/filevol"
	"github.com/stratuskit/stratus/errdefs"
)

func open(t *testing.T, opts *filevol.Options) blockstore.Backend {
	t.Helper()
	b, err := filevol.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformanceRaw(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) blockstore.Backend { return open(t, nil) })
}

func TestConformanceQcow2(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) blockstore.Backend { return open(t, &filevol.Options{Format: "qcow2"}) })
}

func TestConformanceQcow2FullCopy(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) blockstore.Backend {
		return open(t, &filevol.Options{Format: "qcow2", FullCopy: true})
	})
}

// A qcow2 image that names a backing file (here: another volume's file)
// or an external data file is refused: the new volume would read another
// file of the host.
func TestHostileImageRefused(t *testing.T) {
	dir := t.TempDir()
	b, err := filevol.Open(dir, &filevol.Options{Format: "qcow2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	victim := drivertest.NewID()
	if err := b.CreateVolume(ctx, blockstore.VolumeSpec{ID: victim, SizeGiB: 1, Pool: "pool1"}, blockstore.Source{}); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(t.TempDir(), "evil.qcow2")
	victimPath := filepath.Join(dir, "volumes", "volume-"+victim)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", victimPath, evil).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, out)
	}
	data, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		fb, err := filevol.Open(dir, &filevol.Options{Format: "qcow2", FullCopy: full})
		if err != nil {
			t.Fatal(err)
		}
		img := &blockstore.ImageSource{ID: drivertest.NewID(), Checksum: "c", Format: "qcow2",
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
		id := drivertest.NewID()
		err = fb.CreateVolume(ctx, blockstore.VolumeSpec{ID: id, SizeGiB: 1, Pool: "pool1"}, blockstore.Source{Image: img})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("full=%v: image with a backing file: %v, want invalid", full, err)
		}
		if err := fb.WriteVolume(ctx, victim, bytes.NewReader(data), "qcow2"); !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("full=%v: WriteVolume of an image with a backing file: %v", full, err)
		}
		ids, _ := fb.ListVolumes(ctx)
		if len(ids) != 1 {
			t.Fatalf("refused images left volumes: %v", ids)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("tmp/ keeps %d files", len(left))
	}
}
