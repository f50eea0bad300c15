package network_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	. "github.com/stratuskit/stratus/network"
)

// recorder is a DeviceNotifier that remembers what it was told.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) NetworkChanged(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, id)
	return nil
}

// take returns what was told since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen = nil
	return out
}

// TestFloatingIPNotifiesServers: associating, moving, disassociating and
// deleting a floating IP tell the servers whose ports gain or lose it (as
// Neutron's nova notifier sends network-changed); other changes and ports
// no server owns tell nobody.
func TestFloatingIPNotifiesServers(t *testing.T) {
	e := newEnv(t)
	r := &recorder{}
	e.svc.Use(Deps{Notify: r})
	p1 := member("p1")
	_, sub := e.net(t, p1, "n1", "10.1.0.0/24")
	ext := must(e.svc.CreateNetwork(e.admin, CreateNetworkOpts{Name: "ext", External: true}))
	must(e.svc.CreateSubnet(e.admin, CreateSubnetOpts{NetworkID: ext.ID, CIDR: "203.0.113.0/24", EnableDHCP: new(false)}))
	rt := must(e.svc.CreateRouter(p1, CreateRouterOpts{Name: "r", Gateway: &GatewayOpts{NetworkID: ext.ID}}))
	must(e.svc.AddRouterInterface(p1, rt.ID, sub.ID, ""))
	port1 := must(e.svc.CreatePort(p1, CreatePortOpts{NetworkID: sub.NetworkID, DeviceID: "srv1", DeviceOwner: OwnerCompute}))
	port2 := must(e.svc.CreatePort(p1, CreatePortOpts{NetworkID: sub.NetworkID, DeviceID: "srv2", DeviceOwner: OwnerCompute}))
	free := must(e.svc.CreatePort(p1, CreatePortOpts{NetworkID: sub.NetworkID}))
	r.take() // whatever the setup said

	check := func(step string, want ...string) {
		t.Helper()
		if got := r.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: told %q, want %q", step, got, want)
		}
	}
	fip := must(e.svc.CreateFloatingIP(p1, CreateFloatingIPOpts{FloatingNetworkID: ext.ID, PortID: port1.ID}))
	check("create on srv1's port", "srv1")
	must(e.svc.UpdateFloatingIP(p1, fip.ID, UpdateFloatingIPOpts{Description: new("d")}))
	check("description")
	must(e.svc.UpdateFloatingIP(p1, fip.ID, UpdateFloatingIPOpts{PortID: &port2.ID}))
	check("move to srv2", "srv1", "srv2")
	must(e.svc.UpdateFloatingIP(p1, fip.ID, UpdateFloatingIPOpts{PortID: new("")}))
	check("disassociate", "srv2")
	must(e.svc.UpdateFloatingIP(p1, fip.ID, UpdateFloatingIPOpts{PortID: &free.ID}))
	check("associate to a free port")
	must(e.svc.UpdateFloatingIP(p1, fip.ID, UpdateFloatingIPOpts{PortID: &port1.ID}))
	check("free port to srv1", "srv1")
	if err := e.svc.DeleteFloatingIP(p1, fip.ID, nil); err != nil {
		t.Fatal(err)
	}
	check("delete", "srv1")
	unbound := must(e.svc.CreateFloatingIP(p1, CreateFloatingIPOpts{FloatingNetworkID: ext.ID}))
	check("create unassociated")
	if err := e.svc.DeleteFloatingIP(p1, unbound.ID, nil); err != nil {
		t.Fatal(err)
	}
	check("delete unassociated")
}
