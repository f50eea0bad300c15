package network_test

import (
	"context"
	"path/filepath"
	"testing"

	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
)

// TestLegacyAllocationRecords opens a bbolt data directory written by the
// layout that kept a record per address and per MAC beside each port: it
// opens, the legacy records are deleted, and the addresses and MACs of the
// existing ports stay taken (the ports' indexes are the truth now).
func TestLegacyAllocationRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	open := func() (*store.Store, *Service) {
		b, err := boltstore.Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, b, Tables(), &store.Options{CompactInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := New(Config{Store: st, Backend: fakenet.New()})
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
		return st, svc
	}
	c := member("p1")
	st, svc := open()
	n := must(svc.CreateNetwork(c, CreateNetworkOpts{Name: "n"}))
	// A /29: five pool addresses, one the DHCP port's.
	sub := must(svc.CreateSubnet(c, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.0.0.0/29"}))
	old := must(svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID}))
	// What the old layout kept beside every port.
	err := st.Update(ctx, func(tx *store.Txn) error {
		ports, err := store.List[Port](nil, tx, TestPortTable, store.IDIndex)
		if err != nil {
			return err
		}
		for p := range ports {
			for _, f := range p.FixedIPs {
				if err := tx.Insert(TestIPTable, &TestLegacyAlloc{Key: f.SubnetID + "/" + f.IPAddress, PortID: p.ID}); err != nil {
					return err
				}
			}
			if err := tx.Insert(TestMACTable, &TestLegacyAlloc{Key: p.NetworkID + "/" + p.MACAddress, PortID: p.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, svc = open()
	defer st.Close()
	tx := st.Snapshot()
	for _, table := range []string{TestIPTable, TestMACTable} {
		it, err := store.List[TestLegacyAlloc](nil, tx, table, store.IDIndex)
		if err != nil {
			t.Fatal(err)
		}
		for r := range it {
			t.Errorf("legacy record %s %s left after New", table, r.Key)
		}
	}
	_, err = svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID, FixedIPs: []FixedIP{{SubnetID: sub.ID, IPAddress: old.FixedIPs[0].IPAddress}}})
	wantFault(t, err, "IpAddressAlreadyAllocated")
	_, err = svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID, MACAddress: old.MACAddress})
	wantFault(t, err, "MacAddressInUse")
	// The three free addresses, then exhaustion; never an address held.
	seen := map[string]bool{old.FixedIPs[0].IPAddress: true}
	for range 3 {
		p := must(svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID}))
		if ip := p.FixedIPs[0].IPAddress; seen[ip] {
			t.Fatalf("address %s given twice", ip)
		} else {
			seen[ip] = true
		}
	}
	_, err = svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID})
	wantFault(t, err, "IpAddressGenerationFailure")
	// Deleting the old port frees its address for the next port.
	if err := svc.DeletePort(c, old.ID, nil); err != nil {
		t.Fatal(err)
	}
	if p := must(svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID})); p.FixedIPs[0].IPAddress != old.FixedIPs[0].IPAddress {
		t.Fatalf("after the delete the pool gave %s, want the freed %s", p.FixedIPs[0].IPAddress, old.FixedIPs[0].IPAddress)
	}
}
