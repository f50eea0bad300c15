package linuxnet

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stratuskit/stratus/network"
)

// Anti-spoofing (the class of OSSA-2016-009 and OSSA-2021-001): a guest
// may send only from its MAC and addresses, for IPv4, IPv6 and ARP.
func TestAntiSpoofing(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	sg := e.openGroup()
	a := e.network("10.40.0.0/24", true)
	victim, attacker := e.plug(a, 10, sg), e.plug(a, 11, sg)
	for _, g := range []*guest{victim, attacker} {
		g.dhcp()
	}
	if !eventually(func() bool { return attacker.ping(victim.ip.Addr()) }) {
		t.Fatal("no connectivity to start with")
	}
	eth0 := func(g *guest) netlink.Link {
		l, err := g.nl.LinkByName("eth0")
		must(t, err)
		return l
	}

	t.Run("IPv4", func(t *testing.T) {
		// The attacker takes another address of the subnet and pings from it.
		spoof := a.addr(50)
		must(t, attacker.nl.AddrAdd(eth0(attacker), &netlink.Addr{IPNet: ipnet(spoof)}))
		defer attacker.nl.AddrDel(eth0(attacker), &netlink.Addr{IPNet: ipnet(spoof)})
		if pingFrom(attacker.ns, victim.ip.Addr(), "-I", spoof.Addr().String()) {
			t.Fatal("a ping from a spoofed IPv4 source got through")
		}
		if !eventually(func() bool { return attacker.ping(victim.ip.Addr()) }) {
			t.Fatal("the attacker's own address stopped working")
		}
	})

	t.Run("ARP", func(t *testing.T) {
		// An ARP request from the attacker's MAC claiming a third address
		// would make the victim learn (address → attacker MAC).
		claimed := a.addr(60).Addr()
		claim := &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(claimed, 32))}
		must(t, attacker.nl.AddrAdd(eth0(attacker), claim))
		defer attacker.nl.AddrDel(eth0(attacker), claim)
		if out, err := attacker.run("busybox", "arping", "-c", "2", "-w", "1", "-I", "eth0", "-s", claimed.String(), victim.ip.Addr().String()); err == nil {
			t.Fatalf("the spoofed ARP request was answered:\n%s", out)
		}
		_, _ = attacker.run("busybox", "arping", "-c", "2", "-w", "1", "-I", "eth0", "-s", attacker.ip.Addr().String(), victim.ip.Addr().String())
		neigh, err := victim.nl.NeighList(eth0(victim).Attrs().Index, unix.AF_INET)
		must(t, err)
		learnt := map[string]string{}
		for _, n := range neigh {
			learnt[n.IP.String()] = n.HardwareAddr.String()
		}
		if mac, ok := learnt[claimed.String()]; ok {
			t.Fatalf("the victim learnt %s at %s from a spoofed ARP", claimed, mac)
		}
		if learnt[attacker.ip.Addr().String()] != attacker.port.MAC {
			t.Fatalf("control: the attacker's honest ARP was not learnt (%v)", learnt)
		}
	})

	t.Run("MAC", func(t *testing.T) {
		// The attacker takes the victim's MAC (or any other): nothing it
		// sends passes, even from its own address.
		l := eth0(attacker)
		for _, mac := range []string{victim.port.MAC, "fa:16:3e:99:99:99"} {
			hw, _ := net.ParseMAC(mac)
			must(t, attacker.nl.LinkSetHardwareAddr(l, hw))
			if attacker.ping(victim.ip.Addr()) {
				t.Fatalf("frames from forged MAC %s got through", mac)
			}
		}
		hw, _ := net.ParseMAC(attacker.port.MAC)
		must(t, attacker.nl.LinkSetHardwareAddr(l, hw))
		if !eventually(func() bool { return attacker.ping(victim.ip.Addr()) }) {
			t.Fatal("the attacker's own MAC stopped working")
		}
	})

	t.Run("IPv6", func(t *testing.T) {
		// Give both ports an IPv6 fixed IP; the attacker then sends from
		// an address that is not its own.
		v6 := func(g *guest, n int) netip.Prefix {
			p := netip.MustParsePrefix("2001:db8:40::/64")
			addr := p.Addr()
			for range n {
				addr = addr.Next()
			}
			spec := g.port
			spec.FixedIPs = append(spec.FixedIPs, network.PortAddr{SubnetID: "v6", Addr: netip.PrefixFrom(addr, 64)})
			_, err := e.b.EnsurePort(ctx, spec)
			must(t, err)
			must(t, g.nl.AddrAdd(eth0(g), &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(addr, 64)), Flags: unix.IFA_F_NODAD}))
			return netip.PrefixFrom(addr, 64)
		}
		vip, aip := v6(victim, 10), v6(attacker, 11)
		if !eventually(func() bool { return pingFrom(attacker.ns, vip.Addr(), "-I", aip.Addr().String()) }) {
			t.Fatal("IPv6 between the guests' own addresses does not work")
		}
		spoof := netip.MustParsePrefix("2001:db8:40::99/64")
		must(t, attacker.nl.AddrAdd(eth0(attacker), &netlink.Addr{IPNet: ipnet(spoof), Flags: unix.IFA_F_NODAD}))
		if out, _ := attacker.run("ping", "-c", "1", "-W", "1", "-I", spoof.Addr().String(), vip.Addr().String()); !strings.Contains(out, "100% packet loss") {
			t.Fatalf("a ping from a spoofed IPv6 source got through:\n%s", out)
		}
	})
}
