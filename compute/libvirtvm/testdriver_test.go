//go:build cgo

package libvirtvm_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/drivertest"
	"github.com/stratuskit/stratus/compute/libvirtvm"
	"github.com/stratuskit/stratus/errdefs"
)

// The conformance suite on libvirt's in-process test driver: no daemon,
// no QEMU.
func TestConformanceTestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) *drivertest.Harness {
		d, _ := newTestDriver(t, nil)
		return &drivertest.Harness{Driver: d, Timeout: 30 * time.Second}
	})
}

func testConn(t *testing.T) *libvirt.Connect {
	t.Helper()
	c, err := libvirt.NewConnect("test:///default")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Close() })
	return c
}

func domainDef(t *testing.T, c *libvirt.Connect, id string) *libvirtxml.Domain {
	t.Helper()
	dom, err := c.LookupDomainByUUIDString(id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dom.Free() }()
	s, err := dom.GetXMLDesc(0)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(s); err != nil {
		t.Fatal(err)
	}
	return &x
}

// List and the sweep touch only domains with Stratus's metadata: the test
// driver's built-in "test" domain, and a foreign domain named like ours,
// stay.
func TestListAndSweepLeaveForeignDomains(t *testing.T) {
	d, _ := newTestDriver(t, nil)
	c := testConn(t)
	foreignID := newID()
	foreign, err := (&libvirtxml.Domain{Type: "test", Name: "stratus-" + foreignID, UUID: foreignID,
		Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"}, VCPU: &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := c.DomainCreateXML(foreign, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fd.Destroy(); _ = fd.Free() })

	e := newSvcEnv(t, d, newImages(), compute.Config{})
	ctx := context.Background()
	orphan := newID()
	if err := d.Spawn(ctx, drivertest.SampleSpec(orphan)); err != nil {
		t.Fatal(err)
	}
	// Another driver (another cloud on the same libvirtd) with its own
	// state directory.
	d2, _ := newTestDriver(t, nil)
	other := newID()
	if err := d2.Spawn(ctx, drivertest.SampleSpec(other)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Destroy(ctx, other) })
	doms, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, dm := range doms {
		if dm.Name == "test" || dm.ServerID == foreignID || dm.ServerID == other || !dm.Stratus {
			t.Fatalf("List returned a foreign domain: %+v", dm)
		}
	}
	if _, err := d.State(ctx, foreignID); !errdefs.IsNotFound(err) {
		t.Fatalf("State of a foreign domain named like ours: %v, want not found", err)
	}
	if _, err := d.State(ctx, other); !errdefs.IsNotFound(err) {
		t.Fatalf("State of another driver's domain: %v, want not found", err)
	}
	removed, err := e.svc.Sweep(ctx, "host1")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != orphan {
		t.Fatalf("Sweep removed %v, want only the orphan %s", removed, orphan)
	}
	for _, name := range []string{"test", "stratus-" + foreignID} {
		dom, err := c.LookupDomainByName(name)
		if err != nil {
			t.Fatalf("foreign domain %s is gone after the sweep: %v", name, err)
		}
		if a, _ := dom.IsActive(); !a {
			t.Fatalf("foreign domain %s was stopped by the sweep", name)
		}
		_ = dom.Free()
	}
	if st, err := d2.State(ctx, other); err != nil || st.Power != compute.PowerRunning {
		t.Fatalf("the other driver's domain after the sweep: %+v %v", st, err)
	}
}

// The domain XML: flavor, virtio disks (overlay on the cached base,
// volume, ephemeral, swap, config drive), tap NICs and no device for fake
// ports, direct kernel boot, serial console logged to the server's file,
// and Stratus's metadata.
func TestDomainDefinition(t *testing.T) {
	d, o := newTestDriver(t, nil)
	c := testConn(t)
	imgs := newImages()
	kernel := imgs.add(compute.ImageInfo{Name: "k", DiskFormat: "aki"}, []byte("not really a kernel"))
	ramdisk := imgs.add(compute.ImageInfo{Name: "r", DiskFormat: "ari"}, []byte("not really an initrd"))
	root := imgs.add(compute.ImageInfo{Name: "root", DiskFormat: "ami", KernelID: kernel.ID, RamdiskID: ramdisk.ID,
		Properties: map[string]string{"os_command_line": "console=ttyS0 quiet"}}, make([]byte, 1<<20))
	vol := filepath.Join(o.StateDir, "vol1.raw")
	if err := os.WriteFile(vol, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	id := newID()
	spec := imgs.specFor(id, root)
	spec.VCPUs, spec.MemoryMB, spec.RootGB, spec.EphemeralGB, spec.SwapMB = 2, 192, 1, 1, 64
	spec.NICs = []compute.NIC{
		{PortID: "port-1", MAC: "FA:16:3E:00:00:01", MTU: 1450, VIFType: "tap", VIFDetails: map[string]string{"tap_name": "tapport-1"}},
		{PortID: "port-2", MAC: "fa:16:3e:00:00:02", VIFType: "fake"},
	}
	spec.Volumes = []compute.DiskAttachment{{VolumeID: "vol-1", Device: "/dev/vdb", BootIndex: -1,
		Connection: compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: vol, Format: "raw"}}}}
	spec.ConfigDrive = map[string][]byte{"openstack/latest/meta_data.json": []byte(`{"name":"t1"}`)}
	ctx := context.Background()
	if err := d.Spawn(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(ctx, id) })
	x := domainDef(t, c, id)
	if x.Type != "test" || x.Name != "stratus-"+id || x.UUID != id {
		t.Fatalf("type/name/uuid = %s/%s/%s", x.Type, x.Name, x.UUID)
	}
	if x.VCPU.Value != 2 || x.Memory.Value != 192*1024 {
		t.Fatalf("vcpu %d memory %d %s", x.VCPU.Value, x.Memory.Value, x.Memory.Unit)
	}
	if x.Metadata == nil || !strings.Contains(x.Metadata.XML, id) || !strings.Contains(x.Metadata.XML, libvirtvm.MetadataNamespace) ||
		!strings.Contains(x.Metadata.XML, "<project>p1</project>") {
		t.Fatalf("metadata %+v", x.Metadata)
	}
	base := filepath.Join(o.StateDir, "base")
	if x.OS.Kernel != filepath.Join(base, "image-"+kernel.ID) || x.OS.Initrd != filepath.Join(base, "image-"+ramdisk.ID) ||
		x.OS.Cmdline != "console=ttyS0 quiet no_timer_check" {
		t.Fatalf("os = kernel %q initrd %q cmdline %q", x.OS.Kernel, x.OS.Initrd, x.OS.Cmdline)
	}
	dir := serverDir(o.StateDir, id)
	want := []struct{ dev, file, format string }{
		{"vda", filepath.Join(dir, "disk"), "qcow2"},
		{"vdb", vol, "raw"},
		{"vdc", filepath.Join(dir, "disk.eph0"), "qcow2"},
		{"vdd", filepath.Join(dir, "disk.swap"), "qcow2"},
		{"vde", filepath.Join(dir, "disk.config"), "raw"},
	}
	if len(x.Devices.Disks) != len(want) {
		t.Fatalf("%d disks, want %d", len(x.Devices.Disks), len(want))
	}
	for i, w := range want {
		dk := x.Devices.Disks[i]
		if dk.Target.Dev != w.dev || dk.Target.Bus != "virtio" || dk.Source.File.File != w.file || dk.Driver.Type != w.format {
			t.Errorf("disk %d = %s %s %s %s, want %+v", i, dk.Target.Dev, dk.Target.Bus, dk.Source.File.File, dk.Driver.Type, w)
		}
	}
	if x.Devices.Disks[4].ReadOnly == nil {
		t.Error("config drive is not read-only")
	}
	if x.Devices.Disks[1].Serial != "vol-1" {
		t.Errorf("volume serial %q", x.Devices.Disks[1].Serial)
	}
	// The overlay is backed by the cached base, as raw.
	info, err := exec.Command("qemu-img", "info", "--output=json", "-U", filepath.Join(dir, "disk")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(info), `"backing-filename": "`+filepath.Join(base, "sha512-"+root.Checksum)+`"`) ||
		!strings.Contains(string(info), `"backing-filename-format": "raw"`) || !strings.Contains(string(info), `"virtual-size": 1073741824`) {
		t.Fatalf("overlay info: %s", info)
	}
	// The config drive is ISO 9660 labelled config-2 with the files.
	iso, err := os.ReadFile(filepath.Join(dir, "disk.config"))
	if err != nil {
		t.Fatal(err)
	}
	if len(iso) < 0x8030 || string(iso[0x8001:0x8006]) != "CD001" || strings.TrimSpace(string(iso[0x8028:0x8048])) != "config-2" {
		t.Fatal("config drive is not an ISO 9660 image labelled config-2")
	}
	if !strings.Contains(string(iso), `{"name":"t1"}`) {
		t.Fatal("config drive lacks meta_data.json")
	}
	if len(x.Devices.Interfaces) != 1 {
		t.Fatalf("%d interfaces, want 1 (the fake port has no device)", len(x.Devices.Interfaces))
	}
	nic := x.Devices.Interfaces[0]
	if nic.Source == nil || nic.Source.Ethernet == nil || nic.Target.Dev != "tapport-1" || nic.Target.Managed != "no" ||
		nic.MAC.Address != "fa:16:3e:00:00:01" || nic.Model.Type != "virtio" || nic.MTU == nil || nic.MTU.Size != 1450 {
		t.Fatalf("interface %+v", nic)
	}
	if len(x.Devices.Serials) != 1 || x.Devices.Serials[0].Log == nil || x.Devices.Serials[0].Log.File != filepath.Join(dir, "console.log") {
		t.Fatalf("serial %+v", x.Devices.Serials)
	}
	// Destroy removes the server's files but keeps the shared cache.
	if err := d.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if exists(dir) {
		t.Fatalf("%s left after Destroy: %v", dir, entries(t, dir))
	}
	if !exists(filepath.Join(base, "sha512-"+root.Checksum)) {
		t.Fatal("Destroy removed the shared base image")
	}
}

// A base image is fetched once per host and shared by the overlays of
// every server booted from it.
func TestImageCacheShared(t *testing.T) {
	d, o := newTestDriver(t, nil)
	imgs := newImages()
	img := imgs.add(compute.ImageInfo{Name: "raw", DiskFormat: "raw"}, make([]byte, 2<<20))
	ctx := context.Background()
	ids := []string{newID(), newID(), newID()}
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() { errs <- d.Spawn(ctx, imgs.specFor(id, img)) }()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := imgs.opens.Load(); n != 1 {
		t.Fatalf("image opened %d times for 3 servers, want 1", n)
	}
	base := filepath.Join(o.StateDir, "base")
	if es := entries(t, base); len(es) != 2 {
		t.Fatalf("cache holds %v, want the image and its metadata", es)
	}
	for _, id := range ids {
		if err := d.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if es := entries(t, filepath.Join(o.StateDir, "domains")); len(es) != 0 {
		t.Fatalf("server files left: %v", es)
	}
}

// Untrusted images are refused before qemu-img or QEMU opens them: a
// qcow2 with a backing file (OSSA-2024-001 class), a qcow2 with an
// external data file (OSSA-2024-001), a VMDK descriptor pointing at a flat
// extent (OSSA-2024-002, OSSA-2023-002), and data that is not the format
// it claims. qemu-img is a wrapper that records every call.
func TestUntrustedImagesRefused(t *testing.T) {
	scratch := stateDir(t)
	calls := filepath.Join(scratch, "qemu-img-calls")
	wrapper := filepath.Join(scratch, "qemu-img")
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\necho \"$*\" >>"+calls+"\nexec "+real+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, o := newTestDriver(t, func(o *libvirtvm.Options) { o.QemuImg = wrapper })
	secret := filepath.Join(scratch, "host-secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, args ...string) []byte {
		p := filepath.Join(scratch, name)
		if out, err := exec.Command(real, append(append([]string{"create", "-q", "-f", "qcow2"}, args...), p, "1M")...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create %s: %v %s", name, err, out)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	backing := mk("backing.qcow2", "-b", secret, "-F", "raw")
	dataFile := mk("datafile.qcow2", "-o", "data_file="+secret)
	vmdk := []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n" +
		"# Extent description\nRW 2048 FLAT \"" + secret + "\" 0\n\nddb.adapterType = \"ide\"\n")
	plainQcow2 := mk("plain.qcow2")
	if err := os.Remove(calls); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	imgs := newImages()
	for _, tc := range []struct {
		name, format string
		data         []byte
		want         string
	}{
		{"qcow2 with a backing file", "qcow2", backing, "backing file"},
		{"qcow2 with an external data file", "qcow2", dataFile, "external data file"},
		{"vmdk flat descriptor", "vmdk", vmdk, "descriptor"},
		{"qcow2 passed as raw", "raw", plainQcow2, "not raw"},
		{"qcow2 passed as ami", "ami", plainQcow2, "not ami"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imgs.add(compute.ImageInfo{Name: tc.name, DiskFormat: tc.format}, tc.data)
			id := newID()
			err := d.Spawn(context.Background(), imgs.specFor(id, img))
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), img.ID) {
				t.Fatalf("Spawn: %v, want ErrInvalid naming the image and %q", err, tc.want)
			}
			if b, err := os.ReadFile(calls); err == nil {
				t.Fatalf("qemu-img ran on a refused image: %s", b)
			}
			if es := entries(t, filepath.Join(o.StateDir, "base")); len(es) != 0 {
				t.Fatalf("refused image left in the cache: %v", es)
			}
			if exists(serverDir(o.StateDir, id)) {
				t.Fatal("refused spawn left the server's directory")
			}
			if _, err := d.State(context.Background(), id); !errdefs.IsNotFound(err) {
				t.Fatalf("refused spawn left a domain: %v", err)
			}
		})
	}
}

// An image whose bytes do not match its checksum is refused and not
// cached.
func TestChecksumMismatchRefused(t *testing.T) {
	d, o := newTestDriver(t, nil)
	imgs := newImages()
	img := imgs.add(compute.ImageInfo{Name: "raw", DiskFormat: "raw", Checksum: strings.Repeat("ab", 64)}, make([]byte, 4096))
	id := newID()
	err := d.Spawn(context.Background(), imgs.specFor(id, img))
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Spawn: %v, want a checksum mismatch", err)
	}
	if es := entries(t, filepath.Join(o.StateDir, "base")); len(es) != 0 {
		t.Fatalf("cache holds %v", es)
	}
}

// Hostile config drive file names are refused.
func TestConfigDriveNames(t *testing.T) {
	d, _ := newTestDriver(t, nil)
	for _, name := range []string{"../escape", "/etc/passwd", "a/../../b", "", "a//b"} {
		spec := drivertest.SampleSpec(newID())
		spec.ConfigDrive = map[string][]byte{name: []byte("x")}
		if err := d.Spawn(context.Background(), spec); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("config drive file %q: %v, want ErrInvalid", name, err)
		}
	}
}

// Volume connection infos are checked before libvirt sees them (the test
// driver cannot hot-plug: the real hot-plug is TestVMGuest's).
func TestVolumeConnectionChecked(t *testing.T) {
	d, o := newTestDriver(t, nil)
	ctx := context.Background()
	id := newID()
	if err := d.Spawn(ctx, drivertest.SampleSpec(id)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(ctx, id) })
	vol := filepath.Join(o.StateDir, "vol.raw")
	if err := os.WriteFile(vol, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	a := compute.DiskAttachment{VolumeID: "vol-9", Device: "/dev/vdb",
		Connection: compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: vol, Format: "raw"}}}
	if err := d.AttachVolume(ctx, id, a); !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "virDomainAttachDeviceFlags") {
		t.Fatalf("attach on the test driver: %v, want its unsupported error", err)
	}
	for _, bad := range []struct {
		c    compute.ConnectionInfo
		want string
	}{
		{compute.ConnectionInfo{DriverVolumeType: "iscsi"}, "driver_volume_type"},
		{compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: "relative.raw", Format: "raw"}}, "absolute"},
		{compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: "/x/../etc/shadow", Format: "raw"}}, "clean"},
		{compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: vol, Format: "vmdk"}}, "format"},
		{compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: vol, Format: "qcow2"}}, "not qcow2"},
	} {
		err := d.AttachVolume(ctx, id, compute.DiskAttachment{VolumeID: "bad", Connection: bad.c})
		if err == nil || errors.Is(err, errdefs.ErrUnsupported) && bad.want != "driver_volume_type" || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("attach of %+v: %v, want an error naming %q", bad.c, err, bad.want)
		}
	}
}

// Lifecycle events report power changes of Stratus domains.
func TestEvents(t *testing.T) {
	d, _ := newTestDriver(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := d.Events(ctx)
	id := newID()
	if err := d.Spawn(ctx, drivertest.SampleSpec(id)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Destroy(context.Background(), id) }()
	// A domain stopped behind the driver's back (as a guest powering
	// itself off).
	c := testConn(t)
	dom, err := c.LookupDomainByUUIDString(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(); err != nil {
		t.Fatal(err)
	}
	_ = dom.Free()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.ServerID == id && ev.Power == compute.PowerShutdown {
				cancel()
				for range ch {
				}
				return
			}
		case <-deadline:
			t.Fatal("no shutdown event")
		}
	}
}

// Per-domain stats for metering.
func TestDomainStats(t *testing.T) {
	d, _ := newTestDriver(t, nil)
	ctx := context.Background()
	id := newID()
	if err := d.Spawn(ctx, drivertest.SampleSpec(id)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Destroy(ctx, id) }()
	stats, err := d.DomainStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range stats {
		if s.ServerID == "" {
			t.Fatalf("stats of a foreign domain: %+v", s)
		}
		if s.ServerID == id {
			found = true
			if s.VCPUs != 1 || s.MemoryMB != 64 {
				t.Fatalf("stats %+v", s)
			}
		}
	}
	if !found {
		t.Fatal("no stats for the server")
	}
	hs, err := d.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hs.RunningVMs < 1 || hs.VCPUsUsed < 1 || hs.DiskGB <= 0 {
		t.Fatalf("host stats %+v", hs)
	}
}

// The options are checked.
func TestOptions(t *testing.T) {
	if _, err := libvirtvm.New(context.Background(), libvirtvm.Options{URI: "test:///default", VirtType: "xen"}); err == nil {
		t.Fatal("VirtType xen accepted")
	}
	if _, err := libvirtvm.New(context.Background(), libvirtvm.Options{URI: "nonexistent:///x", StateDir: stateDir(t)}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("bad URI: %v, want unavailable", err)
	}
}
