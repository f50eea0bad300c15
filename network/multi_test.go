package network_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
)

// TestTwoControllersNeverShareAnAddress runs two controllers on one etcd
// (each its own store replica and committer) creating ports on the same
// small subnet at once: the ports index addresses, so only the network's
// allocation guard, written by both, makes etcd refuse the second of two
// commits that took from the same view. No address or MAC is ever given
// twice, and the pool still fills up.
func TestTwoControllersNeverShareAnAddress(t *testing.T) {
	replica := EtcdReplicas(t)
	var svcs []*Service
	for range 2 {
		svcs = append(svcs, must(New(Config{Store: replica(), Backend: fakenet.New()})))
	}
	c := member("p1")
	n := must(svcs[0].CreateNetwork(c, CreateNetworkOpts{Name: "n"}))
	// A /27: 29 pool addresses, one the DHCP port's.
	must(svcs[0].CreateSubnet(c, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.0.0.0/27"}))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got, err := svcs[1].GetNetwork(c, n.ID); err == nil && len(got.Subnets) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second controller never saw the subnet")
		}
	}
	var mu sync.Mutex
	ips, macs := map[string]string{}, map[string]string{}
	conflicts := 0
	var wg sync.WaitGroup
	for i := range 8 {
		svc := svcs[i%2]
		wg.Go(func() {
			for range 200 {
				p, err := svc.CreatePort(c, CreatePortOpts{NetworkID: n.ID})
				if errors.Is(err, ErrIPAddressGenerationFailure) {
					return
				}
				mu.Lock()
				if err != nil {
					if !errors.Is(err, errdefs.ErrConflict) {
						mu.Unlock()
						t.Error(err)
						return
					}
					conflicts++ // the other controller won a race: try again
					mu.Unlock()
					continue
				}
				if other, dup := ips[p.FixedIPs[0].IPAddress]; dup {
					t.Errorf("address %s given to ports %s and %s", p.FixedIPs[0].IPAddress, other, p.ID)
				}
				if other, dup := macs[p.MACAddress]; dup {
					t.Errorf("MAC %s given to ports %s and %s", p.MACAddress, other, p.ID)
				}
				ips[p.FixedIPs[0].IPAddress], macs[p.MACAddress] = p.ID, p.ID
				mu.Unlock()
			}
			t.Error("the pool never filled")
		})
	}
	wg.Wait()
	if len(ips) != 28 {
		t.Errorf("%d ports got addresses, want the 28 free ones", len(ips))
	}
	t.Logf("%d ports, %d commits refused for a race with the other controller", len(ips), conflicts)
}

// TestTwoControllersDropLegacyRecords: two controllers upgraded at once
// both find the legacy allocation records and delete them; both start.
func TestTwoControllersDropLegacyRecords(t *testing.T) {
	replica := EtcdReplicas(t)
	ctx := context.Background()
	sts := []*store.Store{replica(), replica()}
	err := sts[0].Update(ctx, func(tx *store.Txn) error {
		for i := range 1200 {
			if err := tx.Insert(TestIPTable, &TestLegacyAlloc{Key: fmt.Sprintf("s/10.0.%d.%d", i/250, i%250), PortID: "p"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); sts[1].Revision() < sts[0].Revision(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second controller never caught up")
		}
	}
	var wg sync.WaitGroup
	for _, st := range sts {
		wg.Go(func() {
			if _, err := New(Config{Store: st, Backend: fakenet.New()}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	it, err := store.List[TestLegacyAlloc](nil, sts[0].Snapshot(), TestIPTable, store.IDIndex)
	if err != nil {
		t.Fatal(err)
	}
	for r := range it {
		t.Fatalf("legacy record %s left", r.Key)
	}
}
