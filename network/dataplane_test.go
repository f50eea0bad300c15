package network_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
)

// eventually polls cond until it holds or the test times out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDataplaneConverges: the reconciler plugs a bound port with its
// network, DHCP, security groups and router; WaitPortActive returns the
// VIF; deletes unplug.
func TestDataplaneConverges(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, sub := e.net(t, ctx, "n", "10.0.0.0/24")
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID}))
	// Compute's sequence: bind to a host for a server, wait, attach.
	must(e.svc.BindPort(e.admin, p.ID, "host1", "server-1", ""))
	wctx, cancel := context.WithTimeout(e.admin, 10*time.Second)
	defer cancel()
	vif := must(e.svc.WaitPortActive(wctx, p.ID))
	if vif.DevName != TapName(p.ID) || vif.MAC != p.MACAddress || vif.MTU != n.MTU || vif.Type != VIFTypeTap {
		t.Fatalf("vif %+v", vif)
	}
	spec, ok := e.fake.Port(p.ID)
	if !ok || spec.Host != "host1" || len(spec.FixedIPs) != 1 || spec.FixedIPs[0].Addr.String() != p.FixedIPs[0].IPAddress+"/24" || !spec.PortSecurity {
		t.Fatalf("backend port %+v %v", spec, ok)
	}
	got := must(e.svc.GetPort(e.admin, p.ID))
	if got.Status != StatusActive || got.VIFType != VIFTypeTap || got.VIFDetails["devname"] != TapName(p.ID) {
		t.Fatalf("port after plug: %s %s %v", got.Status, got.VIFType, got.VIFDetails)
	}
	eventually(t, "dhcp hosts", func() bool {
		d, ok := e.fake.DHCP(n.ID)
		return ok && len(d.Subnets) == 1 && d.Subnets[0].ID == sub.ID && d.Subnets[0].DHCPServer.IsValid() &&
			slices.ContainsFunc(d.Hosts, func(h DHCPHost) bool { return h.PortID == p.ID && h.MAC == p.MACAddress })
	})
	def := must(e.svc.EnsureDefaultSecurityGroup(ctx, "p1"))
	eventually(t, "default group with the port as member", func() bool {
		g, ok := e.fake.SecurityGroup(def.ID)
		return ok && len(g.Rules) == 4 && len(g.Members) == 1 && g.Members[0].Addr().String() == p.FixedIPs[0].IPAddress
	})
	// A router with a gateway, an interface and a floating IP.
	ext := must(e.svc.CreateNetwork(e.admin, CreateNetworkOpts{Name: "ext", External: true}))
	must(e.svc.CreateSubnet(e.admin, CreateSubnetOpts{NetworkID: ext.ID, CIDR: "203.0.113.0/24", EnableDHCP: new(false)}))
	r := must(e.svc.CreateRouter(ctx, CreateRouterOpts{Name: "r", Gateway: &GatewayOpts{NetworkID: ext.ID}}))
	must(e.svc.AddRouterInterface(ctx, r.ID, sub.ID, ""))
	fip := must(e.svc.CreateFloatingIP(ctx, CreateFloatingIPOpts{FloatingNetworkID: ext.ID, PortID: p.ID}))
	eventually(t, "router with gateway, interface and floating IP", func() bool {
		rs, ok := e.fake.Router(r.ID)
		return ok && rs.Gateway != nil && rs.Gateway.EnableSNAT && len(rs.Interfaces) == 1 &&
			rs.Interfaces[0].Addr.String() == "10.0.0.1/24" && len(rs.FloatingIPs) == 1 &&
			rs.FloatingIPs[0].Floating.String() == fip.FloatingIPAddress && rs.FloatingIPs[0].Fixed.String() == p.FixedIPs[0].IPAddress
	})
	eventually(t, "metadata route off once a router serves the subnet", func() bool {
		d, ok := e.fake.DHCP(n.ID)
		return ok && !d.Subnets[0].MetadataRoute
	})
	must(e.svc.UpdateFloatingIP(ctx, fip.ID, UpdateFloatingIPOpts{PortID: new("")}))
	eventually(t, "floating IP NAT removed", func() bool { rs, _ := e.fake.Router(r.ID); return len(rs.FloatingIPs) == 0 })
	// Unbinding and deleting unplug.
	must(e.svc.UnbindPort(e.admin, p.ID))
	eventually(t, "port unplugged", func() bool { _, ok := e.fake.Port(p.ID); return !ok })
	if err := e.svc.DeletePort(ctx, p.ID, nil); err != nil {
		t.Fatal(err)
	}
}

// TestDataplaneRestart: a new Service on the same store converges a
// backend that lost its state (a rebooted host), and one that holds
// objects no record owns (a crash between a store delete and the
// backend's).
func TestDataplaneRestart(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	n, _ := e.net(t, ctx, "n", "10.0.0.0/24")
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID}))
	must(e.svc.BindPort(e.admin, p.ID, "host1", "server-1", ""))
	gone := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID}))
	must(e.svc.BindPort(e.admin, gone.ID, "host1", "server-2", ""))
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both plugged", func() bool {
		_, a := e.fake.Port(p.ID)
		_, b := e.fake.Port(gone.ID)
		return a && b
	})
	e.svc.Close()
	// While stopped: the port is deleted in the store only.
	if err := e.svc.DeletePort(ctx, gone.ID, nil); err != nil {
		t.Fatal(err)
	}
	// Restart on the same store and backend: the stale port goes.
	svc2 := must(New(Config{Store: e.st, Backend: e.fake}))
	defer svc2.Close()
	if err := svc2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stale port removed", func() bool { _, ok := e.fake.Port(gone.ID); return !ok })
	svc2.Close()
	// Restart on an empty backend: everything comes back.
	fresh := fakenet.New()
	// And one orphan the store does not know.
	if err := fresh.EnsureNetwork(context.Background(), NetworkSpec{ID: "orphan", MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	svc3 := must(New(Config{Store: e.st, Backend: fresh}))
	defer svc3.Close()
	if err := svc3.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "backend rebuilt", func() bool {
		_, net := fresh.Network(n.ID)
		_, port := fresh.Port(p.ID)
		_, dhcp := fresh.DHCP(n.ID)
		_, orphan := fresh.Network("orphan")
		return net && port && dhcp && !orphan
	})
}

// TestDataplaneRetries: an EnsurePort that fails is retried until it
// succeeds; WaitPortActive returns then.
func TestDataplaneRetries(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	var failures atomic.Int32
	e.fake.SetHooks(fakenet.Hooks{Before: func(op, id string) error {
		if op == "EnsurePort" && failures.Add(1) <= 3 {
			return errors.New("injected: device busy")
		}
		return nil
	}})
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, _ := e.net(t, ctx, "n", "10.0.0.0/24")
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID}))
	must(e.svc.BindPort(e.admin, p.ID, "host1", "server-1", ""))
	wctx, cancel := context.WithTimeout(e.admin, 20*time.Second)
	defer cancel()
	must(e.svc.WaitPortActive(wctx, p.ID))
	if e.fake.Calls("EnsurePort") < 4 {
		t.Fatalf("EnsurePort called %d times, want at least 4", e.fake.Calls("EnsurePort"))
	}
}

func TestPortByAddress(t *testing.T) {
	e := newEnv(t)
	ctx := member("p1")
	n, sub := e.net(t, ctx, "n", "10.0.0.0/24")
	p := must(e.svc.CreatePort(ctx, CreatePortOpts{NetworkID: n.ID, DeviceID: "server-1", FixedIPs: []FixedIP{{SubnetID: sub.ID, IPAddress: "10.0.0.42"}}}))
	got := must(e.svc.PortByAddress(e.admin, n.ID, "10.0.0.42"))
	if got.ID != p.ID || got.DeviceID != "server-1" {
		t.Fatalf("port %+v", got)
	}
	_, err := e.svc.PortByAddress(e.admin, n.ID, "10.0.0.43")
	wantKind(t, err, errdefs.ErrNotFound)
	_, err = e.svc.PortByAddress(ctx, n.ID, "10.0.0.42")
	wantKind(t, err, errdefs.ErrForbidden)
	n2, _ := e.net(t, ctx, "n2", "10.0.0.0/24") // the same address elsewhere is another guest
	_, err = e.svc.PortByAddress(e.admin, n2.ID, "10.0.0.42")
	wantKind(t, err, errdefs.ErrNotFound)
}
