package network

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/stratuskit/stratus/store"
)

// TestAllocationGuard: two controllers on one etcd allocate the same
// address at the same moment, each for a port record that writes nothing
// else shared. Whichever way the race goes (the second saw the first and
// refuses, or it had not and etcd refuses its commit for the guard), the
// address is held once.
func TestAllocationGuard(t *testing.T) {
	replica := EtcdReplicas(t)
	ctx := context.Background()
	var hs []*ipamHarness
	for range 2 {
		st := replica()
		s, err := New(Config{Store: st, Backend: nopBackend{}})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, &ipamHarness{s: s, st: st, sub: newIPAMHarness(t).sub})
	}
	first := netip.MustParseAddr(hs[0].sub.AllocationPools[0].Start)
	for round := range 30 {
		ip := addrAdd(first, uint64(round))
		var wg sync.WaitGroup
		for i, h := range hs {
			wg.Go(func() {
				_ = h.st.Update(ctx, func(tx *store.Txn) error {
					var picks []ipRef
					got, err := h.s.allocIPTxn(tx, h.sub, "p", "", ip.String(), &picks)
					if err != nil {
						return err
					}
					return tx.Insert(portTable, h.holder(round*2+i, got))
				})
			})
		}
		wg.Wait()
	}
	// Read once both replicas have every commit: etcd's, through a third.
	st := replica()
	held := map[string]string{}
	ports, err := store.List[Port](nil, st.Snapshot(), portTable, store.IDIndex)
	if err != nil {
		t.Fatal(err)
	}
	for p := range ports {
		ip := p.FixedIPs[0].IPAddress
		if other, dup := held[ip]; dup {
			t.Errorf("address %s held by ports %s and %s", ip, other, p.ID)
		}
		held[ip] = p.ID
	}
	if len(held) != 30 {
		t.Errorf("%d addresses held, want 30 (one per round)", len(held))
	}
}
