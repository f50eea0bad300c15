package network_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	. "github.com/stratuskit/stratus/network"
)

// world is two projects' resources plus an admin's shared and external
// networks.
type world struct {
	e                 *env
	p1, p2            context.Context
	net1, net2        *Network
	sub1, sub2        *Subnet
	shared, ext       *Network
	port1, port2      *Port
	router1, router2  *Router
	sg1, sg2          *SecurityGroup
	fip1, fip2        *FloatingIP
	sharedSub, extSub *Subnet
}

func newWorld(t *testing.T) *world {
	e := newEnv(t)
	w := &world{e: e, p1: member("p1"), p2: member("p2")}
	w.net1, w.sub1 = e.net(t, w.p1, "n1", "10.1.0.0/24")
	w.net2, w.sub2 = e.net(t, w.p2, "n2", "10.1.0.0/24") // overlap across projects is fine
	w.shared = must(e.svc.CreateNetwork(e.admin, CreateNetworkOpts{Name: "shared", Shared: true}))
	w.sharedSub = must(e.svc.CreateSubnet(e.admin, CreateSubnetOpts{NetworkID: w.shared.ID, CIDR: "10.9.0.0/24"}))
	w.ext = must(e.svc.CreateNetwork(e.admin, CreateNetworkOpts{Name: "ext", External: true}))
	w.extSub = must(e.svc.CreateSubnet(e.admin, CreateSubnetOpts{NetworkID: w.ext.ID, CIDR: "203.0.113.0/24", EnableDHCP: new(false)}))
	w.port1 = must(e.svc.CreatePort(w.p1, CreatePortOpts{NetworkID: w.net1.ID}))
	w.port2 = must(e.svc.CreatePort(w.p2, CreatePortOpts{NetworkID: w.net2.ID}))
	for i, ctx := range []context.Context{w.p1, w.p2} {
		r := must(e.svc.CreateRouter(ctx, CreateRouterOpts{Name: "r", Gateway: &GatewayOpts{NetworkID: w.ext.ID}}))
		sub := []*Subnet{w.sub1, w.sub2}[i]
		must(e.svc.AddRouterInterface(ctx, r.ID, sub.ID, ""))
		sg := must(e.svc.CreateSecurityGroup(ctx, CreateSecurityGroupOpts{Name: "sg"}))
		port := []*Port{w.port1, w.port2}[i]
		fip := must(e.svc.CreateFloatingIP(ctx, CreateFloatingIPOpts{FloatingNetworkID: w.ext.ID, PortID: port.ID}))
		if i == 0 {
			w.router1, w.sg1, w.fip1 = r, sg, fip
		} else {
			w.router2, w.sg2, w.fip2 = r, sg, fip
		}
	}
	return w
}

func ids[T any](list []*T, id func(*T) string) []string {
	var out []string
	for _, x := range list {
		out = append(out, id(x))
	}
	return out
}

// TestIsolationMatrix checks what p1 sees and may do with p2's resources,
// the admin's shared network and the external network.
func TestIsolationMatrix(t *testing.T) {
	w := newWorld(t)
	s := w.e.svc

	// Visibility: own + shared + external networks; nothing of p2's.
	nets := ids(must(s.ListNetworks(w.p1, ListOpts{})), func(n *Network) string { return n.ID })
	for _, want := range []string{w.net1.ID, w.shared.ID, w.ext.ID} {
		if !slices.Contains(nets, want) {
			t.Errorf("p1 does not see network %s", want)
		}
	}
	if slices.Contains(nets, w.net2.ID) {
		t.Error("p1 sees p2's network")
	}
	subs := ids(must(s.ListSubnets(w.p1, ListOpts{})), func(x *Subnet) string { return x.ID })
	if slices.Contains(subs, w.sub2.ID) || !slices.Contains(subs, w.sharedSub.ID) || slices.Contains(subs, w.extSub.ID) {
		t.Errorf("p1's subnets %v: want its own and the shared one only", subs)
	}
	for _, list := range [][]string{
		ids(must(s.ListPorts(w.p1, ListOpts{})), func(x *Port) string { return x.ID }),
		ids(must(s.ListRouters(w.p1, ListOpts{})), func(x *Router) string { return x.ID }),
		ids(must(s.ListSecurityGroups(w.p1, ListOpts{})), func(x *SecurityGroup) string { return x.ID }),
		ids(must(s.ListFloatingIPs(w.p1, ListOpts{})), func(x *FloatingIP) string { return x.ID }),
	} {
		for _, other := range []string{w.port2.ID, w.router2.ID, w.sg2.ID, w.fip2.ID} {
			if slices.Contains(list, other) {
				t.Errorf("p1 lists p2's %s", other)
			}
		}
	}

	// Every read, change and delete of p2's resources is 404.
	notFound := map[string]error{}
	_, notFound["get network"] = s.GetNetwork(w.p1, w.net2.ID)
	_, notFound["get subnet"] = s.GetSubnet(w.p1, w.sub2.ID)
	_, notFound["get port"] = s.GetPort(w.p1, w.port2.ID)
	_, notFound["get router"] = s.GetRouter(w.p1, w.router2.ID)
	_, notFound["get sg"] = s.GetSecurityGroup(w.p1, w.sg2.ID)
	_, notFound["get fip"] = s.GetFloatingIP(w.p1, w.fip2.ID)
	_, notFound["update network"] = s.UpdateNetwork(w.p1, w.net2.ID, UpdateNetworkOpts{Name: new("x")})
	_, notFound["update subnet"] = s.UpdateSubnet(w.p1, w.sub2.ID, UpdateSubnetOpts{Name: new("x")})
	_, notFound["update port"] = s.UpdatePort(w.p1, w.port2.ID, UpdatePortOpts{Name: new("x")})
	_, notFound["update router"] = s.UpdateRouter(w.p1, w.router2.ID, UpdateRouterOpts{Name: new("x")})
	_, notFound["update sg"] = s.UpdateSecurityGroup(w.p1, w.sg2.ID, UpdateSecurityGroupOpts{Name: new("x")})
	_, notFound["disassociate fip"] = s.UpdateFloatingIP(w.p1, w.fip2.ID, UpdateFloatingIPOpts{PortID: new("")})
	_, notFound["associate own fip to p2's port"] = s.UpdateFloatingIP(w.p1, w.fip1.ID, UpdateFloatingIPOpts{PortID: &w.port2.ID})
	_, notFound["tags of p2's network"] = s.Tags(w.p1, KindNetworks, w.net2.ID)
	_, notFound["subnet on p2's network"] = s.CreateSubnet(w.p1, CreateSubnetOpts{NetworkID: w.net2.ID, CIDR: "10.5.0.0/24"})
	_, notFound["port on p2's network"] = s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.net2.ID})
	_, notFound["port on the external network"] = s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.ext.ID})
	_, notFound["port in p2's group"] = s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.net1.ID, SecurityGroups: &[]string{w.sg2.ID}})
	_, notFound["rule in p2's group"] = s.CreateSecurityGroupRule(w.p1, CreateRuleOpts{SecurityGroupID: w.sg2.ID, Direction: "ingress"})
	_, notFound["rule naming p2's group"] = s.CreateSecurityGroupRule(w.p1, CreateRuleOpts{SecurityGroupID: w.sg1.ID, Direction: "ingress", RemoteGroupID: w.sg2.ID})
	_, notFound["interface on p2's subnet"] = s.AddRouterInterface(w.p1, w.router1.ID, w.sub2.ID, "")
	_, notFound["interface with p2's port"] = s.AddRouterInterface(w.p1, w.router1.ID, "", w.port2.ID)
	_, notFound["interface on p2's router"] = s.AddRouterInterface(w.p1, w.router2.ID, w.sub1.ID, "")
	notFound["delete network"] = s.DeleteNetwork(w.p1, w.net2.ID, nil)
	notFound["delete subnet"] = s.DeleteSubnet(w.p1, w.sub2.ID, nil)
	notFound["delete port"] = s.DeletePort(w.p1, w.port2.ID, nil)
	notFound["delete router"] = s.DeleteRouter(w.p1, w.router2.ID, nil)
	notFound["delete sg"] = s.DeleteSecurityGroup(w.p1, w.sg2.ID, nil)
	notFound["delete fip"] = s.DeleteFloatingIP(w.p1, w.fip2.ID, nil)
	for what, err := range notFound {
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: %v, want not found", what, err)
		}
	}

	// The shared network: usable, not changeable.
	if _, err := s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.shared.ID}); err != nil {
		t.Errorf("port on the shared network: %v", err)
	}
	forbidden := map[string]error{}
	_, forbidden["update shared network"] = s.UpdateNetwork(w.p1, w.shared.ID, UpdateNetworkOpts{Name: new("x")})
	forbidden["delete shared network"] = s.DeleteNetwork(w.p1, w.shared.ID, nil)
	_, forbidden["subnet on shared network"] = s.CreateSubnet(w.p1, CreateSubnetOpts{NetworkID: w.shared.ID, CIDR: "10.8.0.0/24"})
	_, forbidden["tag shared network"] = s.ReplaceTags(w.p1, KindNetworks, w.shared.ID, []string{"mine"})
	_, forbidden["tag external network"] = s.ReplaceTags(w.p1, KindNetworks, w.ext.ID, []string{"mine"})
	_, forbidden["create shared network"] = s.CreateNetwork(w.p1, CreateNetworkOpts{Shared: true})
	_, forbidden["create external network"] = s.CreateNetwork(w.p1, CreateNetworkOpts{External: true})
	_, forbidden["provider attributes"] = s.CreateNetwork(w.p1, CreateNetworkOpts{NetworkType: TypeVLAN, PhysicalNetwork: "physnet1", SegmentationID: 7})
	_, forbidden["network in p2"] = s.CreateNetwork(w.p1, CreateNetworkOpts{ProjectID: "p2"})
	_, forbidden["bind a port"] = s.UpdatePort(w.p1, w.port1.ID, UpdatePortOpts{HostID: new("h1")})
	_, forbidden["reader creates"] = s.CreateNetwork(reader("p1"), CreateNetworkOpts{Name: "r"})
	_, forbidden["set quota"] = s.UpdateQuota(w.p1, "p1", Quota{"port": 1000})
	for what, err := range forbidden {
		if !errors.Is(err, errdefs.ErrForbidden) {
			t.Errorf("%s: %v, want forbidden", what, err)
		}
	}
	// The external network gives p1 floating IPs and router gateways.
	if _, err := s.CreateFloatingIP(w.p1, CreateFloatingIPOpts{FloatingNetworkID: w.ext.ID}); err != nil {
		t.Errorf("floating ip: %v", err)
	}
	// A reader reads but does not write.
	if _, err := s.GetNetwork(reader("p1"), w.net1.ID); err != nil {
		t.Errorf("reader get: %v", err)
	}
	// The admin sees everything.
	if len(must(s.ListNetworks(w.e.admin, ListOpts{}))) != 4 {
		t.Error("admin does not see every network")
	}
}

// TestDeviceIDOfAnotherProject: a port naming another project's router
// or server as its device is refused, and so is a port on another
// project's network (OSSA-2014-008).
func TestDeviceIDOfAnotherProject(t *testing.T) {
	w := newWorld(t)
	s := w.e.svc
	s.Use(Deps{Devices: fakeDevices{"server-of-p2": "p2", "server-of-p1": "p1"}})
	cases := []struct {
		name  string
		opts  CreatePortOpts
		fault string
	}{
		{"p2's router as router interface", CreatePortOpts{DeviceID: w.router2.ID, DeviceOwner: OwnerRouterInterface}, "DeviceIDNotOwnedByTenant"},
		{"p2's router, no owner", CreatePortOpts{DeviceID: w.router2.ID}, "DeviceIDNotOwnedByTenant"},
		{"p2's router as gateway", CreatePortOpts{DeviceID: w.router2.ID, DeviceOwner: OwnerRouterGateway}, "DeviceIDNotOwnedByTenant"},
		{"p2's server", CreatePortOpts{DeviceID: "server-of-p2", DeviceOwner: OwnerCompute}, "DeviceIDNotOwnedByTenant"},
	}
	for _, c := range cases {
		c.opts.NetworkID = w.net1.ID
		_, err := s.CreatePort(w.p1, c.opts)
		if f, ok := errors.AsType[*Fault](err); !ok || f.Type != c.fault {
			t.Errorf("%s: %v, want %s", c.name, err, c.fault)
		}
		// And the same through an update of an existing port.
		_, err = s.UpdatePort(w.p1, w.port1.ID, UpdatePortOpts{DeviceID: &c.opts.DeviceID})
		if f, ok := errors.AsType[*Fault](err); !ok || f.Type != c.fault {
			t.Errorf("%s by update: %v, want %s", c.name, err, c.fault)
		}
	}
	_, err := s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.net2.ID, DeviceID: "server-of-p1", DeviceOwner: OwnerCompute})
	wantKind(t, err, errdefs.ErrNotFound)
	// Own devices are fine.
	must(s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.net1.ID, DeviceID: "server-of-p1", DeviceOwner: OwnerCompute}))
	must(s.CreatePort(w.p1, CreatePortOpts{NetworkID: w.net1.ID, DeviceID: w.router1.ID}))
	// Nothing of p2's router changed.
	if got := must(s.ListPorts(w.e.admin, ListOpts{DeviceID: w.router2.ID})); len(got) != 2 {
		t.Fatalf("p2's router has %d ports, want its gateway and interface", len(got))
	}
}

type fakeDevices map[string]string

func (f fakeDevices) DeviceProject(_ context.Context, id string) (string, error) {
	if p, ok := f[id]; ok {
		return p, nil
	}
	return "", errdefs.ErrNotFound
}

// TestSecondaryVerbsObeyPolicy: tags and the other secondary verbs
// (router interfaces, extra routes, floating IP association) of a
// resource the caller cannot change are refused (OSSA-2024-005).
func TestSecondaryVerbsObeyPolicy(t *testing.T) {
	w := newWorld(t)
	s := w.e.svc
	for _, kind := range []struct {
		kind, id string
		want     error
	}{
		{KindNetworks, w.net2.ID, errdefs.ErrNotFound},
		{KindSubnets, w.sub2.ID, errdefs.ErrNotFound},
		{KindPorts, w.port2.ID, errdefs.ErrNotFound},
		{KindRouters, w.router2.ID, errdefs.ErrNotFound},
		{KindFloatingIPs, w.fip2.ID, errdefs.ErrNotFound},
		{KindSecurityGroups, w.sg2.ID, errdefs.ErrNotFound},
		{KindNetworks, w.shared.ID, errdefs.ErrForbidden},
		{KindNetworks, w.ext.ID, errdefs.ErrForbidden},
		{KindSubnets, w.sharedSub.ID, errdefs.ErrForbidden},
	} {
		if err := s.AddTag(w.p1, kind.kind, kind.id, "x"); !errors.Is(err, kind.want) {
			t.Errorf("add tag on %s %s: %v, want %v", kind.kind, kind.id, err, kind.want)
		}
		if _, err := s.ReplaceTags(w.p1, kind.kind, kind.id, nil); !errors.Is(err, kind.want) {
			t.Errorf("clear tags on %s %s: %v, want %v", kind.kind, kind.id, err, kind.want)
		}
		if err := s.RemoveTag(w.p1, kind.kind, kind.id, "x"); !errors.Is(err, kind.want) {
			t.Errorf("remove tag on %s %s: %v", kind.kind, kind.id, err)
		}
	}
	// A reader of p1 cannot tag p1's own network either.
	if err := s.AddTag(reader("p1"), KindNetworks, w.net1.ID, "x"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("reader tag: %v", err)
	}
	if _, err := s.EditRoutes(w.p1, w.router2.ID, []Route{{Destination: "10.7.0.0/24", NextHop: "10.1.0.9"}}, true); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("extra routes on p2's router: %v", err)
	}
	if _, err := s.RemoveRouterInterface(w.p1, w.router2.ID, w.sub2.ID, ""); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("remove interface of p2's router: %v", err)
	}
	// Nothing changed on the shared network.
	if tags := must(s.Tags(w.e.admin, KindNetworks, w.shared.ID)); len(tags) != 0 {
		t.Fatalf("shared network tags %v", tags)
	}
	// The owner tags its own.
	must(s.ReplaceTags(w.p1, KindNetworks, w.net1.ID, []string{"a", "b"}))
	if err := s.RemoveTag(w.p1, KindNetworks, w.net1.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if tags := must(s.Tags(w.p1, KindNetworks, w.net1.ID)); !slices.Equal(tags, []string{"b"}) {
		t.Fatalf("tags %v", tags)
	}
}
