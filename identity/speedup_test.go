//go:build !race

package identity

import (
	"context"
	"testing"
)

// TestRevocationCostSpeedup checks that 10,000 revocation events cost
// cached token validation at most 10% of its rate, measured in the same
// run (best of three alternating measurements, the machines being noisy).
func TestRevocationCostSpeedup(t *testing.T) {
	plain, tok1 := benchEnv(t)
	loaded, tok2 := benchEnv(t)
	addRevocations(t, loaded, 10000)
	rate := func(svc *Service, tok string) float64 {
		r := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if _, err := svc.ValidateToken(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		return float64(r.N) / r.T.Seconds()
	}
	var none, many float64
	for range 3 {
		none = max(none, rate(plain.svc, tok1))
		many = max(many, rate(loaded.svc, tok2))
	}
	t.Logf("cached validate: %.0f/s without revocation events, %.0f/s with 10,000: %.2fx", none, many, many/none)
	if many < 0.9*none {
		t.Fatalf("10,000 revocation events cost %.0f%% of the validate rate, want at most 10%%", 100*(1-many/none))
	}
}
