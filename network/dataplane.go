package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
)

// Kinds of dataplane work.
const (
	workNetwork = "net"
	workPort    = "port"
	workSG      = "sg"
	workRouter  = "router"
	workDHCP    = "dhcp"
)

// work marks an object whose dataplane state must be reconciled: written
// in the same transaction as the change (a transactional outbox of dirty
// keys), deleted by the reconciler once the Backend matches, unless it
// was marked again meanwhile. Many changes to one object in a batch
// collapse into one mark.
type work struct {
	store.Meta
	Key string `json:"key"`
}

func (w *work) StoreKey() string { return w.Key }

var workTableDef = store.Table{Name: workTable, New: func() store.Record { return new(work) }}

// markTxn marks kind/id for the reconciler. A mark already written by
// this commit (another function of the same batch) is left as is: the
// reconciler never saw it, so it cannot miss the change.
func markTxn(tx *store.Txn, kind, id string) {
	if id == "" {
		return
	}
	key := kind + "/" + id
	if w, err := store.Get[work](nil, tx, workTable, key); err == nil && w.Revision == tx.Revision() {
		return
	}
	_ = tx.Put(workTable, &work{Key: key})
}

// dataplane is the reconciler that drives the Backend from the store.
type dataplane struct{ s *Service }

func (d *dataplane) Pending(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	it, err := store.List[work](ws, tx, workTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var items []reconcile.Item
	for w := range it {
		items = append(items, reconcile.Item{Key: w.Key, Revision: w.Revision})
	}
	return items, nil
}

func (d *dataplane) Reconcile(ctx context.Context, key string) error {
	s := d.s
	tx := s.st.Snapshot()
	w, err := store.Get[work](nil, tx, workTable, key)
	if errdefs.IsNotFound(err) {
		return nil // done meanwhile
	}
	if err != nil {
		return err
	}
	kind, id, _ := strings.Cut(key, "/")
	switch kind {
	case workNetwork:
		err = s.reconcileNetwork(ctx, tx, id)
	case workPort:
		err = s.reconcilePort(ctx, tx, id)
	case workSG:
		err = s.reconcileSG(ctx, tx, id)
	case workRouter:
		err = s.reconcileRouter(ctx, tx, id)
	case workDHCP:
		err = s.reconcileDHCP(ctx, tx, id)
	}
	if err != nil {
		return fmt.Errorf("network: reconcile %s: %w", key, err)
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[work](nil, tx, workTable, key)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.Revision != w.Revision {
			return nil // marked again: another pass follows
		}
		return tx.Delete(workTable, key)
	})
}

func (s *Service) reconcileNetwork(ctx context.Context, tx *store.Txn, id string) error {
	n, err := store.Get[Network](nil, tx, networkTable, id)
	if err != nil {
		return s.backend.DeleteNetwork(ctx, id)
	}
	return s.backend.EnsureNetwork(ctx, networkSpec(n))
}

func networkSpec(n *Network) NetworkSpec {
	return NetworkSpec{ID: n.ID, ProjectID: n.ProjectID, NetworkType: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork,
		SegmentationID: n.SegmentationID, MTU: n.MTU, External: n.External, AdminStateUp: n.AdminStateUp}
}

func portAddrs(tx *store.Txn, fixed []FixedIP) []PortAddr {
	var out []PortAddr
	for _, f := range fixed {
		sub, err := store.Get[Subnet](nil, tx, subnetTable, f.SubnetID)
		if err != nil {
			continue
		}
		pf, _ := netip.ParsePrefix(sub.CIDR)
		a, _ := netip.ParseAddr(f.IPAddress)
		out = append(out, PortAddr{SubnetID: f.SubnetID, Addr: netip.PrefixFrom(a, pf.Bits())})
	}
	return out
}

func (s *Service) reconcilePort(ctx context.Context, tx *store.Txn, id string) error {
	p, err := store.Get[Port](nil, tx, portTable, id)
	if err != nil || p.HostID == "" || isServicePort(p.DeviceOwner) {
		return s.backend.DeletePort(ctx, id)
	}
	n, err := store.Get[Network](nil, tx, networkTable, p.NetworkID)
	if err != nil {
		return err
	}
	if err := s.backend.EnsureNetwork(ctx, networkSpec(n)); err != nil {
		return err
	}
	// The port's DHCP entry and its groups' member sets (which other
	// ports' remote-group rules match) exist before it is reported bound.
	if err := s.reconcileDHCP(ctx, tx, p.NetworkID); err != nil {
		return err
	}
	for _, g := range p.SecurityGroups {
		if err := s.reconcileSG(ctx, tx, g); err != nil {
			return err
		}
	}
	spec := PortSpec{ID: p.ID, NetworkID: p.NetworkID, ProjectID: p.ProjectID, Host: p.HostID, DevName: TapName(p.ID),
		MAC: p.MACAddress, MTU: n.MTU, AdminStateUp: p.AdminStateUp, FixedIPs: portAddrs(tx, p.FixedIPs),
		PortSecurity: p.PortSecurityEnabled, SecurityGroups: slices.Clone(p.SecurityGroups)}
	for _, ap := range p.AllowedAddressPairs {
		pf, err := netip.ParsePrefix(ap.IPAddress)
		if err != nil {
			a, _ := netip.ParseAddr(ap.IPAddress)
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		mac := ap.MACAddress
		if mac == "" {
			mac = p.MACAddress
		}
		spec.AllowedPairs = append(spec.AllowedPairs, AllowedPair{Prefix: pf, MAC: mac})
	}
	vif, err := s.backend.EnsurePort(ctx, spec)
	status, details := StatusActive, map[string]any{}
	if err != nil {
		if !errors.Is(err, errdefs.ErrInvalid) {
			return err
		}
		status = StatusError // a spec the backend can never realise
		s.log.Warn("port binding failed", "port", id, "err", err)
	} else {
		details = map[string]any{"port_filter": true, "devname": vif.DevName, "mtu": vif.MTU}
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[Port](nil, tx, portTable, id)
		if errdefs.IsNotFound(err) {
			return nil // deleted meanwhile: it is marked again
		}
		if err != nil {
			return err
		}
		if cur.Revision != p.Revision {
			return nil // changed meanwhile: it is marked again
		}
		if status == StatusActive && !cur.AdminStateUp {
			status = StatusDown
		}
		cur.Status, cur.VIFDetails = status, details
		cur.VIFType = VIFTypeTap
		if status == StatusError {
			cur.VIFType = "binding_failed"
		}
		touch(cur, tx.Now())
		return tx.Update(portTable, cur)
	})
}

func (s *Service) reconcileSG(ctx context.Context, tx *store.Txn, id string) error {
	g, err := store.Get[SecurityGroup](nil, tx, sgTable, id)
	if err != nil {
		return s.backend.DeleteSecurityGroup(ctx, id)
	}
	spec := SecurityGroupSpec{ID: g.ID, Stateful: g.Stateful}
	rules, err := groupRules(tx, id)
	if err != nil {
		return err
	}
	for _, r := range rules {
		spec.Rules = append(spec.Rules, ruleSpec(r))
	}
	it, err := store.List[Port](nil, tx, portTable, sgIndex, id)
	if err != nil {
		return err
	}
	for p := range it {
		for _, a := range portAddrs(tx, p.FixedIPs) {
			spec.Members = append(spec.Members, netip.PrefixFrom(a.Addr.Addr(), a.Addr.Addr().BitLen()))
		}
		for _, ap := range p.AllowedAddressPairs {
			if pf, err := netip.ParsePrefix(ap.IPAddress); err == nil {
				spec.Members = append(spec.Members, pf)
			} else if a, err := netip.ParseAddr(ap.IPAddress); err == nil {
				spec.Members = append(spec.Members, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	return s.backend.EnsureSecurityGroup(ctx, spec)
}

func ruleSpec(r *SecurityGroupRule) RuleSpec {
	rs := RuleSpec{ID: r.ID, Direction: r.Direction, Ethertype: r.Ethertype, Protocol: -1, RemoteGroupID: deref(r.RemoteGroupID)}
	if p := deref(r.Protocol); p != "" {
		if n, ok := protocols[p]; ok {
			rs.Protocol = n
		} else {
			_, _ = fmt.Sscan(p, &rs.Protocol)
		}
	}
	if r.PortRangeMin != nil {
		rs.PortMin = *r.PortRangeMin
	}
	if r.PortRangeMax != nil {
		rs.PortMax = *r.PortRangeMax
	}
	if rs.Protocol == 1 || rs.Protocol == 58 {
		rs.PortMin, rs.PortMax = -1, -1
		if r.PortRangeMin != nil {
			rs.PortMin = *r.PortRangeMin
		}
		if r.PortRangeMax != nil {
			rs.PortMax = *r.PortRangeMax
		}
	}
	if r.RemoteIPPrefix != nil {
		rs.RemotePrefix, _ = netip.ParsePrefix(*r.RemoteIPPrefix)
	}
	return rs
}

func (s *Service) reconcileRouter(ctx context.Context, tx *store.Txn, id string) error {
	r, err := store.Get[Router](nil, tx, routerTable, id)
	if err != nil {
		return s.backend.DeleteRouter(ctx, id)
	}
	spec := RouterSpec{ID: r.ID, ProjectID: r.ProjectID, AdminStateUp: r.AdminStateUp, Metadata: true}
	it, err := store.List[Port](nil, tx, portTable, deviceIndex, r.ID)
	if err != nil {
		return err
	}
	for p := range it {
		n, err := store.Get[Network](nil, tx, networkTable, p.NetworkID)
		if err != nil {
			continue
		}
		if err := s.backend.EnsureNetwork(ctx, networkSpec(n)); err != nil {
			return err
		}
		addrs := portAddrs(tx, p.FixedIPs)
		switch p.DeviceOwner {
		case OwnerRouterInterface:
			for _, a := range addrs {
				spec.Interfaces = append(spec.Interfaces, RouterInterfaceSpec{PortID: p.ID, NetworkID: p.NetworkID, SubnetID: a.SubnetID, MAC: p.MACAddress, Addr: a.Addr})
			}
		case OwnerRouterGateway:
			g := &RouterGatewaySpec{NetworkID: p.NetworkID, PortID: p.ID, MAC: p.MACAddress, EnableSNAT: r.Gateway != nil && r.Gateway.EnableSNAT}
			for _, a := range addrs {
				g.Addrs = append(g.Addrs, a.Addr)
				if sub, err := store.Get[Subnet](nil, tx, subnetTable, a.SubnetID); err == nil && sub.Gateway() != "" {
					gw, _ := netip.ParseAddr(sub.Gateway())
					g.NextHops = append(g.NextHops, gw)
				}
			}
			spec.Gateway = g
		}
	}
	for _, rt := range r.Routes {
		d, _ := netip.ParsePrefix(rt.Destination)
		nh, _ := netip.ParseAddr(rt.NextHop)
		spec.Routes = append(spec.Routes, RouteSpec{Destination: d, NextHop: nh})
	}
	fips, err := store.List[FloatingIP](nil, tx, fipTable, "router", r.ID)
	if err != nil {
		return err
	}
	for f := range fips {
		fl, _ := netip.ParseAddr(f.FloatingIPAddress)
		fx, _ := netip.ParseAddr(f.FixedIPAddress)
		spec.FloatingIPs = append(spec.FloatingIPs, FloatingIPSpec{ID: f.ID, Floating: fl, Fixed: fx, PortID: f.PortID})
	}
	return s.backend.EnsureRouter(ctx, spec)
}

func (s *Service) reconcileDHCP(ctx context.Context, tx *store.Txn, id string) error {
	n, err := store.Get[Network](nil, tx, networkTable, id)
	if err != nil {
		return s.backend.DeleteDHCP(ctx, id)
	}
	dp, err := dhcpPort(tx, id)
	if err != nil {
		return err
	}
	if dp == nil {
		return s.backend.DeleteDHCP(ctx, id)
	}
	if err := s.backend.EnsureNetwork(ctx, networkSpec(n)); err != nil {
		return err
	}
	spec := DHCPSpec{NetworkID: id, MTU: n.MTU, PortID: dp.ID, MAC: dp.MACAddress, Metadata: true}
	routed := map[string]bool{}
	ports, err := store.List[Port](nil, tx, portTable, networkIndex, id)
	if err != nil {
		return err
	}
	for p := range ports {
		if p.DeviceOwner == OwnerRouterInterface {
			for _, f := range p.FixedIPs {
				routed[f.SubnetID] = true
			}
		}
		if p.DeviceOwner == OwnerDHCP || len(p.FixedIPs) == 0 {
			continue
		}
		h := DHCPHost{PortID: p.ID, MAC: p.MACAddress, Hostname: "host-" + strings.NewReplacer(".", "-", ":", "-").Replace(p.FixedIPs[0].IPAddress), ExtraOpts: slices.Clone(p.ExtraDHCPOpts)}
		for _, f := range p.FixedIPs {
			a, _ := netip.ParseAddr(f.IPAddress)
			h.Addrs = append(h.Addrs, a)
		}
		spec.Hosts = append(spec.Hosts, h)
	}
	for _, sid := range n.Subnets {
		sub, err := store.Get[Subnet](nil, tx, subnetTable, sid)
		if err != nil || !sub.EnableDHCP {
			continue
		}
		ss := SubnetSpec{ID: sub.ID, EnableDHCP: true, HostRoutes: slices.Clone(sub.HostRoutes),
			IPv6AddressMode: deref(sub.IPv6AddressMode), IPv6RAMode: deref(sub.IPv6RAMode), MetadataRoute: !routed[sub.ID]}
		ss.CIDR, _ = netip.ParsePrefix(sub.CIDR)
		ss.Gateway, _ = netip.ParseAddr(sub.Gateway())
		for _, d := range sub.DNSNameservers {
			a, _ := netip.ParseAddr(d)
			ss.DNSNameservers = append(ss.DNSNameservers, a)
		}
		for _, f := range dp.FixedIPs {
			if f.SubnetID == sub.ID {
				ss.DHCPServer, _ = netip.ParseAddr(f.IPAddress)
			}
		}
		spec.Subnets = append(spec.Subnets, ss)
	}
	return s.backend.EnsureDHCP(ctx, spec)
}

// resync marks every object for reconciliation, so that the dataplane
// converges to the store after a restart, and deletes from the Backend
// what no record owns.
func (s *Service) resync(ctx context.Context) error {
	inv, err := s.backend.Inventory(ctx)
	if err != nil {
		return fmt.Errorf("network: backend inventory: %w", err)
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		seen := map[string]bool{}
		mark := func(kind, id string) {
			seen[kind+"/"+id] = true
			markTxn(tx, kind, id)
		}
		nets, err := store.List[Network](nil, tx, networkTable, store.IDIndex)
		if err != nil {
			return err
		}
		for n := range nets {
			mark(workNetwork, n.ID)
			mark(workDHCP, n.ID)
		}
		ports, err := store.List[Port](nil, tx, portTable, store.IDIndex)
		if err != nil {
			return err
		}
		for p := range ports {
			if p.HostID != "" && !isServicePort(p.DeviceOwner) {
				mark(workPort, p.ID)
			}
		}
		sgs, err := store.List[SecurityGroup](nil, tx, sgTable, store.IDIndex)
		if err != nil {
			return err
		}
		for g := range sgs {
			mark(workSG, g.ID)
		}
		routers, err := store.List[Router](nil, tx, routerTable, store.IDIndex)
		if err != nil {
			return err
		}
		for r := range routers {
			mark(workRouter, r.ID)
		}
		// What the backend has and no record owns: reconciling its key
		// finds no record and deletes it.
		for kind, ids := range map[string][]string{workNetwork: inv.Networks, workPort: inv.Ports, workSG: inv.SecurityGroups,
			workRouter: inv.Routers, workDHCP: inv.DHCP} {
			for _, id := range ids {
				if !seen[kind+"/"+id] {
					markTxn(tx, kind, id)
				}
			}
		}
		return nil
	})
}
