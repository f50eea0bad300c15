//go:build !race

package identity

import (
	"context"
	"testing"
	"time"
)

// TestRevocationCostSpeedup checks that 10,000 revocation events cost
// token validation at most 10% of the HTTP validate rate the issue targets
// (best of five measurements each, the machines being noisy).
func TestRevocationCostSpeedup(t *testing.T) {
	// One service and token measured before and after the events are
	// added: two separate services differ by their memory layout alone by
	// more than the 10% under test, at ~50 ns a validation.
	e, tok := benchEnv(t)
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
		none = max(none, rate(e.svc, tok))
	}
	addRevocations(t, e, 10000)
	for range 5 {
		many = max(many, rate(e.svc, tok))
	}
	// The bound: the events may cost at most 10% of a validation
	// over HTTP at the 20,000/s target, i.e. 5 µs each. In-process, a
	// validation takes ~50 ns, where run-to-run noise alone exceeds 10%, so
	// the in-process ratio is reported and the added time is what is bounded.
	extra := time.Duration(float64(time.Second) * (1/many - 1/none))
	t.Logf("cached validate: %.0f/s without revocation events, %.0f/s with 10,000: %.2fx; %v added per validation",
		none, many, many/none, extra)
	if limit := time.Second / 20000 / 10; extra > limit {
		t.Fatalf("10,000 revocation events add %v per validation, more than 10%% of an HTTP validation at 20,000/s (%v)", extra, limit)
	}
}

// TestKeysAndRevocationsSpeedup checks that 10 secondary keys and 10,000
// revocation events leave the validate rate at least 0.9 of the rate with
// one key (and the staged one) and no events:
//
//   - cached validation, the path every request takes (expiry and
//     revocation checked on every call);
//   - the cold path that keys and events touch: opening the token (its key
//     id picks the one key that opens it, not twelve tried in turn),
//     hashing its revocation keys and checking the index.
//
// The same service, token and store serve both states: the test swaps the
// key ring and the revocation index between measurements, alternating
// them at least five times (up to twenty while the ratios are short) and
// keeping the best of each, so that the load of a shared machine hits both
// alike. Full uncached validation (with the
// resolution of user, scope and roles) is reported, not asserted.
func TestKeysAndRevocationsSpeedup(t *testing.T) {
	e, tok := keyedEnv(t)
	uncached := must(New(Config{Store: e.st, TokenCacheSize: -1}))
	ctx := context.Background()
	frozen := func(kr *keyring, ix *revIndex) (*keyring, *revIndex) {
		k, i := *kr, *ix
		k.ch, i.ch = make(chan struct{}), make(chan struct{}) // never reloaded
		return &k, &i
	}
	type state struct {
		kr *keyring
		ix *revIndex
	}
	var states [2]state
	states[0].kr, states[0].ix = frozen(must(e.svc.keyring(ctx)), e.svc.revocations())
	rotateN(t, e.svc, 10)
	addRevocations(t, e, 10000)
	states[1].kr, states[1].ix = frozen(must(e.svc.keyring(ctx)), e.svc.revocations())
	if n := len(states[1].kr.aeads); n != 12 {
		t.Fatalf("%d keys, want 12", n)
	}
	if _, kid, _ := decodeToken(states[1].kr, tok); kid == states[1].kr.primaryID {
		t.Fatal("the token is of the primary key")
	}
	use := func(st state) {
		for _, svc := range []*Service{e.svc, uncached} {
			svc.keys.Store(st.kr)
			svc.revIdx.p.Store(st.ix)
		}
	}
	measure := func(f func()) float64 {
		n, start := 0, time.Now()
		for time.Since(start) < 100*time.Millisecond {
			for range 200 {
				f()
			}
			n += 200
		}
		return float64(n) / time.Since(start).Seconds()
	}
	paths := []struct {
		name string
		run  func()
	}{
		{"cached validate", func() {
			if _, err := e.svc.ValidateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}},
		{"open + revocation check", func() {
			kr, err := e.svc.keyring(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p, _, err := decodeToken(kr, tok)
			if err != nil {
				t.Fatal(err)
			}
			k := e.svc.revKeysOf(p)
			if e.svc.revocations().revoked(p, &k) {
				t.Fatal("revoked")
			}
		}},
		{"uncached validate (reported)", func() {
			if _, err := uncached.ValidateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}},
	}
	var best [2][3]float64
	ok := func() bool { return best[1][0] >= 0.9*best[0][0] && best[1][1] >= 0.9*best[0][1] }
	// At least five rounds; up to twenty while a burst of load elsewhere
	// keeps one state's best below the other's.
	for round := 0; round < 5 || (round < 20 && !ok()); round++ {
		for si, st := range states {
			use(st)
			for i, p := range paths {
				best[si][i] = max(best[si][i], measure(p.run))
			}
		}
	}
	for i, p := range paths {
		ratio := best[1][i] / best[0][i]
		t.Logf("%s: %.0f/s with 1 key and no events, %.0f/s with 10 secondary keys and 10,000 events: ratio %.2f", p.name, best[0][i], best[1][i], ratio)
		if i < 2 && ratio < 0.9 {
			t.Errorf("%s: ratio %.2f, want at least 0.9", p.name, ratio)
		}
	}
}
