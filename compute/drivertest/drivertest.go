// Package drivertest is the conformance suite every compute.Hypervisor
// passes, the fake and the real (libvirt) alike. A driver's test file calls
// Run with a function that makes a fresh harness.
//
// The minimum every driver supports: spawn (idempotent), destroy, power
// off and on, soft and hard reboot, console output, state, a List limited
// to Stratus's own domains, and host stats. Pause and suspend, and volume
// hot-plug, are tested when Capabilities says the driver has them.
package drivertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Harness is one driver under test.
type Harness struct {
	// Driver is the driver; Run closes it at the end of each test.
	Driver compute.Hypervisor
	// Spec returns a spec valid on this backend for a new server id
	// (image, disks ...). Nil means SampleSpec.
	Spec func(serverID string) *compute.DomainSpec
	// Timeout bounds each operation. Default 2 minutes.
	Timeout time.Duration
	// NewVolume returns the connection info of a fresh volume this
	// backend can hot-plug. Nil skips the hot-plug test (a backend whose
	// domains run no guest OS cannot finish a hot-unplug: the real
	// driver's is tested with the tiny guest instead).
	NewVolume func(t *testing.T) compute.ConnectionInfo
	// Disks, when set, returns the guest device names ("vda", "vdb") of
	// a domain's disks, so that the suite sees hot-plug take effect.
	Disks func(t *testing.T, serverID string) []string
}

// SampleSpec is a small spec with no image, NICs or volumes.
func SampleSpec(serverID string) *compute.DomainSpec {
	return &compute.DomainSpec{ServerID: serverID, Name: "dt-" + serverID[:8], ProjectID: "drivertest", VCPUs: 1, MemoryMB: 64}
}

// NewServerID returns a fresh random server uuid.
func NewServerID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Run runs the suite.
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *Harness)
	}{
		{"SpawnIsIdempotent", testSpawn},
		{"MissingIsNotFound", testMissing},
		{"PowerCycle", testPowerCycle},
		{"Reboot", testReboot},
		{"PauseAndSuspend", testPauseSuspend},
		{"ConsoleOutput", testConsole},
		{"DestroyThenList", testDestroy},
		{"Stats", testStats},
		{"CanceledContext", testCanceled},
		{"ConcurrentSpawns", testConcurrent},
		{"VolumeHotPlug", testVolumes},
		{"Resize", testResize},
		{"Snapshot", testSnapshot},
		{"Rescue", testRescue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Spec == nil {
				h.Spec = SampleSpec
			}
			if h.Timeout == 0 {
				h.Timeout = 2 * time.Minute
			}
			t.Cleanup(func() { _ = h.Driver.Close() })
			tc.fn(t, h)
		})
	}
}

func (h *Harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func (h *Harness) spawn(t *testing.T) string {
	t.Helper()
	id := NewServerID()
	if err := h.Driver.Spawn(h.ctx(t), h.Spec(id)); err != nil {
		t.Fatalf("Spawn %s: %v", id, err)
	}
	t.Cleanup(func() { _ = h.Driver.Destroy(context.Background(), id) })
	return id
}

func (h *Harness) wantPower(t *testing.T, id string, want compute.PowerState) {
	t.Helper()
	st, err := h.Driver.State(h.ctx(t), id)
	if err != nil {
		t.Fatalf("State %s: %v", id, err)
	}
	if st.Power != want {
		t.Fatalf("server %s power %s, want %s", id, st.Power, want)
	}
	if !st.Stratus || st.ServerID != id {
		t.Fatalf("State %s = %+v: want the Stratus mark and the server id", id, st)
	}
}

func testSpawn(t *testing.T, h *Harness) {
	id := h.spawn(t)
	h.wantPower(t, id, compute.PowerRunning)
	if err := h.Driver.Spawn(h.ctx(t), h.Spec(id)); err != nil {
		t.Fatalf("second Spawn of %s: %v (must be idempotent)", id, err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	doms, err := h.Driver.List(h.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range doms {
		if !d.Stratus {
			t.Errorf("List returned a domain without the Stratus mark: %+v", d)
		}
		if d.ServerID == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("List has %d domains for %s, want 1: %+v", n, id, doms)
	}
}

func wantNotFound(t *testing.T, what, id string, err error) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("%s of missing %s: %v, want ErrNotFound", what, id, err)
		return
	}
	if !strings.Contains(err.Error(), id) {
		t.Errorf("%s of missing %s: message %q does not name the id", what, id, err)
	}
}

func testMissing(t *testing.T, h *Harness) {
	ctx := h.ctx(t)
	id := NewServerID()
	_, err := h.Driver.State(ctx, id)
	wantNotFound(t, "State", id, err)
	wantNotFound(t, "Destroy", id, h.Driver.Destroy(ctx, id))
	wantNotFound(t, "PowerOn", id, h.Driver.PowerOn(ctx, id))
	wantNotFound(t, "PowerOff", id, h.Driver.PowerOff(ctx, id, time.Second))
	wantNotFound(t, "Reboot", id, h.Driver.Reboot(ctx, id, true))
	_, err = h.Driver.ConsoleOutput(ctx, id, 10)
	wantNotFound(t, "ConsoleOutput", id, err)
}

func testPowerCycle(t *testing.T, h *Harness) {
	ctx := h.ctx(t)
	id := h.spawn(t)
	if err := h.Driver.PowerOff(ctx, id, 5*time.Second); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	h.wantPower(t, id, compute.PowerShutdown)
	if err := h.Driver.PowerOff(ctx, id, 5*time.Second); err != nil {
		t.Fatalf("PowerOff of a stopped domain: %v (want nil)", err)
	}
	if err := h.Driver.PowerOn(ctx, id); err != nil {
		t.Fatalf("PowerOn: %v", err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	if err := h.Driver.PowerOn(ctx, id); err != nil {
		t.Fatalf("PowerOn of a running domain: %v (want nil)", err)
	}
}

func testReboot(t *testing.T, h *Harness) {
	ctx := h.ctx(t)
	id := h.spawn(t)
	if err := h.Driver.Reboot(ctx, id, false); err != nil {
		t.Fatalf("soft Reboot: %v", err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	if err := h.Driver.Reboot(ctx, id, true); err != nil {
		t.Fatalf("hard Reboot: %v", err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	if err := h.Driver.PowerOff(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := h.Driver.Reboot(ctx, id, true); err != nil {
		t.Fatalf("hard Reboot of a stopped domain: %v", err)
	}
	h.wantPower(t, id, compute.PowerRunning)
}

func testPauseSuspend(t *testing.T, h *Harness) {
	ctx := h.ctx(t)
	caps := h.Driver.Capabilities()
	id := h.spawn(t)
	if caps.Pause {
		if err := h.Driver.Pause(ctx, id); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		h.wantPower(t, id, compute.PowerPaused)
		if err := h.Driver.Unpause(ctx, id); err != nil {
			t.Fatalf("Unpause: %v", err)
		}
		h.wantPower(t, id, compute.PowerRunning)
	} else if err := h.Driver.Pause(ctx, id); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("Pause without the capability: %v, want ErrUnsupported", err)
	}
	if caps.Suspend {
		if err := h.Driver.Suspend(ctx, id); err != nil {
			t.Fatalf("Suspend: %v", err)
		}
		h.wantPower(t, id, compute.PowerSuspended)
		if err := h.Driver.Resume(ctx, id); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		h.wantPower(t, id, compute.PowerRunning)
	} else if err := h.Driver.Suspend(ctx, id); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("Suspend without the capability: %v, want ErrUnsupported", err)
	}
}

func testConsole(t *testing.T, h *Harness) {
	ctx := h.ctx(t)
	id := h.spawn(t)
	out, err := h.Driver.ConsoleOutput(ctx, id, 0)
	if err != nil {
		t.Fatalf("ConsoleOutput: %v", err)
	}
	if strings.TrimSpace(out) == "" {
		t.Fatal("ConsoleOutput is empty after spawn")
	}
	one, err := h.Driver.ConsoleOutput(ctx, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimRight(one, "\n"), "\n"); n > 0 {
		t.Fatalf("ConsoleOutput(lines=1) returned %d lines", n+1)
	}
}

func testDestroy(t *testing.T, h *Harness) {
	ctx := h.ctx(t)
	id := h.spawn(t)
	if err := h.Driver.Destroy(ctx, id); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	_, err := h.Driver.State(ctx, id)
	wantNotFound(t, "State after Destroy", id, err)
	doms, err := h.Driver.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.ServerID == id {
			t.Fatalf("List still has %s after Destroy", id)
		}
	}
	wantNotFound(t, "second Destroy", id, h.Driver.Destroy(ctx, id))
}

func testStats(t *testing.T, h *Harness) {
	st, err := h.Driver.Stats(h.ctx(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.VCPUs <= 0 || st.MemoryMB <= 0 {
		t.Fatalf("Stats = %+v: want positive vcpus and memory", st)
	}
	if c := h.Driver.Capabilities(); c.Type == "" {
		t.Fatal("Capabilities.Type is empty")
	}
}

func testCanceled(t *testing.T, h *Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := NewServerID()
	if err := h.Driver.Spawn(ctx, h.Spec(id)); err == nil {
		_ = h.Driver.Destroy(context.Background(), id)
		t.Fatal("Spawn with a canceled context succeeded")
	}
}

func testConcurrent(t *testing.T, h *Harness) {
	const n = 4
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		ids[i] = NewServerID()
		wg.Go(func() { errs[i] = h.Driver.Spawn(h.ctx(t), h.Spec(ids[i])) })
	}
	wg.Wait()
	for i, id := range ids {
		t.Cleanup(func() { _ = h.Driver.Destroy(context.Background(), id) })
		if errs[i] != nil {
			t.Fatalf("concurrent Spawn %s: %v", id, errs[i])
		}
		h.wantPower(t, id, compute.PowerRunning)
	}
}

// testVolumes: attach and detach are idempotent, take effect on the
// domain's disks, and name a missing server.
func testVolumes(t *testing.T, h *Harness) {
	if !h.Driver.Capabilities().VolumeAttach {
		t.Skip("the driver does not hot-plug volumes")
	}
	if h.NewVolume == nil {
		t.Skip("the harness has no volumes to hot-plug")
	}
	ctx := h.ctx(t)
	missing := NewServerID()
	a := compute.DiskAttachment{VolumeID: "dt-vol-1", Device: "/dev/vdb", BootIndex: -1, Connection: h.NewVolume(t)}
	wantNotFound(t, "AttachVolume", missing, h.Driver.AttachVolume(ctx, missing, a))
	wantNotFound(t, "DetachVolume", missing, h.Driver.DetachVolume(ctx, missing, a.VolumeID))
	id := h.spawn(t)
	before := h.disks(t, id)
	for i := range 2 {
		if err := h.Driver.AttachVolume(ctx, id, a); err != nil {
			t.Fatalf("AttachVolume #%d: %v (must be idempotent)", i+1, err)
		}
	}
	if h.Disks != nil {
		after := h.disks(t, id)
		if len(after) != len(before)+1 {
			t.Fatalf("disks before attach %v, after %v: want exactly one more", before, after)
		}
	}
	b := compute.DiskAttachment{VolumeID: "dt-vol-2", BootIndex: -1, Connection: h.NewVolume(t)}
	if err := h.Driver.AttachVolume(ctx, id, b); err != nil {
		t.Fatalf("AttachVolume of a second volume: %v", err)
	}
	if h.Disks != nil {
		d := h.disks(t, id)
		if len(d) != len(before)+2 || len(slices.Compact(slices.Sorted(slices.Values(d)))) != len(d) {
			t.Fatalf("disks with two volumes: %v (before %v): want two more, all names distinct", d, before)
		}
	}
	for _, v := range []string{a.VolumeID, b.VolumeID} {
		if err := h.Driver.DetachVolume(ctx, id, v); err != nil {
			t.Fatalf("DetachVolume %s: %v", v, err)
		}
	}
	if err := h.Driver.DetachVolume(ctx, id, a.VolumeID); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("DetachVolume of a detached volume: %v, want nil or ErrNotFound", err)
	}
	if h.Disks != nil {
		if after := h.disks(t, id); !slices.Equal(after, before) {
			t.Fatalf("disks after detach %v, want %v", after, before)
		}
	}
	h.wantPower(t, id, compute.PowerRunning)
}

func (h *Harness) disks(t *testing.T, id string) []string {
	t.Helper()
	if h.Disks == nil {
		return nil
	}
	return slices.Sorted(slices.Values(h.Disks(t, id)))
}
