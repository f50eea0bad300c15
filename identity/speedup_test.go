//go:build !race

package identity

import (
	"context"
	"testing"
	"time"
)

// TestRevocationCostSpeedup checks that 10,000 revocation events cost
// cached token validation at most 10% of its rate, measured in the same
// run (best of five alternating measurements, the machines being noisy).
func TestRevocationCostSpeedup(t *testing.T) {
	plain, tok1 := benchEnv(t)
	loaded, tok2 := benchEnv(t)
	addRevocations(t, loaded, 10000)
	// Timed by hand: testing.Benchmark would follow -test.benchtime,
	// which make test sets to 1x.
	rate := func(svc *Service, tok string) float64 {
		ctx := context.Background()
		n, start := 0, time.Now()
		for time.Since(start) < 200*time.Millisecond {
			for range 1000 {
				if _, err := svc.ValidateToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			n += 1000
		}
		return float64(n) / time.Since(start).Seconds()
	}
	var none, many float64
	for range 5 {
		none = max(none, rate(plain.svc, tok1))
		many = max(many, rate(loaded.svc, tok2))
	}
	t.Logf("cached validate: %.0f/s without revocation events, %.0f/s with 10,000: %.2fx", none, many, many/none)
	if many < 0.9*none {
		t.Fatalf("10,000 revocation events cost %.0f%% of the validate rate, want at most 10%%", 100*(1-many/none))
	}
}
