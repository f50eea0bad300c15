package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// IPv6 address and router advertisement modes.
const (
	ModeSLAAC           = "slaac"
	ModeDHCPv6Stateful  = "dhcpv6-stateful"
	ModeDHCPv6Stateless = "dhcpv6-stateless"
)

// Pool is an allocation pool: an inclusive range of addresses.
type Pool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// HostRoute is a route DHCP hands out to the subnet's hosts.
type HostRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Subnet is an IP range of a network.
type Subnet struct {
	store.Meta
	Standard
	NetworkID       string      `json:"network_id"`
	IPVersion       int         `json:"ip_version"`
	CIDR            string      `json:"cidr"`
	GatewayIP       *string     `json:"gateway_ip"`
	AllocationPools []Pool      `json:"allocation_pools"`
	DNSNameservers  []string    `json:"dns_nameservers"`
	HostRoutes      []HostRoute `json:"host_routes"`
	EnableDHCP      bool        `json:"enable_dhcp"`
	IPv6RAMode      *string     `json:"ipv6_ra_mode"`
	IPv6AddressMode *string     `json:"ipv6_address_mode"`
}

var subnetTableDef = store.Table{Name: subnetTable, New: func() store.Record { return new(Subnet) },
	Indexes: []*memdb.IndexSchema{
		{Name: projectIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
		{Name: networkIndex, Indexer: &memdb.StringFieldIndex{Field: "NetworkID"}},
	}}

// Gateway returns the gateway address, or "" when the subnet has none.
func (s *Subnet) Gateway() string { return deref(s.GatewayIP) }

// CreateSubnetOpts are the attributes of a new subnet.
type CreateSubnetOpts struct {
	NetworkID         string
	Name, Description string
	ProjectID         string
	// IPVersion is 4 or 6; zero means the CIDR's.
	IPVersion int
	CIDR      string
	// GatewayIP is the gateway; nil means the first host address, and
	// NoGateway (gateway_ip: null) means none.
	GatewayIP       *string
	NoGateway       bool
	AllocationPools []Pool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	EnableDHCP      *bool
	IPv6RAMode      string
	IPv6AddressMode string
	Tags            []string
}

// UpdateSubnetOpts change a subnet; nil fields are left alone.
type UpdateSubnetOpts struct {
	Name, Description *string
	GatewayIP         *string
	NoGateway         bool
	AllocationPools   *[]Pool
	DNSNameservers    *[]string
	HostRoutes        *[]HostRoute
	EnableDHCP        *bool
	IfRevision        *int
}

// ParseCIDR parses a subnet CIDR strictly: a network address with no host
// bits, a valid prefix length, and no zone.
func ParseCIDR(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, errdefs.Invalid(field, "%q is not a valid CIDR", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, errdefs.Invalid(field, "%q is not a network address; use %s", s, p.Masked())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errdefs.Invalid(field, "%q is an IPv4-mapped IPv6 CIDR", s)
	}
	return p, nil
}

func parseAddr(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, errdefs.Invalid(field, "%q is not a valid IP address", s)
	}
	return a, nil
}

// validateSubnet checks and completes a subnet's addressing.
func validateSubnet(sub *Subnet, o *CreateSubnetOpts) error {
	p, err := ParseCIDR("cidr", o.CIDR)
	if err != nil {
		return err
	}
	v := 4
	if p.Addr().Is6() {
		v = 6
	}
	if o.IPVersion != 0 && o.IPVersion != v {
		return errdefs.Invalid("ip_version", "%d does not match cidr %s", o.IPVersion, o.CIDR)
	}
	if (v == 4 && p.Bits() > 30) || (v == 6 && p.Bits() > 126) || p.Bits() < 8 && v == 4 {
		return errdefs.Invalid("cidr", "prefix length of %s is out of range", o.CIDR)
	}
	sub.IPVersion, sub.CIDR = v, p.String()
	for _, m := range []struct{ field, val string }{{"ipv6_ra_mode", o.IPv6RAMode}, {"ipv6_address_mode", o.IPv6AddressMode}} {
		if m.val == "" {
			continue
		}
		if v == 4 {
			return errdefs.Invalid(m.field, "not allowed on an IPv4 subnet")
		}
		if !slices.Contains([]string{ModeSLAAC, ModeDHCPv6Stateful, ModeDHCPv6Stateless}, m.val) {
			return errdefs.Invalid(m.field, "%q is not slaac, dhcpv6-stateful or dhcpv6-stateless", m.val)
		}
	}
	if o.IPv6RAMode != "" && o.IPv6AddressMode != "" && o.IPv6RAMode != o.IPv6AddressMode {
		return errdefs.Invalid("ipv6_ra_mode", "must equal ipv6_address_mode when both are set")
	}
	if (o.IPv6AddressMode == ModeSLAAC || o.IPv6AddressMode == ModeDHCPv6Stateless) && p.Bits() != 64 {
		return errdefs.Invalid("cidr", "%s mode needs a /64 prefix", o.IPv6AddressMode)
	}
	if o.IPv6RAMode != "" {
		sub.IPv6RAMode = &o.IPv6RAMode
	}
	if o.IPv6AddressMode != "" {
		sub.IPv6AddressMode = &o.IPv6AddressMode
	}
	gw, err := subnetGateway(p, o.GatewayIP, o.NoGateway)
	if err != nil {
		return err
	}
	if gw.IsValid() {
		g := gw.String()
		sub.GatewayIP = &g
	}
	pools, err := checkPools(p, o.AllocationPools, gw)
	if err != nil {
		return err
	}
	sub.AllocationPools = pools
	if err := checkDNS(o.DNSNameservers); err != nil {
		return err
	}
	if err := checkRoutes(o.HostRoutes, v); err != nil {
		return err
	}
	sub.DNSNameservers, sub.HostRoutes = nonNil(o.DNSNameservers), nonNil(o.HostRoutes)
	return nil
}

func subnetGateway(p netip.Prefix, want *string, none bool) (netip.Addr, error) {
	if none {
		return netip.Addr{}, nil
	}
	if want == nil {
		return p.Addr().Next(), nil
	}
	gw, err := parseAddr("gateway_ip", *want)
	if err != nil {
		return netip.Addr{}, err
	}
	if !p.Contains(gw) || gw == p.Addr() || (gw.Is4() && gw == lastAddr(p)) {
		return netip.Addr{}, errdefs.Invalid("gateway_ip", "%s is not a host address of %s", gw, p)
	}
	return gw, nil
}

// checkPools validates pools, or computes the default ones: every host
// address but the gateway.
func checkPools(p netip.Prefix, pools []Pool, gw netip.Addr) ([]Pool, error) {
	first, last := p.Addr().Next(), lastAddr(p)
	if p.Addr().Is4() {
		last = last.Prev()
	}
	if len(pools) == 0 {
		switch {
		case !gw.IsValid() || gw.Compare(first) < 0 || gw.Compare(last) > 0:
			return []Pool{{first.String(), last.String()}}, nil
		case gw == first:
			return []Pool{{first.Next().String(), last.String()}}, nil
		case gw == last:
			return []Pool{{first.String(), last.Prev().String()}}, nil
		default:
			return []Pool{{first.String(), gw.Prev().String()}, {gw.Next().String(), last.String()}}, nil
		}
	}
	if len(pools) > 64 {
		return nil, errdefs.Invalid("allocation_pools", "more than 64 pools")
	}
	type rng struct{ s, e netip.Addr }
	var rs []rng
	for _, pl := range pools {
		s, err := parseAddr("allocation_pools", pl.Start)
		if err != nil {
			return nil, err
		}
		e, err := parseAddr("allocation_pools", pl.End)
		if err != nil {
			return nil, err
		}
		if s.Compare(e) > 0 || !p.Contains(s) || !p.Contains(e) || s.Compare(first) < 0 || e.Compare(last) > 0 {
			return nil, errdefs.Invalid("allocation_pools", "pool %s-%s is not a range of host addresses of %s", s, e, p)
		}
		if gw.IsValid() && gw.Compare(s) >= 0 && gw.Compare(e) <= 0 {
			return nil, errdefs.Invalid("allocation_pools", "pool %s-%s contains the gateway %s", s, e, gw)
		}
		for _, o := range rs {
			if s.Compare(o.e) <= 0 && o.s.Compare(e) <= 0 {
				return nil, errdefs.Invalid("allocation_pools", "pools %s-%s and %s-%s overlap", s, e, o.s, o.e)
			}
		}
		rs = append(rs, rng{s, e})
	}
	slices.SortFunc(rs, func(a, b rng) int { return a.s.Compare(b.s) })
	out := make([]Pool, len(rs))
	for i, r := range rs {
		out[i] = Pool{r.s.String(), r.e.String()}
	}
	return out, nil
}

func checkDNS(ns []string) error {
	if len(ns) > 5 {
		return errdefs.Invalid("dns_nameservers", "more than 5 name servers")
	}
	for i, n := range ns {
		if _, err := parseAddr("dns_nameservers", n); err != nil {
			return err
		}
		if slices.Contains(ns[:i], n) {
			return errdefs.Invalid("dns_nameservers", "duplicate name server %s", n)
		}
	}
	return nil
}

func checkRoutes(rs []HostRoute, v int) error {
	if len(rs) > 20 {
		return errdefs.Invalid("host_routes", "more than 20 routes")
	}
	for _, r := range rs {
		p, err := ParseCIDR("host_routes", r.Destination)
		if err != nil {
			return err
		}
		nh, err := parseAddr("host_routes", r.NextHop)
		if err != nil {
			return err
		}
		if v != 0 && (p.Addr().Is4() != (v == 4) || nh.Is4() != (v == 4)) {
			return errdefs.Invalid("host_routes", "route %s via %s is not IPv%d", r.Destination, r.NextHop, v)
		}
	}
	return nil
}

func (s *Service) seeSubnet(c *identity.Credentials, tx *store.Txn, sub *Subnet) bool {
	if s.canRead(c, sub.ProjectID) {
		return true
	}
	n, err := store.Get[Network](nil, tx, networkTable, sub.NetworkID)
	return err == nil && n.Shared
}

func (s *Service) getSubnetTx(c *identity.Credentials, tx *store.Txn, id string) (*Subnet, error) {
	return getVisible(tx, subnetTable, "Subnet", id, func(sub *Subnet) bool { return s.seeSubnet(c, tx, sub) })
}

// CreateSubnet creates a subnet on a network the caller owns. With DHCP
// enabled, the network's DHCP port gets an address on it.
func (s *Service) CreateSubnet(ctx context.Context, o CreateSubnetOpts) (*Subnet, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := ownerFor(c, o.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := checkStd(o.Name, o.Description); err != nil {
		return nil, err
	}
	if err := checkTags(o.Tags); err != nil {
		return nil, err
	}
	sub := &Subnet{Standard: newStandard(s.st.Now(), project, o.Name, o.Description), NetworkID: o.NetworkID, EnableDHCP: boolOr(o.EnableDHCP, true)}
	sub.Tags = dedupe(o.Tags)
	if err := validateSubnet(sub, &o); err != nil {
		return nil, err
	}
	var picks []ipRef
	var kept []FixedIP
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept = nil
		n, err := s.getNetworkTx(c, tx, o.NetworkID)
		if err != nil {
			return err
		}
		if err := s.mayWrite(c, n.ProjectID); err != nil {
			return err
		}
		if n.ProjectID != project && !s.isAdmin(c) {
			return fault("PolicyNotAuthorized", errdefs.ErrForbidden, "the subnet must belong to the network's project")
		}
		np, _ := netip.ParsePrefix(sub.CIDR)
		for _, id := range n.Subnets {
			o, err := store.Get[Subnet](nil, tx, subnetTable, id)
			if err != nil {
				return err
			}
			op, _ := netip.ParsePrefix(o.CIDR)
			if op.Overlaps(np) {
				return fault("InvalidInput", errdefs.ErrInvalid, "invalid input for operation: requested subnet with cidr %s for network %s overlaps with subnet %s", sub.CIDR, n.ID, o.ID)
			}
		}
		if err := s.chargeTxn(tx, project, resSubnet, 1); err != nil {
			return err
		}
		ns := *sub
		if err := tx.Insert(subnetTable, &ns); err != nil {
			return err
		}
		n.Subnets = append(slices.Clone(n.Subnets), sub.ID)
		touch(n, tx.Now())
		if err := tx.Update(networkTable, n); err != nil {
			return err
		}
		if sub.EnableDHCP {
			ips, err := s.dhcpAddTxn(tx, n, &ns, &picks)
			if err != nil {
				return err
			}
			kept = ips
		}
		markTxn(tx, workNetwork, n.ID)
		markTxn(tx, workDHCP, n.ID)
		return tx.Emit("network.subnet.create", sub.ID, project, nil)
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	return s.GetSubnet(ctx, sub.ID)
}

// dhcpAddTxn gives the network's DHCP port (created if missing) an
// address on sub, and returns the port's fixed IPs.
func (s *Service) dhcpAddTxn(tx *store.Txn, n *Network, sub *Subnet, picks *[]ipRef) ([]FixedIP, error) {
	p, err := dhcpPort(tx, n.ID)
	if err != nil {
		return nil, err
	}
	fresh := p == nil
	if fresh {
		p = &Port{Standard: newStandard(tx.Now(), n.ProjectID, "", ""), NetworkID: n.ID, DeviceOwner: OwnerDHCP,
			DeviceID: "dhcp-" + n.ID, AdminStateUp: true, Status: StatusActive, FixedIPs: []FixedIP{},
			SecurityGroups: []string{}, AllowedAddressPairs: []AddressPair{}, ExtraDHCPOpts: []DHCPOpt{}}
		mac, err := s.allocMACTxn(tx, n.ID, "")
		if err != nil {
			return nil, err
		}
		p.MACAddress = mac
	}
	ip, err := s.allocIPTxn(tx, sub, p.ID, p.MACAddress, "", picks)
	if err != nil {
		return nil, err
	}
	p.FixedIPs = append(slices.Clone(p.FixedIPs), FixedIP{SubnetID: sub.ID, IPAddress: ip.String()})
	if fresh {
		return p.FixedIPs, tx.Insert(portTable, p)
	}
	touch(p, tx.Now())
	return p.FixedIPs, tx.Update(portTable, p)
}

func dhcpPort(tx *store.Txn, network string) (*Port, error) {
	it, err := store.List[Port](nil, tx, portTable, deviceIndex, "dhcp-"+network)
	if err != nil {
		return nil, err
	}
	for p := range it {
		if p.DeviceOwner == OwnerDHCP && p.NetworkID == network {
			return p, nil
		}
	}
	return nil, nil
}

// dhcpRemoveTxn takes the DHCP port's address on subnet away, deleting
// the port when it has none left.
func (s *Service) dhcpRemoveTxn(tx *store.Txn, network, subnet string) ([]ipRef, error) {
	p, err := dhcpPort(tx, network)
	if err != nil || p == nil {
		return nil, err
	}
	var keep []FixedIP
	var rel []ipRef
	for _, f := range p.FixedIPs {
		if f.SubnetID != subnet {
			keep = append(keep, f)
			continue
		}
		r, err := releaseIP(f.SubnetID, f.IPAddress)
		if err != nil {
			return nil, err
		}
		rel = append(rel, r)
	}
	if len(keep) == 0 {
		more, err := s.deletePortTxn(tx, p)
		return append(rel, more...), err
	}
	p.FixedIPs = keep
	touch(p, tx.Now())
	return rel, tx.Update(portTable, p)
}

// GetSubnet returns a subnet the caller can see.
func (s *Service) GetSubnet(ctx context.Context, id string) (*Subnet, error) {
	return snapshotGet(ctx, s, s.getSubnetTx, id)
}

// ListSubnets returns the subnets the caller can see.
func (s *Service) ListSubnets(ctx context.Context, o ListOpts) ([]*Subnet, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	var it func(func(*Subnet) bool)
	if o.NetworkID != "" {
		it, err = listIndex[Subnet](tx, subnetTable, networkIndex, o.NetworkID)
	} else {
		it, err = listIndex[Subnet](tx, subnetTable, projectIndex, o.ProjectID)
	}
	return collect(it, err, func(sub *Subnet) bool { return s.seeSubnet(c, tx, sub) })
}

// UpdateSubnet changes a subnet the caller owns.
func (s *Service) UpdateSubnet(ctx context.Context, id string, o UpdateSubnetOpts) (*Subnet, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkStd(deref(o.Name), deref(o.Description)); err != nil {
		return nil, err
	}
	if o.DNSNameservers != nil {
		if err := checkDNS(*o.DNSNameservers); err != nil {
			return nil, err
		}
	}
	var picks, released []ipRef
	var kept []FixedIP
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept, released = nil, nil
		sub, err := writable(s, c, tx, s.getSubnetTx, id, o.IfRevision)
		if err != nil {
			return err
		}
		if o.HostRoutes != nil {
			if err := checkRoutes(*o.HostRoutes, sub.IPVersion); err != nil {
				return err
			}
			sub.HostRoutes = nonNil(*o.HostRoutes)
		}
		p, _ := netip.ParsePrefix(sub.CIDR)
		gw, _ := netip.ParseAddr(sub.Gateway())
		if o.GatewayIP != nil || o.NoGateway {
			if gw, err = subnetGateway(p, o.GatewayIP, o.NoGateway); err != nil {
				return err
			}
			sub.GatewayIP = nil
			if gw.IsValid() {
				g := gw.String()
				sub.GatewayIP = &g
			}
		}
		if o.AllocationPools != nil {
			pools, err := checkPools(p, *o.AllocationPools, gw)
			if err != nil {
				return err
			}
			sub.AllocationPools = pools
		} else if gw.IsValid() {
			if _, err := checkPools(p, sub.AllocationPools, gw); err != nil {
				return errdefs.Invalid("gateway_ip", "%s is inside an allocation pool", gw)
			}
		}
		setIf(&sub.Name, o.Name)
		setIf(&sub.Description, o.Description)
		if o.DNSNameservers != nil {
			sub.DNSNameservers = nonNil(*o.DNSNameservers)
		}
		if o.EnableDHCP != nil && *o.EnableDHCP != sub.EnableDHCP {
			sub.EnableDHCP = *o.EnableDHCP
			n, err := store.Get[Network](nil, tx, networkTable, sub.NetworkID)
			if err != nil {
				return err
			}
			if sub.EnableDHCP {
				if kept, err = s.dhcpAddTxn(tx, n, sub, &picks); err != nil {
					return err
				}
			} else if released, err = s.dhcpRemoveTxn(tx, n.ID, sub.ID); err != nil {
				return err
			}
		}
		touch(sub, tx.Now())
		markTxn(tx, workNetwork, sub.NetworkID)
		markTxn(tx, workDHCP, sub.NetworkID)
		return tx.Update(subnetTable, sub)
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	s.ipam.release(released)
	if o.AllocationPools != nil {
		s.ipam.forget(id)
	}
	return s.GetSubnet(ctx, id)
}

// DeleteSubnet deletes a subnet no port but the DHCP port has an address
// on.
func (s *Service) DeleteSubnet(ctx context.Context, id string, ifRevision *int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var released []ipRef
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		released = nil
		sub, err := writable(s, c, tx, s.getSubnetTx, id, ifRevision)
		if err != nil {
			return err
		}
		it, err := store.List[Port](nil, tx, portTable, networkIndex, sub.NetworkID)
		if err != nil {
			return err
		}
		for p := range it {
			if p.DeviceOwner == OwnerDHCP {
				continue
			}
			for _, f := range p.FixedIPs {
				if f.SubnetID == id {
					return fault("SubnetInUse", errdefs.ErrConflict, "unable to complete operation on subnet %s: one or more ports have an IP allocation from this subnet", id)
				}
			}
		}
		if released, err = s.dhcpRemoveTxn(tx, sub.NetworkID, id); err != nil {
			return err
		}
		n, err := store.Get[Network](nil, tx, networkTable, sub.NetworkID)
		if err != nil {
			return err
		}
		n.Subnets = slices.DeleteFunc(slices.Clone(n.Subnets), func(x string) bool { return x == id })
		touch(n, tx.Now())
		if err := tx.Update(networkTable, n); err != nil {
			return err
		}
		if err := s.chargeTxn(tx, sub.ProjectID, resSubnet, -1); err != nil {
			return err
		}
		markTxn(tx, workNetwork, sub.NetworkID)
		markTxn(tx, workDHCP, sub.NetworkID)
		if err := tx.Delete(subnetTable, id); err != nil {
			return err
		}
		return tx.Emit("network.subnet.delete", id, sub.ProjectID, nil)
	})
	if err == nil {
		s.ipam.release(released)
		s.ipam.forget(id)
	}
	return err
}
