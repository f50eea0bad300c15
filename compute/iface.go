package compute

import (
	"context"
	"fmt"
	"slices"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// AttachInterfaceOpts hot-plugs a NIC (os-interface): an existing port of
// the project, or a new port on a network.
type AttachInterfaceOpts struct {
	PortID    string
	NetworkID string
	FixedIP   string
}

// AttachInterface plugs a port into a running or stopped server: the port
// is created or taken (device_id = the server), bound to the server's
// host, hot-plugged by the driver, and added to the server's networks so
// that moves and deletion handle it like the others. It returns the port.
func (s *Service) AttachInterface(ctx context.Context, id string, o AttachInterfaceOpts) (*Port, error) {
	c, srv, err := s.actionable(ctx, id, "compute:server:interface")
	if err != nil {
		return nil, err
	}
	if o.PortID != "" && o.NetworkID != "" {
		return nil, errdefs.Invalid("interfaceAttachment", "give port_id or net_id, not both")
	}
	if o.PortID == "" && o.NetworkID == "" {
		return nil, errdefs.Invalid("interfaceAttachment", "port_id or net_id is required")
	}
	if s.deps.Ports == nil {
		return nil, fmt.Errorf("compute: no network service: %w", errdefs.ErrUnsupported)
	}
	if err := checkLocked(c, srv); err != nil {
		return nil, err
	}
	if srv.TaskState != TaskNone || (srv.VMState != VMActive && srv.VMState != VMStopped && srv.VMState != VMPaused) {
		return nil, conflictState("attach_interface", srv)
	}
	d, err := s.driver(srv.HostID)
	if err != nil {
		return nil, err
	}
	if !d.Capabilities().InterfaceAttach {
		return nil, fmt.Errorf("compute: interface attach is not supported by the hypervisor of %s: %w", srv.HostID, errdefs.ErrUnsupported)
	}
	if o.PortID != "" && slices.ContainsFunc(srv.Ports, func(p Port) bool { return p.ID == o.PortID }) {
		return nil, fmt.Errorf("compute: port %s is already attached to server %s: %w", o.PortID, id, errdefs.ErrConflict)
	}
	if _, err := s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		return startActionTxn(tx, v, "attach_interface", c.UserID)
	}); err != nil {
		return nil, err
	}
	p, err := s.deps.Ports.CreatePort(ctx, PortRequest{ProjectID: srv.ProjectID, NetworkID: o.NetworkID, PortID: o.PortID,
		FixedIP: o.FixedIP, DeviceID: srv.ID, SecurityGroups: srv.SecurityGroups})
	if err != nil {
		return nil, s.ifaceEvent(ctx, id, "compute_attach_interface", err)
	}
	undo := func(cause error) error {
		if o.PortID != "" {
			_ = s.deps.Ports.ReleasePort(ctx, p.ID)
		} else {
			_ = s.deps.Ports.DeletePort(ctx, p.ID)
		}
		return s.ifaceEvent(ctx, id, "compute_attach_interface", cause)
	}
	bp, err := s.deps.Ports.BindPort(ctx, p.ID, srv.HostID)
	if err != nil {
		return nil, undo(err)
	}
	var ips []string
	for _, f := range bp.FixedIPs {
		ips = append(ips, f.IPAddress)
	}
	if err := d.AttachInterface(ctx, id, NIC{PortID: bp.ID, MAC: bp.MAC, MTU: bp.MTU, FixedIPs: ips, VIFType: bp.VIFType, VIFDetails: bp.VIFDetails}); err != nil {
		return nil, undo(err)
	}
	_, err = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		v.Ports = append(slices.Clone(v.Ports), *bp)
		v.Networks = append(slices.Clone(v.Networks), NetworkRequest{UUID: bp.NetworkID, Port: o.PortID})
		return eventTxn(tx, v, "compute_attach_interface", v.HostID, nil)
	})
	if err != nil {
		return nil, err
	}
	return bp, nil
}

// ifaceEvent records a failed interface step and returns the cause.
func (s *Service) ifaceEvent(ctx context.Context, id, event string, cause error) error {
	_, _ = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error { return eventTxn(tx, v, event, v.HostID, cause) })
	return cause
}

// DetachInterface unplugs a port from a server: the driver removes the
// NIC, then the port is deleted (if compute created it) or released.
func (s *Service) DetachInterface(ctx context.Context, id, portID string) error {
	c, srv, err := s.actionable(ctx, id, "compute:server:interface")
	if err != nil {
		return err
	}
	if err := checkLocked(c, srv); err != nil {
		return err
	}
	i := slices.IndexFunc(srv.Ports, func(p Port) bool { return p.ID == portID })
	if i < 0 {
		return notFound("port", portID)
	}
	if srv.TaskState != TaskNone || (srv.VMState != VMActive && srv.VMState != VMStopped && srv.VMState != VMPaused) {
		return conflictState("detach_interface", srv)
	}
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	if _, err := s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		return startActionTxn(tx, v, "detach_interface", c.UserID)
	}); err != nil {
		return err
	}
	if err := d.DetachInterface(ctx, id, portID); err != nil && !errdefs.IsNotFound(err) {
		return s.ifaceEvent(ctx, id, "compute_detach_interface", err)
	}
	given := slices.ContainsFunc(srv.Networks, func(n NetworkRequest) bool { return n.Port == portID })
	if given {
		err = s.deps.Ports.ReleasePort(ctx, portID)
	} else {
		err = s.deps.Ports.DeletePort(ctx, portID)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return s.ifaceEvent(ctx, id, "compute_detach_interface", err)
	}
	_, err = s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		v.Ports = slices.DeleteFunc(slices.Clone(v.Ports), func(p Port) bool { return p.ID == portID })
		netID := srv.Ports[i].NetworkID
		dropped := false
		v.Networks = slices.DeleteFunc(slices.Clone(v.Networks), func(n NetworkRequest) bool {
			if dropped {
				return false
			}
			if n.Port == portID || (n.Port == "" && n.UUID == netID) {
				dropped = true
				return true
			}
			return false
		})
		return eventTxn(tx, v, "compute_detach_interface", v.HostID, nil)
	})
	return err
}
