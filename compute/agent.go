package compute

import (
	"context"
	"errors"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Each host has an agent: it heartbeats, keeps the servers' power states
// true to what the driver sees (and to its events), and sweeps the
// driver's Stratus domains that belong to no server on this host. With one
// process the agents are goroutines; they touch only their host's driver.

func (s *Service) startAgent(hostID string) {
	d, err := s.driver(hostID)
	if err != nil {
		return
	}
	ctx := s.life
	s.wg.Go(func() { s.agentLoop(ctx, hostID, d) })
	if es, ok := d.(EventSource); ok {
		ch := es.Events(ctx)
		s.wg.Go(func() {
			for ev := range ch {
				s.observePower(ctx, hostID, ev.ServerID, ev.Power)
			}
		})
	}
}

func (s *Service) agentLoop(ctx context.Context, hostID string, d Hypervisor) {
	beat := min(s.cfg.HeartbeatTTL/3, time.Second)
	t := time.NewTicker(beat)
	defer t.Stop()
	lastSync, lastSweep := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.Heartbeat(hostID)
		// One agent refreshes the scheduler's view, so that hosts whose
		// heartbeats stopped drop out of it.
		if s.firstHost() == hostID {
			s.sched.refresh()
		}
		if time.Since(lastSync) >= 10*time.Second {
			lastSync = time.Now()
			s.syncPower(ctx, hostID, d)
		}
		if s.cfg.SweepInterval > 0 && time.Since(lastSweep) >= s.cfg.SweepInterval {
			lastSweep = time.Now()
			if _, err := s.Sweep(ctx, hostID); err != nil {
				s.log.Warn("sweep failed", "host", hostID, "err", err)
			}
		}
	}
}

func (s *Service) firstHost() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	first := ""
	for id := range s.drivers {
		if first == "" || id < first {
			first = id
		}
	}
	return first
}

// observePower records a power state the driver reported for a server of
// hostID that has no task under way; a guest that shut itself down goes to
// SHUTOFF as in Nova's power state sync.
func (s *Service) observePower(ctx context.Context, hostID, serverID string, p PowerState) {
	_, err := s.mutateServer(ctx, serverID, func(tx *store.Txn, v *Server) error {
		if v.HostID != hostID || v.TaskState != TaskNone || v.PowerState == p {
			return errNoChange
		}
		v.PowerState = p
		if v.VMState == VMActive && (p == PowerShutdown || p == PowerCrashed) {
			v.VMState = VMStopped
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) && !errdefs.IsNotFound(err) {
		s.log.Debug("power sync", "server", serverID, "err", err)
	}
}

// syncPower compares every idle server of the host with its domain.
func (s *Service) syncPower(ctx context.Context, hostID string, d Hypervisor) {
	doms, err := d.List(ctx)
	if err != nil {
		s.log.Warn("power sync: list domains", "host", hostID, "err", err)
		return
	}
	seen := map[string]PowerState{}
	for _, dm := range doms {
		seen[dm.ServerID] = dm.Power
	}
	it, err := store.List[Server](nil, s.st.Snapshot(), serverTable, "host", hostID)
	if err != nil {
		return
	}
	for v := range it {
		if v.TaskState != TaskNone || v.VMState == VMError || v.VMState == VMBuilding {
			continue
		}
		p, ok := seen[v.ID]
		if !ok {
			p = PowerNoState
		}
		if p != v.PowerState {
			s.observePower(ctx, hostID, v.ID, p)
		}
	}
}

// Sweep destroys the domains on hostID's driver that carry Stratus's mark
// but belong to no server placed on that host, and returns their server
// ids. Domains without the mark are never touched.
func (s *Service) Sweep(ctx context.Context, hostID string) ([]string, error) {
	d, err := s.driver(hostID)
	if err != nil {
		return nil, err
	}
	doms, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, dm := range doms {
		if !dm.Stratus || dm.ServerID == "" {
			continue
		}
		// Read after listing: a server placed here before its domain was
		// listed is seen, so a spawn under way is never swept.
		if v, err := store.Get[Server](nil, s.st.Snapshot(), serverTable, dm.ServerID); err == nil && (v.HostID == hostID || s.moveHolds(v, hostID)) {
			continue
		}
		if err := d.Destroy(ctx, dm.ServerID); err != nil && !errdefs.IsNotFound(err) {
			return removed, err
		}
		s.log.Info("swept orphan domain", "host", hostID, "server", dm.ServerID)
		removed = append(removed, dm.ServerID)
	}
	return removed, nil
}
