package network_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// livePortIPs returns every fixed IP of every port on a network, failing
// on a duplicate, and checks that the store's address index (where
// allocations are checked) matches exactly (no leak, no orphan).
func livePortIPs(t *testing.T, e *env, subnet string) map[string]string {
	t.Helper()
	tx := e.st.Snapshot()
	ips := map[string]string{}
	ports, err := store.List[Port](nil, tx, TestPortTable, store.IDIndex)
	if err != nil {
		t.Fatal(err)
	}
	for p := range ports {
		for _, f := range p.FixedIPs {
			if f.SubnetID != subnet {
				continue
			}
			if other, dup := ips[f.IPAddress]; dup {
				t.Fatalf("address %s held by ports %s and %s", f.IPAddress, other, p.ID)
			}
			ips[f.IPAddress] = p.ID
		}
	}
	// The ports table's address index, where allocations are checked,
	// holds exactly these addresses, each naming its port.
	held, err := store.List[Port](nil, tx, TestPortTable, TestIPIndex+"_prefix", subnet+"/")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range held {
		n++
	}
	if n != len(ips) {
		t.Fatalf("%d address index entries for %d addresses in use: leak", n, len(ips))
	}
	for ip, port := range ips {
		p, err := store.First[Port](nil, tx, TestPortTable, TestIPIndex, subnet+"/"+ip)
		if err != nil || p.ID != port {
			t.Fatalf("address index: %s -> %v (%v), want port %s", ip, p, err, port)
		}
	}
	return ips
}

// TestIPAMProperty runs random concurrent creates and deletes of ports on
// a small subnet, with commits failing at random: no address is ever held
// twice, every address index entry belongs to a live port and vice versa,
// and a full pool answers IpAddressGenerationFailure promptly.
func TestIPAMProperty(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			e := newEnv(t)
			ctx := member("p1")
			// A /27: 29 pool addresses, minus the DHCP port's.
			_, sub := e.net(t, ctx, "n", "10.0.0.0/27")
			var failing sync.Mutex
			rng := rand.New(rand.NewPCG(seed, 7))
			e.mem.SetHooks(memHooks(func() bool {
				failing.Lock()
				defer failing.Unlock()
				return rng.IntN(10) == 0
			}))
			var mu sync.Mutex
			var live []string
			exhausted := 0
			deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					for range 60 {
						mu.Lock()
						del := len(live) > 0 && r.IntN(3) == 0
						var id string
						if del {
							i := r.IntN(len(live))
							id = live[i]
							live = append(live[:i], live[i+1:]...)
						}
						mu.Unlock()
						if del {
							if err := e.svc.DeletePort(deadline, id, nil); err != nil {
								if !errors.Is(err, errdefs.ErrUnavailable) {
									t.Errorf("delete: %v", err)
									return
								}
								mu.Lock()
								live = append(live, id) // the commit failed: it is still there
								mu.Unlock()
							}
							continue
						}
						var req []FixedIP
						if r.IntN(4) == 0 {
							req = []FixedIP{{SubnetID: sub.ID, IPAddress: fmt.Sprintf("10.0.0.%d", 2+r.IntN(29))}}
						}
						p, err := e.svc.CreatePort(deadline, CreatePortOpts{NetworkID: sub.NetworkID, FixedIPs: req})
						switch {
						case err == nil:
							mu.Lock()
							live = append(live, p.ID)
							mu.Unlock()
						case errors.Is(err, ErrIPAddressGenerationFailure):
							mu.Lock()
							exhausted++
							mu.Unlock()
						case errors.Is(err, errdefs.ErrUnavailable):
							// an injected commit failure
						case req != nil && isFault(err, "IpAddressAlreadyAllocated"):
							// a requested address in use
						default:
							t.Errorf("create: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			e.mem.SetHooks(memHooks(nil))
			if deadline.Err() != nil {
				t.Fatal("the workload did not finish in time: a hang")
			}
			ips := livePortIPs(t, e, sub.ID)
			if got := len(ips); got != len(live)+1 { // + the DHCP port
				t.Fatalf("%d addresses held, %d live ports + DHCP", got, len(live))
			}
			// Fill the pool: exactly the free addresses can still be taken,
			// then the Neutron error.
			free := 29 - len(ips)
			for i := range free {
				if _, err := e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID}); err != nil {
					t.Fatalf("allocation %d of %d free: %v", i+1, free, err)
				}
			}
			_, err := e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID})
			if !errors.Is(err, ErrIPAddressGenerationFailure) {
				t.Fatalf("full pool: %v", err)
			}
			wantFault(t, err, "IpAddressGenerationFailure")
			wantKind(t, err, errdefs.ErrConflict)
			livePortIPs(t, e, sub.ID)
			t.Logf("seed %d: %d live ports, %d exhaustion answers during the run", seed, len(live), exhausted)
		})
	}
}

func isFault(err error, typ string) bool {
	f, ok := errors.AsType[*Fault](err)
	return ok && f.Type == typ
}

// memHooks makes commits fail when fail (if not nil) says so.
func memHooks(fail func() bool) memstore.Hooks {
	if fail == nil {
		return memstore.Hooks{}
	}
	return memstore.Hooks{BeforeCommit: func([]store.Change) error {
		if fail() {
			return errors.New("injected commit failure")
		}
		return nil
	}}
}

// TestIPAMReuseAndRestart: a released address is reused once the cursor
// wraps, and a new Service on the same store (a restart) allocates only
// free addresses.
func TestIPAMReuseAndRestart(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	_, sub := e.net(t, ctx, "n", "10.0.0.0/29") // pool .2-.6, DHCP takes .2
	var ports []*Port
	for range 4 {
		ports = append(ports, must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID})))
	}
	_, err := e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID})
	wantFault(t, err, "IpAddressGenerationFailure")
	freed := ports[1].FixedIPs[0].IPAddress
	if err := e.svc.DeletePort(ctx, ports[1].ID, nil); err != nil {
		t.Fatal(err)
	}
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID}))
	if p.FixedIPs[0].IPAddress != freed {
		t.Fatalf("got %s, want the freed %s", p.FixedIPs[0].IPAddress, freed)
	}
	if err := e.svc.DeletePort(ctx, ports[2].ID, nil); err != nil {
		t.Fatal(err)
	}
	// Restart: a fresh Service has no allocator state.
	svc2, err := New(Config{Store: e.st, Backend: e.fake})
	if err != nil {
		t.Fatal(err)
	}
	p2 := must(svc2.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID}))
	if p2.FixedIPs[0].IPAddress != ports[2].FixedIPs[0].IPAddress {
		t.Fatalf("after restart got %s, want %s", p2.FixedIPs[0].IPAddress, ports[2].FixedIPs[0].IPAddress)
	}
	_, err = svc2.CreatePort(ctx, CreatePortOpts{NetworkID: sub.NetworkID})
	wantFault(t, err, "IpAddressGenerationFailure")
	livePortIPs(t, e, sub.ID)
}

func TestEUI64(t *testing.T) {
	ip, err := EUI64(netip.MustParsePrefix("2001:db8::/64"), "fa:16:3e:12:34:56")
	if err != nil || ip.String() != "2001:db8::f816:3eff:fe12:3456" {
		t.Fatalf("%s %v", ip, err)
	}
	e := newEnv(t)
	ctx := member("p1")
	n := must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "v6"}))
	must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n.ID, CIDR: "2001:db8:1::/64", IPv6AddressMode: ModeSLAAC, IPv6RAMode: ModeSLAAC}))
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID}))
	want, _ := EUI64(netip.MustParsePrefix("2001:db8:1::/64"), p.MACAddress)
	if len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != want.String() {
		t.Fatalf("fixed ips %+v, want %s", p.FixedIPs, want)
	}
	// A stateful v6 subnet allocates from its (huge) pool.
	n2 := must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: "v6s"}))
	must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n2.ID, CIDR: "2001:db8:2::/64", IPv6AddressMode: ModeDHCPv6Stateful}))
	a := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n2.ID}))
	b := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n2.ID}))
	if a.FixedIPs[0].IPAddress == b.FixedIPs[0].IPAddress {
		t.Fatal("same v6 address twice")
	}
}
