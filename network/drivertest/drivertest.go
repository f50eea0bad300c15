// Package drivertest is the conformance suite every network.Backend
// passes: the fake (network/fakenet) and the Linux dataplane alike.
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, func(ctx context.Context, t *testing.T) (drivertest.Harness, error) { … })
//	}
package drivertest

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// Harness gives the suite a Backend.
type Harness interface {
	// MakeBackend returns a Backend; every call on one Harness sees the
	// same state (as a restarted process would on the same host).
	MakeBackend(ctx context.Context) (network.Backend, error)
	// Close releases everything the harness created.
	Close()
}

// Run runs the conformance suite. newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(ctx context.Context, t *testing.T) (Harness, error)) {
	tests := []struct {
		name string
		fn   func(ctx context.Context, t *testing.T, h Harness)
	}{
		{"NetworkIdempotent", testNetworkIdempotent},
		{"PortNeedsNetwork", testPortNeedsNetwork},
		{"PortVIF", testPortVIF},
		{"DeleteIsIdempotent", testDeleteIdempotent},
		{"NetworkInUse", testNetworkInUse},
		{"SecurityGroup", testSecurityGroup},
		{"Router", testRouter},
		{"DHCP", testDHCP},
		{"SurvivesRestart", testRestart},
		{"CanceledContext", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			h, err := newHarness(ctx, t)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			tc.fn(ctx, t, h)
		})
	}
}

// IDs used by the suite: distinct per object kind, valid UUIDs.
const (
	netA   = "0d000000-0000-4000-8000-00000000000a"
	netExt = "0d000000-0000-4000-8000-0000000000e0"
	portA  = "0e000000-0000-4000-8000-00000000000a"
	portB  = "0e000000-0000-4000-8000-00000000000b"
	sgA    = "0f000000-0000-4000-8000-00000000000a"
	rtrA   = "0c000000-0000-4000-8000-00000000000a"
	subA   = "0b000000-0000-4000-8000-00000000000a"
	subExt = "0b000000-0000-4000-8000-0000000000e0"
)

func backend(ctx context.Context, t *testing.T, h Harness) network.Backend {
	t.Helper()
	b, err := h.MakeBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantKind(t *testing.T, err, kind error, id string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	if id != "" && !strings.Contains(err.Error(), id) {
		t.Fatalf("error %q does not name %s", err, id)
	}
}

func netSpec(id string, ext bool) network.NetworkSpec {
	return network.NetworkSpec{ID: id, ProjectID: "p1", NetworkType: network.TypeVXLAN, SegmentationID: 42, MTU: 1450, External: ext, AdminStateUp: true}
}

func portSpec(id, net string) network.PortSpec {
	return network.PortSpec{ID: id, NetworkID: net, ProjectID: "p1", Host: "h1", DevName: network.TapName(id),
		MAC: "fa:16:3e:00:00:" + id[len(id)-2:], MTU: 1450, AdminStateUp: true, PortSecurity: true, SecurityGroups: []string{sgA},
		FixedIPs: []network.PortAddr{{SubnetID: subA, Addr: netip.MustParsePrefix("10.0.0." + map[string]string{portA: "10", portB: "11"}[id] + "/24")}}}
}

func inventory(ctx context.Context, t *testing.T, b network.Backend) *network.Inventory {
	t.Helper()
	inv, err := b.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func testNetworkIdempotent(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	spec := netSpec(netA, false)
	spec.MTU = 1400
	must(t, b.EnsureNetwork(ctx, spec))
	if inv := inventory(ctx, t, b); !slices.Equal(inv.Networks, []string{netA}) {
		t.Fatalf("networks %v, want [%s]", inv.Networks, netA)
	}
}

func testPortNeedsNetwork(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	_, err := b.EnsurePort(ctx, portSpec(portA, netA))
	wantKind(t, err, errdefs.ErrNotFound, netA)
	if inv := inventory(ctx, t, b); len(inv.Ports) != 0 {
		t.Fatalf("a failed EnsurePort left ports %v", inv.Ports)
	}
}

func testPortVIF(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	spec := portSpec(portA, netA)
	for range 2 {
		vif, err := b.EnsurePort(ctx, spec)
		must(t, err)
		if vif.DevName != network.TapName(portA) || len(vif.DevName) > 15 || vif.MAC != spec.MAC || vif.MTU != spec.MTU || vif.Type != network.VIFTypeTap {
			t.Fatalf("vif %+v does not match spec %+v", vif, spec)
		}
	}
	spec.AllowedPairs = []network.AllowedPair{{Prefix: netip.MustParsePrefix("10.0.0.100/32"), MAC: spec.MAC}}
	_, err := b.EnsurePort(ctx, spec)
	must(t, err)
	if inv := inventory(ctx, t, b); !slices.Equal(inv.Ports, []string{portA}) {
		t.Fatalf("ports %v", inv.Ports)
	}
}

func testDeleteIdempotent(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	must(t, b.DeletePort(ctx, portA))
	must(t, b.DeleteNetwork(ctx, netA))
	must(t, b.DeleteRouter(ctx, rtrA))
	must(t, b.DeleteSecurityGroup(ctx, sgA))
	must(t, b.DeleteDHCP(ctx, netA))
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	_, err := b.EnsurePort(ctx, portSpec(portA, netA))
	must(t, err)
	must(t, b.DeletePort(ctx, portA))
	must(t, b.DeletePort(ctx, portA))
	must(t, b.DeleteNetwork(ctx, netA))
	must(t, b.DeleteNetwork(ctx, netA))
	inv := inventory(ctx, t, b)
	if len(inv.Ports)+len(inv.Networks) != 0 {
		t.Fatalf("left %+v", inv)
	}
}

func testNetworkInUse(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	_, err := b.EnsurePort(ctx, portSpec(portA, netA))
	must(t, err)
	wantKind(t, b.DeleteNetwork(ctx, netA), errdefs.ErrConflict, netA)
	must(t, b.DeletePort(ctx, portA))
	must(t, b.DeleteNetwork(ctx, netA))
}

func testSecurityGroup(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	spec := network.SecurityGroupSpec{ID: sgA, Stateful: true, Rules: []network.RuleSpec{
		{ID: "r1", Direction: "egress", Ethertype: "IPv4", Protocol: -1},
		{ID: "r2", Direction: "ingress", Ethertype: "IPv4", Protocol: 6, PortMin: 22, PortMax: 22, RemotePrefix: netip.MustParsePrefix("192.0.2.0/24")},
		{ID: "r3", Direction: "ingress", Ethertype: "IPv4", Protocol: 1, PortMin: -1, PortMax: -1, RemoteGroupID: sgA},
	}, Members: []netip.Prefix{netip.MustParsePrefix("10.0.0.10/32")}}
	must(t, b.EnsureSecurityGroup(ctx, spec))
	spec.Rules = spec.Rules[:1]
	must(t, b.EnsureSecurityGroup(ctx, spec))
	if inv := inventory(ctx, t, b); !slices.Equal(inv.SecurityGroups, []string{sgA}) {
		t.Fatalf("groups %v", inv.SecurityGroups)
	}
	must(t, b.DeleteSecurityGroup(ctx, sgA))
	if inv := inventory(ctx, t, b); len(inv.SecurityGroups) != 0 {
		t.Fatalf("groups %v after delete", inv.SecurityGroups)
	}
}

func testRouter(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	spec := network.RouterSpec{ID: rtrA, ProjectID: "p1", AdminStateUp: true,
		Gateway: &network.RouterGatewaySpec{NetworkID: netExt, PortID: portB, MAC: "fa:16:3e:00:01:01",
			Addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24")}, NextHops: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, EnableSNAT: true},
		Interfaces:  []network.RouterInterfaceSpec{{PortID: portA, NetworkID: netA, SubnetID: subA, MAC: "fa:16:3e:00:01:02", Addr: netip.MustParsePrefix("10.0.0.1/24")}},
		Routes:      []network.RouteSpec{{Destination: netip.MustParsePrefix("192.0.2.0/24"), NextHop: netip.MustParseAddr("10.0.0.254")}},
		FloatingIPs: []network.FloatingIPSpec{{ID: "f1", Floating: netip.MustParseAddr("203.0.113.20"), Fixed: netip.MustParseAddr("10.0.0.10"), PortID: portA}},
	}
	wantKind(t, b.EnsureRouter(ctx, spec), errdefs.ErrNotFound, "")
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	must(t, b.EnsureNetwork(ctx, netSpec(netExt, true)))
	must(t, b.EnsureRouter(ctx, spec))
	spec.FloatingIPs = nil
	spec.Gateway.EnableSNAT = false
	must(t, b.EnsureRouter(ctx, spec))
	wantKind(t, b.DeleteNetwork(ctx, netA), errdefs.ErrConflict, "")
	if inv := inventory(ctx, t, b); !slices.Equal(inv.Routers, []string{rtrA}) {
		t.Fatalf("routers %v", inv.Routers)
	}
	must(t, b.DeleteRouter(ctx, rtrA))
	must(t, b.DeleteNetwork(ctx, netA))
	must(t, b.DeleteNetwork(ctx, netExt))
}

func testDHCP(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	spec := network.DHCPSpec{NetworkID: netA, MTU: 1450, PortID: portB, MAC: "fa:16:3e:00:02:01", Metadata: true,
		Subnets: []network.SubnetSpec{{ID: subA, CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), EnableDHCP: true,
			DNSNameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, DHCPServer: netip.MustParseAddr("10.0.0.2"), MetadataRoute: true}},
		Hosts: []network.DHCPHost{{PortID: portA, MAC: "fa:16:3e:00:00:0a", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.10")}, Hostname: "host-10-0-0-10"}}}
	wantKind(t, b.EnsureDHCP(ctx, spec), errdefs.ErrNotFound, netA)
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	must(t, b.EnsureDHCP(ctx, spec))
	spec.Hosts = nil
	must(t, b.EnsureDHCP(ctx, spec))
	if inv := inventory(ctx, t, b); !slices.Equal(inv.DHCP, []string{netA}) {
		t.Fatalf("dhcp %v", inv.DHCP)
	}
	must(t, b.DeleteDHCP(ctx, netA))
	must(t, b.DeleteNetwork(ctx, netA))
}

func testRestart(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	must(t, b.EnsureNetwork(ctx, netSpec(netA, false)))
	_, err := b.EnsurePort(ctx, portSpec(portA, netA))
	must(t, err)
	b2 := backend(ctx, t, h)
	inv := inventory(ctx, t, b2)
	if !slices.Equal(inv.Networks, []string{netA}) || !slices.Equal(inv.Ports, []string{portA}) {
		t.Fatalf("after restart: %+v", inv)
	}
	_, err = b2.EnsurePort(ctx, portSpec(portA, netA))
	must(t, err)
	must(t, b2.DeletePort(ctx, portA))
	must(t, b2.DeleteNetwork(ctx, netA))
}

func testCanceled(ctx context.Context, t *testing.T, h Harness) {
	b := backend(ctx, t, h)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	errs := []error{b.EnsureNetwork(cctx, netSpec(netA, false)), b.DeleteNetwork(cctx, netA), b.DeletePort(cctx, portA)}
	_, err := b.EnsurePort(cctx, portSpec(portA, netA))
	errs = append(errs, err)
	_, err = b.Inventory(cctx)
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d with a cancelled context: %v, want context.Canceled", i, err)
		}
	}
	if inv := inventory(ctx, t, b); len(inv.Networks) != 0 {
		t.Fatalf("a cancelled EnsureNetwork created %v", inv.Networks)
	}
}
