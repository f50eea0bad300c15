package linuxnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stratuskit/stratus/network"
)

// The host itself is out of a tenant network's reach: a guest that
// routes a host address on-link (even with the bridge's MAC as a static
// neighbour, so ARP does not matter), or talks to the bridge's IPv6
// link-local address, reaches no service of the host; the bridge answers
// no ARP and has no IPv6 address. The guest keeps its DHCP server,
// router and neighbours.
func TestTenantBridgeFence(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	sg := e.openGroup()
	a := e.network("10.90.0.0/24", false)
	g1, g2 := e.plug(a, 10, sg), e.plug(a, 11, sg)
	g1.dhcp()
	g2.dhcp()
	must(t, e.b.EnsureRouter(ctx, network.RouterSpec{ID: e.id(), ProjectID: "p1", AdminStateUp: true, Interfaces: []network.RouterInterfaceSpec{
		{PortID: e.id(), NetworkID: a.id, SubnetID: a.subnet, MAC: e.mac(), Addr: a.addr(1)}}}))
	for _, dst := range []netip.Addr{g2.ip.Addr(), a.addr(1).Addr(), a.addr(2).Addr()} {
		if !eventually(func() bool { return g1.ping(dst) }) {
			t.Fatalf("the guest does not reach %s (neighbour, router, DHCP server)", dst)
		}
	}

	// The host's services: addresses on its loopback, a listener
	// on all of them; the host routes the tenant subnet to the bridge (as
	// if a route led there), so nothing but the fence stops replies.
	br, err := e.nl.LinkByName(BridgeName(a.id))
	must(t, err)
	brMAC := br.Attrs().HardwareAddr
	svc, err := e.nl.LinkByName("lo")
	must(t, err)
	host4, host6 := netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("2001:db8:99::1/128")
	for _, p := range []netip.Prefix{host4, host6} {
		must(t, e.nl.AddrAdd(svc, &netlink.Addr{IPNet: ipnet(p), Flags: unix.IFA_F_NODAD}))
	}
	must(t, e.nl.RouteReplace(&netlink.Route{LinkIndex: br.Attrs().Index, Dst: ipnet(a.cidr), Scope: netlink.SCOPE_LINK}))
	ln := listen(t, e.host, ":0")
	port := ln.Addr().(*net.TCPAddr).Port
	if c, err := dial(e.host, fmt.Sprintf("%s:%d", host4.Addr(), port)); err != nil {
		t.Fatalf("control: the host's own listener: %v", err)
	} else {
		c.Close()
	}

	// The bridge's link-local address, had it one (its EUI-64 address
	// otherwise: the bridge's MAC follows its ports').
	ll := linkLocal(brMAC).WithZone("eth0")
	addrs, err := e.nl.AddrList(br, netlink.FAMILY_V6)
	must(t, err)
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		t.Errorf("the tenant bridge has IPv6 address %s", ip)
		if ip.IsLinkLocalUnicast() {
			ll = ip.WithZone("eth0")
		}
	}

	// Beyond the host: a network it routes to (forwarding on), with a
	// listener.
	out := e.outside(netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"))
	must(t, writeSysctl(e.host, "net/ipv4/ip_forward", "1"))
	lnOut := listen(t, out, "192.0.2.2:0")
	beyond := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), uint16(lnOut.Addr().(*net.TCPAddr).Port))
	if !eventually(func() bool {
		c, err := dial(e.host, beyond.String())
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("control: the host does not reach the outside listener")
	}

	eth0, err := g1.nl.LinkByName("eth0")
	must(t, err)
	for _, p := range []netip.Prefix{host4, host6, netip.PrefixFrom(beyond.Addr(), 32)} {
		must(t, g1.nl.RouteReplace(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipnet(p), Scope: netlink.SCOPE_LINK}))
		must(t, g1.nl.NeighSet(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, IP: p.Addr().AsSlice(), HardwareAddr: brMAC, State: netlink.NUD_PERMANENT}))
	}
	// The guest's own link-local address is usable (no longer tentative).
	if !eventually(func() bool {
		addrs, err := g1.nl.AddrList(eth0, netlink.FAMILY_V6)
		return err == nil && slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
			return a.IP.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0
		})
	}) {
		t.Fatal("the guest has no IPv6 link-local address")
	}
	// Every probe fails by timing out: run them at once.
	var wg sync.WaitGroup
	probe := func(what string, ok func() bool) {
		wg.Go(func() {
			if ok() {
				t.Errorf("the guest %s", what)
			}
		})
	}
	probe("got ARP answers for a host address", func() bool {
		_, err := g1.run("busybox", "arping", "-c", "1", "-w", "1", "-I", "eth0", host4.Addr().String())
		return err == nil
	})
	for _, dst := range []netip.AddrPort{netip.AddrPortFrom(host4.Addr(), uint16(port)), netip.AddrPortFrom(host6.Addr(), uint16(port)),
		netip.AddrPortFrom(ll, uint16(port)), beyond} {
		probe("reached a listener at "+dst.String(), func() bool {
			c, err := dial(g1.ns, dst.String())
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		probe("got ping answers from "+dst.Addr().String(), func() bool { return pingFrom(g1.ns, dst.Addr()) })
	}
	wg.Wait()
	if !g1.ping(g2.ip.Addr()) || !g1.ping(a.addr(1).Addr()) {
		t.Fatal("the guest lost its network")
	}
}

// outside is a namespace joined to the host by a veth pair, the host end
// addressed hostAddr, the other end addr (with a default route back).
func (e *env) outside(hostAddr, addr netip.Prefix) netns.NsHandle {
	e.t.Helper()
	ns, err := createNS(filepath.Join(e.dir, "g-out"))
	must(e.t, err)
	e.t.Cleanup(func() { ns.Close() })
	nl, err := netlink.NewHandleAt(ns)
	must(e.t, err)
	defer nl.Close()
	must(e.t, e.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "out0"}, PeerName: "out1"}))
	peer, err := e.nl.LinkByName("out1")
	must(e.t, err)
	must(e.t, e.nl.LinkSetNsFd(peer, int(ns)))
	host, err := e.nl.LinkByName("out0")
	must(e.t, err)
	must(e.t, e.nl.AddrAdd(host, &netlink.Addr{IPNet: ipnet(hostAddr)}))
	must(e.t, e.nl.LinkSetUp(host))
	peer, err = nl.LinkByName("out1")
	must(e.t, err)
	must(e.t, nl.AddrAdd(peer, &netlink.Addr{IPNet: ipnet(addr)}))
	must(e.t, nl.LinkSetUp(peer))
	must(e.t, nl.RouteReplace(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: hostAddr.Addr().AsSlice()}))
	return ns
}
