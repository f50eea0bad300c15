//go:build !race

package boltstore_test

import (
	"testing"
	"time"

	"github.com/stratuskit/stratus/store/boltstore"
	"github.com/stratuskit/stratus/store/storetest"
)

// TestGroupCommitSpeedup checks that 16 concurrent writers get at least 5
// times the acknowledged durable transactions per second of one writer, on
// the same disk in the same run. It is left out of -race builds, whose
// slowdown of the CPU-bound part hides the fsync that group commit shares.
func TestGroupCommitSpeedup(t *testing.T) {
	// The disks here are shared and noisy: take the best of five
	// alternating measurements of each.
	cfg := configWith(&boltstore.Options{Preallocate: 64 << 20})
	var one, many float64
	for range 5 {
		one = max(one, storetest.CommitRate(t, cfg, 1, 500*time.Millisecond))
		many = max(many, storetest.CommitRate(t, cfg, 16, 500*time.Millisecond))
	}
	ratio := many / one
	t.Logf("durable commits: 1 writer %.0f tx/s, 16 writers %.0f tx/s: %.1fx", one, many, ratio)
	if ratio < 5 {
		t.Fatalf("group commit gives %.1fx the single-writer rate, want at least 5x", ratio)
	}
}
