package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// SubnetIPAvailability is a subnet's address usage.
type SubnetIPAvailability struct {
	SubnetID   string `json:"subnet_id"`
	SubnetName string `json:"subnet_name"`
	CIDR       string `json:"cidr"`
	IPVersion  int    `json:"ip_version"`
	TotalIPs   uint64 `json:"total_ips"`
	UsedIPs    uint64 `json:"used_ips"`
}

// IPAvailability is a network's address usage (admin only, as in
// Neutron).
type IPAvailability struct {
	NetworkID   string                 `json:"network_id"`
	NetworkName string                 `json:"network_name"`
	ProjectID   string                 `json:"project_id"`
	TenantID    string                 `json:"tenant_id"`
	TotalIPs    uint64                 `json:"total_ips"`
	UsedIPs     uint64                 `json:"used_ips"`
	Subnets     []SubnetIPAvailability `json:"subnet_ip_availability"`
}

func (s *Service) ipAvailTx(tx *store.Txn, n *Network) (*IPAvailability, error) {
	av := &IPAvailability{NetworkID: n.ID, NetworkName: n.Name, ProjectID: n.ProjectID, TenantID: n.ProjectID, Subnets: []SubnetIPAvailability{}}
	for _, id := range n.Subnets {
		sub, err := store.Get[Subnet](nil, tx, subnetTable, id)
		if err != nil {
			return nil, err
		}
		sa := SubnetIPAvailability{SubnetID: sub.ID, SubnetName: sub.Name, CIDR: sub.CIDR, IPVersion: sub.IPVersion}
		for _, p := range sub.AllocationPools {
			a, _ := netip.ParseAddr(p.Start)
			b, _ := netip.ParseAddr(p.End)
			if d, ok := addrDiff(b, a); ok && d < 1<<63 {
				sa.TotalIPs += d + 1
			} else {
				sa.TotalIPs = 1 << 63
			}
		}
		it, err := store.List[Port](nil, tx, portTable, ipIndex+"_prefix", sub.ID+"/")
		if err != nil {
			return nil, err
		}
		for range it {
			sa.UsedIPs++ // one entry per address held
		}
		av.TotalIPs += sa.TotalIPs
		av.UsedIPs += sa.UsedIPs
		av.Subnets = append(av.Subnets, sa)
	}
	return av, nil
}

// NetworkIPAvailability returns one network's address usage.
func (s *Service) NetworkIPAvailability(ctx context.Context, id string) (*IPAvailability, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(c, "network-ip-availabilities"); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	n, err := store.Get[Network](nil, tx, networkTable, id)
	if err != nil {
		return nil, fault("NetworkNotFound", errdefs.ErrNotFound, "network %s could not be found", id)
	}
	return s.ipAvailTx(tx, n)
}

// NetworkIPAvailabilities returns every network's address usage.
func (s *Service) NetworkIPAvailabilities(ctx context.Context) ([]*IPAvailability, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(c, "network-ip-availabilities"); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[Network](nil, tx, networkTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*IPAvailability
	for n := range it {
		av, err := s.ipAvailTx(tx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, av)
	}
	return out, nil
}

// EditRoutes adds routes to, or removes routes from, a router's static
// routes in one step (Neutron's extraroute-atomic).
func (s *Service) EditRoutes(ctx context.Context, id string, routes []Route, add bool) (*Router, error) {
	r, err := s.GetRouter(ctx, id)
	if err != nil {
		return nil, err
	}
	for {
		next := slices.Clone(r.Routes)
		for _, rt := range routes {
			i := slices.Index(next, rt)
			switch {
			case add && i < 0:
				next = append(next, rt)
			case !add && i >= 0:
				next = slices.Delete(next, i, i+1)
			}
		}
		rev := r.RevisionNumber
		out, err := s.UpdateRouter(ctx, id, UpdateRouterOpts{Routes: &next, IfRevision: &rev})
		if err == nil || !errdefs.IsConflict(err) {
			return out, err
		}
		if r, err = s.GetRouter(ctx, id); err != nil {
			return nil, err
		}
	}
}
