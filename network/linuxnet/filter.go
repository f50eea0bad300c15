package linuxnet

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// tableName is the name of every nftables table stratus owns, in each
// family it uses (netdev, ip, ip6) and in each namespace.
const tableName = "stratus"

// EnsureSecurityGroup implements network.Backend.
func (b *Backend) EnsureSecurityGroup(ctx context.Context, spec network.SecurityGroupSpec) error {
	if err := b.begin(ctx, "security group", spec.ID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", spec.ID); err != nil {
		return fmt.Errorf("linuxnet: security group: %w", err)
	}
	for _, r := range spec.Rules {
		if r.Direction != "ingress" && r.Direction != "egress" {
			return fmt.Errorf("linuxnet: security group %s: %w", spec.ID, errdefs.Invalid("direction", "%q", r.Direction))
		}
		if r.Ethertype != "IPv4" && r.Ethertype != "IPv6" {
			return fmt.Errorf("linuxnet: security group %s: %w", spec.ID, errdefs.Invalid("ethertype", "%q", r.Ethertype))
		}
		if r.Protocol < -1 || r.Protocol > 255 {
			return fmt.Errorf("linuxnet: security group %s: %w", spec.ID, errdefs.Invalid("protocol", "%d", r.Protocol))
		}
		if r.PortMin < -1 || r.PortMin > 65535 || r.PortMax < -1 || r.PortMax > 65535 {
			return fmt.Errorf("linuxnet: security group %s: %w", spec.ID, errdefs.Invalid("port_range", "%d-%d", r.PortMin, r.PortMax))
		}
		if r.RemoteGroupID != "" {
			if err := checkID("remote_group_id", r.RemoteGroupID); err != nil {
				return fmt.Errorf("linuxnet: security group %s: %w", spec.ID, err)
			}
		}
	}
	old, had := b.groups[spec.ID]
	b.groups[spec.ID] = spec
	err := b.applyGroup(spec)
	if err == nil {
		err = b.saveSpec("sg", spec.ID, spec)
	}
	if err != nil {
		if had {
			b.groups[spec.ID] = old
		} else {
			delete(b.groups, spec.ID)
		}
		return fmt.Errorf("linuxnet: security group %s: %w", spec.ID, err)
	}
	return nil
}

// DeleteSecurityGroup implements network.Backend. Ports still naming the
// group keep their default (deny ingress and egress) until they change.
func (b *Backend) DeleteSecurityGroup(ctx context.Context, id string) error {
	if err := b.begin(ctx, "security group", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", id); err != nil {
		return fmt.Errorf("linuxnet: security group: %w", err)
	}
	old, had := b.groups[id]
	if !had {
		return b.dropSpec("sg", id)
	}
	delete(b.groups, id)
	if err := b.applyGroup(network.SecurityGroupSpec{ID: id}); err != nil {
		b.groups[id] = old
		return fmt.Errorf("linuxnet: security group %s: %w", id, err)
	}
	return b.dropSpec("sg", id)
}

// Filtering lives in three tables named "stratus" in the host: netdev
// (a chain per port hooked on its device: anti-spoofing), ip and ip6 (a
// chain per port and direction, a chain per group and direction, a
// member set per group, and two base chains dispatching on the bridge
// port). Changes to one port or group touch only its chains, in one
// transaction each; applyFilters rebuilds everything (on start, and to
// remove the tables once nothing needs them).

var filterFamilies = []nftables.TableFamily{nftables.TableFamilyNetdev, nftables.TableFamilyIPv4, nftables.TableFamilyIPv6}

// applyFilters replaces the host's stratus tables with ones compiled from
// the recorded ports and groups, in one nftables transaction: packets
// see either the old rules or the new ones, and conntrack entries
// (existing flows) are kept.
func (b *Backend) applyFilters() error {
	links, err := b.nl.LinkList()
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, l := range links {
		exists[l.Attrs().Name] = true
	}
	var secured []network.PortSpec
	for _, p := range b.ports {
		if p.PortSecurity && exists[p.DevName] {
			secured = append(secured, p)
		}
	}
	slices.SortFunc(secured, func(a, b network.PortSpec) int { return cmpStr(a.ID, b.ID) })
	c, err := nftConn(int(b.host))
	if err != nil {
		return err
	}
	fence := b.fencedBridges(exists)
	zones, err := b.bridgeZones()
	if err != nil {
		return err
	}
	empty := len(secured) == 0 && len(b.groups) == 0 && len(zones) == 0
	for _, fam := range filterFamilies {
		t := &nftables.Table{Name: tableName, Family: fam}
		c.AddTable(t)
		c.DelTable(t)
		if empty && (fam != nftables.TableFamilyIPv4 || len(fence) == 0) {
			continue
		}
		c.AddTable(t)
		if fam == nftables.TableFamilyNetdev {
			for _, p := range secured {
				antiSpoof(c, t, p)
			}
			continue
		}
		base := skeleton(c, t, fence)
		zoneChain(c, t, zones)
		for _, id := range slices.Sorted(maps.Keys(b.groups)) {
			b.groupChains(c, t, b.groups[id])
		}
		for _, p := range secured {
			b.portChains(c, t, p)
			for _, dir := range []string{"egress", "ingress"} {
				c.AddRule(&nftables.Rule{Table: t, Chain: base[dir], UserData: []byte(p.ID), Exprs: append(physdev(p.DevName, dir == "egress"), jump(dir[:1]+"-"+p.ID))})
			}
		}
	}
	return c.Flush()
}

// tablesExist reports whether the stratus filter tables are in place (as
// applyFilters leaves them when anything needs them).
func (b *Backend) tablesExist(c *nftables.Conn) bool {
	for _, fam := range filterFamilies {
		if _, err := c.ListTableOfFamily(tableName, fam); err != nil {
			return false
		}
	}
	return true
}

// applyPort installs (or, with del, removes) one port's filtering
// without touching the other ports'.
func (b *Backend) applyPort(p network.PortSpec, del bool) error {
	if !p.PortSecurity && !del {
		// A port whose security was turned off loses its chains.
		del = true
	}
	c, err := nftConn(int(b.host))
	if err != nil {
		return err
	}
	if !b.tablesExist(c) || (del && len(b.groups) == 0 && !b.anySecured()) {
		return b.applyFilters()
	}
	for _, fam := range filterFamilies {
		t := &nftables.Table{Name: tableName, Family: fam}
		if fam == nftables.TableFamilyNetdev {
			ch := &nftables.Chain{Name: "as-" + p.ID, Table: t}
			if del {
				if _, err := c.ListChain(t, ch.Name); err == nil {
					c.DelChain(ch)
				}
				continue
			}
			antiSpoof(c, t, p)
			continue
		}
		base := map[string]*nftables.Chain{"egress": {Name: "egress", Table: t}, "ingress": {Name: "ingress", Table: t}}
		has := false
		for _, ch := range base {
			rules, err := c.GetRules(t, ch)
			if err != nil {
				return err
			}
			for _, r := range rules {
				if string(r.UserData) == p.ID {
					if del {
						if err := c.DelRule(r); err != nil {
							return err
						}
					}
					has = true
				}
			}
		}
		if del {
			for _, dir := range []string{"e-", "i-"} {
				if _, err := c.ListChain(t, dir+p.ID); err == nil {
					c.DelChain(&nftables.Chain{Name: dir + p.ID, Table: t})
				}
			}
			continue
		}
		b.portChains(c, t, p)
		if !has {
			for _, dir := range []string{"egress", "ingress"} {
				c.AddRule(&nftables.Rule{Table: t, Chain: base[dir], UserData: []byte(p.ID), Exprs: append(physdev(p.DevName, dir == "egress"), jump(dir[:1]+"-"+p.ID))})
			}
		}
	}
	return c.Flush()
}

func (b *Backend) anySecured() bool {
	for _, p := range b.ports {
		if p.PortSecurity {
			return true
		}
	}
	return false
}

// applyGroup installs one group's chains and member set (or empties them
// when the group is gone: ports and rules may still refer to them).
func (b *Backend) applyGroup(g network.SecurityGroupSpec) error {
	c, err := nftConn(int(b.host))
	if err != nil {
		return err
	}
	if !b.tablesExist(c) || (len(b.groups) == 0 && !b.anySecured()) {
		return b.applyFilters()
	}
	for _, fam := range filterFamilies[1:] {
		b.groupChains(c, &nftables.Table{Name: tableName, Family: fam}, g)
	}
	return c.Flush()
}

// skeleton adds the base chains of an ip or ip6 table: egress
// (prerouting, after conntrack) and ingress (forward), the fence of the
// external bridges and the host's fence against the tenant bridges.
func skeleton(c *nftables.Conn, t *nftables.Table, fence []string) map[string]*nftables.Chain {
	pre := c.AddChain(&nftables.Chain{Name: "egress", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityFilter, Policy: ptr(nftables.ChainPolicyAccept)})
	fwd := c.AddChain(&nftables.Chain{Name: "ingress", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: ptr(nftables.ChainPolicyAccept)})
	fc := c.AddChain(&nftables.Chain{Name: "fence", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-1), Policy: ptr(nftables.ChainPolicyAccept)})
	fenceChains(c, t, fc)
	if t.Family == nftables.TableFamilyIPv4 {
		for _, br := range fence {
			// Routed (not bridged) traffic from the external bridge to any
			// other interface: only with Masquerade.
			c.AddRule(&nftables.Rule{Table: t, Chain: fc, Exprs: slices.Concat(
				metaIs(expr.MetaKeyIIFNAME, ifname(br)),
				exprs{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(br)}, verdict(expr.VerdictDrop)})})
		}
	}
	return map[string]*nftables.Chain{"egress": pre, "ingress": fwd}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fencedBridges are the mapped bridges with a host address from which
// nothing may be routed elsewhere unless Masquerade is on.
func (b *Backend) fencedBridges(exists map[string]bool) []string {
	if b.cfg.Masquerade {
		return nil
	}
	var out []string
	for _, n := range b.nets {
		if br, ok := b.mappedBridge(n); ok && exists[br] && !slices.Contains(out, br) {
			if _, addr := b.cfg.BridgeAddrs[br]; addr {
				out = append(out, br)
			}
		}
	}
	slices.Sort(out)
	return out
}

// antiSpoof installs the port's ingress chain (traffic the guest sends):
// only its MAC and addresses (fixed IPs, allowed pairs, the MAC's IPv6
// link-local address), DHCP requests from 0.0.0.0, ARP about its own
// addresses; no DHCP server, no router advertisements; policy drop.
func antiSpoof(c *nftables.Conn, t *nftables.Table, p network.PortSpec) {
	ch := c.AddChain(&nftables.Chain{Name: "as-" + p.ID, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookIngress, Priority: nftables.ChainPriorityFilter, Device: p.DevName,
		Policy: ptr(nftables.ChainPolicyDrop)})
	c.FlushChain(ch)
	add := func(e ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e}) }
	mac, _ := net.ParseMAC(p.MAC)
	type pair struct {
		mac net.HardwareAddr
		pf  netip.Prefix
	}
	pairs := []pair{}
	macs := []net.HardwareAddr{mac}
	for _, a := range p.FixedIPs {
		pairs = append(pairs, pair{mac, netip.PrefixFrom(a.Addr.Addr(), a.Addr.Addr().BitLen())})
	}
	for _, a := range p.AllowedPairs {
		m := mac
		if a.MAC != "" {
			m, _ = net.ParseMAC(a.MAC)
		}
		if !slices.ContainsFunc(macs, func(x net.HardwareAddr) bool { return slices.Equal(x, m) }) {
			macs = append(macs, m)
		}
		pairs = append(pairs, pair{m, a.Prefix.Masked()})
	}
	for _, m := range macs {
		pairs = append(pairs, pair{m, netip.PrefixFrom(linkLocal(m), 128)})
	}
	cat := func(parts ...exprs) exprs { return slices.Concat(parts...) }
	// No DHCP or DHCPv6 server, no router advertisement from a guest.
	add(cat(ethProto(unix.ETH_P_IP), l4proto(protoUDP), portRange(false, 67, 67), exprs{verdict(expr.VerdictDrop)})...)
	add(cat(ethProto(unix.ETH_P_IPV6), l4proto(protoUDP), portRange(false, 547, 547), exprs{verdict(expr.VerdictDrop)})...)
	add(cat(ethProto(unix.ETH_P_IPV6), l4proto(protoICMPv6), icmpType(134, -1), exprs{verdict(expr.VerdictDrop)})...)
	// DHCP discovery and IPv6 duplicate address detection before the
	// guest has an address; ARP probes (sender 0.0.0.0).
	add(cat(ethProto(unix.ETH_P_IP), etherSrc(mac), ipAddr(netip.MustParsePrefix("0.0.0.0/32"), true),
		l4proto(protoUDP), portRange(false, 68, 68), portRange(true, 67, 67), exprs{verdict(expr.VerdictAccept)})...)
	add(cat(ethProto(unix.ETH_P_IPV6), etherSrc(mac), ipAddr(netip.MustParsePrefix("::/128"), true),
		l4proto(protoICMPv6), exprs{verdict(expr.VerdictAccept)})...)
	add(cat(ethProto(unix.ETH_P_ARP), etherSrc(mac), arpIPv4(), arpSender(mac, netip.MustParsePrefix("0.0.0.0/32")), exprs{verdict(expr.VerdictAccept)})...)
	for _, pr := range pairs {
		if pr.pf.Addr().Is4() {
			add(cat(ethProto(unix.ETH_P_IP), etherSrc(pr.mac), ipAddr(pr.pf, true), exprs{verdict(expr.VerdictAccept)})...)
			add(cat(ethProto(unix.ETH_P_ARP), etherSrc(pr.mac), arpIPv4(), arpSender(pr.mac, pr.pf), exprs{verdict(expr.VerdictAccept)})...)
		} else {
			add(cat(ethProto(unix.ETH_P_IPV6), etherSrc(pr.mac), ipAddr(pr.pf, true), exprs{verdict(expr.VerdictAccept)})...)
		}
	}
}

// arpIPv4 matches ARP for IPv4 over Ethernet.
func arpIPv4() exprs {
	return exprs{payload(expr.PayloadBaseNetworkHeader, 0, 6), cmpEq([]byte{0, 1, 8, 0, 6, 4})}
}

// arpSender matches the sender hardware and protocol addresses.
func arpSender(mac net.HardwareAddr, p netip.Prefix) exprs {
	return slices.Concat(exprs{payload(expr.PayloadBaseNetworkHeader, 8, 6), cmpEq(mac)},
		masked(expr.PayloadBaseNetworkHeader, 14, p))
}

// linkLocal is the EUI-64 IPv6 link-local address of a MAC.
func linkLocal(m net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15] = m[0]^2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]
	return netip.AddrFrom16(a)
}

func ptr[T any](v T) *T { return &v }

// groupChains (re)fills a group's member set and its chains, one per
// direction, whose rules accept what they match.
func (b *Backend) groupChains(c *nftables.Conn, t *nftables.Table, g network.SecurityGroupSpec) {
	v6 := t.Family == nftables.TableFamilyIPv6
	eth := "IPv4"
	if v6 {
		eth = "IPv6"
	}
	set := memberSet(c, t, g.ID)
	c.FlushSet(set)
	bits := 32
	if v6 {
		bits = 128
	}
	if els := intervalElements(g.Members, bits); len(els) > 0 {
		_ = c.SetAddElements(set, els)
	}
	for _, dir := range []string{"ingress", "egress"} {
		ch := c.AddChain(&nftables.Chain{Name: groupChain(dir, g.ID), Table: t})
		c.FlushChain(ch)
		for _, r := range g.Rules {
			if r.Direction != dir || r.Ethertype != eth {
				continue
			}
			if r.RemoteGroupID != "" {
				memberSet(c, t, r.RemoteGroupID) // may be a group not ensured yet
			}
			if e, ok := ruleExprs(r, v6); ok {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(e, verdict(expr.VerdictAccept))})
			}
		}
	}
}

// memberSet makes sure the member set of group id exists.
func memberSet(c *nftables.Conn, t *nftables.Table, id string) *nftables.Set {
	keyType := nftables.TypeIPAddr
	if t.Family == nftables.TableFamilyIPv6 {
		keyType = nftables.TypeIP6Addr
	}
	s := &nftables.Set{Table: t, Name: "m-" + id, KeyType: keyType, Interval: true}
	_ = c.AddSet(s, nil)
	return s
}

// portChains (re)fills a port's two chains: egress (what it sends, from
// the prerouting base chain) and ingress (what it receives, from the
// forward one), stateful, each jumping to its groups' chains and ending
// in drop.
func (b *Backend) portChains(c *nftables.Conn, t *nftables.Table, p network.PortSpec) {
	v6 := t.Family == nftables.TableFamilyIPv6
	cat := func(parts ...exprs) exprs { return slices.Concat(parts...) }
	for _, dir := range []string{"egress", "ingress"} {
		for _, g := range p.SecurityGroups {
			if _, ok := b.groups[g]; !ok {
				// A group that has not arrived yet: empty, so it allows nothing.
				c.AddChain(&nftables.Chain{Name: groupChain(dir, g), Table: t})
			}
		}
		ch := c.AddChain(&nftables.Chain{Name: dir[:1] + "-" + p.ID, Table: t})
		c.FlushChain(ch)
		add := func(e ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e}) }
		add(cat(ctState(ctEstablished|ctRelated), exprs{verdict(expr.VerdictAccept)})...)
		add(cat(ctState(ctInvalid), exprs{verdict(expr.VerdictDrop)})...)
		switch {
		case dir == "egress" && !v6: // DHCP
			add(cat(l4proto(protoUDP), portRange(false, 68, 68), portRange(true, 67, 67), exprs{verdict(expr.VerdictAccept)})...)
		case dir == "ingress" && !v6:
			add(cat(l4proto(protoUDP), portRange(false, 67, 67), portRange(true, 68, 68), exprs{verdict(expr.VerdictAccept)})...)
		case v6: // neighbour discovery, MLD, DHCPv6
			for _, typ := range []int{130, 131, 132, 133, 134, 135, 136, 143} {
				if dir == "egress" && typ == 134 {
					continue
				}
				add(cat(l4proto(protoICMPv6), icmpType(typ, -1), exprs{verdict(expr.VerdictAccept)})...)
			}
			if dir == "egress" {
				add(cat(l4proto(protoUDP), portRange(true, 547, 547), exprs{verdict(expr.VerdictAccept)})...)
			} else {
				add(cat(l4proto(protoUDP), portRange(false, 547, 547), portRange(true, 546, 546), exprs{verdict(expr.VerdictAccept)})...)
			}
		}
		for _, g := range p.SecurityGroups {
			add(jump(groupChain(dir, g)))
		}
		add(verdict(expr.VerdictDrop))
	}
}

func groupChain(dir, id string) string { return "g" + dir[:1] + "-" + id }

// ifname is an interface name as meta iifname compares it.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// ruleExprs compiles one rule's match; false when it can match nothing
// in this family.
func ruleExprs(r network.RuleSpec, v6 bool) (exprs, bool) {
	var e exprs
	ingress := r.Direction == "ingress"
	if r.Protocol >= 0 {
		e = append(e, l4proto(r.Protocol)...)
	}
	switch r.Protocol {
	case protoTCP, protoUDP, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP, unix.IPPROTO_UDPLITE:
		if r.PortMin > 0 {
			e = append(e, portRange(true, r.PortMin, r.PortMax)...)
		}
	case protoICMP, protoICMPv6:
		if r.PortMin >= 0 && (r.Protocol == protoICMPv6) == v6 {
			e = append(e, icmpType(r.PortMin, r.PortMax)...)
		}
	}
	if r.RemotePrefix.IsValid() {
		if r.RemotePrefix.Addr().Is6() != v6 {
			return nil, false
		}
		e = append(e, ipAddr(r.RemotePrefix.Masked(), ingress)...)
	}
	if r.RemoteGroupID != "" {
		off, n := uint32(16), uint32(4)
		if v6 {
			off, n = 24, 16
		}
		if ingress {
			off -= n
		}
		e = append(e, payload(expr.PayloadBaseNetworkHeader, off, n), &expr.Lookup{SourceRegister: 1, SetName: "m-" + r.RemoteGroupID})
	}
	return e, true
}

// applyMasquerade installs (or removes) the host's NAT of the mapped
// bridges' subnets towards its other interfaces (Config.Masquerade).
func (b *Backend) applyMasquerade() error {
	c, err := nftConn(int(b.host))
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: tableName + "-masq", Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	var rules [][]expr.Any
	for _, n := range b.nets {
		br, ok := b.mappedBridge(n)
		pf, addr := b.cfg.BridgeAddrs[br]
		if !ok || !addr || !pf.Addr().Is4() {
			continue
		}
		rules = append(rules, slices.Concat(ipAddr(pf.Masked(), true),
			exprs{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(br)}, &expr.Masq{}}))
	}
	if len(rules) > 0 && b.cfg.Masquerade {
		if err := writeSysctl(b.host, "net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		c.AddTable(t)
		ch := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
		for _, r := range rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
		}
	}
	return c.Flush()
}
