package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func host(id string, vcpus, ram int) Host {
	h := Host{ID: id, AZ: "nova", Enabled: true, Up: true, VCPUs: vcpus, RAMMB: ram, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}
	h.Init()
	return h
}

func TestFilters(t *testing.T) {
	base := func() Host { return host("h1", 4, 4096) }
	cases := []struct {
		name string
		mod  func(h *Host, r *Request)
		why  string
	}{
		{"fits", func(*Host, *Request) {}, ""},
		{"disabled", func(h *Host, _ *Request) { h.Enabled = false }, "ComputeFilter (disabled)"},
		{"down", func(h *Host, _ *Request) { h.Up = false }, "ComputeFilter (down)"},
		{"ram", func(h *Host, _ *Request) { h.UsedRAMMB = 4000 }, "RamFilter"},
		{"cores", func(h *Host, _ *Request) { h.UsedVCPUs = 4 }, "CoreFilter"},
		{"disk", func(_ *Host, r *Request) { r.DiskGB = 101 }, "DiskFilter"},
		{"az", func(_ *Host, r *Request) { r.AZ = "other" }, "AvailabilityZoneFilter"},
		{"tried", func(_ *Host, r *Request) { r.Ignore = []string{"h1"} }, "RetryFilter"},
		{"aggregate spec missing", func(_ *Host, r *Request) {
			r.ExtraSpecs = map[string]string{"aggregate_instance_extra_specs:ssd": "true"}
		}, "AggregateInstanceExtraSpecsFilter"},
		{"aggregate spec matches", func(h *Host, r *Request) {
			r.ExtraSpecs = map[string]string{"aggregate_instance_extra_specs:ssd": "true", "hw:cpu_policy": "x"}
			h.AggregateMetadata = map[string]string{"ssd": "true"}
		}, ""},
		{"image hypervisor", func(h *Host, r *Request) {
			h.HypervisorType = "QEMU"
			r.ImageProperties = map[string]string{"hypervisor_type": "xen"}
		}, "ImagePropertiesFilter"},
		{"image hypervisor ok", func(h *Host, r *Request) {
			h.HypervisorType = "QEMU"
			r.ImageProperties = map[string]string{"hypervisor_type": "qemu"}
		}, ""},
		{"anti-affinity", func(_ *Host, r *Request) { r.GroupPolicy, r.GroupHosts = AntiAffinity, map[string]int{"h1": 1} }, "ServerGroupAntiAffinityFilter"},
		{"anti-affinity max 2", func(_ *Host, r *Request) {
			r.GroupPolicy, r.GroupHosts, r.MaxServerPerHost = AntiAffinity, map[string]int{"h1": 1}, 2
		}, ""},
		{"affinity elsewhere", func(_ *Host, r *Request) { r.GroupPolicy, r.GroupHosts = Affinity, map[string]int{"h2": 1} }, "ServerGroupAffinityFilter"},
		{"affinity first member", func(_ *Host, r *Request) { r.GroupPolicy = Affinity }, ""},
		{"soft anti-affinity never filters", func(_ *Host, r *Request) {
			r.GroupPolicy, r.GroupHosts = SoftAntiAffinity, map[string]int{"h1": 5}
		}, ""},
		{"same host", func(_ *Host, r *Request) { r.SameHost = []string{"h2"} }, "SameHostFilter"},
		{"different host", func(_ *Host, r *Request) { r.DifferentHost = []string{"h1"} }, "DifferentHostFilter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			r := &Request{VCPUs: 1, RAMMB: 512, DiskGB: 1}
			tc.mod(&h, r)
			h.Init()
			if got := Why(&h, r); got != tc.why {
				t.Fatalf("Why = %q, want %q", got, tc.why)
			}
			if Pass(&h, r) != (tc.why == "") {
				t.Fatalf("Pass = %v, Why = %q", Pass(&h, r), tc.why)
			}
		})
	}
}

func TestRatiosAndReasons(t *testing.T) {
	h := Host{ID: "h", Enabled: true, Up: true, VCPUs: 2, RAMMB: 1000, DiskGB: 10, CPURatio: 16, RAMRatio: 1.5, ReservedRAMMB: 100}
	if h.FreeVCPUs() != 32 || h.FreeRAMMB() != 1350 || h.FreeDiskGB() != 10 {
		t.Fatalf("free %d %d %d", h.FreeVCPUs(), h.FreeRAMMB(), h.FreeDiskGB())
	}
	h.Init()
	if h.FreeVCPUs() != 32 || h.FreeRAMMB() != 1350 {
		t.Fatalf("after Init free %d %d", h.FreeVCPUs(), h.FreeRAMMB())
	}
	hosts := []Host{host("a", 1, 100), host("b", 1, 100), host("c", 8, 8192)}
	hosts[2].Enabled = false
	r := &Request{VCPUs: 2, RAMMB: 512}
	if Best(hosts, r, nil) != -1 {
		t.Fatal("a host was chosen")
	}
	got := Reasons(hosts, r)
	if !strings.Contains(got, "RamFilter rejected 2 of 3 hosts") || !strings.Contains(got, "ComputeFilter (disabled) rejected 1 of 3 hosts") {
		t.Fatalf("reasons %q", got)
	}
	if Reasons(nil, r) != "there are no compute hosts" {
		t.Fatal("no hosts")
	}
}

// place puts n servers of r, one by one, on hosts (updating usage) and
// returns how many each host got.
func place(hosts []Host, r Request, o *Options, n int) []int {
	counts := make([]int, len(hosts))
	for range n {
		i := Best(hosts, &r, o)
		if i < 0 {
			break
		}
		hosts[i].UsedVCPUs += r.VCPUs
		hosts[i].UsedRAMMB += r.RAMMB
		counts[i]++
	}
	return counts
}

func spread(counts []int) (lo, hi, used int) {
	lo = 1 << 30
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
		if c > 0 {
			used++
		}
	}
	return lo, hi, used
}

func cloud(n int) []Host {
	hs := make([]Host, n)
	for i := range hs {
		hs[i] = host(fmt.Sprintf("h%d", i), 16, 16384)
	}
	return hs
}

// TestSpreadAndPack: positive weights spread evenly; negative pack onto the
// fewest hosts. Scanning every host is exact; sampling (Limit, from a
// random offset) spreads within 2 per host and packs onto at most a third
// more hosts than needed: the measured price of sampling.
func TestSpreadAndPack(t *testing.T) {
	r := Request{VCPUs: 1, RAMMB: 1024}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		o       *Options
		maxDiff int
	}{{&Options{}, 1}, {&Options{Limit: 16, Rand: rnd}, 2}} {
		counts := place(cloud(100), r, tc.o, 500)
		lo, hi, _ := spread(counts)
		if hi-lo > tc.maxDiff {
			t.Errorf("spread limit=%d: %d to %d servers per host, want within %d", tc.o.Limit, lo, hi, tc.maxDiff)
		}
		t.Logf("spread limit=%d: %d to %d servers per host", tc.o.Limit, lo, hi)
	}
	for _, tc := range []struct {
		o       *Options
		maxUsed int
	}{{&Options{RAMWeight: -1}, 32}, {&Options{RAMWeight: -1, Limit: 16, Rand: rnd}, 43}} {
		counts := place(cloud(100), r, tc.o, 500)
		_, _, used := spread(counts)
		if used > tc.maxUsed { // 16 servers of 1 GB fill a 16 GB host: 32 at best
			t.Errorf("pack limit=%d used %d hosts, want at most %d", tc.o.Limit, used, tc.maxUsed)
		}
		t.Logf("pack limit=%d: %d hosts used (32 needed)", tc.o.Limit, used)
	}
}

func TestSoftAffinity(t *testing.T) {
	hosts := cloud(4)
	r := Request{VCPUs: 1, RAMMB: 1024, GroupPolicy: SoftAffinity, GroupHosts: map[string]int{"h2": 1}}
	if i := Best(hosts, &r, nil); hosts[i].ID != "h2" {
		t.Fatalf("soft affinity chose %s", hosts[i].ID)
	}
	r.GroupPolicy, r.GroupHosts = SoftAntiAffinity, map[string]int{"h0": 1, "h1": 1, "h2": 1}
	if i := Best(hosts, &r, nil); hosts[i].ID != "h3" {
		t.Fatalf("soft anti-affinity chose %s", hosts[i].ID)
	}
	// Soft anti-affinity still places when every host has a member.
	r.GroupHosts["h3"] = 1
	if Best(hosts, &r, nil) < 0 {
		t.Fatal("soft anti-affinity refused")
	}
	if c := Select(hosts, &r, nil); len(c) != 4 || c[0].Weight < c[3].Weight {
		t.Fatalf("select %+v", c)
	}
}

// TestBestAgreesWithSelect: the inlined fast path of Best chooses what
// Select ranks first, on random clouds and requests.
func TestBestAgreesWithSelect(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		hosts := make([]Host, 1+rnd.IntN(30))
		for j := range hosts {
			hosts[j] = Host{ID: fmt.Sprint("h", j), AZ: []string{"a", "b"}[rnd.IntN(2)], Enabled: rnd.IntN(10) > 0, Up: rnd.IntN(10) > 0,
				VCPUs: 1 + rnd.IntN(16), RAMMB: 1024 * (1 + rnd.IntN(16)), DiskGB: 10 + rnd.IntN(100), CPURatio: 1 + rnd.Float64()*4,
				RAMRatio: 1, UsedVCPUs: rnd.IntN(8), UsedRAMMB: rnd.IntN(8192)}
			if rnd.IntN(2) == 0 {
				hosts[j].Init()
			}
		}
		r := &Request{VCPUs: 1 + rnd.IntN(4), RAMMB: 256 * rnd.IntN(8), DiskGB: rnd.IntN(20)}
		if rnd.IntN(3) == 0 {
			r.AZ = "a"
		}
		if rnd.IntN(3) == 0 {
			r.GroupPolicy, r.GroupHosts = AntiAffinity, map[string]int{"h1": 1, "h2": 1}
		}
		o := &Options{}
		if rnd.IntN(3) == 0 {
			o.RAMWeight, o.CPUWeight = -1, 0.5
		}
		best := Best(hosts, r, o)
		sel := Select(hosts, r, o)
		if (best < 0) != (len(sel) == 0) || (best >= 0 && Weigh(&hosts[best], r, o) != sel[0].Weight) {
			t.Fatalf("case %d: Best %d, Select %+v", i, best, sel)
		}
	}
}
