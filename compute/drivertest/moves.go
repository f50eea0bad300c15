package drivertest

import (
	"errors"
	"io"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// The optional interfaces compute II uses: each test checks a driver
// that implements the interface, and only logs for one that does not.

func testResize(t *testing.T, h *Harness) {
	rz, ok := h.Driver.(compute.Resizer)
	if !ok {
		t.Log("the driver has no Resizer")
		return
	}
	id := h.spawn(t)
	if err := h.Driver.PowerOff(h.ctx(t), id, 0); err != nil {
		t.Fatal(err)
	}
	spec := h.Spec(id)
	spec.VCPUs, spec.MemoryMB = spec.VCPUs+1, spec.MemoryMB*2
	for range 2 { // idempotent
		if err := rz.Resize(h.ctx(t), id, spec); err != nil {
			t.Fatalf("Resize %s: %v", id, err)
		}
	}
	if err := h.Driver.PowerOn(h.ctx(t), id); err != nil {
		t.Fatalf("PowerOn after Resize: %v", err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	missing := h.Spec(NewServerID())
	if err := rz.Resize(h.ctx(t), missing.ServerID, missing); !errdefs.IsNotFound(err) {
		t.Fatalf("Resize of a missing domain: %v, want NotFound", err)
	}
}

func testSnapshot(t *testing.T, h *Harness) {
	sn, ok := h.Driver.(compute.Snapshotter)
	if !ok {
		t.Log("the driver has no Snapshotter")
		return
	}
	id := h.spawn(t)
	rc, format, err := sn.Snapshot(h.ctx(t), id)
	if errors.Is(err, errdefs.ErrUnsupported) && h.Spec(id).Image == nil {
		t.Logf("no root disk to snapshot without an image: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("Snapshot %s: %v", id, err)
	}
	b, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || len(b) == 0 || (format != "raw" && format != "qcow2") {
		t.Fatalf("snapshot of %s: %d bytes, format %q, %v", id, len(b), format, err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	if _, _, err := sn.Snapshot(h.ctx(t), NewServerID()); !errdefs.IsNotFound(err) {
		t.Fatalf("Snapshot of a missing domain: %v, want NotFound", err)
	}
}

func testRescue(t *testing.T, h *Harness) {
	r, ok := h.Driver.(compute.Rescuer)
	if !ok {
		t.Log("the driver has no Rescuer")
		return
	}
	id := h.spawn(t)
	err := r.Rescue(h.ctx(t), h.Spec(id))
	if errors.Is(err, errdefs.ErrInvalid) && h.Spec(id).Image == nil {
		t.Logf("no rescue without an image: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("Rescue %s: %v", id, err)
	}
	h.wantPower(t, id, compute.PowerRunning)
	for range 2 {
		if err := r.Unrescue(h.ctx(t), id); err != nil {
			t.Fatalf("Unrescue %s: %v", id, err)
		}
	}
	h.wantPower(t, id, compute.PowerRunning)
}
