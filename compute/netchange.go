package compute

import (
	"context"
	"errors"
	"slices"

	"github.com/stratuskit/stratus/store"
)

// NetworkChanged refreshes what a server shows of its ports (today: the
// floating IPs associated with its fixed IPs) from the network service, as
// Nova refreshes its network info cache on Neutron's network-changed
// event. The network service calls it after it changes a floating IP of a
// port the server owns. Only the cloud may call it; an unknown server is
// errdefs.ErrNotFound, and a server without ports (building, deleted) is
// left alone.
func (s *Service) NetworkChanged(ctx context.Context, serverID string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if !c.IsCloudAdmin() {
		return notFound("instance", serverID)
	}
	if s.deps.Ports == nil {
		return nil
	}
	ports, err := s.deps.Ports.ListPorts(ctx, serverID)
	if err != nil {
		return err
	}
	floating := map[[2]string][]string{} // port id, fixed IP → floating IPs
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			floating[[2]string{p.ID, f.IPAddress}] = f.FloatingIPs
		}
	}
	_, err = s.mutateServer(ctx, serverID, func(_ *store.Txn, v *Server) error {
		changed := false
		for i := range v.Ports {
			p := &v.Ports[i]
			for j := range p.FixedIPs {
				f := &p.FixedIPs[j]
				now := floating[[2]string{p.ID, f.IPAddress}]
				if !slices.Equal(f.FloatingIPs, now) {
					f.FloatingIPs, changed = now, true
				}
			}
		}
		if !changed {
			return errNoChange
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}
