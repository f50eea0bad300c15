//go:build cgo

package libvirtvm_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/compute"
)

// Rescue on libvirt's test driver: the rescue image's disk boots first
// with the server's own disk after it; unrescue brings the saved
// definition back and removes the rescue disk.
func TestRescueDefinition(t *testing.T) {
	d, o := newTestDriver(t, nil)
	c := testConn(t)
	imgs := newImages()
	root := imgs.add(compute.ImageInfo{Name: "root", DiskFormat: "raw"}, make([]byte, 1<<20))
	kernel := imgs.add(compute.ImageInfo{Name: "k", DiskFormat: "aki"}, []byte("not really a kernel"))
	rescue := imgs.add(compute.ImageInfo{Name: "rescue", DiskFormat: "ami", KernelID: kernel.ID}, make([]byte, 1<<20))
	id := newID()
	ctx := context.Background()
	if err := d.Spawn(ctx, imgs.specFor(id, root)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(ctx, id) })
	dir := serverDir(o.StateDir, id)
	for range 2 { // idempotent
		if err := d.Rescue(ctx, imgs.specFor(id, rescue)); err != nil {
			t.Fatal(err)
		}
	}
	x := domainDef(t, c, id)
	if len(x.Devices.Disks) != 2 || x.Devices.Disks[0].Source.File.File != filepath.Join(dir, "disk.rescue") ||
		x.Devices.Disks[0].Target.Dev != "vda" || x.Devices.Disks[1].Source.File.File != filepath.Join(dir, "disk") ||
		x.Devices.Disks[1].Target.Dev != "vdb" || x.OS.Kernel != filepath.Join(o.StateDir, "base", "image-"+kernel.ID) {
		t.Fatalf("rescue definition: disks %+v kernel %q", x.Devices.Disks, x.OS.Kernel)
	}
	if err := d.Unrescue(ctx, id); err != nil {
		t.Fatal(err)
	}
	x = domainDef(t, c, id)
	if len(x.Devices.Disks) != 1 || x.Devices.Disks[0].Source.File.File != filepath.Join(dir, "disk") || x.OS.Kernel != "" {
		t.Fatalf("after unrescue: disks %+v kernel %q", x.Devices.Disks, x.OS.Kernel)
	}
	if exists(filepath.Join(dir, "disk.rescue")) || exists(filepath.Join(dir, "unrescue.xml")) {
		t.Fatalf("rescue files left: %v", entries(t, dir))
	}
	if st, err := d.State(ctx, id); err != nil || st.Power != compute.PowerRunning {
		t.Fatalf("after unrescue: %+v %v", st, err)
	}
}
