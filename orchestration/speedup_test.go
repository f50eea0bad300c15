//go:build !race

package orchestration

import (
	"testing"
	"time"
)

// bestOf runs a create+delete of tmpl three times and returns the fastest.
func bestOf(t *testing.T, tmpl []byte, concurrency int) time.Duration {
	t.Helper()
	s := newService(t, Config{Concurrency: concurrency})
	ctx := member("p1")
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		st, err := s.CreateStack(ctx, CreateStackOpts{Name: "speed", Template: tmpl})
		if err != nil {
			t.Fatal(err)
		}
		if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
			t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
		}
		if err := s.DeleteStack(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
		if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" {
			t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// TestSpeedupStacks holds the engine to its targets: a stack of 100
// control-plane resources created and deleted within 1 s, one of 1,000
// within 10 s, and resources that take time created side by side (at
// least 3x a serial run).
func TestSpeedupStacks(t *testing.T) {
	if d := bestOf(t, bigTemplate(100), 16); d > time.Second {
		t.Errorf("N=100: %v, target 1s", d)
	} else {
		t.Logf("N=100 create+delete: %v", d)
	}
	if d := bestOf(t, bigTemplate(1000), 16); d > 10*time.Second {
		t.Errorf("N=1000: %v, target 10s", d)
	} else {
		t.Logf("N=1000 create+delete: %v", d)
	}
	slow := latencyTemplate(100, 0.005)
	serial, parallel := bestOf(t, slow, 1), bestOf(t, slow, 16)
	ratio := float64(serial) / float64(parallel)
	t.Logf("100 resources of 5 ms: serial %v, concurrency 16 %v: %.1fx", serial, parallel, ratio)
	if ratio < 3 {
		t.Errorf("parallel create+delete only %.1fx a serial one", ratio)
	}
}
