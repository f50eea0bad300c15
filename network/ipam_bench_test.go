package network

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// ipamHarness is a store with one /16 subnet, for measuring the allocator
// alone (no HTTP, no durable commit).
type ipamHarness struct {
	s     *Service
	st    *store.Store
	sub   *Subnet
	ports int // port records made so far, for their ids
}

type nopBackend struct{ Backend }

func newIPAMHarness(tb testing.TB) *ipamHarness {
	tb.Helper()
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	s, err := New(Config{Store: st, Backend: nopBackend{}})
	if err != nil {
		tb.Fatal(err)
	}
	sub := &Subnet{Standard: Standard{ID: "bench-subnet"}, NetworkID: "bench-net", IPVersion: 4, CIDR: "10.0.0.0/16"}
	sub.AllocationPools, _ = checkPools(netip.MustParsePrefix(sub.CIDR), nil, netip.MustParseAddr("10.0.0.1"))
	return &ipamHarness{s: s, st: st, sub: sub}
}

// holder is the least port record that holds ip: what an allocation
// writes to the store (the address index entry comes with it).
func (h *ipamHarness) holder(id int, ip netip.Addr) *Port {
	return &Port{Standard: Standard{ID: holderID(id)}, NetworkID: h.sub.NetworkID,
		FixedIPs: []FixedIP{{SubnetID: h.sub.ID, IPAddress: ip.String()}}}
}

func holderID(id int) string { return fmt.Sprintf("p%08d", id) }

// alloc allocates n addresses in batches of per transactions, each to a
// new port record holding it, and returns the time it took.
func (h *ipamHarness) alloc(tb testing.TB, n, per int) time.Duration {
	tb.Helper()
	start := time.Now()
	for n > 0 {
		k := min(n, per)
		n -= k
		err := h.st.Update(context.Background(), func(tx *store.Txn) error {
			var picks []ipRef
			for range k {
				h.ports++
				ip, err := h.s.allocIPTxn(tx, h.sub, holderID(h.ports), "", "", &picks)
				if err != nil {
					return err
				}
				if err := tx.Insert(portTable, h.holder(h.ports, ip)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkIPAMAlloc measures allocations from a /16 in memory: the
// allocator's next free address, the store check and the allocation
// record, 256 to a transaction.
func BenchmarkIPAMAlloc(b *testing.B) {
	h := newIPAMHarness(b)
	b.ResetTimer()
	done := 0
	for done < b.N {
		if done > 0 && done%60000 == 0 {
			b.StopTimer()
			h.st.Close()
			h = newIPAMHarness(b)
			b.StartTimer()
		}
		k := min(b.N-done, 60000-done%60000)
		h.alloc(b, k, 256)
		done += k
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
}

// BenchmarkIPAMExhaust measures the time to allocate every address of a
// /16 and to be told it is full.
func BenchmarkIPAMExhaust(b *testing.B) {
	for range b.N {
		b.StopTimer()
		h := newIPAMHarness(b)
		b.StartTimer()
		h.alloc(b, 65533, 256)
		err := h.st.Update(context.Background(), func(tx *store.Txn) error {
			var picks []ipRef
			_, err := h.s.allocIPTxn(tx, h.sub, "p", "", "", &picks)
			return err
		})
		if err == nil {
			b.Fatal("a full /16 allocated another address")
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/exhaust")
}

// rawInsert writes port records holding the pool's addresses from..n
// directly, with no allocator: the floor any IPAM pays in the store.
func (h *ipamHarness) rawInsert(tb testing.TB, from, n, per int) time.Duration {
	tb.Helper()
	first := netip.MustParseAddr(h.sub.AllocationPools[0].Start)
	start := time.Now()
	for n > 0 {
		k := min(n, per)
		err := h.st.Update(context.Background(), func(tx *store.Txn) error {
			for i := range k {
				h.ports++
				if err := tx.Insert(portTable, h.holder(h.ports, addrAdd(first, uint64(from+i)))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		from += k
		n -= k
	}
	return time.Since(start)
}
