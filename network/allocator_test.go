package network

import (
	"net/netip"
	"regexp"
	"testing"
)

func TestAllocatorNext(t *testing.T) {
	sub := &Subnet{Standard: Standard{ID: "s"}, AllocationPools: []Pool{{"10.0.0.2", "10.0.0.100"}, {"10.0.1.0", "10.0.1.9"}}}
	a := newAllocator(sub)
	if a.total != 99+10 {
		t.Fatalf("total %d", a.total)
	}
	seen := map[netip.Addr]bool{}
	for range a.total {
		off, ok := a.next()
		if !ok {
			t.Fatal("full too early")
		}
		ip := a.addr(off)
		if seen[ip] {
			t.Fatalf("%s twice", ip)
		}
		seen[ip] = true
		if back, ok := a.offset(ip); !ok || back != off {
			t.Fatalf("offset(%s) = %d, want %d", ip, back, off)
		}
	}
	if _, ok := a.next(); ok {
		t.Fatal("next on a full allocator")
	}
	a.clear(50)
	if off, ok := a.next(); !ok || off != 50 {
		t.Fatalf("next after clear = %d %v", off, ok)
	}
}

// Ids made in a burst differ in their first 11 characters, which name
// their devices on the dataplane (tap…, brq…): time-ordered ids once gave
// two ports created together the same tap name.
func TestIDsNameDistinctDevices(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]string{}
	for range 5000 {
		id := newID()
		if !re.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if other, ok := seen[id[:11]]; ok {
			t.Fatalf("%s and %s would name the same devices", id, other)
		}
		seen[id[:11]] = id
	}
}
