package network

import (
	"context"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Network types (provider:network_type).
const (
	TypeFlat  = "flat"
	TypeVLAN  = "vlan"
	TypeVXLAN = "vxlan"
)

// Network is a layer-2 network.
type Network struct {
	store.Meta
	Standard
	AdminStateUp        bool     `json:"admin_state_up"`
	Status              string   `json:"status"`
	Shared              bool     `json:"shared"`
	External            bool     `json:"router:external"`
	MTU                 int      `json:"mtu"`
	PortSecurityEnabled bool     `json:"port_security_enabled"`
	NetworkType         string   `json:"provider:network_type"`
	PhysicalNetwork     string   `json:"provider:physical_network"`
	SegmentationID      int      `json:"provider:segmentation_id"`
	Subnets             []string `json:"subnets"`
	// AvailabilityZoneHints are the zones the user asked for.
	AvailabilityZoneHints []string `json:"availability_zone_hints"`
}

var networkTableDef = store.Table{Name: networkTable, New: func() store.Record { return new(Network) },
	Indexes: []*memdb.IndexSchema{
		{Name: projectIndex, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
	}}

// segment records an allocated segmentation id: key "type/physnet/id".
type segment struct {
	store.Meta
	Key       string `json:"key"`
	NetworkID string `json:"network_id"`
}

func (g *segment) StoreKey() string { return g.Key }

var segmentTableDef = store.Table{Name: segmentTable, New: func() store.Record { return new(segment) }}

func segKey(typ, phys string, id int) string { return fmt.Sprintf("%s/%s/%d", typ, phys, id) }

// CreateNetworkOpts are the attributes of a new network.
type CreateNetworkOpts struct {
	Name, Description string
	// ProjectID is the owner; only an admin may name another project.
	ProjectID           string
	AdminStateUp        *bool
	Shared              bool
	External            bool
	MTU                 int
	PortSecurityEnabled *bool
	// NetworkType, PhysicalNetwork and SegmentationID are the provider
	// attributes (admin only); empty means a tenant network of the
	// configured type with an allocated id.
	NetworkType     string
	PhysicalNetwork string
	SegmentationID  int
	Tags            []string
	// AvailabilityZoneHints lists zones; only the service's zone is valid.
	AvailabilityZoneHints []string
}

// UpdateNetworkOpts change a network; nil fields are left alone.
type UpdateNetworkOpts struct {
	Name, Description   *string
	AdminStateUp        *bool
	Shared, External    *bool
	MTU                 *int
	PortSecurityEnabled *bool
	// IfRevision, if set, makes the update fail with a Fault of type
	// RevisionNumberConstraintFailed unless the revision_number matches.
	IfRevision *int
}

// ListOpts filter a list by the indexed attributes; the REST API filters
// on any attribute after that.
type ListOpts struct {
	// ProjectID lists one project's resources.
	ProjectID string
	// NetworkID lists the subnets or ports of one network.
	NetworkID string
	// DeviceID lists the ports of one device (server or router).
	DeviceID string
}

func (s *Service) seeNetwork(c *identity.Credentials, n *Network) bool {
	return s.canRead(c, n.ProjectID) || n.Shared || n.External
}

func (s *Service) getNetworkTx(c *identity.Credentials, tx *store.Txn, id string) (*Network, error) {
	return getVisible(tx, networkTable, "Network", id, func(n *Network) bool { return s.seeNetwork(c, n) })
}

func (s *Service) defaultMTU(typ string) int {
	if s.cfg.DefaultMTU > 0 {
		return s.cfg.DefaultMTU
	}
	if typ == TypeVXLAN {
		return 1450
	}
	return 1500
}

// CreateNetwork creates a network, allocating its segmentation id.
func (s *Service) CreateNetwork(ctx context.Context, o CreateNetworkOpts) (*Network, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	project, err := s.creatable(c, o.ProjectID, o.Name, o.Description, o.Tags)
	if err != nil {
		return nil, err
	}
	if o.Shared {
		if err := s.requireAdmin(c, "shared"); err != nil {
			return nil, err
		}
	}
	if o.External {
		if err := s.requireAdmin(c, "router:external"); err != nil {
			return nil, err
		}
	}
	provider := o.NetworkType != "" || o.PhysicalNetwork != "" || o.SegmentationID != 0
	if provider {
		if err := s.requireAdmin(c, "provider attributes"); err != nil {
			return nil, err
		}
	}
	typ := o.NetworkType
	if typ == "" {
		typ = s.cfg.TenantNetworkType
		if o.PhysicalNetwork != "" {
			typ = TypeFlat
		}
	}
	if err := s.checkProvider(typ, o.PhysicalNetwork, o.SegmentationID); err != nil {
		return nil, err
	}
	if o.MTU < 0 || (o.MTU != 0 && o.MTU < 68) || o.MTU > 9216 {
		return nil, errdefs.Invalid("mtu", "must be between 68 and 9216")
	}
	for _, z := range o.AvailabilityZoneHints {
		if z != s.cfg.AvailabilityZone {
			return nil, fault("AvailabilityZoneNotFound", errdefs.ErrNotFound, "availability zone %s could not be found", z)
		}
	}
	n := &Network{
		Standard: newStandard(s.st.Now(), project, o.Name, o.Description), AdminStateUp: boolOr(o.AdminStateUp, true),
		Status: "ACTIVE", Shared: o.Shared, External: o.External, MTU: o.MTU, PortSecurityEnabled: boolOr(o.PortSecurityEnabled, true),
		NetworkType: typ, PhysicalNetwork: o.PhysicalNetwork, SegmentationID: o.SegmentationID, Subnets: []string{},
		AvailabilityZoneHints: nonNil(o.AvailabilityZoneHints),
	}
	n.Tags = dedupe(o.Tags)
	if n.MTU == 0 {
		n.MTU = s.defaultMTU(typ)
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if err := s.chargeTxn(tx, project, resNetwork, 1); err != nil {
			return err
		}
		nn := *n
		if err := s.allocSegmentTxn(tx, &nn); err != nil {
			return err
		}
		if err := tx.Insert(networkTable, &nn); err != nil {
			return err
		}
		*n = nn
		markTxn(tx, workNetwork, n.ID)
		return tx.Emit("network.network.create", n.ID, project, nil)
	})
	if err != nil {
		return nil, err
	}
	return s.GetNetwork(ctx, n.ID)
}

func (s *Service) checkProvider(typ, phys string, seg int) error {
	switch typ {
	case TypeFlat:
		if phys == "" {
			return errdefs.Invalid("provider:physical_network", "a flat network needs a physical network")
		}
		if seg != 0 {
			return errdefs.Invalid("provider:segmentation_id", "a flat network has no segmentation id")
		}
	case TypeVLAN:
		if seg != 0 && (seg < 1 || seg > 4094) {
			return errdefs.Invalid("provider:segmentation_id", "vlan id %d out of range 1-4094", seg)
		}
	case TypeVXLAN:
		if phys != "" {
			return errdefs.Invalid("provider:physical_network", "a vxlan network has no physical network")
		}
		if seg != 0 && (seg < 1 || seg > 1<<24-1) {
			return errdefs.Invalid("provider:segmentation_id", "vxlan id %d out of range", seg)
		}
	default:
		return errdefs.Invalid("provider:network_type", "%q is not flat, vlan or vxlan", typ)
	}
	if phys != "" && !slices.Contains(s.cfg.PhysicalNetworks, phys) {
		return errdefs.Invalid("provider:physical_network", "unknown physical network %q", phys)
	}
	return nil
}

// allocSegmentTxn takes the network's segment: its requested id or the
// first free id of a configured range. A flat network takes its whole
// physical network.
func (s *Service) allocSegmentTxn(tx *store.Txn, n *Network) error {
	taken := func(id int) bool {
		_, err := store.Get[segment](nil, tx, segmentTable, segKey(n.NetworkType, n.PhysicalNetwork, id))
		return err == nil
	}
	switch {
	case n.NetworkType == TypeFlat:
		if taken(0) {
			return fault("FlatNetworkInUse", errdefs.ErrConflict, "physical network %s is in use by a flat network", n.PhysicalNetwork)
		}
	case n.SegmentationID != 0:
		if taken(n.SegmentationID) {
			return fault("SegmentationIdInUse", errdefs.ErrConflict, "segmentation id %d on %s is in use", n.SegmentationID, n.NetworkType)
		}
	default:
		found := false
		for _, r := range s.cfg.SegmentRanges {
			if r.NetworkType != n.NetworkType || (n.NetworkType == TypeVLAN && n.PhysicalNetwork != "" && r.PhysicalNetwork != n.PhysicalNetwork) {
				continue
			}
			for id := r.Min; id <= r.Max; id++ {
				if !taken(id) {
					n.SegmentationID, n.PhysicalNetwork, found = id, r.PhysicalNetwork, true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return fault("NoNetworkAvailable", errdefs.ErrConflict, "unable to create the network: no tenant network is available for allocation")
		}
	}
	return tx.Insert(segmentTable, &segment{Key: segKey(n.NetworkType, n.PhysicalNetwork, n.SegmentationID), NetworkID: n.ID})
}

// GetNetwork returns a network the caller can see: its own, a shared or an
// external one.
func (s *Service) GetNetwork(ctx context.Context, id string) (*Network, error) {
	return snapshotGet(ctx, s, s.getNetworkTx, id)
}

// ListNetworks returns the networks the caller can see.
func (s *Service) ListNetworks(ctx context.Context, o ListOpts) ([]*Network, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := listIndex[Network](s.st.Snapshot(), networkTable, projectIndex, o.ProjectID)
	return collect(it, err, func(n *Network) bool { return s.seeNetwork(c, n) })
}

// UpdateNetwork changes a network the caller owns.
func (s *Service) UpdateNetwork(ctx context.Context, id string, o UpdateNetworkOpts) (*Network, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if o.Name != nil || o.Description != nil {
		if err := checkStd(deref(o.Name), deref(o.Description)); err != nil {
			return nil, err
		}
	}
	if o.Shared != nil || o.External != nil {
		if err := s.requireAdmin(c, "shared and router:external"); err != nil {
			return nil, err
		}
	}
	if o.MTU != nil && (*o.MTU < 68 || *o.MTU > 9216) {
		return nil, errdefs.Invalid("mtu", "must be between 68 and 9216")
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		n, err := writable(s, c, tx, s.getNetworkTx, id, o.IfRevision)
		if err != nil {
			return err
		}
		setIf(&n.Name, o.Name)
		setIf(&n.Description, o.Description)
		setIf(&n.AdminStateUp, o.AdminStateUp)
		setIf(&n.MTU, o.MTU)
		setIf(&n.PortSecurityEnabled, o.PortSecurityEnabled)
		if o.Shared != nil && !*o.Shared && n.Shared {
			// Neutron refuses to unshare a network other projects use.
			if used, err := otherProjectPorts(tx, n); err != nil || used {
				return fault("InvalidSharedSetting", errdefs.ErrConflict, "unable to reconfigure sharing settings for network %s: multiple tenants are using it", n.ID)
			}
		}
		setIf(&n.Shared, o.Shared)
		setIf(&n.External, o.External)
		touch(n, tx.Now())
		markTxn(tx, workNetwork, n.ID)
		return tx.Update(networkTable, n)
	})
	if err != nil {
		return nil, err
	}
	return s.GetNetwork(ctx, id)
}

func otherProjectPorts(tx *store.Txn, n *Network) (bool, error) {
	it, err := store.List[Port](nil, tx, portTable, networkIndex, n.ID)
	if err != nil {
		return false, err
	}
	for p := range it {
		if p.ProjectID != "" && p.ProjectID != n.ProjectID && !isServicePort(p.DeviceOwner) {
			return true, nil
		}
	}
	return false, nil
}

// DeleteNetwork deletes a network with no ports but its DHCP port; its
// subnets go with it.
func (s *Service) DeleteNetwork(ctx context.Context, id string, ifRevision *int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var released []ipRef
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		released = released[:0]
		n, err := writable(s, c, tx, s.getNetworkTx, id, ifRevision)
		if err != nil {
			return err
		}
		it, err := store.List[Port](nil, tx, portTable, networkIndex, n.ID)
		if err != nil {
			return err
		}
		var dhcp []*Port
		for p := range it {
			if p.DeviceOwner != OwnerDHCP {
				return fault("NetworkInUse", errdefs.ErrConflict, "unable to complete operation on network %s: there are one or more ports still in use on the network", n.ID)
			}
			dhcp = append(dhcp, p)
		}
		for _, p := range dhcp {
			rel, err := s.deletePortTxn(tx, p)
			if err != nil {
				return err
			}
			released = append(released, rel...)
		}
		for _, sid := range n.Subnets {
			if err := tx.Delete(subnetTable, sid); err != nil {
				return err
			}
			if err := s.chargeTxn(tx, n.ProjectID, resSubnet, -1); err != nil {
				return err
			}
		}
		if err := tx.Delete(segmentTable, segKey(n.NetworkType, n.PhysicalNetwork, n.SegmentationID)); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err := s.chargeTxn(tx, n.ProjectID, resNetwork, -1); err != nil {
			return err
		}
		markTxn(tx, workNetwork, n.ID)
		markTxn(tx, workDHCP, n.ID)
		if err := tx.Delete(guardTable, n.ID); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err := tx.Delete(networkTable, n.ID); err != nil {
			return err
		}
		return tx.Emit("network.network.delete", n.ID, n.ProjectID, nil)
	})
	if err == nil {
		s.ipam.release(released)
		s.ipam.dropNetwork(id)
	}
	return err
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func setIf[T any](dst *T, p *T) {
	if p != nil {
		*dst = *p
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// listIndex lists a table by index value, or the whole table when value is
// empty.
func listIndex[T any](tx *store.Txn, table, index, value string) (func(func(*T) bool), error) {
	if value == "" {
		return store.List[T](nil, tx, table, store.IDIndex)
	}
	return store.List[T](nil, tx, table, index, value)
}
