package linuxnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// mappedBridge returns the host bridge of a flat network on a mapped
// physical network.
func (b *Backend) mappedBridge(n network.NetworkSpec) (string, bool) {
	if n.NetworkType != network.TypeFlat || n.PhysicalNetwork == "" {
		return "", false
	}
	br, ok := b.cfg.BridgeMappings[n.PhysicalNetwork]
	return br, ok
}

// bridgeOf returns the bridge name of a recorded network.
func (b *Backend) bridgeOf(id string) (string, error) {
	n, ok := b.nets[id]
	if !ok {
		return "", fmt.Errorf("linuxnet: network %s: %w", id, errdefs.ErrNotFound)
	}
	if br, ok := b.mappedBridge(n); ok {
		return br, nil
	}
	return BridgeName(id), nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// EnsureNetwork implements network.Backend.
func (b *Backend) EnsureNetwork(ctx context.Context, spec network.NetworkSpec) error {
	if err := b.begin(ctx, "network", spec.ID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", spec.ID); err != nil {
		return fmt.Errorf("linuxnet: network: %w", err)
	}
	if spec.MTU < 68 || spec.MTU > 65535 {
		return fmt.Errorf("linuxnet: network %s: %w", spec.ID, errdefs.Invalid("mtu", "%d", spec.MTU))
	}
	name, alias := BridgeName(spec.ID), aliasNet+spec.ID
	mapped := false
	if br, ok := b.mappedBridge(spec); ok {
		name, alias, mapped = br, aliasExtBr+spec.PhysicalNetwork, true
	}
	l, err := b.nl.LinkByName(name)
	switch {
	case isNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: spec.MTU}}
		if err := b.nl.LinkAdd(br); err != nil {
			return fmt.Errorf("linuxnet: network %s: add bridge %s: %w", spec.ID, name, err)
		}
		if l, err = b.nl.LinkByName(name); err == nil {
			err = b.nl.LinkSetAlias(l, alias)
		}

		if err != nil {
			_ = b.nl.LinkDel(br)
			return fmt.Errorf("linuxnet: network %s: %w", spec.ID, err)
		}
	case err != nil:
		return fmt.Errorf("linuxnet: network %s: %w", spec.ID, err)
	case !mapped && l.Attrs().Alias != alias:
		return fmt.Errorf("linuxnet: network %s: a link %s not made by stratus exists: %w", spec.ID, name, errdefs.ErrConflict)
	}
	newZone := false
	if !mapped && l.Attrs().Group == 0 {
		// The bridge's link group is its conntrack zone (see freeZone).
		zone, err := b.freeZone()
		if err == nil {
			err = b.nl.LinkSetGroup(l, zone)
		}
		if err != nil {
			return fmt.Errorf("linuxnet: network %s: zone: %w", spec.ID, err)
		}
		newZone = true
	}
	if !mapped {
		if err := b.fenceBridge(name); err != nil {
			return fmt.Errorf("linuxnet: network %s: %w", spec.ID, err)
		}
	}
	if !mapped || strings.HasPrefix(l.Attrs().Alias, aliasPrefix) {
		if l.Attrs().MTU != spec.MTU {
			if err := b.nl.LinkSetMTU(l, spec.MTU); err != nil {
				return fmt.Errorf("linuxnet: network %s: mtu: %w", spec.ID, err)
			}
		}
	}
	if pf, ok := b.cfg.BridgeAddrs[name]; ok && mapped {
		if err := b.nl.AddrReplace(l, &netlink.Addr{IPNet: ipnet(pf)}); err != nil {
			return fmt.Errorf("linuxnet: network %s: address %s: %w", spec.ID, pf, err)
		}
	}
	up := b.nl.LinkSetUp
	if !spec.AdminStateUp {
		up = b.nl.LinkSetDown
	}
	if err := up(l); err != nil {
		return fmt.Errorf("linuxnet: network %s: %w", spec.ID, err)
	}
	old, had := b.nets[spec.ID]
	b.nets[spec.ID] = spec
	if err := b.saveSpec("net", spec.ID, spec); err != nil {
		if had {
			b.nets[spec.ID] = old
		} else {
			delete(b.nets, spec.ID)
		}
		return err
	}
	if newZone {
		if err := b.applyZones(); err != nil {
			return fmt.Errorf("linuxnet: network %s: %w", spec.ID, err)
		}
	}
	if mapped {
		return b.applyHostNAT()
	}
	return nil
}

// applyHostNAT refreshes what depends on the mapped networks: the fence
// of routed traffic out of their bridges, or the masquerading.
func (b *Backend) applyHostNAT() error {
	if err := b.applyFilters(); err != nil {
		return err
	}
	if b.cfg.Masquerade {
		return b.applyMasquerade()
	}
	return nil
}

// DeleteNetwork implements network.Backend.
func (b *Backend) DeleteNetwork(ctx context.Context, id string) error {
	if err := b.begin(ctx, "network", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", id); err != nil {
		return fmt.Errorf("linuxnet: network: %w", err)
	}
	if b.networkInUse(id) {
		return fmt.Errorf("linuxnet: network %s: ports, DHCP or routers are still plugged in: %w", id, errdefs.ErrConflict)
	}
	name := BridgeName(id)
	n, known := b.nets[id]
	if br, ok := b.mappedBridge(n); known && ok {
		name = br
	}
	l, err := b.nl.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("linuxnet: network %s: %w", id, err)
	}
	if err == nil && b.ownsBridge(l, id) {
		if err := b.nl.LinkDel(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("linuxnet: network %s: %w", id, err)
		}
	}
	delete(b.nets, id)
	if err := b.dropSpec("net", id); err != nil {
		return err
	}
	if _, ok := b.mappedBridge(n); known && ok {
		return b.applyHostNAT()
	}
	return b.applyZones()
}

// ownsBridge reports whether deleting network id may remove bridge l:
// its own bridge, or a mapped bridge stratus created that no other
// network uses.
func (b *Backend) ownsBridge(l netlink.Link, id string) bool {
	a := l.Attrs().Alias
	if a == aliasNet+id {
		return true
	}
	if !strings.HasPrefix(a, aliasExtBr) {
		return false
	}
	for oid, n := range b.nets {
		if br, ok := b.mappedBridge(n); oid != id && ok && br == l.Attrs().Name {
			return false
		}
	}
	return true
}

func (b *Backend) networkInUse(id string) bool {
	for _, p := range b.ports {
		if p.NetworkID == id {
			return true
		}
	}
	if _, ok := b.dhcp[id]; ok {
		return true
	}
	for _, r := range b.routers {
		if r.Gateway != nil && r.Gateway.NetworkID == id {
			return true
		}
		if slices.ContainsFunc(r.Interfaces, func(i network.RouterInterfaceSpec) bool { return i.NetworkID == id }) {
			return true
		}
	}
	return false
}

func ipnet(p netip.Prefix) *net.IPNet {
	a := p.Addr().AsSlice()
	return &net.IPNet{IP: a, Mask: net.CIDRMask(p.Bits(), len(a)*8)}
}

// Conntrack zones keep the flows of different networks apart: tenants
// may use the same addresses, and bridged traffic of every network is
// tracked in the host's one conntrack table, where a flow established
// on one network would otherwise let matching packets on another pass
// its security groups. Each tenant bridge's link group is its zone
// (1-65535, kept on the bridge itself, so it survives restarts), set
// before conntrack by a raw prerouting chain. Mapped (external) bridges
// stay in zone 0: the host itself talks on them.

// freeZone returns the lowest zone no stratus bridge uses.
func (b *Backend) freeZone() (int, error) {
	links, err := b.nl.LinkList()
	if err != nil {
		return 0, err
	}
	used := map[uint32]bool{}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Alias, aliasNet) {
			used[l.Attrs().Group] = true
		}
	}
	for z := 1; z < 1<<16; z++ {
		if !used[uint32(z)] {
			return z, nil
		}
	}
	return 0, fmt.Errorf("linuxnet: no free conntrack zone: %w", errdefs.ErrQuotaExceeded)
}

// bridgeZones returns every tenant bridge and its zone (0 while it has
// none yet).
func (b *Backend) bridgeZones() (map[string]uint16, error) {
	links, err := b.nl.LinkList()
	if err != nil {
		return nil, err
	}
	out := map[string]uint16{}
	for _, l := range links {
		if g := l.Attrs().Group; strings.HasPrefix(l.Attrs().Alias, aliasNet) {
			out[l.Attrs().Name] = 0
			if g < 1<<16 {
				out[l.Attrs().Name] = uint16(g)
			}
		}
	}
	return out, nil
}

// applyZones refreshes what follows the tenant bridges: their zones and
// the set the host fence drops (see fenceChains). The tables come and go
// with the first and last bridge (applyFilters).
func (b *Backend) applyZones() error {
	c, err := nftConn(int(b.host))
	if err != nil {
		return err
	}
	zones, err := b.bridgeZones()
	if err != nil {
		return err
	}
	if !b.tablesExist(c) || len(zones) == 0 {
		return b.applyFilters()
	}
	for _, fam := range filterFamilies[1:] {
		zoneChain(c, &nftables.Table{Name: tableName, Family: fam}, zones)
	}
	return c.Flush()
}

// zoneChain (re)fills the raw prerouting chain setting each tenant
// bridge's zone, and the set of tenant bridges.
func zoneChain(c *nftables.Conn, t *nftables.Table, zones map[string]uint16) {
	ch := c.AddChain(&nftables.Chain{Name: "zones", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: ptr(nftables.ChainPolicyAccept)})
	c.FlushChain(ch)
	set := tenantSet(c, t)
	c.FlushSet(set)
	var els []nftables.SetElement
	for _, br := range slices.Sorted(maps.Keys(zones)) {
		els = append(els, nftables.SetElement{Key: ifname(br)})
		if zones[br] == 0 {
			continue
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: slices.Concat(metaIs(expr.MetaKeyIIFNAME, ifname(br)),
			exprs{&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint16(nil, zones[br])},
				&expr.Ct{Key: expr.CtKeyZONE, Register: 1, SourceRegister: true}})})
	}
	if len(els) > 0 {
		_ = c.SetAddElements(set, els)
	}
}

// The host fence. A tenant bridge has no address, but the host is
// still there: it would answer ARP for its own addresses on any
// interface, give the bridge an IPv6 link-local address, and accept
// what arrives (a guest routing a host address on-link reaches the
// control plane's APIs), or route it elsewhere when forwarding is on.
// Nothing of the host needs to hear a tenant network (DHCP, metadata and
// routers live in namespaces on the bridge), so the host drops whatever
// it would receive or route from a tenant bridge (the set "tenants";
// bridged traffic, which stays within its bridge, is untouched), and the
// bridge neither answers ARP nor runs IPv6 (the bridge carries guests'
// IPv6 all the same). Mapped bridges keep their host addresses
// (Config.BridgeAddrs) and are not fenced.

// tenantSet makes sure the set of tenant bridge names exists.
func tenantSet(c *nftables.Conn, t *nftables.Table) *nftables.Set {
	s := &nftables.Set{Table: t, Name: "tenants", KeyType: nftables.TypeIFName}
	_ = c.AddSet(s, nil)
	return s
}

// fenceChains adds the input chain dropping what a tenant bridge brings
// to the host, and to fwd the rule dropping what the host would route
// out of one.
func fenceChains(c *nftables.Conn, t *nftables.Table, fwd *nftables.Chain) {
	tenantSet(c, t)
	in := c.AddChain(&nftables.Chain{Name: "host", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(-1), Policy: ptr(nftables.ChainPolicyAccept)})
	iif := exprs{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: "tenants"}}
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: append(slices.Clone(iif), verdict(expr.VerdictDrop))})
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: slices.Concat(iif,
		exprs{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: "tenants", Invert: true}, verdict(expr.VerdictDrop)})})
}

// fenceBridge keeps the host off tenant bridge br: no ARP answers (it
// has no address of its own), no IPv6 address.
func (b *Backend) fenceBridge(br string) error {
	return inNS(b.host, func() error {
		for _, kv := range [][2]string{{"ipv4/conf/" + br + "/arp_ignore", "1"}, {"ipv4/conf/" + br + "/arp_announce", "2"},
			{"ipv6/conf/" + br + "/disable_ipv6", "1"}} {
			err := os.WriteFile(filepath.Join("/proc/sys/net", kv[0]), []byte(kv[1]), 0o644)
			noIPv6 := errors.Is(err, os.ErrNotExist) && strings.HasPrefix(kv[0], "ipv6/") // the host runs no IPv6
			if err != nil && !noIPv6 {
				return fmt.Errorf("sysctl %s: %w", kv[0], err)
			}
		}
		return nil
	})
}
