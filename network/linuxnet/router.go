package linuxnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

func (b *Backend) nsPath(name string) string { return filepath.Join(b.cfg.NetnsDir, name) }

// EnsureRouter implements network.Backend.
func (b *Backend) EnsureRouter(ctx context.Context, spec network.RouterSpec) error {
	if err := b.begin(ctx, "router", spec.ID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", spec.ID); err != nil {
		return fmt.Errorf("linuxnet: router: %w", err)
	}
	var nets []string
	if spec.Gateway != nil {
		if err := checkID("gateway.port_id", spec.Gateway.PortID); err != nil {
			return fmt.Errorf("linuxnet: router %s: %w", spec.ID, err)
		}
		nets = append(nets, spec.Gateway.NetworkID)
	}
	for _, i := range spec.Interfaces {
		if err := checkID("interfaces.port_id", i.PortID); err != nil {
			return fmt.Errorf("linuxnet: router %s: %w", spec.ID, err)
		}
		nets = append(nets, i.NetworkID)
	}
	for _, n := range nets {
		if _, err := b.bridgeOf(n); err != nil {
			return fmt.Errorf("linuxnet: router %s: %w", spec.ID, err)
		}
	}
	old, had := b.routers[spec.ID]
	b.routers[spec.ID] = spec
	err := b.ensureRouter(ctx, spec)
	if err == nil {
		err = b.saveSpec("router", spec.ID, spec)
	}
	if err != nil {
		if had {
			b.routers[spec.ID] = old
		} else {
			b.routers[spec.ID] = spec // keep it known so DeleteRouter cleans up
		}
		return fmt.Errorf("linuxnet: router %s: %w", spec.ID, err)
	}
	if had {
		b.flushFloating(spec.ID, old, spec)
	}
	return nil
}

// ensureRouter converges the router's namespace to spec.
func (b *Backend) ensureRouter(_ context.Context, spec network.RouterSpec) error {
	name := nsRouter + spec.ID
	ns, err := createNS(b.nsPath(name))
	if err != nil {
		return err
	}
	defer ns.Close()
	rh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer rh.Close()
	// Forwarding on; strict reverse-path filtering, so no packet with a
	// tenant subnet's source enters by the gateway (the metadata service
	// trusts the source address of what comes in by a qr- interface).
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"} {
		if err := writeSysctl(ns, k, "1"); err != nil {
			return err
		}
	}
	lo, err := rh.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := rh.LinkSetUp(lo); err != nil {
		return err
	}
	metadata := spec.Metadata && b.cfg.Metadata != nil
	loAddrs := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}
	if metadata {
		loAddrs = append(loAddrs, netip.PrefixFrom(MetadataAddr, 32))
	} else {
		b.stopMetadata(name)
	}
	if err := syncAddrs(rh, lo, loAddrs); err != nil {
		return err
	}
	alias := aliasRouter + spec.ID + ":"
	want := map[string]bool{}
	for _, i := range spec.Interfaces {
		want[devName("tq", i.PortID)] = true
		mtu := b.nets[i.NetworkID].MTU
		if err := b.ensureVeth(rh, ns, devName("qr-", i.PortID), devName("tq", i.PortID), alias+i.PortID, i.NetworkID, i.MAC, mtu,
			[]netip.Prefix{i.Addr}); err != nil {
			return err
		}
	}
	var routes []netlink.Route
	if g := spec.Gateway; g != nil {
		want[devName("tq", g.PortID)] = true
		addrs := slices.Clone(g.Addrs)
		for _, f := range spec.FloatingIPs {
			addrs = append(addrs, netip.PrefixFrom(f.Floating, f.Floating.BitLen()))
		}
		qg := devName("qg-", g.PortID)
		if err := b.ensureVeth(rh, ns, qg, devName("tq", g.PortID), alias+g.PortID, g.NetworkID, g.MAC, b.nets[g.NetworkID].MTU, addrs); err != nil {
			return err
		}
		l, err := rh.LinkByName(qg)
		if err != nil {
			return err
		}
		for _, nh := range g.NextHops {
			dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if nh.Is6() {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			routes = append(routes, netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipnet(dst), Gw: nh.AsSlice(), Protocol: unix.RTPROT_STATIC})
		}
	}
	for _, r := range spec.Routes {
		routes = append(routes, netlink.Route{Dst: ipnet(r.Destination.Masked()), Gw: r.NextHop.AsSlice(), Protocol: unix.RTPROT_STATIC})
	}
	// Remove the interfaces the router no longer has.
	links, err := b.nl.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Alias, alias) && !want[l.Attrs().Name] {
			if err := b.nl.LinkDel(l); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	if err := syncRoutes(rh, routes); err != nil {
		return err
	}
	if err := routerNAT(ns, spec); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	if !metadata {
		return nil
	}
	ifaces := slices.Clone(spec.Interfaces)
	b.rtrIfaces.Store(spec.ID, ifaces)
	rid := spec.ID
	return b.startMetadata(name, ns, func(src netip.Addr) (string, bool) {
		v, ok := b.rtrIfaces.Load(rid)
		if !ok {
			return "", false
		}
		for _, i := range v.([]network.RouterInterfaceSpec) {
			if i.Addr.Masked().Contains(src) {
				return i.NetworkID, true
			}
		}
		return "", false
	})
}

// ensureVeth makes a veth pair with inner in ns (MAC, MTU, addresses)
// and outer on the network's bridge in the host, both up.
func (b *Backend) ensureVeth(rh *netlink.Handle, ns netns.NsHandle, inner, outer, alias, networkID, mac string, mtu int, addrs []netip.Prefix) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return errdefs.Invalid("mac", "%q", mac)
	}
	brName, err := b.bridgeOf(networkID)
	if err != nil {
		return err
	}
	br, err := b.nl.LinkByName(brName)
	if err != nil {
		return fmt.Errorf("bridge of network %s: %w", networkID, errdefs.ErrNotFound)
	}
	if mtu == 0 {
		mtu = 1500
	}
	in, err := rh.LinkByName(inner)
	if isNotFound(err) {
		if l, err := b.nl.LinkByName(outer); err == nil && l.Attrs().Alias == alias {
			_ = b.nl.LinkDel(l) // a half-made pair
		}
		err = b.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: outer, MTU: mtu, MasterIndex: br.Attrs().Index},
			PeerName: inner, PeerHardwareAddr: hw, PeerMTU: uint32(mtu), PeerNamespace: netlink.NsFd(int(ns))})
		if err != nil {
			return fmt.Errorf("add %s/%s: %w", outer, inner, err)
		}
		in, err = rh.LinkByName(inner)
	}
	if err != nil {
		return err
	}
	out, err := b.nl.LinkByName(outer)
	if err != nil {
		return err
	}
	if out.Attrs().Alias != alias {
		if err := b.nl.LinkSetAlias(out, alias); err != nil {
			return err
		}
	}
	if out.Attrs().MasterIndex != br.Attrs().Index {
		if err := b.nl.LinkSetMaster(out, br); err != nil {
			return err
		}
	}
	if in.Attrs().MTU != mtu {
		if err := rh.LinkSetMTU(in, mtu); err != nil {
			return err
		}
		if err := b.nl.LinkSetMTU(out, mtu); err != nil {
			return err
		}
	}
	if !slices.Equal(in.Attrs().HardwareAddr, hw) {
		if err := rh.LinkSetHardwareAddr(in, hw); err != nil {
			return err
		}
	}
	if err := b.nl.LinkSetUp(out); err != nil {
		return err
	}
	if err := rh.LinkSetUp(in); err != nil {
		return err
	}
	return syncAddrs(rh, in, addrs)
}

// syncAddrs makes l's global addresses exactly want.
func syncAddrs(h *netlink.Handle, l netlink.Link, want []netip.Prefix) error {
	have, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	has := map[netip.Prefix]bool{}
	for _, a := range have {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if ip.IsLinkLocalUnicast() && ip.Is6() {
			continue
		}
		if !slices.Contains(want, p) {
			if err := h.AddrDel(l, &a); err != nil {
				return err
			}
			continue
		}
		has[p] = true
	}
	for _, p := range want {
		if !has[p] {
			if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipnet(p)}); err != nil {
				return fmt.Errorf("address %s on %s: %w", p, l.Attrs().Name, err)
			}
		}
	}
	return nil
}

// syncRoutes makes the namespace's static routes exactly want.
func syncRoutes(h *netlink.Handle, want []netlink.Route) error {
	key := func(r netlink.Route) string { return r.Dst.String() + " via " + r.Gw.String() }
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[key(r)] = true
		if err := h.RouteReplace(&r); err != nil {
			return fmt.Errorf("route %s: %w", key(r), err)
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		have, err := h.RouteListFiltered(fam, &netlink.Route{Protocol: unix.RTPROT_STATIC}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return err
		}
		for _, r := range have {
			if r.Dst == nil {
				r.Dst = &net.IPNet{IP: make(net.IP, len(r.Gw)), Mask: net.CIDRMask(0, len(r.Gw)*8)}
				if fam == netlink.FAMILY_V4 {
					r.Dst = ipnet(netip.PrefixFrom(netip.IPv4Unspecified(), 0))
				}
			}
			if !wanted[key(r)] {
				if err := h.RouteDel(&r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// routerNAT replaces the router's NAT table: floating IPs as DNAT/SNAT
// pairs, then SNAT of everything else leaving by the gateway.
func routerNAT(ns netns.NsHandle, spec network.RouterSpec) error {
	c, err := nftConn(int(ns))
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	g := spec.Gateway
	if g == nil {
		return c.Flush()
	}
	c.AddTable(t)
	pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	out := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	qg := ifname(devName("qg-", g.PortID))
	nat := func(typ expr.NATType, a netip.Addr) exprs {
		return exprs{&expr.Immediate{Register: 1, Data: a.AsSlice()},
			&expr.NAT{Type: typ, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1}}
	}
	for _, f := range spec.FloatingIPs {
		if !f.Floating.Is4() || !f.Fixed.Is4() {
			continue
		}
		dnat := slices.Concat(ipAddr(netip.PrefixFrom(f.Floating, 32), false), nat(expr.NATTypeDestNAT, f.Fixed))
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: dnat})
		c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: dnat})
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: slices.Concat(ipAddr(netip.PrefixFrom(f.Fixed, 32), true),
			metaIs(expr.MetaKeyOIFNAME, qg), nat(expr.NATTypeSourceNAT, f.Floating))})
	}
	if g.EnableSNAT {
		for _, a := range g.Addrs {
			if a.Addr().Is4() {
				c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: slices.Concat(metaIs(expr.MetaKeyOIFNAME, qg),
					exprs{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: qg}},
					nat(expr.NATTypeSourceNAT, a.Addr()))})
				break
			}
		}
	}
	return c.Flush()
}

// flushFloating forgets the connections of floating IPs that went away,
// so that disassociation cuts them at once.
func (b *Backend) flushFloating(id string, old, cur network.RouterSpec) {
	var gone []netip.Addr
	for _, f := range old.FloatingIPs {
		if !slices.ContainsFunc(cur.FloatingIPs, func(g network.FloatingIPSpec) bool { return g == f }) {
			gone = append(gone, f.Floating)
		}
	}
	if len(gone) == 0 {
		return
	}
	ns, err := netns.GetFromPath(b.nsPath(nsRouter + id))
	if err != nil {
		return
	}
	defer ns.Close()
	rh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return
	}
	defer rh.Close()
	for _, a := range gone {
		for _, typ := range []netlink.ConntrackFilterType{netlink.ConntrackOrigDstIP, netlink.ConntrackReplyDstIP} {
			f := &netlink.ConntrackFilter{}
			if f.AddIP(typ, a.AsSlice()) == nil {
				_, _ = rh.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
			}
		}
	}
}

// DeleteRouter implements network.Backend.
func (b *Backend) DeleteRouter(ctx context.Context, id string) error {
	if err := b.begin(ctx, "router", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", id); err != nil {
		return fmt.Errorf("linuxnet: router: %w", err)
	}
	name := nsRouter + id
	b.stopMetadata(name)
	b.rtrIfaces.Delete(id)
	if err := b.delAliased(aliasRouter + id + ":"); err != nil {
		return fmt.Errorf("linuxnet: router %s: %w", id, err)
	}
	if err := removeNS(b.nsPath(name)); err != nil {
		return fmt.Errorf("linuxnet: router %s: %w", id, err)
	}
	delete(b.routers, id)
	return b.dropSpec("router", id)
}

// delAliased deletes the host links whose alias starts with prefix.
func (b *Backend) delAliased(prefix string) error {
	links, err := b.nl.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Alias, prefix) {
			if err := b.nl.LinkDel(l); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	return nil
}
