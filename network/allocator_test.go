package network

import (
	"net/netip"
	"regexp"
	"testing"
	"time"
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

func TestUUID7(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	prev := ""
	seen := map[string]bool{}
	for i := range 5000 {
		id := uuid7(base.Add(time.Duration(i) * 300 * time.Nanosecond))
		if !re.MatchString(id) {
			t.Fatalf("%q is not a version 7 UUID", id)
		}
		// 300 ns apart: each id falls in a later 1/4096 ms step or the
		// same one; ids of later steps sort after.
		if id[:18] < prev[:min(len(prev), 18)] {
			t.Fatalf("%s sorts before the earlier %s", id, prev)
		}
		if seen[id] {
			t.Fatalf("%s made twice", id)
		}
		seen[id] = true
		prev = id
	}
	if got := uuid7(base)[:13]; got != "01a217ba-1200" {
		t.Fatalf("time prefix %s, want the Unix milliseconds of %v", got, base)
	}
}
