package network

import (
	"context"
	"net/netip"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// FloatingIP is an address of an external network that a router NATs to
// a port's fixed IP.
type FloatingIP struct {
	store.Meta
	Standard
	FloatingNetworkID string `json:"floating_network_id"`
	FloatingIPAddress string `json:"floating_ip_address"`
	PortID            string `json:"port_id"`
	FixedIPAddress    string `json:"fixed_ip_address"`
	RouterID          string `json:"router_id"`
	Status            string `json:"status"`
	// FIPPortID is the floating IP's own port on the external network.
	FIPPortID string `json:"fip_port_id"`
}

var fipTableDef = store.Table{Name: fipTable, New: func() store.Record { return new(FloatingIP) },
	Indexes: []*memdb.IndexSchema{
		{Name: projectIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
		{Name: portIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "PortID"}},
		{Name: "router", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "RouterID"}},
	}}

// CreateFloatingIPOpts are the attributes of a new floating IP.
type CreateFloatingIPOpts struct {
	FloatingNetworkID string
	Description       string
	ProjectID         string
	// FloatingIPAddress requests an address (admin only); SubnetID a
	// subnet of the external network.
	FloatingIPAddress string
	SubnetID          string
	PortID            string
	FixedIPAddress    string
	Tags              []string
}

// UpdateFloatingIPOpts associate (PortID set), disassociate (PortID set
// to "") or describe a floating IP.
type UpdateFloatingIPOpts struct {
	Description    *string
	PortID         *string
	FixedIPAddress string
	IfRevision     *int
}

func (s *Service) getFIPTx(c *identity.Credentials, tx *store.Txn, id string) (*FloatingIP, error) {
	return getVisible(tx, fipTable, "FloatingIP", id, func(f *FloatingIP) bool { return s.canRead(c, f.ProjectID) })
}

// CreateFloatingIP allocates an address of an external network, and
// associates it with a port when one is given.
func (s *Service) CreateFloatingIP(ctx context.Context, o CreateFloatingIPOpts) (*FloatingIP, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := s.creatable(c, o.ProjectID, "", o.Description, o.Tags)
	if err != nil {
		return nil, err
	}
	if o.FloatingIPAddress != "" {
		if err := s.requireAdmin(c, "floating_ip_address"); err != nil {
			return nil, err
		}
	}
	f := &FloatingIP{Standard: newStandard(s.st.Now(), project, "", o.Description), FloatingNetworkID: o.FloatingNetworkID, Status: StatusDown}
	f.Tags = dedupe(o.Tags)
	var picks []ipRef
	var kept []FixedIP
	var server string
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		kept = nil
		nf := *f
		n, err := s.getNetworkTx(c, tx, o.FloatingNetworkID)
		if err != nil {
			return err
		}
		if !n.External {
			return fault("BadRequest", errdefs.ErrInvalid, "bad floatingip request: network %s is not a valid external network", n.ID)
		}
		if err := s.chargeTxn(tx, project, resFloatingIP, 1); err != nil {
			return err
		}
		p := &Port{Standard: newStandard(tx.Now(), "", "", ""), NetworkID: n.ID, DeviceID: nf.ID, DeviceOwner: OwnerFloatingIP,
			AdminStateUp: true, Status: StatusActive, VIFType: VIFTypeUnbound, VIFDetails: map[string]any{}, Profile: map[string]any{},
			SecurityGroups: []string{}, AllowedAddressPairs: []AddressPair{}, ExtraDHCPOpts: []DHCPOpt{}}
		if p.MACAddress, err = s.allocMACTxn(tx, n.ID, ""); err != nil {
			return err
		}
		var req []FixedIP
		if o.FloatingIPAddress != "" || o.SubnetID != "" {
			req = []FixedIP{{SubnetID: o.SubnetID, IPAddress: o.FloatingIPAddress}}
		}
		ips, err := s.allocFixedIPsTxn(tx, n, p, req, false, &picks)
		if err != nil {
			return err
		}
		var v4 string
		for _, ip := range ips {
			if a, _ := netip.ParseAddr(ip.IPAddress); a.Is4() {
				v4 = ip.IPAddress
			}
		}
		if v4 == "" {
			return fault("ExternalIpAddressExhausted", errdefs.ErrConflict, "unable to find any IP address on external network %s", n.ID)
		}
		p.FixedIPs = ips
		kept = ips
		if err := tx.Insert(portTable, p); err != nil {
			return err
		}
		nf.FloatingIPAddress, nf.FIPPortID = v4, p.ID
		if o.PortID != "" {
			if err := s.associateTxn(tx, c, &nf, o.PortID, o.FixedIPAddress); err != nil {
				return err
			}
		}
		if err := tx.Insert(fipTable, &nf); err != nil {
			return err
		}
		*f = nf
		server = serverOfPortTxn(tx, nf.PortID)
		return tx.Emit("network.floatingip.create", nf.ID, project, nil)
	})
	s.ipam.settle(picks, kept)
	if err != nil {
		return nil, err
	}
	s.notify(ctx, []string{server})
	return f, nil
}

// associateTxn points f at a port of the caller's project and finds the
// router that reaches the port's subnet from f's external network.
func (s *Service) associateTxn(tx *store.Txn, c *identity.Credentials, f *FloatingIP, portID, fixed string) error {
	p, err := s.getPortTx(c, tx, portID)
	if err != nil {
		return err
	}
	if p.ProjectID != f.ProjectID && !s.isAdmin(c) {
		return notFound("Port", portID)
	}
	var fip *FixedIP
	for i, ip := range p.FixedIPs {
		a, _ := netip.ParseAddr(ip.IPAddress)
		if (fixed == "" && a.Is4()) || ip.IPAddress == fixed {
			fip = &p.FixedIPs[i]
			break
		}
	}
	if fip == nil {
		if fixed != "" {
			return fault("BadRequest", errdefs.ErrInvalid, "port %s does not have fixed ip %s", p.ID, fixed)
		}
		return fault("BadRequest", errdefs.ErrInvalid, "port %s has no IPv4 fixed IP", p.ID)
	}
	it, err := store.List[FloatingIP](nil, tx, fipTable, portIndex, p.ID)
	if err != nil {
		return err
	}
	for o := range it {
		if o.ID != f.ID && o.FixedIPAddress == fip.IPAddress {
			return fault("FloatingIPPortAlreadyAssociated", errdefs.ErrConflict, "cannot associate floating IP %s with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s", f.FloatingIPAddress, p.ID, fip.IPAddress, o.FloatingNetworkID)
		}
	}
	// The router: one with a gateway on f's network and an interface on
	// the fixed IP's subnet.
	ports, err := store.List[Port](nil, tx, portTable, networkIndex, p.NetworkID)
	if err != nil {
		return err
	}
	router := ""
	for q := range ports {
		if q.DeviceOwner != OwnerRouterInterface {
			continue
		}
		on := false
		for _, x := range q.FixedIPs {
			on = on || x.SubnetID == fip.SubnetID
		}
		if !on {
			continue
		}
		r, err := store.Get[Router](nil, tx, routerTable, q.DeviceID)
		if err == nil && r.Gateway != nil && r.Gateway.NetworkID == f.FloatingNetworkID {
			router = r.ID
			break
		}
	}
	if router == "" {
		return fault("ExternalGatewayForFloatingIPNotFound", errdefs.ErrNotFound, "external network %s is not reachable from subnet %s; therefore, cannot associate port %s with a floating IP", f.FloatingNetworkID, fip.SubnetID, p.ID)
	}
	if f.RouterID != "" && f.RouterID != router {
		markTxn(tx, workRouter, f.RouterID)
	}
	f.PortID, f.FixedIPAddress, f.RouterID, f.Status = p.ID, fip.IPAddress, router, StatusActive
	markTxn(tx, workRouter, router)
	return nil
}

// GetFloatingIP returns a floating IP of the caller's project.
func (s *Service) GetFloatingIP(ctx context.Context, id string) (*FloatingIP, error) {
	return snapshotGet(ctx, s, s.getFIPTx, id)
}

// ListFloatingIPs returns the floating IPs the caller can see.
func (s *Service) ListFloatingIPs(ctx context.Context, o ListOpts) ([]*FloatingIP, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := listIndex[FloatingIP](s.st.Snapshot(), fipTable, projectIndex, o.ProjectID)
	return collect(it, err, func(f *FloatingIP) bool { return s.canRead(c, f.ProjectID) })
}

// UpdateFloatingIP associates or disassociates a floating IP.
func (s *Service) UpdateFloatingIP(ctx context.Context, id string, o UpdateFloatingIPOpts) (*FloatingIP, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkName("description", deref(o.Description), maxDesc); err != nil {
		return nil, err
	}
	var out *FloatingIP
	var servers []string
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		f, err := writable(s, c, tx, s.getFIPTx, id, o.IfRevision)
		if err != nil {
			return err
		}
		servers = []string{serverOfPortTxn(tx, f.PortID)}
		setIf(&f.Description, o.Description)
		if o.PortID != nil {
			if f.RouterID != "" {
				markTxn(tx, workRouter, f.RouterID)
			}
			if *o.PortID == "" {
				f.PortID, f.FixedIPAddress, f.RouterID, f.Status = "", "", "", StatusDown
			} else if err := s.associateTxn(tx, c, f, *o.PortID, o.FixedIPAddress); err != nil {
				return err
			}
		}
		touch(f, tx.Now())
		out = f
		servers = append(servers, serverOfPortTxn(tx, f.PortID))
		if err := tx.Update(fipTable, f); err != nil {
			return err
		}
		return tx.Emit("network.floatingip.update", f.ID, f.ProjectID, map[string]string{"port_id": f.PortID, "floating_ip_address": f.FloatingIPAddress})
	})
	if err != nil {
		return nil, err
	}
	if o.PortID != nil {
		s.notify(ctx, servers)
	}
	return out, nil
}

// DeleteFloatingIP releases a floating IP and its address.
func (s *Service) DeleteFloatingIP(ctx context.Context, id string, ifRevision *int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var released []ipRef
	var server string
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		f, err := writable(s, c, tx, s.getFIPTx, id, ifRevision)
		if err != nil {
			return err
		}
		server = serverOfPortTxn(tx, f.PortID)
		if f.RouterID != "" {
			markTxn(tx, workRouter, f.RouterID)
		}
		if p, err := store.Get[Port](nil, tx, portTable, f.FIPPortID); err == nil {
			if released, err = s.deletePortTxn(tx, p); err != nil {
				return err
			}
		}
		if err := s.chargeTxn(tx, f.ProjectID, resFloatingIP, -1); err != nil {
			return err
		}
		if err := tx.Delete(fipTable, f.ID); err != nil {
			return err
		}
		return tx.Emit("network.floatingip.delete", f.ID, f.ProjectID, nil)
	})
	if err == nil {
		s.ipam.release(released)
		s.notify(ctx, []string{server})
	}
	return err
}
