//go:build !race

package network

import (
	"testing"
	"time"
)

// TestSpeedupIPAM: allocation from a /16 in memory runs at 100,000/s or
// more, and does not slow down with the number of addresses taken: a
// linear scan would make an allocation at 85% of a /16 thousands of times
// dearer than at empty. What remains is the store's: inserting into
// go-memdb's radix tree copies nodes whose fan-out grows to 256 as the
// subnet fills (about 2.5x here), a bounded cost. Best of five.
func TestSpeedupIPAM(t *testing.T) {
	const chunk = 4000
	bestEmpty, bestFull := time.Hour, time.Hour
	for range 5 {
		h := newIPAMHarness(t)
		bestEmpty = min(bestEmpty, h.alloc(t, chunk, 256))
		h.alloc(t, 65533*85/100-chunk, 256)
		bestFull = min(bestFull, h.alloc(t, chunk, 256))
	}
	empty := chunk / bestEmpty.Seconds()
	full := chunk / bestFull.Seconds()
	t.Logf("IPAM in memory: %.0f allocs/s empty, %.0f allocs/s at 85-91%% full (full/empty %.2f)", empty, full, full/empty)
	if empty < 100_000 {
		t.Errorf("%.0f allocations/s when empty, want at least 100,000", empty)
	}
	if full/empty < 0.2 {
		t.Errorf("full/empty = %.2f: allocation slows down as the pool fills", full/empty)
	}
}
