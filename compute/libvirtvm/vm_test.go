//go:build cgo

package libvirtvm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/drivertest"
	"github.com/stratuskit/stratus/compute/libvirtvm"
	"github.com/stratuskit/stratus/errdefs"
)

// Real virtual machines on qemu:///system. They run when STRATUS_VMTEST=1
// (make vmtest, one package at a time, without -race): under CI=true an
// unreachable libvirtd or a missing guest fails them; elsewhere they skip
// with the reason.

const systemURI = "qemu:///system"

func needVMs(t testing.TB) {
	t.Helper()
	if os.Getenv("STRATUS_VMTEST") != "1" {
		t.Skip("real-VM test: set STRATUS_VMTEST=1 (make vmtest runs these with -p 1)")
	}
	c, err := libvirt.NewConnect(systemURI)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("libvirtd is not reachable at %s: %v", systemURI, err)
		}
		t.Skipf("libvirtd is not reachable at %s (start it with scripts/libvirtd.sh): %v", systemURI, err)
	}
	_, _ = c.Close()
}

func newVMDriver(t testing.TB, mod func(*libvirtvm.Options)) (*libvirtvm.Driver, libvirtvm.Options) {
	t.Helper()
	needVMs(t)
	o := libvirtvm.Options{URI: systemURI, VirtType: libvirtvm.VirtQEMU, StateDir: stateDir(t), Logger: quiet(),
		SoftRebootTimeout: 2 * time.Second, DetachTimeout: 30 * time.Second}
	if mod != nil {
		mod(&o)
	}
	d, err := libvirtvm.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Nothing of the test may outlive it.
		ctx := context.Background()
		if doms, err := d.List(ctx); err == nil {
			for _, dm := range doms {
				if exists(serverDir(o.StateDir, dm.ServerID)) {
					_ = d.Destroy(ctx, dm.ServerID)
				}
			}
		}
		_ = d.Close()
	})
	return d, o
}

// guestDir is the tiny guest that make guest builds.
func guestDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("STRATUS_GUEST")
	if dir == "" {
		dir = filepath.Join("..", "..", ".cache", "guest")
	}
	for _, f := range []string{"vmlinuz", "initrd.img", "root.img"} {
		if !exists(filepath.Join(dir, f)) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the tiny guest is not built in %s (make guest)", dir)
			}
			t.Skipf("the tiny guest is not built in %s: run make guest", dir)
		}
	}
	return dir
}

// addGuest registers the tiny guest as aki, ari and ami linked by
// kernel_id and ramdisk_id; it returns the ami.
func addGuest(t testing.TB, imgs *images) compute.ImageInfo {
	dir := guestDir(t)
	k := imgs.addFile(t, compute.ImageInfo{Name: "stratus-tiny-kernel", DiskFormat: "aki"}, filepath.Join(dir, "vmlinuz"))
	r := imgs.addFile(t, compute.ImageInfo{Name: "stratus-tiny-ramdisk", DiskFormat: "ari"}, filepath.Join(dir, "initrd.img"))
	return imgs.addFile(t, compute.ImageInfo{Name: "stratus-tiny", DiskFormat: "ami", KernelID: k.ID, RamdiskID: r.ID,
		Properties: map[string]string{"os_command_line": "console=ttyS0 quiet"}}, filepath.Join(dir, "root.img"))
}

// The conformance suite against real QEMU (TCG) domains.
func TestVMConformance(t *testing.T) {
	needVMs(t)
	drivertest.Run(t, func(t *testing.T) *drivertest.Harness {
		d, _ := newVMDriver(t, nil)
		return &drivertest.Harness{Driver: d, Timeout: 2 * time.Minute}
	})
}

// waitConsole polls the server's console through the compute Service
// until it holds want count times.
func (e *svcEnv) waitConsole(t testing.TB, id, want string, count int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := e.svc.ConsoleOutput(e.user, id, 0)
		if err == nil && strings.Count(out, want) >= count {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("console of %s has not %d× %q after %s (err %v):\n%s", id, count, want, timeout, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *svcEnv) act(ctx context.Context, t testing.TB, id string, a compute.Action, wantVM compute.VMState) *compute.Server {
	t.Helper()
	if err := e.svc.ServerAction(e.user, id, a); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	srv := e.settle(ctx, t, id)
	if srv.VMState != wantVM || srv.Fault != nil {
		t.Fatalf("after %s: vm_state %s fault %+v, want %s", a, srv.VMState, srv.Fault, wantVM)
	}
	return srv
}

func (e *svcEnv) wantPower(t testing.TB, id string, want compute.PowerState) {
	t.Helper()
	st, err := e.driver.State(context.Background(), id)
	if err != nil || st.Power != want {
		t.Fatalf("domain of %s: %+v %v, want power %s", id, st, err, want)
	}
}

// The tiny guest through the compute Service: it boots to ACTIVE, prints
// its markers with the config drive's name, and reboot, stop/start,
// pause/unpause, suspend/resume and volume hot-plug each change what it
// does; delete leaves no domain, file or allocation.
func TestVMGuest(t *testing.T) {
	d, o := newVMDriver(t, nil)
	imgs := newImages()
	ami := addGuest(t, imgs)
	e := newSvcEnv(t, d, imgs, compute.Config{PowerOffTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t0 := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(t0).Seconds(), what) }
	defer step("end")
	srv := e.boot(ctx, t, "vm-one", ami.ID)
	step("active")
	if srv.VMState != compute.VMActive || srv.PowerState != compute.PowerRunning {
		t.Fatalf("boot: %s/%s fault %+v", srv.VMState, srv.PowerState, srv.Fault)
	}
	id := srv.ID
	e.waitConsole(t, id, "stratus-guest: up", 1, time.Minute)
	e.waitConsole(t, id, "stratus-guest: metadata ok name=vm-one", 1, time.Minute)
	e.waitConsole(t, id, "stratus-guest: root ok", 1, time.Minute)
	e.waitConsole(t, id, "stratus-guest: disks=vda,vdb", 1, time.Minute)

	step("hot-plug")
	// Volume hot-plug: the guest sees the disk come and go.
	vol := filepath.Join(o.StateDir, "vol1.raw")
	if err := os.WriteFile(vol, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	a := compute.DiskAttachment{VolumeID: "vol-1", BootIndex: -1,
		Connection: compute.ConnectionInfo{DriverVolumeType: "file", File: &compute.FileConnection{Path: vol, Format: "raw"}}}
	if err := d.AttachVolume(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	e.waitConsole(t, id, "stratus-guest: disks=vda,vdb,vdc", 1, time.Minute)
	e.waitConsole(t, id, "stratus-guest: disk vdc bytes=8388608", 1, time.Second)
	step("detach")
	if err := d.DetachVolume(ctx, id, "vol-1"); err != nil {
		t.Fatal(err)
	}
	e.waitConsole(t, id, "stratus-guest: disks=vda,vdb", 2, time.Minute)
	e.waitConsole(t, id, "stratus-guest: disk vdc removed", 1, time.Second)

	step("reboot")
	// Each reboot boots the guest again; every boot is let run to its disk
	// loop (one more "disks=" line) before the next action, since the
	// guest powers off at once on the ACPI button.
	e.act(ctx, t, id, compute.ActionReboot, compute.VMActive)
	e.waitConsole(t, id, "stratus-guest: up", 2, time.Minute)
	e.waitConsole(t, id, "stratus-guest: disks=", 4, time.Minute)
	step("hard reboot")
	e.act(ctx, t, id, compute.ActionRebootHard, compute.VMActive)
	e.waitConsole(t, id, "stratus-guest: up", 3, time.Minute)
	e.waitConsole(t, id, "stratus-guest: disks=", 5, time.Minute)

	step("stop")
	// Stop: the domain is off and the guest prints nothing more; start
	// boots it again.
	e.act(ctx, t, id, compute.ActionStop, compute.VMStopped)
	e.wantPower(t, id, compute.PowerShutdown)
	step("start")
	e.act(ctx, t, id, compute.ActionStart, compute.VMActive)
	e.wantPower(t, id, compute.PowerRunning)
	e.waitConsole(t, id, "stratus-guest: up", 4, time.Minute)

	step("pause")
	// Pause freezes the vCPUs; unpause thaws them without a new boot.
	e.act(ctx, t, id, compute.ActionPause, compute.VMPaused)
	e.wantPower(t, id, compute.PowerPaused)
	e.act(ctx, t, id, compute.ActionUnpause, compute.VMActive)
	e.wantPower(t, id, compute.PowerRunning)

	step("suspend")
	// Suspend saves the guest to disk; resume restores it, again
	// without a new boot.
	e.waitConsole(t, id, "stratus-guest: disks=", 6, time.Minute) // booted to its loop
	e.act(ctx, t, id, compute.ActionSuspend, compute.VMSuspended)
	e.wantPower(t, id, compute.PowerSuspended)
	step("resume")
	e.act(ctx, t, id, compute.ActionResume, compute.VMActive)
	e.wantPower(t, id, compute.PowerRunning)
	if out := e.waitConsole(t, id, "stratus-guest: up", 4, time.Second); strings.Count(out, "stratus-guest: up") != 4 {
		t.Fatal("unpause or resume booted the guest again")
	}

	step("domain stopped behind our back")
	// A guest that powers itself off (here: QEMU killed behind Stratus's
	// back) goes to SHUTOFF through the lifecycle events.
	c, err := libvirt.NewConnect(systemURI)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = c.Close() }()
	dom, err := c.LookupDomainByUUIDString(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(); err != nil {
		t.Fatal(err)
	}
	_ = dom.Free()
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Second) // before the agent's 10 s power sync
	defer wcancel()
	if _, err := e.svc.WaitServer(wctx, id, func(s *compute.Server) bool { return s.VMState == compute.VMStopped }); err != nil {
		t.Fatalf("server not SHUTOFF after its domain stopped: %v", err)
	}

	step("delete")
	e.deleteAndWait(ctx, t, id)
	e.wantGone(t, o, id)
}

// wantGone checks that no domain, file or allocation of a server is left.
func (e *svcEnv) wantGone(t testing.TB, o libvirtvm.Options, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := e.driver.State(context.Background(), id); !errdefs.IsNotFound(err) {
			t.Errorf("domain of %s left: %v", id, err)
		}
		if exists(serverDir(o.StateDir, id)) {
			t.Errorf("files of %s left: %v", id, entries(t, serverDir(o.StateDir, id)))
		}
	}
	hosts, err := e.svc.ListHosts(e.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if u := h.Usage; u.VCPUs != 0 || u.RAMMB != 0 || u.DiskGB != 0 || u.Instances != 0 {
			t.Errorf("host %s still has an allocation: %+v", h.Name, u)
		}
	}
}

// A libvirt failure (a kernel QEMU cannot load) puts the server in ERROR
// with a fault naming the cause, and leaves nothing behind.
func TestVMSpawnFailure(t *testing.T) {
	d, o := newVMDriver(t, nil)
	imgs := newImages()
	k := imgs.add(compute.ImageInfo{Name: "broken-kernel", DiskFormat: "aki"}, []byte("this is not a linux kernel"))
	ami := imgs.add(compute.ImageInfo{Name: "broken", DiskFormat: "ami", KernelID: k.ID}, make([]byte, 1<<20))
	e := newSvcEnv(t, d, imgs, compute.Config{MaxAttempts: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := e.svc.CreateServer(e.user, compute.CreateServerOpts{Name: "broken", ImageRef: ami.ID, FlavorRef: e.flavor.ID, NetworksMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	srv = e.settle(ctx, t, srv.ID)
	if srv.VMState != compute.VMError || srv.Fault == nil {
		t.Fatalf("server %s/%s fault %+v, want ERROR with a fault", srv.VMState, srv.TaskState, srv.Fault)
	}
	if !strings.Contains(srv.Fault.Message, "start server") || !strings.Contains(strings.ToLower(srv.Fault.Message), "kernel") {
		t.Fatalf("fault %q does not name the cause", srv.Fault.Message)
	}
	e.wantGone(t, o, srv.ID)
	e.deleteAndWait(ctx, t, srv.ID)
}

// bootUp boots one server through the Service and returns the times to
// ACTIVE and to the guest's first marker.
func bootUp(ctx context.Context, t testing.TB, e *svcEnv, name, imageID string) (id string, active, up time.Duration) {
	t.Helper()
	id, active, up, err := e.bootUpErr(ctx, name, imageID)
	if err != nil {
		t.Fatal(err)
	}
	return id, active, up
}

// bootUpErr is bootUp for any goroutine.
func (e *svcEnv) bootUpErr(ctx context.Context, name, imageID string) (id string, active, up time.Duration, err error) {
	start := time.Now()
	srv, err := e.svc.CreateServer(e.user, compute.CreateServerOpts{Name: name, ImageRef: imageID, FlavorRef: e.flavor.ID,
		NetworksMode: "none", ConfigDrive: true})
	if err != nil {
		return "", 0, 0, err
	}
	srv, err = e.svc.WaitServer(ctx, srv.ID, func(s *compute.Server) bool {
		return s.TaskState == compute.TaskNone && s.VMState != compute.VMBuilding
	})
	if err != nil {
		return "", 0, 0, err
	}
	if srv.VMState != compute.VMActive {
		return srv.ID, 0, 0, fmt.Errorf("boot %s: %s fault %+v", name, srv.VMState, srv.Fault)
	}
	active = time.Since(start)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := e.svc.ConsoleOutput(e.user, srv.ID, 0)
		if err == nil && strings.Contains(out, "stratus-guest: up") {
			return srv.ID, active, time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return srv.ID, active, 0, fmt.Errorf("server %s: no up marker (console error: %w):\n%s", srv.ID, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var errNoMarker = errors.New("no marker")

// waitFile polls a file until it contains want.
func waitFile(p, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), want) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: %w %q after %s", p, errNoMarker, want, timeout)
}

// VirtType auto boots the probe kernel under KVM once, and caches the
// answer: kvm where the guest reaches userspace, qemu where it does not
// (on these machines a nested guest hangs under KVM).
func TestVMVirtTypeAuto(t *testing.T) {
	needVMs(t)
	dir := guestDir(t)
	state := stateDir(t)
	probe := &libvirtvm.KVMProbe{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"), Timeout: 20 * time.Second}
	o := libvirtvm.Options{URI: systemURI, VirtType: libvirtvm.VirtAuto, KVMProbe: probe, StateDir: state, Logger: quiet()}
	d, err := libvirtvm.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	first := d.VirtType()
	_ = d.Close()
	if first != libvirtvm.VirtKVM && first != libvirtvm.VirtQEMU {
		t.Fatalf("auto chose %q", first)
	}
	if !exists(filepath.Join(state, "kvm-probe.json")) {
		t.Fatal("the probe's answer is not cached")
	}
	start := time.Now()
	d, err = libvirtvm.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	if d.VirtType() != first || time.Since(start) > 5*time.Second {
		t.Fatalf("second New: %q after %s, want the cached %q at once", d.VirtType(), time.Since(start), first)
	}
	t.Logf("auto chose %s", first)
}
