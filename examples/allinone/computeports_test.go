package main

import (
	"context"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// TestComputePortsUnbindKeepsOwner: unbinding a server's port (as a delete
// does before it releases the ports) leaves the port the server's, so the
// delete that follows finds and deletes it instead of leaking it; only
// ReleasePort frees a port. A floating IP on the port shows on its fixed IP.
func TestComputePortsUnbindKeepsOwner(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, memstore.New(), network.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	svc, err := network.New(network.Config{Store: st, Backend: fakenet.New()})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	p1 := asProject(ctx, "p1")
	n, err := svc.CreateNetwork(p1, network.CreateNetworkOpts{Name: "private"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := svc.CreateSubnet(p1, network.CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	a := computePorts{svc: svc, noDevices: true}
	owned := func() []compute.Port {
		t.Helper()
		ps, err := a.ListPorts(ctx, "srv1")
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	p, err := a.CreatePort(ctx, compute.PortRequest{ProjectID: "p1", NetworkID: n.ID, DeviceID: "srv1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.BindPort(ctx, p.ID, "host1"); err != nil {
		t.Fatal(err)
	}
	if ps := owned(); len(ps) != 1 || ps[0].Host != "host1" {
		t.Fatalf("bound: %+v", ps)
	}

	// A floating IP on the port.
	ext, err := svc.CreateNetwork(asSystem(ctx), network.CreateNetworkOpts{Name: "public", ProjectID: "admin", External: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSubnet(asSystem(ctx), network.CreateSubnetOpts{NetworkID: ext.ID, ProjectID: "admin", CIDR: "203.0.113.0/24"}); err != nil {
		t.Fatal(err)
	}
	r, err := svc.CreateRouter(p1, network.CreateRouterOpts{Name: "r", Gateway: &network.GatewayOpts{NetworkID: ext.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddRouterInterface(p1, r.ID, sub.ID, ""); err != nil {
		t.Fatal(err)
	}
	fip, err := svc.CreateFloatingIP(p1, network.CreateFloatingIPOpts{FloatingNetworkID: ext.ID, PortID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if ps := owned(); len(ps) != 1 || len(ps[0].FixedIPs) != 1 || len(ps[0].FixedIPs[0].FloatingIPs) != 1 || ps[0].FixedIPs[0].FloatingIPs[0] != fip.FloatingIPAddress {
		t.Fatalf("floating ip %s not on the port: %+v", fip.FloatingIPAddress, ps)
	}

	if err := a.UnbindPort(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if ps := owned(); len(ps) != 1 || ps[0].Host != "" {
		t.Fatalf("unbound: %+v, want the server's port without a host", ps)
	}
	if err := a.ReleasePort(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if ps := owned(); len(ps) != 0 {
		t.Fatalf("released: %+v, want no port of the server", ps)
	}
	if _, err := svc.GetPort(asSystem(ctx), p.ID); err != nil {
		t.Fatalf("released port: %v, want it kept", err)
	}
}
