package filevol_test

import (
	"context"
	"fmt"
	"os"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/filevol"
)

// Example opens a qcow2 pool, makes a volume and a copy-on-write volume of
// its snapshot, and prints what a host attaches.
func Example() {
	dir, _ := os.MkdirTemp("", "filevol")
	defer os.RemoveAll(dir)
	b, err := filevol.Open(dir, &filevol.Options{Format: "qcow2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = b.CreateVolume(ctx, blockstore.VolumeSpec{ID: "vol-1", SizeGiB: 10, Pool: "pool1"}, blockstore.Source{})
	_ = b.CreateSnapshot(ctx, "vol-1", "snap-1")
	_ = b.CreateVolume(ctx, blockstore.VolumeSpec{ID: "vol-2", SizeGiB: 20, Pool: "pool1"}, blockstore.Source{SnapshotID: "snap-1"})
	ci, _ := b.Connect(ctx, "vol-2", blockstore.Connector{Host: "compute-1"})
	fmt.Println(ci.DriverVolumeType, ci.File.Format, ci.File.Path == dir+"/volumes/volume-vol-2")
	// Output: file qcow2 true
}
