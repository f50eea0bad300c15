package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/network"
)

// computePorts is compute's view of the network service: compute asks for
// a server's ports in the server's project, so the network service's own
// policy decides which networks and ports the project may use; binding,
// which only the cloud may do, runs as the system.
type computePorts struct {
	svc *network.Service
	// noDevices is set when the dataplane makes no host devices (the fake
	// backend): the hypervisor then leaves the NIC out of the domain.
	noDevices bool
}

var _ compute.Ports = computePorts{}

// asProject returns ctx acting as a member of project.
func asProject(ctx context.Context, project string) context.Context {
	return identity.WithCredentials(ctx, &identity.Credentials{UserID: "compute", UserName: "compute", ProjectID: project, Roles: []string{"member", "reader"}})
}

// asSystem returns ctx acting as the cloud.
func asSystem(ctx context.Context) context.Context {
	return identity.WithCredentials(ctx, identity.SystemAdmin())
}

// CreatePort implements compute.Ports.
func (a computePorts) CreatePort(ctx context.Context, req compute.PortRequest) (*compute.Port, error) {
	pctx := asProject(ctx, req.ProjectID)
	if req.PortID != "" {
		p, err := a.svc.GetPort(pctx, req.PortID)
		if err != nil {
			return nil, err
		}
		if p.DeviceID != "" && p.DeviceID != req.DeviceID {
			return nil, errdefs.Wrap(errdefs.ErrConflict, fmt.Errorf("port %s is in use by device %s", p.ID, p.DeviceID))
		}
		if p.DeviceID == "" {
			id, owner := req.DeviceID, network.OwnerCompute
			if p, err = a.svc.UpdatePort(asSystem(ctx), p.ID, network.UpdatePortOpts{DeviceID: &id, DeviceOwner: &owner}); err != nil {
				return nil, err
			}
		}
		return a.port(ctx, p, false)
	}
	// Idempotent: a port this server already has on the network.
	owned, err := a.svc.ListPorts(asSystem(ctx), network.ListOpts{DeviceID: req.DeviceID, NetworkID: req.NetworkID})
	if err != nil {
		return nil, err
	}
	for _, p := range owned {
		if p.ProjectID == req.ProjectID {
			return a.port(ctx, p, true)
		}
	}
	opts := network.CreatePortOpts{NetworkID: req.NetworkID, ProjectID: req.ProjectID, DeviceID: req.DeviceID, DeviceOwner: network.OwnerCompute}
	if req.FixedIP != "" {
		opts.FixedIPs = []network.FixedIP{{IPAddress: req.FixedIP}}
	}
	if len(req.SecurityGroups) > 0 {
		ids, err := a.securityGroups(pctx, req.SecurityGroups)
		if err != nil {
			return nil, err
		}
		opts.SecurityGroups = &ids
	}
	p, err := a.svc.CreatePort(pctx, opts)
	if err != nil {
		return nil, err
	}
	return a.port(ctx, p, true)
}

// securityGroups turns the names (or ids) Nova takes into group ids.
func (a computePorts) securityGroups(ctx context.Context, names []string) ([]string, error) {
	groups, err := a.svc.ListSecurityGroups(ctx, network.ListOpts{})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range names {
		found := ""
		for _, g := range groups {
			if g.ID == n || g.Name == n {
				if found != "" && found != g.ID {
					return nil, errdefs.Invalid("security_groups", "more than one security group is named %q; use its id", n)
				}
				found = g.ID
			}
		}
		if found == "" {
			return nil, errdefs.Invalid("security_groups", "security group %q not found", n)
		}
		ids = append(ids, found)
	}
	return ids, nil
}

// BindPort implements compute.Ports: the backend plugs the port, and the
// port's VIF is what the hypervisor attaches.
func (a computePorts) BindPort(ctx context.Context, portID, host string) (*compute.Port, error) {
	sctx := asSystem(ctx)
	p, err := a.svc.GetPort(sctx, portID)
	if err != nil {
		return nil, err
	}
	if p, err = a.svc.BindPort(sctx, portID, host, p.DeviceID, ""); err != nil {
		return nil, err
	}
	vif, err := a.svc.WaitPortActive(sctx, portID)
	if err != nil {
		return nil, err
	}
	out, err := a.port(ctx, p, false)
	if err != nil {
		return nil, err
	}
	out.Host, out.MAC, out.MTU = host, vif.MAC, vif.MTU
	out.VIFType, out.VIFDetails = vif.Type, map[string]string{"tap_name": vif.DevName}
	if a.noDevices {
		out.VIFType, out.VIFDetails = "fake", map[string]string{}
	}
	return out, nil
}

// UnbindPort implements compute.Ports: only the binding goes; the port
// stays the server's, so that deleting the server finds and deletes it.
func (a computePorts) UnbindPort(ctx context.Context, portID string) error {
	empty := ""
	_, err := a.svc.UpdatePort(asSystem(ctx), portID, network.UpdatePortOpts{HostID: &empty})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// DeletePort implements compute.Ports.
func (a computePorts) DeletePort(ctx context.Context, portID string) error {
	err := a.svc.DeletePort(asSystem(ctx), portID, nil)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// ReleasePort implements compute.Ports: the user's port stays, free.
func (a computePorts) ReleasePort(ctx context.Context, portID string) error {
	_, err := a.svc.UnbindPort(asSystem(ctx), portID)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// ListPorts implements compute.Ports.
func (a computePorts) ListPorts(ctx context.Context, deviceID string) ([]compute.Port, error) {
	ps, err := a.svc.ListPorts(asSystem(ctx), network.ListOpts{DeviceID: deviceID})
	if err != nil {
		return nil, err
	}
	out := make([]compute.Port, 0, len(ps))
	for _, p := range ps {
		cp, err := a.port(ctx, p, false)
		if err != nil {
			return nil, err
		}
		out = append(out, *cp)
	}
	return out, nil
}

// port renders a network port as compute sees it, with its network's name
// and MTU and its subnets' details for network_data.json.
func (a computePorts) port(ctx context.Context, p *network.Port, created bool) (*compute.Port, error) {
	sctx := asSystem(ctx)
	n, err := a.svc.GetNetwork(sctx, p.NetworkID)
	if err != nil {
		return nil, err
	}
	out := &compute.Port{ID: p.ID, NetworkID: p.NetworkID, NetworkName: n.Name, MAC: p.MACAddress, MTU: n.MTU,
		DeviceID: p.DeviceID, Host: p.HostID, VIFType: p.VIFType, Created: created, VIFDetails: map[string]string{}}
	for k, v := range p.VIFDetails {
		out.VIFDetails[k] = fmt.Sprint(v)
	}
	fips, err := a.svc.ListFloatingIPs(sctx, network.ListOpts{ProjectID: p.ProjectID})
	if err != nil {
		return nil, err
	}
	for _, ip := range p.FixedIPs {
		f := compute.FixedIP{SubnetID: ip.SubnetID, IPAddress: ip.IPAddress, Version: 4}
		for _, fip := range fips {
			if fip.PortID == p.ID && fip.FixedIPAddress == ip.IPAddress {
				f.FloatingIPs = append(f.FloatingIPs, fip.FloatingIPAddress)
			}
		}
		if sn, err := a.svc.GetSubnet(sctx, ip.SubnetID); err == nil {
			f.Version, f.CIDR, f.DNS = sn.IPVersion, sn.CIDR, sn.DNSNameservers
			if sn.GatewayIP != nil {
				f.Gateway = *sn.GatewayIP
			}
		}
		out.FixedIPs = append(out.FixedIPs, f)
	}
	return out, nil
}

// computeDevices tells the network service which project owns a server, so
// that a port cannot name another project's server as its device
// (OSSA-2014-008).
type computeDevices struct{ svc *compute.Service }

// NetworkChanged implements network.DeviceNotifier: the server shows its
// floating IPs.
func (d computeDevices) NetworkChanged(ctx context.Context, id string) error {
	return d.svc.NetworkChanged(asSystem(ctx), id)
}

// DeviceProject implements network.DeviceOwners.
func (d computeDevices) DeviceProject(ctx context.Context, id string) (string, error) {
	s, err := d.svc.GetServer(asSystem(ctx), id)
	if err != nil {
		return "", err
	}
	return s.ProjectID, nil
}
