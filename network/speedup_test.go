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
// Each rate is the best of three chunks; each ratio the best of three
// pairs of chunks.
//
// Asserted: a port create costs about the same near full as when empty (no
// scan as the pool fills); 16 callers go faster than one (they share
// commits); ports/writes is at least 0.08 (0.12-0.3 when the disk is
// quiet, nearer 1 when fsync is slow, since then both wait on it); and at
// least 1,000 creates/s. The target, 5,000/s, holds whenever the store
// itself commits 16 writers' minimal writes at 40,000/s or more (5,000 to
// 8,400 port creates/s measured on a 2-core machine shared with other
// builds); when the disk is so contended that the store's own rate falls
// to 4,000/s, no commit-per-create reaches it, and the ratio is held.
func TestSpeedupPortCreate(t *testing.T) {
	const chunk, writes, callers = 2000, 1000, 16
	d := newDurable(t)
	// rates is the best of three chunks of each, and the best ratio of a
	// chunk of creates to the chunk of writes just before it.
	type rates struct{ ports, writes, ratio float64 }
	measure := func() rates {
		var r rates
		for range 3 {
			runtime.GC() // no chunk pays for the garbage of the one before
			w := float64(writes) / d.commits(t, writes, callers).Seconds()
			runtime.GC()
			p := float64(chunk) / d.create(t, chunk, callers).Seconds()
			r = rates{max(r.ports, p), max(r.writes, w), max(r.ratio, p/w)}
		}
		return r
	}
	single := float64(200) / slices.Min([]time.Duration{d.create(t, 200, 1), d.create(t, 200, 1)}).Seconds()
	empty := measure()
	start := time.Now()
	d.fill(t, 65533*81/100-3*chunk)
	fillTook := time.Since(start)
	full := measure()
	// Near full against empty: as measured, and each against the store's
	// best rate of its time (the best chunk pairs are too noisy for a
	// ratio of ratios: one slow chunk of writes makes a lucky pair). A
	// scan as the pool fills slows both.
	fullEmpty := max(full.ports/empty.ports, (full.ports/full.writes)/(empty.ports/empty.writes))
	t.Logf("durable port creates, /16: %.0f/s with 16 callers empty, %.0f/s at 81-90%% full (full/empty %.2f, asserted %.2f); %.0f/s with 1 caller (group commit x%.1f); store group commit of minimal writes in the same run %.0f/s and %.0f/s (best ports/best writes %.2f empty, %.2f full; best chunk pair %.2f and %.2f); bulk fill of %d ports %v",
		empty.ports, full.ports, full.ports/empty.ports, fullEmpty, single, empty.ports/single, empty.writes, full.writes,
		empty.ports/empty.writes, full.ports/full.writes, empty.ratio, full.ratio, 65533*81/100, fillTook.Round(time.Millisecond))
	if fullEmpty < 0.4 {
		t.Errorf("full/empty = %.2f: port creates slow down as the pool fills", fullEmpty)
	}
	// Group commit pays when a commit (fsync) costs more than a port's
	// CPU: one caller below 2,500/s. When fsync is nearly free (one caller
	// at 4,000-5,000/s was seen) both rates are bound by the CPU and the
	// ratio says nothing.
	if single < 2500 && empty.ports/single < 1.5 {
		t.Errorf("16 callers create ports %.1fx as fast as one, want at least 1.5x (group commit)", empty.ports/single)
	}
	for _, r := range []rates{empty, full} {
		if r.ratio < 0.08 {
			t.Errorf("port creates at %.2f of the store's minimal write rate, want at least 0.08", r.ratio)
		}
		if r.ports < 1000 {
			t.Errorf("%.0f durable port creates/s, want at least 1,000 (5,000 on an idle machine)", r.ports)
		}
	}
}
