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

// GatewayInfo is a router's external gateway.
type GatewayInfo struct {
	NetworkID        string    `json:"network_id"`
	EnableSNAT       bool      `json:"enable_snat"`
	ExternalFixedIPs []FixedIP `json:"external_fixed_ips"`
}

// Route is a static route of a router.
type Route struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Router routes between its interfaces' subnets and, through its gateway,
// the external network (with SNAT unless disabled).
type Router struct {
	store.Meta
	Standard
	AdminStateUp bool         `json:"admin_state_up"`
	Status       string       `json:"status"`
	Gateway      *GatewayInfo `json:"external_gateway_info"`
	Routes       []Route      `json:"routes"`
	// GatewayPortID is the router's port on the external network.
	GatewayPortID string `json:"gw_port_id,omitempty"`
}

var routerTableDef = store.Table{Name: routerTable, New: func() store.Record { return new(Router) },
	Indexes: []*memdb.IndexSchema{
		{Name: projectIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
	}}

// GatewayOpts set a router's gateway.
type GatewayOpts struct {
	NetworkID  string
	EnableSNAT *bool
	// FixedIPs request gateway addresses; nil means automatic.
	FixedIPs []FixedIP
}

// CreateRouterOpts are the attributes of a new router.
type CreateRouterOpts struct {
	Name, Description string
	ProjectID         string
	AdminStateUp      *bool
	Gateway           *GatewayOpts
	Tags              []string
}

// UpdateRouterOpts change a router; nil fields are left alone.
type UpdateRouterOpts struct {
	Name, Description *string
	AdminStateUp      *bool
	// Gateway sets the gateway; ClearGateway removes it.
	Gateway      *GatewayOpts
	ClearGateway bool
	Routes       *[]Route
	IfRevision   *int
}

// InterfaceInfo describes a router interface, as add_router_interface
// answers.
type InterfaceInfo struct {
	ID        string   `json:"id"`
	ProjectID string   `json:"project_id"`
	TenantID  string   `json:"tenant_id"`
	PortID    string   `json:"port_id"`
	SubnetID  string   `json:"subnet_id"`
	SubnetIDs []string `json:"subnet_ids"`
	NetworkID string   `json:"network_id"`
}

func (s *Service) getRouterTx(c *identity.Credentials, tx *store.Txn, id string) (*Router, error) {
	return getVisible(tx, routerTable, "Router", id, func(r *Router) bool { return s.canRead(c, r.ProjectID) })
}

// CreateRouter creates a router, with its gateway when given.
func (s *Service) CreateRouter(ctx context.Context, o CreateRouterOpts) (*Router, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := s.creatable(c, o.ProjectID, o.Name, o.Description, o.Tags)
	if err != nil {
		return nil, err
	}
	r := &Router{Standard: newStandard(s.st.Now(), project, o.Name, o.Description), AdminStateUp: boolOr(o.AdminStateUp, true),
		Status: StatusActive, Routes: []Route{}}
	r.Tags = dedupe(o.Tags)
	var picks []ipRef
	var kept []FixedIP
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept = nil
		nr := *r
		if err := s.chargeTxn(tx, project, resRouter, 1); err != nil {
			return err
		}
		if o.Gateway != nil {
			if err := s.setGatewayTxn(tx, c, &nr, o.Gateway, &picks); err != nil {
				return err
			}
			kept = nr.Gateway.ExternalFixedIPs
		}
		if err := tx.Insert(routerTable, &nr); err != nil {
			return err
		}
		*r = nr
		markTxn(tx, workRouter, nr.ID)
		return tx.Emit("network.router.create", nr.ID, project, nil)
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// setGatewayTxn creates the router's gateway port on an external network.
func (s *Service) setGatewayTxn(tx *store.Txn, c *identity.Credentials, r *Router, g *GatewayOpts, picks *[]ipRef) error {
	n, err := s.getNetworkTx(c, tx, g.NetworkID)
	if err != nil {
		return err
	}
	if !n.External {
		return fault("BadRequest", errdefs.ErrInvalid, "network %s is not an external network", n.ID)
	}
	if g.EnableSNAT != nil && !*g.EnableSNAT && !s.isAdmin(c) {
		return s.requireAdmin(c, "enable_snat")
	}
	if g.FixedIPs != nil && !s.isAdmin(c) {
		return s.requireAdmin(c, "external_fixed_ips")
	}
	p := &Port{Standard: newStandard(tx.Now(), "", "", ""), NetworkID: n.ID, DeviceID: r.ID, DeviceOwner: OwnerRouterGateway,
		AdminStateUp: true, Status: StatusActive, VIFType: VIFTypeUnbound, VIFDetails: map[string]any{}, Profile: map[string]any{},
		SecurityGroups: []string{}, AllowedAddressPairs: []AddressPair{}, ExtraDHCPOpts: []DHCPOpt{}}
	mac, err := s.allocMACTxn(tx, n.ID, "")
	if err != nil {
		return err
	}
	p.MACAddress = mac
	ips, err := s.allocFixedIPsTxn(tx, n, p, g.FixedIPs, false, picks)
	if err != nil {
		return err
	}
	if len(ips) == 0 {
		return fault("IpAddressGenerationFailure", errdefs.ErrConflict, "no more IP addresses available on network %s", n.ID)
	}
	p.FixedIPs = ips
	if err := tx.Insert(portTable, p); err != nil {
		return err
	}
	markTxn(tx, workDHCP, n.ID)
	r.Gateway = &GatewayInfo{NetworkID: n.ID, EnableSNAT: boolOr(g.EnableSNAT, true), ExternalFixedIPs: ips}
	r.GatewayPortID = p.ID
	return nil
}

func (s *Service) clearGatewayTxn(tx *store.Txn, r *Router) ([]ipRef, error) {
	if r.Gateway == nil {
		return nil, nil
	}
	it, err := store.List[FloatingIP](nil, tx, fipTable, "router", r.ID)
	if err != nil {
		return nil, err
	}
	for range it {
		return nil, fault("RouterExternalGatewayInUseByFloatingIp", errdefs.ErrConflict, "gateway of router %s is in use by floating IPs", r.ID)
	}
	var rel []ipRef
	if p, err := store.Get[Port](nil, tx, portTable, r.GatewayPortID); err == nil {
		if rel, err = s.deletePortTxn(tx, p); err != nil {
			return nil, err
		}
	}
	r.Gateway, r.GatewayPortID = nil, ""
	return rel, nil
}

// GetRouter returns a router of the caller's project.
func (s *Service) GetRouter(ctx context.Context, id string) (*Router, error) {
	return snapshotGet(ctx, s, s.getRouterTx, id)
}

// ListRouters returns the routers the caller can see.
func (s *Service) ListRouters(ctx context.Context, o ListOpts) ([]*Router, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := listIndex[Router](s.st.Snapshot(), routerTable, projectIndex, o.ProjectID)
	return collect(it, err, func(r *Router) bool { return s.canRead(c, r.ProjectID) })
}

// UpdateRouter changes a router: name, state, gateway, static routes.
func (s *Service) UpdateRouter(ctx context.Context, id string, o UpdateRouterOpts) (*Router, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkStd(deref(o.Name), deref(o.Description)); err != nil {
		return nil, err
	}
	if o.Routes != nil {
		if len(*o.Routes) > 30 {
			return nil, errdefs.Invalid("routes", "more than 30 routes")
		}
		for _, rt := range *o.Routes {
			if err := checkRoutes([]HostRoute{{rt.Destination, rt.NextHop}}, 0); err != nil {
				return nil, errdefs.Invalid("routes", "%s via %s is not a valid route", rt.Destination, rt.NextHop)
			}
		}
	}
	var picks, released []ipRef
	var kept []FixedIP
	var out *Router
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept, released = nil, nil
		r, err := writable(s, c, tx, s.getRouterTx, id, o.IfRevision)
		if err != nil {
			return err
		}
		setIf(&r.Name, o.Name)
		setIf(&r.Description, o.Description)
		setIf(&r.AdminStateUp, o.AdminStateUp)
		if o.ClearGateway || (o.Gateway != nil && (r.Gateway == nil || o.Gateway.NetworkID != r.Gateway.NetworkID || o.Gateway.FixedIPs != nil)) {
			if released, err = s.clearGatewayTxn(tx, r); err != nil {
				return err
			}
		}
		if o.Gateway != nil {
			if r.Gateway == nil {
				if err := s.setGatewayTxn(tx, c, r, o.Gateway, &picks); err != nil {
					return err
				}
				kept = r.Gateway.ExternalFixedIPs
			} else if o.Gateway.EnableSNAT != nil {
				if !*o.Gateway.EnableSNAT && !s.isAdmin(c) {
					return s.requireAdmin(c, "enable_snat")
				}
				g := *r.Gateway
				g.EnableSNAT = *o.Gateway.EnableSNAT
				r.Gateway = &g
			}
		}
		if o.Routes != nil {
			if err := s.checkNextHopsTxn(tx, r, *o.Routes); err != nil {
				return err
			}
			r.Routes = nonNil(*o.Routes)
		}
		touch(r, tx.Now())
		markTxn(tx, workRouter, r.ID)
		out = r
		return tx.Update(routerTable, r)
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	s.ipam.release(released)
	return out, nil
}

// checkNextHopsTxn requires every next hop to be on a subnet the router
// is attached to, as Neutron's extraroute does.
func (s *Service) checkNextHopsTxn(tx *store.Txn, r *Router, routes []Route) error {
	var prefixes []netip.Prefix
	it, err := store.List[Port](nil, tx, portTable, deviceIndex, r.ID)
	if err != nil {
		return err
	}
	for p := range it {
		for _, f := range p.FixedIPs {
			if sub, err := store.Get[Subnet](nil, tx, subnetTable, f.SubnetID); err == nil {
				pf, _ := netip.ParsePrefix(sub.CIDR)
				prefixes = append(prefixes, pf)
			}
		}
	}
	for _, rt := range routes {
		nh, _ := netip.ParseAddr(rt.NextHop)
		if !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(nh) }) {
			return fault("InvalidRoutes", errdefs.ErrInvalid, "invalid format for routes: the nexthop %s is not connected with router", rt.NextHop)
		}
	}
	return nil
}

// DeleteRouter deletes a router with no interfaces, and its gateway.
func (s *Service) DeleteRouter(ctx context.Context, id string, ifRevision *int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var released []ipRef
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		r, err := writable(s, c, tx, s.getRouterTx, id, ifRevision)
		if err != nil {
			return err
		}
		it, err := store.List[Port](nil, tx, portTable, deviceIndex, r.ID)
		if err != nil {
			return err
		}
		for p := range it {
			if p.DeviceOwner == OwnerRouterInterface {
				return fault("RouterInUse", errdefs.ErrConflict, "router %s still has ports", r.ID)
			}
		}
		if released, err = s.clearGatewayTxn(tx, r); err != nil {
			return err
		}
		if err := s.chargeTxn(tx, r.ProjectID, resRouter, -1); err != nil {
			return err
		}
		markTxn(tx, workRouter, r.ID)
		if err := tx.Delete(routerTable, r.ID); err != nil {
			return err
		}
		return tx.Emit("network.router.delete", r.ID, r.ProjectID, nil)
	})
	if err == nil {
		s.ipam.release(released)
	}
	return err
}

// AddRouterInterface attaches a subnet (with a new port on its gateway
// address) or an existing port of the caller's to a router.
func (s *Service) AddRouterInterface(ctx context.Context, routerID, subnetID, portID string) (*InterfaceInfo, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if (subnetID == "") == (portID == "") {
		return nil, errdefs.Invalid("subnet_id", "give exactly one of subnet_id and port_id")
	}
	var info *InterfaceInfo
	var picks []ipRef
	var kept []FixedIP
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept = nil
		r, err := s.getRouterTx(c, tx, routerID)
		if err != nil {
			return err
		}
		if err := s.mayWrite(c, r.ProjectID); err != nil {
			return err
		}
		var p *Port
		if portID != "" {
			if p, err = s.getPortTx(c, tx, portID); err != nil {
				return err
			}
			if err := s.mayWrite(c, p.ProjectID); err != nil {
				return err
			}
			if p.DeviceID != "" || p.DeviceOwner != "" {
				return fault("PortInUse", errdefs.ErrConflict, "port %s is in use by device %s", p.ID, p.DeviceID)
			}
			if len(p.FixedIPs) == 0 {
				return fault("BadRequest", errdefs.ErrInvalid, "router port must have at least one fixed IP")
			}
			// The port now belongs to the router: it no longer counts
			// toward the project's port quota.
			if err := s.chargeTxn(tx, p.ProjectID, resPort, -1); err != nil {
				return err
			}
			p.DeviceID, p.DeviceOwner, p.Status = r.ID, OwnerRouterInterface, StatusActive
			p.SecurityGroups = []string{}
			if err := s.checkInterfaceOverlapTxn(tx, r, p.FixedIPs); err != nil {
				return err
			}
			touch(p, tx.Now())
			if err := tx.Update(portTable, p); err != nil {
				return err
			}
		} else {
			sub, err := s.getSubnetTx(c, tx, subnetID)
			if err != nil {
				return err
			}
			n, err := store.Get[Network](nil, tx, networkTable, sub.NetworkID)
			if err != nil {
				return err
			}
			if n.ProjectID != r.ProjectID && !n.Shared && !s.isAdmin(c) {
				return notFound("Subnet", subnetID)
			}
			if sub.Gateway() == "" {
				return fault("BadRequest", errdefs.ErrInvalid, "subnet %s has no gateway_ip", sub.ID)
			}
			fixed := []FixedIP{{SubnetID: sub.ID, IPAddress: sub.Gateway()}}
			if err := s.checkInterfaceOverlapTxn(tx, r, fixed); err != nil {
				return err
			}
			p = &Port{Standard: newStandard(tx.Now(), r.ProjectID, "", ""), NetworkID: n.ID, DeviceID: r.ID, DeviceOwner: OwnerRouterInterface,
				AdminStateUp: true, Status: StatusActive, VIFType: VIFTypeUnbound, VIFDetails: map[string]any{}, Profile: map[string]any{},
				SecurityGroups: []string{}, AllowedAddressPairs: []AddressPair{}, ExtraDHCPOpts: []DHCPOpt{}}
			if p.MACAddress, err = s.allocMACTxn(tx, n.ID, ""); err != nil {
				return err
			}
			ip, err := s.allocIPTxn(tx, sub, p.ID, p.MACAddress, sub.Gateway(), &picks)
			if err != nil {
				return err
			}
			p.FixedIPs = []FixedIP{{sub.ID, ip.String()}}
			kept = p.FixedIPs
			if err := tx.Insert(portTable, p); err != nil {
				return err
			}
		}
		touch(r, tx.Now())
		if err := tx.Update(routerTable, r); err != nil {
			return err
		}
		markTxn(tx, workRouter, r.ID)
		markTxn(tx, workDHCP, p.NetworkID)
		info = &InterfaceInfo{ID: r.ID, ProjectID: r.ProjectID, TenantID: r.ProjectID, PortID: p.ID,
			SubnetID: p.FixedIPs[0].SubnetID, NetworkID: p.NetworkID}
		for _, f := range p.FixedIPs {
			info.SubnetIDs = append(info.SubnetIDs, f.SubnetID)
		}
		return nil
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	return info, nil
}

// checkInterfaceOverlapTxn refuses a second interface on a subnet, or on
// a subnet overlapping one the router already has.
func (s *Service) checkInterfaceOverlapTxn(tx *store.Txn, r *Router, fixed []FixedIP) error {
	it, err := store.List[Port](nil, tx, portTable, deviceIndex, r.ID)
	if err != nil {
		return err
	}
	var have []netip.Prefix
	for p := range it {
		if p.DeviceOwner != OwnerRouterInterface {
			continue
		}
		for _, f := range p.FixedIPs {
			if sub, err := store.Get[Subnet](nil, tx, subnetTable, f.SubnetID); err == nil {
				pf, _ := netip.ParsePrefix(sub.CIDR)
				have = append(have, pf)
			}
		}
	}
	for _, f := range fixed {
		sub, err := store.Get[Subnet](nil, tx, subnetTable, f.SubnetID)
		if err != nil {
			return err
		}
		pf, _ := netip.ParsePrefix(sub.CIDR)
		for _, h := range have {
			if h.Overlaps(pf) {
				return fault("BadRequest", errdefs.ErrInvalid, "bad router request: cidr %s of subnet %s overlaps with a subnet of router %s", pf, sub.ID, r.ID)
			}
		}
	}
	return nil
}

// RemoveRouterInterface detaches a subnet or port from a router. A port
// created for a subnet is deleted; a port the user attached is kept,
// released from the router.
func (s *Service) RemoveRouterInterface(ctx context.Context, routerID, subnetID, portID string) (*InterfaceInfo, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if subnetID == "" && portID == "" {
		return nil, errdefs.Invalid("subnet_id", "give subnet_id or port_id")
	}
	var info *InterfaceInfo
	var released []ipRef
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		released = nil
		r, err := s.getRouterTx(c, tx, routerID)
		if err != nil {
			return err
		}
		if err := s.mayWrite(c, r.ProjectID); err != nil {
			return err
		}
		it, err := store.List[Port](nil, tx, portTable, deviceIndex, r.ID)
		if err != nil {
			return err
		}
		var p *Port
		for q := range it {
			if q.DeviceOwner != OwnerRouterInterface {
				continue
			}
			if (portID != "" && q.ID == portID) || (portID == "" && slices.ContainsFunc(q.FixedIPs, func(f FixedIP) bool { return f.SubnetID == subnetID })) {
				p = q
				break
			}
		}
		if p == nil {
			if portID != "" {
				return fault("RouterInterfaceNotFound", errdefs.ErrNotFound, "router %s does not have an interface with id %s", r.ID, portID)
			}
			return fault("RouterInterfaceNotFoundForSubnet", errdefs.ErrNotFound, "router %s has no interface on subnet %s", r.ID, subnetID)
		}
		// Floating IPs reached through this interface would lose their path.
		fit, err := store.List[FloatingIP](nil, tx, fipTable, "router", r.ID)
		if err != nil {
			return err
		}
		for f := range fit {
			if fp, err := store.Get[Port](nil, tx, portTable, f.PortID); err == nil {
				for _, fi := range fp.FixedIPs {
					if slices.ContainsFunc(p.FixedIPs, func(x FixedIP) bool { return x.SubnetID == fi.SubnetID }) {
						return fault("RouterInterfaceInUseByFloatingIP", errdefs.ErrConflict, "router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs", fi.SubnetID, r.ID)
					}
				}
			}
		}
		info = &InterfaceInfo{ID: r.ID, ProjectID: r.ProjectID, TenantID: r.ProjectID, PortID: p.ID, SubnetID: p.FixedIPs[0].SubnetID, NetworkID: p.NetworkID}
		for _, f := range p.FixedIPs {
			info.SubnetIDs = append(info.SubnetIDs, f.SubnetID)
		}
		if portID == "" && p.ProjectID == r.ProjectID {
			if released, err = s.deletePortTxn(tx, p); err != nil {
				return err
			}
		} else if portID != "" {
			if released, err = s.deletePortTxn(tx, p); err != nil {
				return err
			}
		}
		touch(r, tx.Now())
		markTxn(tx, workRouter, r.ID)
		markTxn(tx, workDHCP, p.NetworkID)
		return tx.Update(routerTable, r)
	})
	if err != nil {
		return nil, err
	}
	s.ipam.release(released)
	return info, nil
}
