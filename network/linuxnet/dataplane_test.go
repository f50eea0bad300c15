package linuxnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/network"
)

// openGroup allows everything out and ICMP in (from anywhere).
func (e *env) openGroup() string {
	e.t.Helper()
	id := e.id()
	must(e.t, e.b.EnsureSecurityGroup(context.Background(), network.SecurityGroupSpec{ID: id, Stateful: true, Rules: []network.RuleSpec{
		{ID: "e4", Direction: "egress", Ethertype: "IPv4", Protocol: -1},
		{ID: "e6", Direction: "egress", Ethertype: "IPv6", Protocol: -1},
		{ID: "i4", Direction: "ingress", Ethertype: "IPv4", Protocol: 1, PortMin: -1, PortMax: -1},
		{ID: "i6", Direction: "ingress", Ethertype: "IPv6", Protocol: 58, PortMin: -1, PortMax: -1},
	}}))
	return id
}

// Two guests on one network get their fixed IPs (and MTU, routes) by
// DHCP and reach each other; a guest on another network cannot, until a
// router joins the two subnets.
func TestDHCPPingAndRouter(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	sg := e.openGroup()
	a := e.network("10.10.0.0/24", true)
	g1, g2 := e.plug(a, 10, sg), e.plug(a, 11, sg)
	lease := g1.dhcp()
	g2.dhcp()
	if g1.ip != a.addr(10) || g2.ip != a.addr(11) {
		t.Fatalf("DHCP gave %s and %s, want %s and %s", g1.ip, g2.ip, a.addr(10), a.addr(11))
	}
	if lease["mtu"] != "1450" || lease["router"] != "10.10.0.1" || lease["dns"] != "192.0.2.53" ||
		lease["staticroutes"] != "169.254.169.254/32 10.10.0.2 0.0.0.0/0 10.10.0.1" {
		t.Fatalf("lease options %v", lease)
	}
	if !eventually(func() bool { return g1.ping(g2.ip.Addr()) }) || !g2.ping(g1.ip.Addr()) {
		t.Fatal("guests on one network do not reach each other")
	}
	// The flow is tracked in the network's own conntrack zone.
	ct, err := runIn(e.host, "cat", "/proc/net/nf_conntrack")
	must(t, err)
	tracked := false
	for _, l := range strings.Split(ct, "\n") {
		if strings.Contains(l, "src="+g1.ip.Addr().String()+" dst="+g2.ip.Addr().String()) {
			tracked = true
			if !strings.Contains(l, "zone=1 ") && !strings.HasSuffix(l, "zone=1") {
				t.Fatalf("flow outside its network's zone: %s", l)
			}
		}
	}
	if !tracked {
		t.Fatalf("no conntrack entry for the ping:\n%s", ct)
	}

	b := e.network("10.20.0.0/24", false)
	g3 := e.plug(b, 10, sg)
	g3.dhcp()
	if g3.ping(g1.ip.Addr()) {
		t.Fatal("a guest on another network reached g1 without a router")
	}
	rtr := network.RouterSpec{ID: e.id(), ProjectID: "p1", AdminStateUp: true, Interfaces: []network.RouterInterfaceSpec{
		{PortID: e.id(), NetworkID: a.id, SubnetID: a.subnet, MAC: e.mac(), Addr: a.addr(1)},
		{PortID: e.id(), NetworkID: b.id, SubnetID: b.subnet, MAC: e.mac(), Addr: b.addr(1)},
	}}
	must(t, e.b.EnsureRouter(ctx, rtr))
	if !eventually(func() bool { return g3.ping(g1.ip.Addr()) }) {
		t.Fatal("the router does not join the subnets")
	}
	rtr.Interfaces = rtr.Interfaces[:1]
	must(t, e.b.EnsureRouter(ctx, rtr))
	if g3.ping(g1.ip.Addr()) {
		t.Fatal("reachable after the router left the subnet")
	}
}

// Security groups: ICMP and TCP are dropped by default, allowed once a
// rule says so, dropped again when the rule goes; remote groups follow
// their members.
func TestSecurityGroups(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	egress := []network.RuleSpec{{ID: "e4", Direction: "egress", Ethertype: "IPv4", Protocol: -1}}
	sg := network.SecurityGroupSpec{ID: e.id(), Stateful: true, Rules: egress}
	must(t, e.b.EnsureSecurityGroup(ctx, sg))
	a := e.network("10.30.0.0/24", true)
	g1, g2 := e.plug(a, 10, sg.ID), e.plug(a, 11, sg.ID)
	g1.dhcp()
	g2.dhcp()
	listen(t, g2.ns, g2.ip.Addr().String()+":8080")
	tcp := func() bool {
		c, err := dial(g1.ns, g2.ip.Addr().String()+":8080")
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if g1.ping(g2.ip.Addr()) || tcp() {
		t.Fatal("ICMP or TCP passed with no ingress rule")
	}
	sg.Rules = append(egress, network.RuleSpec{ID: "icmp", Direction: "ingress", Ethertype: "IPv4", Protocol: 1, PortMin: -1, PortMax: -1})
	must(t, e.b.EnsureSecurityGroup(ctx, sg))
	if !eventually(func() bool { return g1.ping(g2.ip.Addr()) }) || tcp() {
		t.Fatal("the ICMP rule does not allow exactly ICMP")
	}
	sg.Rules = append(sg.Rules, network.RuleSpec{ID: "tcp", Direction: "ingress", Ethertype: "IPv4", Protocol: 6, PortMin: 8000, PortMax: 8100})
	must(t, e.b.EnsureSecurityGroup(ctx, sg))
	if !eventually(tcp) {
		t.Fatal("the TCP rule does not allow TCP 8080")
	}
	sg.Rules = egress
	must(t, e.b.EnsureSecurityGroup(ctx, sg))
	if g1.ping(g2.ip.Addr()) || tcp() {
		t.Fatal("ICMP or TCP passes after the rules were deleted")
	}

	// A remote group rule: ICMP from the members of group "peers".
	peers := network.SecurityGroupSpec{ID: e.id(), Stateful: true, Members: []netip.Prefix{netip.PrefixFrom(g1.ip.Addr(), 32)}}
	must(t, e.b.EnsureSecurityGroup(ctx, peers))
	sg.Rules = append(egress, network.RuleSpec{ID: "rg", Direction: "ingress", Ethertype: "IPv4", Protocol: 1, PortMin: -1, PortMax: -1, RemoteGroupID: peers.ID})
	must(t, e.b.EnsureSecurityGroup(ctx, sg))
	if !eventually(func() bool { return g1.ping(g2.ip.Addr()) }) {
		t.Fatal("a member of the remote group is refused")
	}
	peers.Members = []netip.Prefix{netip.MustParsePrefix("10.30.0.100/32")}
	must(t, e.b.EnsureSecurityGroup(ctx, peers))
	if g1.ping(g2.ip.Addr()) {
		t.Fatal("an address that left the remote group still passes")
	}
}
