//go:build cgo

package libvirtvm_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

var _ compute.ImageWriter = (*images)(nil)

// CreateImage implements compute.ImageWriter for the VM tests: the image
// has no data until UploadImage.
func (m *images) CreateImage(_ context.Context, _ string, o compute.NewImage) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := newID()
	info := compute.ImageInfo{ID: id, Name: o.Name, DiskFormat: o.DiskFormat, Properties: maps.Clone(o.Properties),
		KernelID: o.Properties["kernel_id"], RamdiskID: o.Properties["ramdisk_id"]}
	m.pending()[id] = info
	return id, nil
}

func (m *images) pending() map[string]compute.ImageInfo {
	if m.queued == nil {
		m.queued = map[string]compute.ImageInfo{}
	}
	return m.queued
}

// UploadImage implements compute.ImageWriter.
func (m *images) UploadImage(_ context.Context, _, id, format string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	info, ok := m.pending()[id]
	delete(m.pending(), id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("image %s is not queued: %w", id, errdefs.ErrConflict)
	}
	info.DiskFormat, info.Checksum = format, ""
	m.add(info, b)
	return nil
}

// DeleteImage implements compute.ImageWriter.
func (m *images) DeleteImage(_ context.Context, _, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending(), id)
	delete(m.info, id)
	delete(m.data, id)
	return nil
}

// The tiny guest through compute II on qemu:///system: a cold resize
// changes the CPUs and memory the guest reports, a rebuild boots it again
// from another image with its new name, createImage makes an image that
// boots, and rescue boots the rescue image with the server's disks after
// it.
func TestVMResizeRebuildSnapshotRescue(t *testing.T) {
	d, o := newVMDriver(t, nil)
	imgs := newImages()
	ami := addGuest(t, imgs)
	e := newSvcEnv(t, d, imgs, compute.Config{PowerOffTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t0 := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(t0).Seconds(), what) }
	defer step("end")

	srv := e.boot(ctx, t, "vm-move", ami.ID)
	step("active")
	if srv.Status() != "ACTIVE" {
		t.Fatalf("boot: %s %+v", srv.Status(), srv.Fault)
	}
	id := srv.ID
	out := e.waitConsole(t, id, "stratus-guest: cpus=1 ", 1, time.Minute)
	mem0 := memSeen(t, out, 1)
	e.waitConsole(t, id, "stratus-guest: root ok", 1, time.Minute)

	// Cold resize: 2 vCPUs and twice the memory, then confirm.
	big, err := e.svc.CreateFlavor(e.admin, compute.CreateFlavorOpts{Name: "m1.big", VCPUs: 2, RAMMB: 512, DiskGB: 1})
	if err != nil {
		t.Fatal(err)
	}
	step("resize")
	if err := e.svc.ResizeServer(e.user, id, big.ID); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, t, id); v.Status() != "VERIFY_RESIZE" {
		t.Fatalf("resize: %s %+v", v.Status(), v.Fault)
	}
	out = e.waitConsole(t, id, "stratus-guest: cpus=2 ", 1, 2*time.Minute)
	if mem1 := memSeen(t, out, 2); mem1 < mem0+200 {
		t.Fatalf("the guest sees %d MB after the resize to 512 MB, %d before", mem1, mem0)
	}
	if err := e.svc.ConfirmResize(e.user, id); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, t, id); v.Status() != "ACTIVE" || v.Flavor.ID != big.ID {
		t.Fatalf("confirm: %s flavor %s", v.Status(), v.Flavor.ID)
	}

	// Rebuild from another image (the guest's root as a new image) with a
	// new name: a new domain (and console) boots, reports the new name
	// and keeps the flavor's CPUs.
	step("rebuild")
	other := imgs.add(compute.ImageInfo{Name: "stratus-tiny-2", DiskFormat: "ami", KernelID: ami.KernelID, RamdiskID: ami.RamdiskID,
		Properties: ami.Properties}, imageBytes(t, imgs, ami.ID))
	name := "vm-rebuilt"
	if _, err := e.svc.RebuildServer(e.user, id, compute.RebuildOpts{ImageRef: other.ID, Name: &name}); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, t, id); v.Status() != "ACTIVE" || v.ImageID != other.ID {
		t.Fatalf("rebuild: %s image %s %+v", v.Status(), v.ImageID, v.Fault)
	}
	out = e.waitConsole(t, id, "stratus-guest: metadata ok name=vm-rebuilt", 1, 2*time.Minute)
	if strings.Contains(out, "name=vm-move") || !strings.Contains(out, "stratus-guest: cpus=2 ") {
		t.Fatalf("console after the rebuild:\n%s", out)
	}

	// createImage: the snapshot boots a new server whose guest finds its root.
	step("snapshot")
	snap, err := e.svc.CreateServerImage(e.user, id, "vm-snap", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, t, id); v.Status() != "ACTIVE" {
		t.Fatalf("after snapshot: %s", v.Status())
	}
	info, err := imgs.GetImage(ctx, "p1", snap)
	if err != nil || info.DiskFormat != "qcow2" || info.KernelID != ami.KernelID {
		t.Fatalf("snapshot image %+v %v", info, err)
	}
	step("boot the snapshot")
	from := e.boot(ctx, t, "vm-from-snap", snap)
	if from.Status() != "ACTIVE" {
		t.Fatalf("server from the snapshot: %s %+v", from.Status(), from.Fault)
	}
	e.waitConsole(t, from.ID, "stratus-guest: root ok", 1, 2*time.Minute)

	// Rescue: the guest boots from the rescue image with its own disks
	// after it; unrescue boots it from its own disk again.
	step("rescue")
	if err := e.svc.RescueServer(e.user, id, ""); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, t, id); v.Status() != "RESCUE" {
		t.Fatalf("rescue: %s %+v", v.Status(), v.Fault)
	}
	out = e.waitConsole(t, id, "stratus-guest: disks=vda,vdb,vdc", 1, 2*time.Minute)
	ups := strings.Count(out, "stratus-guest: up")
	step("unrescue")
	if err := e.svc.UnrescueServer(e.user, id); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, t, id); v.Status() != "ACTIVE" {
		t.Fatalf("unrescue: %s %+v", v.Status(), v.Fault)
	}
	e.waitConsole(t, id, "stratus-guest: up", ups+1, 2*time.Minute)
	deadline := time.Now().Add(time.Minute)
	for {
		out, _ = e.svc.ConsoleOutput(e.user, id, 0)
		if strings.HasSuffix(lastLine(out, "stratus-guest: disks="), "disks=vda,vdb") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after unrescue the guest sees %q", lastLine(out, "stratus-guest: disks="))
		}
		time.Sleep(100 * time.Millisecond)
	}

	step("delete")
	e.deleteAndWait(ctx, t, from.ID)
	e.deleteAndWait(ctx, t, id)
	e.wantGone(t, o, id, from.ID)
}

// lastLine returns the last console line holding marker, trimmed.
func lastLine(out, marker string) string {
	last := ""
	for line := range strings.Lines(out) {
		if strings.Contains(line, marker) {
			last = strings.TrimSpace(line)
		}
	}
	return last
}

// memSeen returns the mem_mb of the n-th "cpus=" marker on a console.
func memSeen(t *testing.T, out string, n int) int {
	t.Helper()
	seen := 0
	for line := range strings.Lines(out) {
		i := strings.Index(line, "stratus-guest: cpus=")
		if i < 0 {
			continue
		}
		if seen++; seen < n {
			continue
		}
		var cpus, mem int
		if _, err := fmt.Sscanf(strings.TrimSpace(line[i:]), "stratus-guest: cpus=%d mem_mb=%d", &cpus, &mem); err != nil {
			t.Fatalf("marker %q: %v", line, err)
		}
		return mem
	}
	t.Fatalf("no %d-th cpus marker on the console:\n%s", n, out)
	return 0
}

func imageBytes(t *testing.T, imgs *images, id string) []byte {
	t.Helper()
	rc, err := imgs.OpenImage(context.Background(), "p1", id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
