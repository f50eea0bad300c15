package ring_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stratuskit/stratus/objectstore/ring"
)

func devs(n int) []ring.Device {
	var out []ring.Device
	for i := range n {
		out = append(out, ring.Device{ID: fmt.Sprintf("d%d", i), Zone: i + 1, Path: fmt.Sprintf("/srv/%d", i)})
	}
	return out
}

// distinct checks that no partition has two replicas on one device, nor
// in one zone when there are enough zones.
func distinct(t *testing.T, r *ring.Ring) {
	t.Helper()
	zones := map[int]bool{}
	for _, d := range r.Devices {
		zones[d.Zone] = true
	}
	for p := range r.Parts() {
		ids, zs := map[string]bool{}, map[int]bool{}
		for _, d := range r.Nodes(p) {
			if ids[d.ID] {
				t.Fatalf("partition %d twice on %s", p, d.ID)
			}
			ids[d.ID] = true
			zs[d.Zone] = true
		}
		if len(zs) < min(len(zones), len(r.Assign)) {
			t.Fatalf("partition %d spans %d zones of %d", p, len(zs), len(zones))
		}
	}
}

func TestRingMovement(t *testing.T) {
	r, err := ring.Build(devs(3), 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	distinct(t, r)
	total := r.Parts() * 3
	// Adding a 4th device moves a quarter of the replicas, not all.
	r4, moved, err := r.Rebalance(devs(4))
	if err != nil {
		t.Fatal(err)
	}
	distinct(t, r4)
	t.Logf("3→4 devices: moved %d of %d replicas (%.1f%%)", moved, total, 100*float64(moved)/float64(total))
	if lo, hi := total/4-total/50, total/4+total/50; moved < lo || moved > hi {
		t.Fatalf("adding a 4th device moved %d of %d replicas, want about a quarter (%d..%d)", moved, total, lo, hi)
	}
	for id, n := range r4.Counts() {
		if n < total/4-2 || n > total/4+2 {
			t.Fatalf("device %s holds %d replicas, want about %d", id, n, total/4)
		}
	}
	// A partition keeps at least two of its three devices.
	for p := range r.Parts() {
		old := map[string]bool{}
		for _, d := range r.Nodes(p) {
			old[d.ID] = true
		}
		kept := 0
		for _, d := range r4.Nodes(p) {
			if old[d.ID] {
				kept++
			}
		}
		if kept < 2 {
			t.Fatalf("partition %d kept %d of its devices", p, kept)
		}
	}
	// Removing it again moves exactly what it held.
	held := r4.Counts()["d3"]
	r3, moved, err := r4.Rebalance(devs(3))
	if err != nil {
		t.Fatal(err)
	}
	distinct(t, r3)
	if moved != held {
		t.Fatalf("removing d3 moved %d replicas, it held %d", moved, held)
	}
	// Rebalancing an unchanged ring moves nothing.
	if _, moved, _ := r3.Rebalance(devs(3)); moved != 0 {
		t.Fatalf("no-op rebalance moved %d", moved)
	}
	if r3.Version != 3 {
		t.Fatalf("version %d, want 3", r3.Version)
	}
}

func TestRingSaveLoadHandoffs(t *testing.T) {
	r, err := ring.Build(devs(5), 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ring.json")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	l, err := ring.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for p := range r.Parts() {
		a, b := r.Nodes(p), l.Nodes(p)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("partition %d differs after load", p)
			}
		}
		h := r.Handoffs(p)
		if len(h) != 2 {
			t.Fatalf("partition %d: %d handoffs, want 2", p, len(h))
		}
		for _, d := range h {
			for _, n := range a {
				if d.ID == n.ID {
					t.Fatalf("handoff %s is a primary of %d", d.ID, p)
				}
			}
		}
	}
	// Fewer devices than replicas: every device holds every partition.
	small, err := ring.Build(devs(2), 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Nodes(0)) != 2 {
		t.Fatalf("2 devices give %d replicas", len(small.Nodes(0)))
	}
	if _, err := ring.Build([]ring.Device{{ID: "a"}, {ID: "a"}}, 4, 3); err == nil {
		t.Fatal("repeated device id accepted")
	}
}

func TestRingZonesWeights(t *testing.T) {
	// Two zones of two devices: every partition spans both zones.
	ds := devs(4)
	ds[0].Zone, ds[1].Zone, ds[2].Zone, ds[3].Zone = 1, 1, 2, 2
	r, err := ring.Build(ds, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	distinct(t, r)
	// A device of weight 2 holds twice the replicas of one of weight 1.
	ds = devs(3)
	ds[2].Weight = 2
	r, err = ring.Build(ds, 8, 2)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Counts()
	if c["d2"] < 2*c["d0"]-4 || c["d2"] > 2*c["d0"]+4 {
		t.Fatalf("counts %v: the weight-2 device should hold twice as many", c)
	}
}
