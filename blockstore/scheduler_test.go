package blockstore

import "testing"

func TestCapacityFilterAndWeigher(t *testing.T) {
	thick := PoolStats{TotalGiB: 100, FreeGiB: 30, ReservedPercentage: 10, MaxOverSubscriptionRatio: 1}
	thin := PoolStats{TotalGiB: 100, FreeGiB: 90, Thin: true, MaxOverSubscriptionRatio: 2}
	cases := []struct {
		name string
		p    PoolStats
		prov float64
		size int
		fits bool
		free float64
	}{
		{"thick fits above the reserve", thick, 0, 20, true, 20},
		{"thick refuses into the reserve", thick, 0, 21, false, 20},
		{"thin over-subscribes to the ratio", thin, 150, 50, true, 50},
		{"thin refuses past the ratio", thin, 150, 51, false, 50},
		{"thin with no free space", PoolStats{TotalGiB: 100, FreeGiB: 0, Thin: true, MaxOverSubscriptionRatio: 20}, 0, 1, false, 2000},
	}
	for _, c := range cases {
		if got := Fits(c.p, c.prov, c.size); got != c.fits {
			t.Errorf("%s: Fits = %v", c.name, got)
		}
		if got := VirtualFree(c.p, c.prov); got != c.free {
			t.Errorf("%s: VirtualFree = %v, want %v", c.name, got, c.free)
		}
	}
}

func TestSpecMatch(t *testing.T) {
	cases := []struct {
		have, want string
		ok         bool
	}{
		{"qcow2", "qcow2", true}, {"raw", "qcow2", false}, {"b", "<in> a b", true}, {"c", "<in> a b", false},
		{"b", "<or> a <or> b", true}, {"True", "<is> true", true}, {"False", "<is> True", false},
	}
	for _, c := range cases {
		if got := specMatch(c.have, c.want); got != c.ok {
			t.Errorf("specMatch(%q, %q) = %v", c.have, c.want, got)
		}
	}
	p := &pool{PoolStats: PoolStats{Capabilities: map[string]string{"volume_format": "qcow2"}}, backend: "file"}
	vt := &VolumeType{ExtraSpecs: map[string]string{SpecBackendName: "file", "capabilities:volume_format": "<in> raw qcow2"}}
	if !matches(p, vt, &Volume{}) {
		t.Error("matching type refused")
	}
	if matches(p, vt, &Volume{Multiattach: true}) {
		t.Error("multiattach volume placed on a pool without multiattach")
	}
	if matches(p, &VolumeType{ExtraSpecs: map[string]string{SpecBackendName: "lvm"}}, &Volume{}) {
		t.Error("type for another backend matched")
	}
}
