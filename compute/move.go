package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Compute II: the actions that move a server or change what it runs —
// resize and cold migration (with confirm and revert), live migration,
// evacuation, rebuild, shelve, rescue and snapshots. Each is a task the
// conductor drives through idempotent steps (moveStep); a move across
// hosts holds a second claim, keyed by its Migration, on the destination
// until it is confirmed or reverted, so the source keeps room to go back.

// More vm states (Nova's).
const (
	VMResized          VMState = "resized"
	VMShelved          VMState = "shelved"
	VMShelvedOffloaded VMState = "shelved_offloaded"
	VMRescued          VMState = "rescued"
)

// More task states (Nova's).
const (
	TaskResizePrep       TaskState = "resize_prep"
	TaskResizeMigrating  TaskState = "resize_migrating"
	TaskResizeReverting  TaskState = "resize_reverting"
	TaskResizeConfirming TaskState = "resize_confirming"
	TaskMigrating        TaskState = "migrating"
	TaskRebuilding       TaskState = "rebuilding"
	TaskRebuildSpawning  TaskState = "rebuild_spawning"
	TaskShelving         TaskState = "shelving"
	TaskShelvingOffload  TaskState = "shelving_offloading"
	TaskUnshelving       TaskState = "unshelving"
	TaskRescuing         TaskState = "rescuing"
	TaskUnrescuing       TaskState = "unrescuing"
	TaskImageSnapshot    TaskState = "image_snapshot"
)

// taskStatuses are the statuses derived from a task state, which a status
// filter must check on the whole status.
var taskStatuses = map[string]bool{"RESIZE": true, "MIGRATING": true, "REBUILD": true, "VERIFY_RESIZE": true, "REVERT_RESIZE": true}

// MoveState is the part of a server that compute II's actions keep.
type MoveState struct {
	// MigrationID is the server's current Migration (a move under way or
	// awaiting confirmation).
	MigrationID string `json:"migration_id,omitempty"`
	// PrevVMState is the vm_state to return to (stopped or active).
	PrevVMState VMState `json:"prev_vm_state,omitempty"`
	// NewImageID is a rebuild's new image, until the scheduler's filters
	// accept it on the server's host.
	NewImageID string `json:"new_image_id,omitempty"`
	// ShelvedImageID is the snapshot a shelve-offload took; unshelve boots
	// it, then it is deleted.
	ShelvedImageID string `json:"shelved_image_id,omitempty"`
	// SnapshotImageID is the image a createImage under way uploads to.
	SnapshotImageID string `json:"snapshot_image_id,omitempty"`
	// RescueImageID is the image a rescue boots.
	RescueImageID string `json:"rescue_image_id,omitempty"`
	// Offload asks a shelve to offload at once.
	Offload bool `json:"offload,omitempty"`
}

// IsZero reports whether no move state is kept (for omitzero).
func (m MoveState) IsZero() bool { return m == MoveState{} }

func (s *Server) moveStatus() string {
	switch s.VMState {
	case VMResized:
		if s.TaskState == TaskResizeReverting {
			return "REVERT_RESIZE"
		}
		return "VERIFY_RESIZE"
	case VMShelved:
		return "SHELVED"
	case VMShelvedOffloaded:
		return "SHELVED_OFFLOADED"
	case VMRescued:
		return "RESCUE"
	case VMActive, VMStopped, VMError:
		switch s.TaskState {
		case TaskResizePrep, TaskResizeMigrating:
			return "RESIZE"
		case TaskMigrating:
			return "MIGRATING"
		case TaskRebuilding, TaskRebuildSpawning:
			return "REBUILD"
		}
	}
	return ""
}

// Migration types and statuses, as os-migrations shows them.
const (
	MigrationResize    = "resize"
	MigrationCold      = "migration"
	MigrationLive      = "live-migration"
	MigrationEvacuate  = "evacuation"
	migrationPre       = "pre-migrating"
	migrationRunning   = "migrating"
	migrationFinished  = "finished"
	migrationConfirmed = "confirmed"
	migrationReverted  = "reverted"
	migrationError     = "error"
	migrationDone      = "done"
	migrationCompleted = "completed"
)

// Migration is one move of a server between hosts (or a resize on one
// host), as os-migrations lists it.
type Migration struct {
	store.Meta
	// ID is Nova's integer id, in decimal; UUID its uuid.
	ID         string    `json:"id"`
	UUID       string    `json:"uuid"`
	ServerID   string    `json:"instance_uuid"`
	ProjectID  string    `json:"project_id"`
	UserID     string    `json:"user_id"`
	Type       string    `json:"migration_type"`
	Status     string    `json:"status"`
	SourceHost string    `json:"source_compute"`
	DestHost   string    `json:"dest_compute,omitempty"`
	OldFlavor  Flavor    `json:"old_flavor"`
	NewFlavor  Flavor    `json:"new_flavor"`
	WasStopped bool      `json:"was_stopped,omitempty"`
	Created    time.Time `json:"created_at"`
	Updated    time.Time `json:"updated_at"`
	// Finished is when the move reached VERIFY_RESIZE, for auto-confirm.
	Finished *time.Time `json:"finished_at,omitempty"`
}

// StoreKey implements store.Record.
func (m *Migration) StoreKey() string { return m.ID }

// terminal reports whether the migration holds nothing any more.
func (m *Migration) terminal() bool {
	switch m.Status {
	case migrationConfirmed, migrationReverted, migrationError, migrationDone, migrationCompleted:
		return true
	}
	return false
}

// claimKey is the key of the claim the migration holds on its destination.
func (m *Migration) claimKey() string { return "migration-" + m.ID }

func movePolicy(p identity.Policy, member identity.Rule) {
	p["compute:server:migrate"] = identity.Admin
	p["compute:server:evacuate"] = identity.Admin
	p["compute:server:shelve_offload"] = identity.Admin
	p["compute:server:interface"] = member
	p["compute:migration:list"] = identity.SystemReader
}

// moveStep returns the conductor step of a compute II task, or nil.
func moveStep(t TaskState) func(s *Service, ctx context.Context, srv *Server) error {
	switch t {
	case TaskResizePrep:
		return (*Service).doResizePrep
	case TaskResizeMigrating:
		return (*Service).doResizeMigrating
	case TaskResizeConfirming:
		return (*Service).doResizeConfirm
	case TaskResizeReverting:
		return (*Service).doResizeRevert
	case TaskMigrating:
		return (*Service).doLiveMigrate
	case TaskRebuilding:
		return (*Service).doRebuild
	case TaskRebuildSpawning:
		return (*Service).doRebuildSpawn
	case TaskShelving:
		return (*Service).doShelve
	case TaskShelvingOffload:
		return (*Service).doShelveOffload
	case TaskUnshelving:
		return (*Service).doUnshelve
	case TaskRescuing, TaskUnrescuing:
		return (*Service).doRescue
	case TaskImageSnapshot:
		return (*Service).doSnapshot
	}
	return nil
}

// migrationOf returns the server's current migration, or nil.
func migrationOf(tx *store.Txn, srv *Server) *Migration {
	if srv.Move.MigrationID == "" {
		return nil
	}
	m, err := store.Get[Migration](nil, tx, migrationTable, srv.Move.MigrationID)
	if err != nil {
		return nil
	}
	return m
}

// moveHolds reports whether a move of v keeps a domain on hostID (the
// source until confirm, the destination while it is made), so that the
// sweep leaves it.
func (s *Service) moveHolds(v *Server, hostID string) bool {
	m := migrationOf(s.st.Snapshot(), v)
	return m != nil && !m.terminal() && (m.SourceHost == hostID || m.DestHost == hostID)
}

// insertMigrationTxn records a new migration of srv and makes it current.
func insertMigrationTxn(tx *store.Txn, srv *Server, c *identity.Credentials, typ string, dest string, newFlavor Flavor) (*Migration, error) {
	it, err := store.List[Migration](nil, tx, migrationTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	next := 1
	for m := range it {
		if n, err := strconv.Atoi(m.ID); err == nil && n >= next {
			next = n + 1
		}
	}
	now := tx.Now()
	m := &Migration{ID: strconv.Itoa(next), UUID: newUUID(), ServerID: srv.ID, ProjectID: srv.ProjectID, UserID: c.UserID,
		Type: typ, Status: migrationPre, SourceHost: srv.HostID, DestHost: dest, OldFlavor: srv.Flavor, NewFlavor: newFlavor,
		WasStopped: srv.VMState == VMStopped, Created: now, Updated: now}
	m.OldFlavor.Meta, m.NewFlavor.Meta = store.Meta{}, store.Meta{}
	srv.Move.MigrationID = m.ID
	return m, tx.Insert(migrationTable, m)
}

// setMigrationTxn changes the server's migration inside tx.
func setMigrationTxn(tx *store.Txn, id string, fn func(m *Migration)) error {
	m, err := store.Get[Migration](nil, tx, migrationTable, id)
	if err != nil {
		return nil //nolint:nilerr // purged
	}
	fn(m)
	m.Updated = tx.Now()
	return tx.Update(migrationTable, m)
}

// flavorDelta is the quota a resize from old to new takes.
func flavorDelta(old, nw Flavor) QuotaUsage {
	return QuotaUsage{Cores: nw.VCPUs - old.VCPUs, RAMMB: nw.RAMMB - old.RAMMB}
}

func negate(u QuotaUsage) QuotaUsage { return QuotaUsage{Cores: -u.Cores, RAMMB: -u.RAMMB} }

// conflictState is Nova's 409 for an action in the wrong state.
func conflictState(action string, v *Server) error {
	return fmt.Errorf("compute: cannot '%s' instance %s while it is in vm_state %s, task_state %s: %w",
		action, v.ID, v.VMState, cmpOrS(string(v.TaskState), "None"), errdefs.ErrConflict)
}

// startMove checks the caller's rule, the server's lock and state, then
// runs fn on the server inside one transaction that also records the
// instance action. fn sets the task.
func (s *Service) startMove(ctx context.Context, id, rule, action string, from []VMState,
	fn func(tx *store.Txn, c *identity.Credentials, v *Server) error) (*Server, error) {
	c, _, err := s.actionable(ctx, id, "compute:server:action")
	if err != nil {
		return nil, err
	}
	if rule != "compute:server:action" {
		srv, _ := s.GetServer(ctx, id)
		if c, err = s.enforce(ctx, rule, srv.ProjectID); err != nil {
			return nil, err
		}
	}
	return s.mutateServer(ctx, id, func(tx *store.Txn, v *Server) error {
		if err := checkLocked(c, v); err != nil {
			return err
		}
		if v.TaskState != TaskNone || !slices.Contains(from, v.VMState) {
			return conflictState(action, v)
		}
		if err := startActionTxn(tx, v, action, c.UserID); err != nil {
			return err
		}
		return fn(tx, c, v)
	})
}

// startTask is startMove for an action that only sets the server's task.
func (s *Service) startTask(ctx context.Context, id, rule, action string, from []VMState, task TaskState) error {
	_, err := s.startMove(ctx, id, rule, action, from, func(_ *store.Txn, _ *identity.Credentials, v *Server) error {
		v.TaskState = task
		return nil
	})
	return err
}

// ResizeServer resizes a server to another flavor: the scheduler places
// the new size (on its host or another), quota moves to the new flavor at
// once, and the server waits in VERIFY_RESIZE for ConfirmResize or
// RevertResize.
func (s *Service) ResizeServer(ctx context.Context, id, flavorID string) error {
	if flavorID == "" {
		return errdefs.Invalid("resize.flavorRef", "is required")
	}
	tx := s.st.Snapshot()
	fl, err := store.Get[Flavor](nil, tx, flavorTable, flavorID)
	if err != nil || !s.flavorVisible(ctx, tx, fl) {
		return errdefs.Invalid("resize.flavorRef", "flavor %s could not be found", flavorID)
	}
	if fl.Disabled {
		return errdefs.Invalid("resize.flavorRef", "flavor %s is disabled", flavorID)
	}
	_, err = s.startMove(ctx, id, "compute:server:action", "resize", []VMState{VMActive, VMStopped}, func(tx *store.Txn, c *identity.Credentials, v *Server) error {
		if v.Flavor.ID == fl.ID {
			return errdefs.Invalid("resize.flavorRef", "the server already has flavor %s", fl.ID)
		}
		if !v.BootFromVolume && fl.DiskGB < v.Flavor.DiskGB {
			return errdefs.Invalid("resize.flavorRef", "resizing to a smaller disk (%d GB < %d GB) is not supported", fl.DiskGB, v.Flavor.DiskGB)
		}
		if err := s.chargeTxn(tx, v.ProjectID, flavorDelta(v.Flavor, *fl)); err != nil {
			return err
		}
		if _, err := insertMigrationTxn(tx, v, c, MigrationResize, "", *fl); err != nil {
			return err
		}
		v.TaskState = TaskResizePrep
		return nil
	})
	return err
}

// MigrateServer cold-migrates a server (admin): to host, or where the
// scheduler picks among the other hosts; like a resize it waits in
// VERIFY_RESIZE for confirm or revert.
func (s *Service) MigrateServer(ctx context.Context, id, host string) error {
	return s.startMigration(ctx, id, host, "migrate", "migrate.host", MigrationCold, []VMState{VMActive, VMStopped}, func(v *Server) {
		v.TaskState = TaskResizePrep
	})
}

// ConfirmResize keeps a resized or migrated server where it is now and
// frees what the move held on the source host.
func (s *Service) ConfirmResize(ctx context.Context, id string) error {
	return s.startTask(ctx, id, "compute:server:action", "confirmResize", []VMState{VMResized}, TaskResizeConfirming)
}

// RevertResize takes a resized or migrated server back to its old flavor
// and host.
func (s *Service) RevertResize(ctx context.Context, id string) error {
	return s.startTask(ctx, id, "compute:server:action", "revertResize", []VMState{VMResized}, TaskResizeReverting)
}

// LiveMigrateServer moves a running server to another host without
// stopping it (admin): to host, or where the scheduler picks.
func (s *Service) LiveMigrateServer(ctx context.Context, id, host string) error {
	return s.startMigration(ctx, id, host, "live-migration", "os-migrateLive.host", MigrationLive, []VMState{VMActive, VMPaused}, func(v *Server) {
		v.TaskState = TaskMigrating
		v.Move.PrevVMState = v.VMState
	})
}

// startMigration starts a cold or live migration (admin) of the server to
// host (checked to exist, and not to be the server's own; field names it
// in errors) or where the scheduler picks; set sets the task.
func (s *Service) startMigration(ctx context.Context, id, host, action, field, typ string, from []VMState, set func(v *Server)) error {
	if host != "" {
		if _, err := s.getHost(host); err != nil {
			return err
		}
	}
	_, err := s.startMove(ctx, id, "compute:server:migrate", action, from, func(tx *store.Txn, c *identity.Credentials, v *Server) error {
		if host != "" && host == v.HostID {
			return errdefs.Invalid(field, "the server is already on host %s", host)
		}
		if _, err := insertMigrationTxn(tx, v, c, typ, host, v.Flavor); err != nil {
			return err
		}
		set(v)
		return nil
	})
	return err
}

// EvacuateServer rebuilds a server of a host that is down on another host
// (admin), with the same ports and volumes. It is refused while the
// server's host is up.
func (s *Service) EvacuateServer(ctx context.Context, id, host string) error {
	_, srv, err := s.actionable(ctx, id, "compute:server:evacuate")
	if err != nil {
		return err
	}
	if host != "" {
		if _, err := s.getHost(host); err != nil {
			return err
		}
	}
	if srv.HostID != "" {
		if h, err := s.getHost(srv.HostID); err == nil && s.hostUp(h) {
			return fmt.Errorf("compute: compute service of %s is still in use (up): evacuate only from a host that is down: %w", srv.HostID, errdefs.ErrConflict)
		}
	}
	_, err = s.startMove(ctx, id, "compute:server:evacuate", "evacuate", []VMState{VMActive, VMStopped, VMError}, func(tx *store.Txn, c *identity.Credentials, v *Server) error {
		if v.HostID == "" {
			return conflictState("evacuate", v)
		}
		if _, err := insertMigrationTxn(tx, v, c, MigrationEvacuate, host, v.Flavor); err != nil {
			return err
		}
		v.Move.PrevVMState = v.VMState
		if v.VMState == VMError {
			v.Move.PrevVMState = VMActive
		}
		v.TaskState = TaskRebuilding
		return nil
	})
	return err
}

// moveFault ends a move that failed before anything changed on a host: the
// server keeps its state with a fault, and the migration is in error with
// its claim and quota given back.
func (s *Service) moveFault(ctx context.Context, srv *Server, from TaskState, cause error, event string) error {
	var usage *HostUsage
	err := s.advance(ctx, srv.ID, from, func(tx *store.Txn, v *Server) error {
		if m := migrationOf(tx, v); m != nil {
			u, err := releaseTxn(tx, m.claimKey())
			if err != nil {
				return err
			}
			usage = u
			if m.Type == MigrationResize && from != TaskResizeReverting {
				if err := s.chargeTxn(tx, v.ProjectID, negate(flavorDelta(m.OldFlavor, m.NewFlavor))); err != nil {
					return err
				}
			}
			if err := setMigrationTxn(tx, m.ID, func(m *Migration) { m.Status = migrationError }); err != nil {
				return err
			}
		}
		v.TaskState, v.Move.MigrationID = TaskNone, ""
		v.Fault = &Fault{Code: 500, Message: cause.Error(), Created: tx.Now()}
		return eventTxn(tx, v, event, v.HostID, cause)
	})
	if usage != nil {
		s.sched.setUsage(usage)
	}
	return err
}

// placeMove claims room for a move: on host when one is named (through
// the filters all the same), else where the scheduler picks, skipping
// the hosts in skip.
func (s *Service) placeMove(ctx context.Context, srv *Server, m *Migration, skip []string) (string, error) {
	v := *srv
	v.ID, v.Flavor, v.TriedHosts = m.claimKey(), m.NewFlavor, skip
	if m.DestHost != "" {
		hosts, err := store.List[Host](nil, s.st.Snapshot(), hostTable, store.IDIndex)
		if err != nil {
			return "", err
		}
		v.TriedHosts = nil
		for h := range hosts {
			if h.ID != m.DestHost {
				v.TriedHosts = append(v.TriedHosts, h.ID)
			}
		}
	}
	return s.place(ctx, &v)
}

// bindPortsTo binds the server's ports to host and returns them as bound.
func (s *Service) bindPortsTo(ctx context.Context, srv *Server, host string) ([]Port, error) {
	if s.deps.Ports == nil || len(srv.Ports) == 0 {
		return srv.Ports, nil
	}
	out := make([]Port, 0, len(srv.Ports))
	for _, p := range srv.Ports {
		bp, err := s.deps.Ports.BindPort(ctx, p.ID, host)
		if err != nil {
			return nil, fmt.Errorf("bind port %s to %s: %w", p.ID, host, err)
		}
		out = append(out, *bp)
	}
	return out, nil
}

// swapClaimTxn makes the migration's claim the server's own: the server's
// old claim goes. It does nothing once done.
func swapClaimTxn(tx *store.Txn, serverID, key string) ([]*HostUsage, error) {
	mc, err := store.Get[Claim](nil, tx, claimTable, key)
	if err != nil {
		return nil, nil //nolint:nilerr // already swapped
	}
	u, err := releaseTxn(tx, serverID)
	if err != nil {
		return nil, err
	}
	if err := tx.Delete(claimTable, key); err != nil {
		return nil, err
	}
	nc := *mc
	nc.Meta, nc.ServerID = store.Meta{}, serverID
	if err := tx.Insert(claimTable, &nc); err != nil {
		return nil, err
	}
	if u == nil {
		return nil, nil
	}
	return []*HostUsage{u}, nil
}

func (s *Service) setUsages(us []*HostUsage) {
	for _, u := range us {
		if u != nil {
			s.sched.setUsage(u)
		}
	}
}

// doResizePrep places the new size and records the destination.
func (s *Service) doResizePrep(ctx context.Context, srv *Server) error {
	m := migrationOf(s.st.Snapshot(), srv)
	if m == nil {
		return s.moveFault(ctx, srv, TaskResizePrep, errors.New("migration record lost"), "compute_prep_resize")
	}
	var skip []string
	if m.Type == MigrationCold {
		skip = []string{srv.HostID}
	}
	return s.placeStep(ctx, srv, m, TaskResizePrep, TaskResizeMigrating, skip, "conductor_migrate_server", "compute_prep_resize")
}

// placeStep places a move (skipping the hosts in skip) and records its
// destination in the migration, the server's task going from from to next
// with event; when no host fits, the move ends with a fault (faultEvent).
func (s *Service) placeStep(ctx context.Context, srv *Server, m *Migration, from, next TaskState, skip []string, faultEvent, event string) error {
	dest, err := s.placeMove(ctx, srv, m, skip)
	if errors.Is(err, errNoValidHost) {
		return s.moveFault(ctx, srv, from, err, faultEvent)
	}
	if err != nil {
		return err
	}
	return s.advance(ctx, srv.ID, from, func(tx *store.Txn, v *Server) error {
		if err := setMigrationTxn(tx, m.ID, func(m *Migration) { m.DestHost, m.Status = dest, migrationRunning }); err != nil {
			return err
		}
		v.TaskState = next
		return eventTxn(tx, v, event, dest, nil)
	})
}

// landMove ends a move on its destination: the migration's claim becomes
// the server's, the migration takes status, and the server is on the
// destination host (its AZ) with ports and no task; finish sets the rest
// before event is recorded.
func (s *Service) landMove(ctx context.Context, srv *Server, m *Migration, from TaskState, status string, ports []Port, event string, finish func(tx *store.Txn, v *Server)) error {
	var usages []*HostUsage
	err := s.advance(ctx, srv.ID, from, func(tx *store.Txn, v *Server) error {
		us, err := swapClaimTxn(tx, v.ID, m.claimKey())
		if err != nil {
			return err
		}
		usages = us
		if err := setMigrationTxn(tx, m.ID, func(m *Migration) { m.Status = status }); err != nil {
			return err
		}
		if h, err := store.Get[Host](nil, tx, hostTable, m.DestHost); err == nil {
			v.AZ = h.AZ
		}
		v.HostID, v.Ports, v.TaskState, v.Move.MigrationID = m.DestHost, ports, TaskNone, ""
		finish(tx, v)
		return eventTxn(tx, v, event, m.DestHost, nil)
	})
	s.setUsages(usages)
	return err
}

// specWith builds a server's domain spec with another flavor and ports.
func (s *Service) specWith(ctx context.Context, srv *Server, fl Flavor, ports []Port) (*DomainSpec, error) {
	v := *srv
	v.Flavor, v.Ports = fl, ports
	return s.domainSpecOf(ctx, &v)
}

// doResizeMigrating does the driver's part of a resize or cold migration:
// on one host the domain is resized; across hosts the source is stopped,
// its disks copied to the destination (Migrator), the copy given the new
// size (Resizer) and started there. The source domain stays, stopped,
// until confirm.
func (s *Service) doResizeMigrating(ctx context.Context, srv *Server) error {
	m := migrationOf(s.st.Snapshot(), srv)
	if m == nil || m.DestHost == "" {
		return s.moveFault(ctx, srv, TaskResizeMigrating, errors.New("migration record lost"), "compute_resize_instance")
	}
	ports, err := s.moveDomain(ctx, srv, m)
	if err != nil {
		if ctx.Err() != nil || !fatal(err) {
			return err
		}
		s.undoMoveDomain(ctx, srv, m)
		return s.moveFault(ctx, srv, TaskResizeMigrating, err, "compute_resize_instance")
	}
	return s.advance(ctx, srv.ID, TaskResizeMigrating, func(tx *store.Txn, v *Server) error {
		now := tx.Now()
		if err := setMigrationTxn(tx, m.ID, func(m *Migration) { m.Status, m.Finished = migrationFinished, &now }); err != nil {
			return err
		}
		h, err := store.Get[Host](nil, tx, hostTable, m.DestHost)
		if err == nil {
			v.AZ = h.AZ
		}
		v.HostID, v.Flavor, v.Ports = m.DestHost, m.NewFlavor, ports
		v.VMState, v.TaskState = VMResized, TaskNone
		v.PowerState = PowerRunning
		if m.WasStopped {
			v.PowerState = PowerShutdown
		}
		if m.NewFlavor.ID != m.OldFlavor.ID { // metering and rating: the server runs on its new flavor from now
			if err := tx.Emit("compute.server.resize", v.ID, v.ProjectID, map[string]any{"flavor": m.NewFlavor.ID}); err != nil {
				return err
			}
		}
		return eventTxn(tx, v, "compute_finish_resize", m.DestHost, nil)
	})
}

// destSpec binds a moving server's ports to the move's destination and
// builds its domain spec there with flavor fl; it returns the
// destination's driver with them.
func (s *Service) destSpec(ctx context.Context, srv *Server, m *Migration, fl Flavor) (Hypervisor, []Port, *DomainSpec, error) {
	dd, err := s.driver(m.DestHost)
	if err != nil {
		return nil, nil, nil, err
	}
	ports, err := s.bindPortsTo(ctx, srv, m.DestHost)
	if err != nil {
		return nil, nil, nil, err
	}
	spec, err := s.specWith(ctx, srv, fl, ports)
	if err != nil {
		return nil, nil, nil, err
	}
	return dd, ports, spec, nil
}

func (s *Service) moveDomain(ctx context.Context, srv *Server, m *Migration) ([]Port, error) {
	dd, ports, spec, err := s.destSpec(ctx, srv, m, m.NewFlavor)
	if err != nil {
		return nil, err
	}
	if m.SourceHost != m.DestHost {
		sd, err := s.driver(m.SourceHost)
		if err != nil {
			return nil, err
		}
		mg, ok := sd.(Migrator)
		if !ok {
			return nil, fmt.Errorf("compute: the hypervisor of %s cannot migrate: %w", m.SourceHost, errdefs.ErrUnsupported)
		}
		if err := sd.PowerOff(ctx, srv.ID, s.cfg.PowerOffTimeout); err != nil && !errdefs.IsNotFound(err) {
			return nil, err
		}
		if err := mg.Migrate(ctx, srv.ID, dd, false); err != nil {
			return nil, err
		}
	}
	rz, ok := dd.(Resizer)
	if !ok {
		return nil, fmt.Errorf("compute: the hypervisor of %s cannot resize: %w", m.DestHost, errdefs.ErrUnsupported)
	}
	if err := rz.Resize(ctx, srv.ID, spec); err != nil {
		return nil, err
	}
	if !m.WasStopped {
		if err := dd.PowerOn(ctx, srv.ID); err != nil {
			return nil, err
		}
	} else if err := dd.PowerOff(ctx, srv.ID, s.cfg.PowerOffTimeout); err != nil {
		return nil, err
	}
	return ports, nil
}

// undoMoveDomain puts a server back on its source after a failed move
// (best effort: what fails here is logged, the sweep removes leftovers).
func (s *Service) undoMoveDomain(ctx context.Context, srv *Server, m *Migration) {
	warn := func(step string, err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			s.log.Warn("move rollback", "server", srv.ID, "step", step, "err", err)
		}
	}
	if m.DestHost != "" && m.DestHost != m.SourceHost {
		if dd, err := s.driver(m.DestHost); err == nil {
			warn("destroy on destination", dd.Destroy(ctx, srv.ID))
		}
	}
	if m.Type == MigrationEvacuate {
		return
	}
	_, err := s.bindPortsTo(ctx, srv, m.SourceHost)
	warn("bind ports back", err)
	sd, err := s.driver(m.SourceHost)
	if err != nil {
		return
	}
	if m.SourceHost == m.DestHost {
		if rz, ok := sd.(Resizer); ok {
			if spec, err := s.specWith(ctx, srv, m.OldFlavor, srv.Ports); err == nil {
				warn("resize back", rz.Resize(ctx, srv.ID, spec))
			}
		}
	}
	if !m.WasStopped && srv.VMState != VMStopped {
		warn("power on source", sd.PowerOn(ctx, srv.ID))
	}
}

// doResizeConfirm frees the source: its domain (across hosts) and its
// claim; the destination's claim becomes the server's.
func (s *Service) doResizeConfirm(ctx context.Context, srv *Server) error {
	m := migrationOf(s.st.Snapshot(), srv)
	if m != nil && m.SourceHost != m.DestHost && m.SourceHost != "" {
		if sd, err := s.driver(m.SourceHost); err == nil {
			if err := sd.Destroy(ctx, srv.ID); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		} else if !s.hostGoneOrDown(m.SourceHost) {
			return err
		}
	}
	var usages []*HostUsage
	err := s.advance(ctx, srv.ID, TaskResizeConfirming, func(tx *store.Txn, v *Server) error {
		if m != nil {
			us, err := swapClaimTxn(tx, v.ID, m.claimKey())
			if err != nil {
				return err
			}
			usages = us
			if err := setMigrationTxn(tx, m.ID, func(m *Migration) { m.Status = migrationConfirmed }); err != nil {
				return err
			}
		}
		v.VMState, v.TaskState, v.Move.MigrationID = VMActive, TaskNone, ""
		if v.PowerState == PowerShutdown {
			v.VMState = VMStopped
		}
		return eventTxn(tx, v, "compute_confirm_resize", v.HostID, nil)
	})
	s.setUsages(usages)
	if u, gerr := store.Get[HostUsage](nil, s.st.Snapshot(), usageTable, srv.HostID); gerr == nil {
		s.sched.setUsage(u)
	}
	return err
}

// doResizeRevert takes the server back to its source host and old flavor:
// the destination's domain and claim go, quota returns to the old flavor.
func (s *Service) doResizeRevert(ctx context.Context, srv *Server) error {
	m := migrationOf(s.st.Snapshot(), srv)
	if m == nil {
		return s.moveFault(ctx, srv, TaskResizeReverting, errors.New("migration record lost"), "compute_revert_resize")
	}
	sd, err := s.driver(m.SourceHost)
	if err != nil {
		return err
	}
	back := *srv
	back.HostID = m.SourceHost
	ports, err := s.bindPortsTo(ctx, &back, m.SourceHost)
	if err != nil {
		return err
	}
	if m.SourceHost != m.DestHost {
		if dd, err := s.driver(m.DestHost); err == nil {
			if err := dd.Destroy(ctx, srv.ID); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		} else if !s.hostGoneOrDown(m.DestHost) {
			return err
		}
	} else {
		rz, ok := sd.(Resizer)
		if !ok {
			return fmt.Errorf("compute: the hypervisor of %s cannot resize: %w", m.SourceHost, errdefs.ErrUnsupported)
		}
		spec, err := s.specWith(ctx, srv, m.OldFlavor, ports)
		if err != nil {
			return err
		}
		if err := rz.Resize(ctx, srv.ID, spec); err != nil {
			return err
		}
	}
	if !m.WasStopped {
		if err := sd.PowerOn(ctx, srv.ID); err != nil {
			return err
		}
	}
	var usage *HostUsage
	err = s.advance(ctx, srv.ID, TaskResizeReverting, func(tx *store.Txn, v *Server) error {
		u, err := releaseTxn(tx, m.claimKey())
		if err != nil {
			return err
		}
		usage = u
		if m.Type == MigrationResize {
			if err := s.chargeTxn(tx, v.ProjectID, negate(flavorDelta(m.OldFlavor, m.NewFlavor))); err != nil {
				return err
			}
		}
		if err := setMigrationTxn(tx, m.ID, func(m *Migration) { m.Status = migrationReverted }); err != nil {
			return err
		}
		if h, err := store.Get[Host](nil, tx, hostTable, m.SourceHost); err == nil {
			v.AZ = h.AZ
		}
		v.HostID, v.Flavor, v.Ports, v.Move.MigrationID = m.SourceHost, m.OldFlavor, ports, ""
		v.VMState, v.TaskState, v.PowerState = VMActive, TaskNone, PowerRunning
		if m.WasStopped {
			v.VMState, v.PowerState = VMStopped, PowerShutdown
		}
		if m.NewFlavor.ID != m.OldFlavor.ID {
			if err := tx.Emit("compute.server.resize.revert", v.ID, v.ProjectID, map[string]any{"flavor": m.OldFlavor.ID}); err != nil {
				return err
			}
		}
		return eventTxn(tx, v, "compute_revert_resize", m.SourceHost, nil)
	})
	if usage != nil {
		s.sched.setUsage(usage)
	}
	return err
}

// doLiveMigrate places the server on another host, binds its ports there
// and has the source's driver move the running domain (Migrator).
func (s *Service) doLiveMigrate(ctx context.Context, srv *Server) error {
	m := migrationOf(s.st.Snapshot(), srv)
	if m == nil {
		return s.moveFault(ctx, srv, TaskMigrating, errors.New("migration record lost"), "compute_live_migration")
	}
	if m.Status == migrationPre {
		return s.placeStep(ctx, srv, m, TaskMigrating, TaskMigrating, []string{srv.HostID}, "conductor_live_migrate_instance", "conductor_live_migrate_instance")
	}
	ports, err := s.liveMove(ctx, srv, m)
	if err != nil {
		if ctx.Err() != nil || !fatal(err) {
			return err
		}
		if _, berr := s.bindPortsTo(ctx, srv, m.SourceHost); berr != nil {
			s.log.Warn("live migration rollback: bind ports back", "server", srv.ID, "err", berr)
		}
		return s.moveFault(ctx, srv, TaskMigrating, err, "compute_live_migration")
	}
	return s.landMove(ctx, srv, m, TaskMigrating, migrationCompleted, ports, "compute_live_migration", func(*store.Txn, *Server) {})
}

func (s *Service) liveMove(ctx context.Context, srv *Server, m *Migration) ([]Port, error) {
	sd, err := s.driver(m.SourceHost)
	if err != nil {
		return nil, err
	}
	dd, err := s.driver(m.DestHost)
	if err != nil {
		return nil, err
	}
	mg, ok := sd.(Migrator)
	if !ok {
		return nil, fmt.Errorf("compute: the hypervisor of %s cannot migrate: %w", m.SourceHost, errdefs.ErrUnsupported)
	}
	ports, err := s.bindPortsTo(ctx, srv, m.DestHost)
	if err != nil {
		return nil, err
	}
	if err := mg.Migrate(ctx, srv.ID, dd, true); err != nil {
		return nil, err
	}
	return ports, nil
}

// cleanupMove frees what a server's move holds besides its own host, when
// the server is deleted: the other host's domain, the migration's claim,
// the quota of an unfinished resize, and the images of a shelve or a
// snapshot under way.
func (s *Service) cleanupMove(ctx context.Context, srv *Server) error {
	if m := migrationOf(s.st.Snapshot(), srv); m != nil && !m.terminal() {
		for _, h := range []string{m.SourceHost, m.DestHost} {
			if h == "" || h == srv.HostID {
				continue
			}
			d, err := s.driver(h)
			if err != nil {
				continue // a host without a driver here: its sweep cleans up
			}
			if err := d.Destroy(ctx, srv.ID); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		}
		var usage *HostUsage
		err := s.st.Update(ctx, func(tx *store.Txn) error {
			v, err := store.Get[Server](nil, tx, serverTable, srv.ID)
			if err != nil {
				return nil //nolint:nilerr // gone already
			}
			m, err := store.Get[Migration](nil, tx, migrationTable, m.ID)
			if err != nil || m.terminal() {
				return nil //nolint:nilerr // done already
			}
			u, err := releaseTxn(tx, m.claimKey())
			if err != nil {
				return err
			}
			usage = u
			if m.Type == MigrationResize && v.Flavor.ID != m.NewFlavor.ID {
				if err := s.chargeTxn(tx, v.ProjectID, negate(flavorDelta(m.OldFlavor, m.NewFlavor))); err != nil {
					return err
				}
			}
			m.Status, m.Updated = migrationError, tx.Now()
			return tx.Update(migrationTable, m)
		})
		if err != nil {
			return err
		}
		if usage != nil {
			s.sched.setUsage(usage)
		}
	}
	for _, img := range []string{srv.Move.ShelvedImageID, srv.Move.SnapshotImageID} {
		if err := s.dropImage(ctx, srv.ProjectID, img); err != nil {
			return err
		}
	}
	return nil
}

// moveJanitor confirms resizes left in VERIFY_RESIZE longer than
// Config.ResizeConfirmWindow and deletes the shelved snapshots of servers
// that were unshelved.
func (s *Service) moveJanitor() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-s.life.Done():
			return
		case <-t.C:
		}
		s.tidyMoves(s.life, n%10 == 0)
	}
}

// tidyMoves is one pass of moveJanitor: auto-confirm looks at the
// finished migrations only (by index); the scan of the servers for
// shelve snapshots runs when images is set.
func (s *Service) tidyMoves(ctx context.Context, images bool) {
	tx := s.st.Snapshot()
	if w := s.cfg.ResizeConfirmWindow; w > 0 {
		if it, err := store.List[Migration](nil, tx, migrationTable, "status", migrationFinished); err == nil {
			for m := range it {
				if m.Status == migrationFinished && m.Finished != nil && time.Since(*m.Finished) >= w {
					_, err := s.mutateServer(ctx, m.ServerID, func(tx *store.Txn, v *Server) error {
						if v.VMState != VMResized || v.TaskState != TaskNone || v.Move.MigrationID != m.ID {
							return errNoChange
						}
						v.TaskState = TaskResizeConfirming
						return startActionTxn(tx, v, "confirmResize", "compute")
					})
					if err != nil && !errors.Is(err, errNoChange) && !errdefs.IsNotFound(err) {
						s.log.Warn("auto-confirm", "server", m.ServerID, "err", err)
					}
				}
			}
		}
	}
	if _, ok := s.deps.Images.(ImageWriter); !ok || !images {
		return
	}
	it, err := store.List[Server](nil, tx, serverTable, store.IDIndex)
	if err != nil {
		return
	}
	for v := range it {
		if err := s.afterTask(ctx, v); err != nil {
			s.log.Warn("delete shelved snapshot", "server", v.ID, "image", v.Move.ShelvedImageID, "err", err)
		}
	}
}

// afterTask tidies a server whose task just ended: an unshelved server's
// shelve snapshot is deleted. The janitor repeats it, for a crash in
// between.
func (s *Service) afterTask(ctx context.Context, v *Server) error {
	img := v.Move.ShelvedImageID
	if img == "" || v.TaskState != TaskNone || (v.VMState != VMActive && v.VMState != VMStopped) {
		return nil
	}
	if err := s.dropImage(ctx, v.ProjectID, img); err != nil {
		return err
	}
	_, err := s.mutateServer(ctx, v.ID, func(_ *store.Txn, v *Server) error {
		if v.Move.ShelvedImageID != img {
			return errNoChange
		}
		v.Move.ShelvedImageID = ""
		return nil
	})
	if errors.Is(err, errNoChange) || errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// ListMigrationsOpts filters ListMigrations.
type ListMigrationsOpts struct {
	ServerID, Host, SourceHost, Status, Type, UserID, ProjectID string
	ChangesSince                                                *time.Time
}

// ListMigrations returns migrations, newest first (system readers).
func (s *Service) ListMigrations(ctx context.Context, o ListMigrationsOpts) ([]*Migration, error) {
	if _, err := s.enforce(ctx, "compute:migration:list", ""); err != nil {
		return nil, err
	}
	it, err := store.List[Migration](nil, s.st.Snapshot(), migrationTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Migration
	for m := range it {
		switch {
		case o.ServerID != "" && m.ServerID != o.ServerID,
			o.Host != "" && m.SourceHost != o.Host && m.DestHost != o.Host,
			o.SourceHost != "" && m.SourceHost != o.SourceHost,
			o.UserID != "" && m.UserID != o.UserID,
			o.ProjectID != "" && m.ProjectID != o.ProjectID,
			o.Status != "" && m.Status != o.Status,
			o.Type != "" && m.Type != o.Type,
			o.ChangesSince != nil && m.Updated.Before(*o.ChangesSince):
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Migration) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return y - x
	})
	return out, nil
}
