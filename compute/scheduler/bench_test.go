package scheduler

import (
	"fmt"
	"testing"
)

func hostsN(n int) []Host {
	hs := make([]Host, n)
	for i := range hs {
		hs[i] = Host{ID: fmt.Sprintf("h%05d", i), AZ: "nova", Enabled: true, Up: true, VCPUs: 64, RAMMB: 65536, DiskGB: 1000,
			CPURatio: 16, RAMRatio: 1.5, DiskRatio: 1, UsedVCPUs: i % 64, UsedRAMMB: (i * 512) % 65536}
		hs[i].Init()
	}
	return hs
}

// BenchmarkBest is the scheduler alone (no claim) over 1,000 and 10,000
// hosts, scanning all and sampling 64.
func BenchmarkBest(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		hs := hostsN(n)
		r := &Request{VCPUs: 1, RAMMB: 512, DiskGB: 1}
		for _, lim := range []int{0, 64} {
			b.Run(fmt.Sprintf("hosts=%d/limit=%d", n, lim), func(b *testing.B) {
				for b.Loop() {
					if Best(hs, r, &Options{Limit: lim}) < 0 {
						b.Fatal("no host")
					}
				}
			})
		}
	}
}
