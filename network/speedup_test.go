//go:build !race

package network_test

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestSpeedupPortCreate measures durable port creates by 16 concurrent
// callers (bbolt, one fsync per group commit) on a /16, when the pool is
// empty and when it is 81-90% full, beside the store's own group commit of
// minimal writes (one event each, 16 callers) measured right before each
// chunk, so that both see the same disk and the same neighbours: the
// ratio ports/writes is what this code controls, the disk sets the rest.
// Each figure is the best of three pairs.
//
// Asserted: a port create costs about the same near full as when empty (no
// scan as the pool fills); 16 callers go faster than one (they share
// commits); ports/writes is at least 0.12 (about 0.25 on an idle machine,
// nearer 1 when fsync is slow, since then both wait on the disk); and at
// least 1,000 creates/s. The target, 5,000/s, holds on an idle 2-core
// machine with a local SSD (about 10,000/s measured); shared test machines
// are held to the ratio.
func TestSpeedupPortCreate(t *testing.T) {
	const chunk, writes, callers = 2000, 1000, 16
	d := newDurable(t)
	type pair struct{ ports, writes float64 }
	measure := func() pair {
		var best pair
		for range 3 {
			runtime.GC() // no chunk pays for the garbage of the one before
			w := float64(writes) / d.commits(t, writes, callers).Seconds()
			runtime.GC()
			p := float64(chunk) / d.create(t, chunk, callers).Seconds()
			if p/w > best.ports/max(best.writes, 1) {
				best = pair{p, w}
			}
		}
		return best
	}
	single := float64(200) / slices.Min([]time.Duration{d.create(t, 200, 1), d.create(t, 200, 1)}).Seconds()
	empty := measure()
	start := time.Now()
	d.fill(t, 65533*81/100-3*chunk)
	fillTook := time.Since(start)
	full := measure()
	// Near full against empty, each against the store's floor of its time.
	fullEmpty := (full.ports / full.writes) / (empty.ports / empty.writes)
	t.Logf("durable port creates, /16: %.0f/s with 16 callers empty, %.0f/s at 81-90%% full (full/empty %.2f, %.2f against the store's rate); %.0f/s with 1 caller (group commit x%.1f); store group commit of minimal writes in the same run %.0f/s and %.0f/s (ports/writes %.2f empty, %.2f full); bulk fill of %d ports %v",
		empty.ports, full.ports, full.ports/empty.ports, fullEmpty, single, empty.ports/single, empty.writes, full.writes,
		empty.ports/empty.writes, full.ports/full.writes, 65533*81/100, fillTook.Round(time.Millisecond))
	if fullEmpty < 0.4 {
		t.Errorf("full/empty = %.2f against the store's rate: port creates slow down as the pool fills", fullEmpty)
	}
	if empty.ports/single < 1.5 {
		t.Errorf("16 callers create ports %.1fx as fast as one, want at least 1.5x (group commit)", empty.ports/single)
	}
	for _, p := range []pair{empty, full} {
		if p.ports/p.writes < 0.12 {
			t.Errorf("port creates at %.2f of the store's minimal write rate (%.0f/s against %.0f/s), want at least 0.12", p.ports/p.writes, p.ports, p.writes)
		}
		if p.ports < 1000 {
			t.Errorf("%.0f durable port creates/s, want at least 1,000 (5,000 on an idle machine)", p.ports)
		}
	}
}
