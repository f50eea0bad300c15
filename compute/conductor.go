package compute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/compute/scheduler"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
)

// The conductor drives every server with a task state toward the end of
// its task, one idempotent step at a time: boot is schedule+claim →
// networking (ports created and bound to the host) → block device mapping
// (attachments connected to the host) → spawn; delete, power actions and
// reschedules likewise. Each step is recorded as an instance-action event
// and its result written back before the next one starts, so a restart
// resumes at the step that was under way. Steps are keyed by the server
// (ports by device_id, attachments by server, domains by server id), so
// repeating a step after a crash finds what it already made.
type conductor struct{ s *Service }

// Pending implements reconcile.Reconciler: servers with a task state.
func (c *conductor) Pending(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	it, err := store.List[Server](ws, tx, serverTable, "task_prefix", "")
	if err != nil {
		return nil, err
	}
	var out []reconcile.Item
	for v := range it {
		if v.TaskState != TaskNone {
			out = append(out, reconcile.Item{Key: v.ID, Revision: v.Revision})
		}
	}
	vols, err := pendingVolumeOps(ws, tx)
	if err != nil {
		return nil, err
	}
	for _, it := range vols {
		if !slices.ContainsFunc(out, func(o reconcile.Item) bool { return o.Key == it.Key }) {
			out = append(out, it)
		}
	}
	return out, nil
}

// Reconcile implements reconcile.Reconciler.
func (c *conductor) Reconcile(ctx context.Context, id string) error {
	s := c.s
	for range 16 {
		srv, err := store.Get[Server](nil, s.st.Snapshot(), serverTable, id)
		if err != nil {
			return nil //nolint:nilerr // deleted: nothing to do
		}
		if hasVolumeOps(srv) && srv.TaskState != TaskDeleting {
			if err := s.doVolumeOps(ctx, srv); err != nil {
				return err
			}
			continue
		}
		switch srv.TaskState {
		case TaskNone:
			return s.afterTask(ctx, srv)
		case TaskDeleting:
			err = s.doDelete(ctx, srv)
		case TaskScheduling:
			err = s.doSchedule(ctx, srv)
		case TaskNetworking:
			err = s.doNetworking(ctx, srv)
		case TaskBlockDevices:
			err = s.doVolumes(ctx, srv)
		case TaskSpawning:
			err = s.doSpawn(ctx, srv)
		default:
			if step := moveStep(srv.TaskState); step != nil {
				err = step(s, ctx, srv)
			} else {
				err = s.doPower(ctx, srv)
			}
		}
		if errors.Is(err, errSuperseded) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errSuperseded means the server's task changed under a step (a delete
// during a boot): the step's result is dropped and the new task runs.
var errSuperseded = errors.New("compute: task superseded")

// advance writes a step's result if the server is still in task from.
func (s *Service) advance(ctx context.Context, id string, from TaskState, fn func(tx *store.Txn, v *Server) error) error {
	_, err := s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		if v.TaskState != from {
			return errSuperseded
		}
		return fn(tx, v)
	})
	if errdefs.IsNotFound(err) {
		return errSuperseded
	}
	return err
}

// fatal reports whether a dependency's error will not go away by retrying.
func fatal(err error) bool {
	return errors.Is(err, errdefs.ErrInvalid) || errors.Is(err, errdefs.ErrNotFound) ||
		errors.Is(err, errdefs.ErrQuotaExceeded) || errors.Is(err, errdefs.ErrConflict) ||
		errors.Is(err, errdefs.ErrForbidden) || errors.Is(err, errdefs.ErrUnsupported)
}

// schedRequest builds the scheduler request of a server.
func (s *Service) schedRequest(tx *store.Txn, srv *Server) *scheduler.Request {
	disk := srv.Flavor.DiskGB + srv.Flavor.EphemeralGB + (srv.Flavor.SwapMB+1023)/1024
	if srv.BootFromVolume {
		disk = srv.Flavor.EphemeralGB + (srv.Flavor.SwapMB+1023)/1024
	}
	r := &scheduler.Request{VCPUs: srv.Flavor.VCPUs, RAMMB: srv.Flavor.RAMMB, DiskGB: disk, AZ: srv.RequestedAZ,
		ExtraSpecs: srv.Flavor.ExtraSpecs, Ignore: srv.TriedHosts}
	if s.deps.Images != nil && srv.ImageID != "" {
		if img, err := s.deps.Images.GetImage(context.Background(), srv.ProjectID, srv.ImageID); err == nil {
			r.ImageProperties = img.Properties
		}
	}
	if g, err := store.Get[ServerGroup](nil, tx, groupTable, srv.Hints.Group); err == nil {
		r.GroupPolicy, r.MaxServerPerHost = scheduler.GroupPolicy(g.Policy), g.MaxServerPerHost
		r.GroupHosts = groupHostsTxn(tx, g, srv.ID)
	}
	for _, id := range srv.Hints.SameHost {
		if o, err := store.Get[Server](nil, tx, serverTable, id); err == nil && o.HostID != "" {
			r.SameHost = append(r.SameHost, o.HostID)
		}
	}
	if len(srv.Hints.SameHost) > 0 && len(r.SameHost) == 0 {
		r.SameHost = []string{"\x00none"}
	}
	for _, id := range srv.Hints.DifferentHost {
		if o, err := store.Get[Server](nil, tx, serverTable, id); err == nil && o.HostID != "" {
			r.DifferentHost = append(r.DifferentHost, o.HostID)
		}
	}
	return r
}

// groupHostsTxn counts the group's other members per host, from their
// claims (a claim is where a server is, from the moment it is placed).
func groupHostsTxn(tx *store.Txn, g *ServerGroup, self string) map[string]int {
	m := map[string]int{}
	for _, id := range g.Members {
		if id == self {
			continue
		}
		if c, err := store.Get[Claim](nil, tx, claimTable, id); err == nil {
			m[c.HostID]++
		}
	}
	return m
}

// groupOKTxn rechecks a hard group policy inside the claim's transaction,
// so that two members scheduled at once cannot both take one host.
func groupOKTxn(tx *store.Txn, srv *Server, hostID string) bool {
	g, err := store.Get[ServerGroup](nil, tx, groupTable, srv.Hints.Group)
	if err != nil {
		return true
	}
	hosts := groupHostsTxn(tx, g, srv.ID)
	switch scheduler.GroupPolicy(g.Policy) {
	case scheduler.AntiAffinity:
		return hosts[hostID] < max(g.MaxServerPerHost, 1)
	case scheduler.Affinity:
		return len(hosts) == 0 || hosts[hostID] > 0
	}
	return true
}

func (s *Service) schedOptions() *scheduler.Options {
	o := s.cfg.Scheduler
	return &scheduler.Options{RAMWeight: o.RAMWeight, CPUWeight: o.CPUWeight, DiskWeight: o.DiskWeight,
		SoftAffinityWeight: o.SoftAffinityWeight, Limit: o.Limit}
}

// place picks a host for srv and commits the claim in one store
// transaction that rechecks the host's capacity and the group policy,
// writing only the claim and the host's usage (so that claims on other
// hosts never conflict with it). It retries with a fresh view when a
// concurrent claim took the room, and returns errNoValidHost with the
// reasons when no host fits. A server that already holds a claim (a
// restart after the claim) keeps it.
func (s *Service) place(ctx context.Context, srv *Server) (string, error) {
	if c, err := store.Get[Claim](nil, s.st.Snapshot(), claimTable, srv.ID); err == nil {
		return c.HostID, nil
	}
	opts := s.schedOptions()
	var lastErr error
	for try := range 8 {
		req := s.schedRequest(s.st.Snapshot(), srv)
		best, reasons := s.sched.best(req, opts)
		if best == "" && try > 0 {
			// The view may be stale after lost races: check a fresh one.
			s.sched.refresh()
			best, reasons = s.sched.best(req, opts)
		}
		if best == "" {
			return "", fmt.Errorf("%w: %s", errNoValidHost, reasons)
		}
		var usage *HostUsage
		err := s.st.Update(ctx, func(tx *store.Txn) error {
			if srv.Hints.Group != "" && !groupOKTxn(tx, srv, best) {
				return errClaimFailed
			}
			u, err := claimTxn(tx, srv, best)
			usage = u
			return err
		})
		if errors.Is(err, errClaimFailed) {
			lastErr = err
			if u, gerr := store.Get[HostUsage](nil, s.st.Snapshot(), usageTable, best); gerr == nil {
				s.sched.setUsage(u)
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if usage != nil {
			s.sched.setUsage(usage)
		}
		return best, nil
	}
	return "", fmt.Errorf("%w: claims kept losing races (%w)", errNoValidHost, lastErr)
}

// errNoValidHost is Nova's fault text, which users and clients look for.
var errNoValidHost = errors.New("No valid host was found") //nolint:staticcheck // Nova's exact wording

func (s *Service) doSchedule(ctx context.Context, srv *Server) error {
	host, err := s.place(ctx, srv)
	if errors.Is(err, errNoValidHost) {
		return s.failServer(ctx, srv, TaskScheduling, err, "compute_schedule")
	}
	if err != nil {
		return err
	}
	err = s.advance(ctx, srv.ID, TaskScheduling, func(tx *store.Txn, v *Server) error {
		h, err := store.Get[Host](nil, tx, hostTable, host)
		if err != nil {
			return notFound("host", host)
		}
		v.HostID, v.AZ, v.TaskState = h.ID, h.AZ, TaskNetworking
		return eventTxn(tx, v, "compute_schedule", h.ID, nil)
	})
	if errors.Is(err, errSuperseded) {
		// Deleted or otherwise changed meanwhile: the delete (or the next
		// task) releases the claim, which it finds by the server's id.
		return err
	}
	return err
}

// failServer puts a server in ERROR with a fault, after freeing what it
// holds on a host (domain, port bindings, attachments, claim); its ports
// are deleted, its quota stays until it is deleted.
func (s *Service) failServer(ctx context.Context, srv *Server, from TaskState, cause error, event string) error {
	if err := s.cleanupHost(ctx, srv); err != nil {
		return err
	}
	if err := s.releasePorts(ctx, srv); err != nil {
		return err
	}
	var usage *HostUsage
	err := s.advance(ctx, srv.ID, from, func(tx *store.Txn, v *Server) error {
		u, err := releaseTxn(tx, v.ID)
		if err != nil {
			return err
		}
		usage = u
		v.VMState, v.TaskState, v.PowerState = VMError, TaskNone, PowerNoState
		v.HostID, v.Ports = "", nil
		code := 500
		if errors.Is(cause, errdefs.ErrInvalid) {
			code = 400
		}
		v.Fault = &Fault{Code: code, Message: cause.Error(), Created: tx.Now()}
		if err := eventTxn(tx, v, event, srv.HostID, cause); err != nil {
			return err
		}
		return tx.Emit("compute.server.error", v.ID, v.ProjectID, map[string]any{"fault": cause.Error()})
	})
	if usage != nil {
		s.sched.setUsage(usage)
	}
	return err
}

// cleanupHost undoes what a boot did on its host: the domain, the port
// bindings and the volume connections. It is idempotent.
func (s *Service) cleanupHost(ctx context.Context, srv *Server) error {
	if srv.HostID != "" {
		d, err := s.driver(srv.HostID)
		switch {
		case err == nil:
			if err := d.Destroy(ctx, srv.ID); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("compute: destroy server %s on %s: %w", srv.ID, srv.HostID, err)
			}
		case s.hostGoneOrDown(srv.HostID):
			// Nova's local delete: a host that is gone or down cannot be
			// asked; its sweep removes the domain if the host comes back.
			s.log.Warn("host down: server cleaned up without its host", "server", srv.ID, "host", srv.HostID)
		default:
			return err
		}
	}
	if s.deps.Ports != nil {
		ports, err := s.deps.Ports.ListPorts(ctx, srv.ID)
		if err != nil {
			return err
		}
		for _, p := range ports {
			if p.Host != "" {
				if err := s.deps.Ports.UnbindPort(ctx, p.ID); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			}
		}
	}
	if s.deps.Volumes != nil {
		for _, bd := range srv.BlockDevices {
			if bd.AttachmentID != "" {
				if err := s.deps.Volumes.DeleteAttachment(ctx, bd.AttachmentID); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Service) hostGoneOrDown(hostID string) bool {
	h, err := s.getHost(hostID)
	return err != nil || !s.hostUp(h)
}

// releasePorts deletes the ports compute made for the server and frees
// the ones the user gave.
func (s *Service) releasePorts(ctx context.Context, srv *Server) error {
	if s.deps.Ports == nil {
		return nil
	}
	ports, err := s.deps.Ports.ListPorts(ctx, srv.ID)
	if err != nil {
		return err
	}
	for _, p := range ports {
		given := slices.ContainsFunc(srv.Networks, func(n NetworkRequest) bool { return n.Port == p.ID })
		if given {
			err = s.deps.Ports.ReleasePort(ctx, p.ID)
		} else {
			err = s.deps.Ports.DeletePort(ctx, p.ID)
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (s *Service) doNetworking(ctx context.Context, srv *Server) error {
	var ports []Port
	if len(srv.Networks) > 0 {
		existing, err := s.deps.Ports.ListPorts(ctx, srv.ID)
		if err != nil {
			return err
		}
		used := map[string]bool{}
		for _, n := range srv.Networks {
			var p *Port
			for i := range existing {
				e := &existing[i]
				if used[e.ID] {
					continue
				}
				if (n.Port != "" && e.ID == n.Port) || (n.Port == "" && e.NetworkID == n.UUID) {
					p = e
					break
				}
			}
			if p == nil {
				p, err = s.deps.Ports.CreatePort(ctx, PortRequest{ProjectID: srv.ProjectID, NetworkID: n.UUID, PortID: n.Port,
					FixedIP: n.FixedIP, DeviceID: srv.ID, SecurityGroups: srv.SecurityGroups})
				if err != nil {
					if fatal(err) {
						return s.failServer(ctx, srv, TaskNetworking, fmt.Errorf("network %s: %w", cmpOrS(n.UUID, n.Port), err), "compute_networking")
					}
					return err
				}
			}
			used[p.ID] = true
			bp, err := s.deps.Ports.BindPort(ctx, p.ID, srv.HostID)
			if err != nil {
				if fatal(err) {
					return s.failServer(ctx, srv, TaskNetworking, fmt.Errorf("bind port %s: %w", p.ID, err), "compute_networking")
				}
				return err
			}
			ports = append(ports, *bp)
		}
	}
	return s.advance(ctx, srv.ID, TaskNetworking, func(tx *store.Txn, v *Server) error {
		v.Ports, v.TaskState = ports, TaskBlockDevices
		return eventTxn(tx, v, "compute_allocate_networks", v.HostID, nil)
	})
}

func (s *Service) doVolumes(ctx context.Context, srv *Server) error {
	bds := slices.Clone(srv.BlockDevices)
	for i := range bds {
		bd := &bds[i]
		if bd.SourceType != "volume" {
			continue
		}
		a, err := s.deps.Volumes.ReserveAttachment(ctx, srv.ProjectID, bd.UUID, srv.ID)
		if err == nil && a.Connection == nil { // connected already before a restart
			a, err = s.deps.Volumes.ConnectAttachment(ctx, a.ID, HostConnector{Host: srv.HostID, Platform: "x86_64", OSType: "linux"})
		}
		if err == nil {
			err = s.deps.Volumes.CompleteAttachment(ctx, a.ID)
		}
		if err != nil {
			if fatal(err) {
				return s.failServer(ctx, srv, TaskBlockDevices, fmt.Errorf("volume %s: %w", bd.UUID, err), "compute_block_device_mapping")
			}
			return err
		}
		bd.AttachmentID, bd.Connection = a.ID, a.Connection
		if bd.DeviceName == "" {
			bd.DeviceName = "/dev/vd" + string(rune('a'+i))
		}
	}
	return s.advance(ctx, srv.ID, TaskBlockDevices, func(tx *store.Txn, v *Server) error {
		v.BlockDevices, v.TaskState = bds, TaskSpawning
		return eventTxn(tx, v, "compute_block_device_mapping", v.HostID, nil)
	})
}

// DomainSpecOf builds the driver's spec of a server.
func (s *Service) domainSpecOf(ctx context.Context, srv *Server) (*DomainSpec, error) {
	spec := &DomainSpec{ServerID: srv.ID, Name: srv.Name, ProjectID: srv.ProjectID, VCPUs: srv.Flavor.VCPUs,
		MemoryMB: srv.Flavor.RAMMB, RootGB: srv.Flavor.DiskGB, EphemeralGB: srv.Flavor.EphemeralGB,
		SwapMB: srv.Flavor.SwapMB, ExtraSpecs: srv.Flavor.ExtraSpecs}
	if imageID := cmpOrS(srv.Move.ShelvedImageID, srv.ImageID); imageID != "" && s.deps.Images != nil {
		img, err := s.deps.Images.GetImage(ctx, srv.ProjectID, imageID)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", imageID, err)
		}
		spec.Image = img
		images, project := s.deps.Images, srv.ProjectID
		spec.OpenImage = func(ctx context.Context, id string) (io.ReadCloser, error) { return images.OpenImage(ctx, project, id) }
	}
	for _, p := range srv.Ports {
		var ips []string
		for _, f := range p.FixedIPs {
			ips = append(ips, f.IPAddress)
		}
		spec.NICs = append(spec.NICs, NIC{PortID: p.ID, MAC: p.MAC, MTU: p.MTU, FixedIPs: ips, VIFType: p.VIFType, VIFDetails: p.VIFDetails})
	}
	for _, bd := range srv.BlockDevices {
		if bd.Connection != nil {
			spec.Volumes = append(spec.Volumes, DiskAttachment{VolumeID: bd.UUID, Device: bd.DeviceName, Connection: *bd.Connection, BootIndex: bd.BootIndex})
		}
	}
	if srv.ConfigDrive {
		files, err := ConfigDriveFiles(srv, s.metadataExtra())
		if err != nil {
			return nil, err
		}
		spec.ConfigDrive = files
	}
	return spec, nil
}

func (s *Service) doSpawn(ctx context.Context, srv *Server) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	spec, err := s.domainSpecOf(ctx, srv)
	if err == nil {
		err = d.Spawn(ctx, spec)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.reschedule(ctx, srv, err)
	}
	return s.advance(ctx, srv.ID, TaskSpawning, func(tx *store.Txn, v *Server) error {
		now := tx.Now()
		v.VMState, v.TaskState, v.PowerState, v.LaunchedAt, v.Fault = VMActive, TaskNone, PowerRunning, &now, nil
		if err := eventTxn(tx, v, "compute_spawn", v.HostID, nil); err != nil {
			return err
		}
		return tx.Emit("compute.server.active", v.ID, v.ProjectID, map[string]any{"host": v.HostID})
	})
}

// reschedule frees the host a spawn failed on and sends the server back to
// the scheduler, or to ERROR after MaxAttempts hosts.
func (s *Service) reschedule(ctx context.Context, srv *Server, cause error) error {
	if srv.Attempts+1 >= s.cfg.MaxAttempts {
		return s.failServer(ctx, srv, TaskSpawning, fmt.Errorf("%w: exceeded max scheduling attempts %d for instance %s; last exception: %w",
			errNoValidHost, s.cfg.MaxAttempts, srv.ID, cause), "compute_spawn")
	}
	if err := s.cleanupHost(ctx, srv); err != nil {
		return err
	}
	var usage *HostUsage
	err := s.advance(ctx, srv.ID, TaskSpawning, func(tx *store.Txn, v *Server) error {
		u, err := releaseTxn(tx, v.ID)
		if err != nil {
			return err
		}
		usage = u
		if err := eventTxn(tx, v, "compute_spawn", v.HostID, cause); err != nil {
			return err
		}
		v.Attempts++
		v.TriedHosts = append(slices.Clone(v.TriedHosts), v.HostID)
		v.HostID, v.TaskState, v.Ports = "", TaskScheduling, nil
		bds := slices.Clone(v.BlockDevices)
		for i := range bds {
			bds[i].AttachmentID, bds[i].Connection = "", nil
		}
		v.BlockDevices = bds
		return nil
	})
	if usage != nil {
		s.sched.setUsage(usage)
	}
	return err
}

// powerOps maps a power task to the driver call and the state it ends in.
var powerOps = map[TaskState]struct {
	event string
	vm    VMState
	power PowerState
	call  func(ctx context.Context, s *Service, d Hypervisor, id string) error
}{
	TaskRebooting: {"compute_reboot_instance", VMActive, PowerRunning, func(ctx context.Context, _ *Service, d Hypervisor, id string) error {
		return d.Reboot(ctx, id, false)
	}},
	TaskRebootingHard: {"compute_reboot_instance", VMActive, PowerRunning, func(ctx context.Context, _ *Service, d Hypervisor, id string) error {
		return d.Reboot(ctx, id, true)
	}},
	TaskPoweringOff: {"compute_stop_instance", VMStopped, PowerShutdown, func(ctx context.Context, s *Service, d Hypervisor, id string) error {
		return d.PowerOff(ctx, id, s.cfg.PowerOffTimeout)
	}},
	TaskPoweringOn: {"compute_start_instance", VMActive, PowerRunning, func(ctx context.Context, _ *Service, d Hypervisor, id string) error {
		return d.PowerOn(ctx, id)
	}},
	TaskPausing:    {"compute_pause_instance", VMPaused, PowerPaused, func(ctx context.Context, _ *Service, d Hypervisor, id string) error { return d.Pause(ctx, id) }},
	TaskUnpausing:  {"compute_unpause_instance", VMActive, PowerRunning, func(ctx context.Context, _ *Service, d Hypervisor, id string) error { return d.Unpause(ctx, id) }},
	TaskSuspending: {"compute_suspend_instance", VMSuspended, PowerSuspended, func(ctx context.Context, _ *Service, d Hypervisor, id string) error { return d.Suspend(ctx, id) }},
	TaskResuming:   {"compute_resume_instance", VMActive, PowerRunning, func(ctx context.Context, _ *Service, d Hypervisor, id string) error { return d.Resume(ctx, id) }},
}

func (s *Service) doPower(ctx context.Context, srv *Server) error {
	op, ok := powerOps[srv.TaskState]
	if !ok {
		return s.advance(ctx, srv.ID, srv.TaskState, func(tx *store.Txn, v *Server) error {
			v.TaskState = TaskNone
			return eventTxn(tx, v, "compute_unknown_task", v.HostID, fmt.Errorf("unknown task state %q", srv.TaskState))
		})
	}
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	cerr := op.call(ctx, s, d, srv.ID)
	if cerr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if cerr != nil && !fatal(cerr) {
		return cerr // transient: retried with backoff
	}
	return s.advance(ctx, srv.ID, srv.TaskState, func(tx *store.Txn, v *Server) error {
		v.TaskState = TaskNone
		if cerr == nil {
			v.VMState, v.PowerState = op.vm, op.power
		} else if errdefs.IsNotFound(cerr) {
			v.VMState, v.PowerState = VMError, PowerNoState
			v.Fault = &Fault{Code: 500, Message: cerr.Error(), Created: tx.Now()}
		}
		return eventTxn(tx, v, op.event, v.HostID, cerr)
	})
}

func (s *Service) doDelete(ctx context.Context, srv *Server) error {
	if err := s.cleanupMove(ctx, srv); err != nil {
		return err
	}
	if err := s.cleanupHost(ctx, srv); err != nil {
		return err
	}
	if err := s.releaseVolumes(ctx, srv); err != nil {
		return err
	}
	if err := s.releasePorts(ctx, srv); err != nil {
		return err
	}
	var usage *HostUsage
	err := s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := store.Get[Server](nil, tx, serverTable, srv.ID)
		if err != nil || v.TaskState != TaskDeleting {
			return errSuperseded
		}
		u, err := releaseTxn(tx, v.ID)
		if err != nil {
			return err
		}
		usage = u
		if err := s.chargeTxn(tx, v.ProjectID, QuotaUsage{Instances: -1, Cores: -v.Flavor.VCPUs, RAMMB: -v.Flavor.RAMMB}); err != nil {
			return err
		}
		if err := removeMemberTxn(tx, v.Hints.Group, v.ID); err != nil {
			return err
		}
		// The actions go with the server; its tombstone keeps its last state
		// for changes-since.
		acts, err := store.List[InstanceAction](nil, tx, actionTable, "server", v.ID)
		if err != nil {
			return err
		}
		for a := range acts {
			if err := tx.Delete(actionTable, a.StoreKey()); err != nil {
				return err
			}
		}
		now := tx.Now()
		v.VMState, v.TaskState, v.PowerState, v.TerminatedAt, v.Updated = VMDeleted, TaskNone, PowerNoState, &now, now
		if err := tx.Update(serverTable, v); err != nil {
			return err
		}
		if err := tx.Emit("compute.server.delete", v.ID, v.ProjectID, nil); err != nil {
			return err
		}
		return tx.Delete(serverTable, v.ID)
	})
	if usage != nil {
		s.sched.setUsage(usage)
	}
	return err
}
