package compute

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
)

// Volume hot-plug (os-volume_attachments). An attach or a detach is first
// an intent written on the server's block device mapping (Pending
// "attach" or "detach", with the instance action it belongs to); the
// conductor then drives it one idempotent step at a time through the
// volume service's attachment flow (reserve → connect → hypervisor
// hot-plug → complete; hypervisor unplug → delete attachment) and writes
// the outcome last. Every step is keyed by (volume, server), so a restart
// mid-attach or mid-detach repeats the steps and finds what it made.

// Pending volume operations of a block device.
const (
	volumeOpAttach = "attach"
	volumeOpDetach = "detach"
	// volumeOpRollback undoes a failed attach: unplug, delete the
	// attachment, then drop the mapping.
	volumeOpRollback = "rollback"
)

// volumeOpsIndex indexes the servers with a pending volume operation, for
// the conductor's Pending.
const volumeOpsIndex = "volume_ops"

// volumeOpsIndexSchema is the server table's index of servers with a
// pending volume operation.
func volumeOpsIndexSchema() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: volumeOpsIndex, Indexer: &memdb.ConditionalIndex{Conditional: func(o any) (bool, error) {
		v, ok := o.(*Server)
		return ok && hasVolumeOps(v), nil
	}}}
}

func hasVolumeOps(v *Server) bool {
	return slices.ContainsFunc(v.BlockDevices, func(bd BlockDevice) bool { return bd.Pending != "" })
}

// pendingVolumeOps lists the servers with a pending volume operation.
func pendingVolumeOps(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	it, err := store.List[Server](ws, tx, serverTable, volumeOpsIndex, true)
	if err != nil {
		return nil, err
	}
	var out []reconcile.Item
	for v := range it {
		out = append(out, reconcile.Item{Key: v.ID, Revision: v.Revision})
	}
	return out, nil
}

// VolumeDeleter is implemented by a Volumes that can delete a volume; the
// conductor uses it for block devices with delete_on_termination when
// their server is deleted.
type VolumeDeleter interface {
	// DeleteVolume deletes a volume of the project (absent is nil).
	DeleteVolume(ctx context.Context, projectID, volumeID string) error
}

// VolumeAttachment is a volume attached to a server, as
// os-volume_attachments shows it.
type VolumeAttachment struct {
	ServerID string
	VolumeID string
	// Device is the guest device compute chose ("/dev/vdb").
	Device              string
	Tag                 string
	DeleteOnTermination bool
	// AttachmentID is the volume service's attachment; empty until the
	// attachment is reserved.
	AttachmentID string
	// BDMID is the block device mapping's uuid (bdm_uuid).
	BDMID string
	// State is "attaching", "attached" or "detaching".
	State string
}

// AttachVolumeOpts attaches a volume to a server.
type AttachVolumeOpts struct {
	VolumeID string
	// Device is a requested device name; like Nova's libvirt driver,
	// compute chooses the name itself and only validates this one.
	Device              string
	Tag                 string
	DeleteOnTermination bool
}

// attachStates are the vm_states a volume may be attached or detached in
// (Nova's, without the resize and shelve states Stratus lacks).
var attachStates = []VMState{VMActive, VMPaused, VMStopped}

var devicePath = regexp.MustCompile(`^/dev/[a-z]{2,4}[0-9]{0,3}$`)

func attachmentOf(v *Server, bd *BlockDevice) VolumeAttachment {
	st := "attached"
	switch bd.Pending {
	case volumeOpAttach, volumeOpRollback:
		st = "attaching"
	case volumeOpDetach:
		st = "detaching"
	}
	return VolumeAttachment{ServerID: v.ID, VolumeID: bd.UUID, Device: bd.DeviceName, Tag: bd.Tag,
		DeleteOnTermination: bd.DeleteOnTermination, AttachmentID: bd.AttachmentID, BDMID: bd.BDMID, State: st}
}

// ListVolumeAttachments returns the volumes attached (or being attached or
// detached) to a server, in attachment order.
func (s *Service) ListVolumeAttachments(ctx context.Context, serverID string) ([]VolumeAttachment, error) {
	srv, err := s.GetServer(ctx, serverID)
	if err != nil {
		return nil, err
	}
	out := []VolumeAttachment{}
	for i := range srv.BlockDevices {
		if bd := &srv.BlockDevices[i]; bd.SourceType == "volume" {
			out = append(out, attachmentOf(srv, bd))
		}
	}
	return out, nil
}

// GetVolumeAttachment returns the attachment of a volume to a server.
func (s *Service) GetVolumeAttachment(ctx context.Context, serverID, volumeID string) (*VolumeAttachment, error) {
	srv, err := s.GetServer(ctx, serverID)
	if err != nil {
		return nil, err
	}
	bd := volumeBD(srv, volumeID)
	if bd == nil {
		return nil, notAttached(serverID, volumeID)
	}
	a := attachmentOf(srv, bd)
	return &a, nil
}

func volumeBD(v *Server, volumeID string) *BlockDevice {
	for i := range v.BlockDevices {
		if bd := &v.BlockDevices[i]; bd.SourceType == "volume" && bd.UUID == volumeID {
			return bd
		}
	}
	return nil
}

func notAttached(serverID, volumeID string) error {
	return fmt.Errorf("Instance %s is not attached to volume %s: %w", serverID, volumeID, errdefs.ErrNotFound) //nolint:staticcheck // Nova's wording
}

func volumeNotFound(volumeID string) error {
	return fmt.Errorf("Volume %s could not be found: %w", volumeID, errdefs.ErrNotFound) //nolint:staticcheck // Nova's wording
}

// checkAttachState refuses an attach or detach on a locked server, or one
// in a state or task that does not allow it (409, as Nova).
func checkAttachState(v *Server, action string, admin bool) error {
	if v.Locked && !admin {
		return fmt.Errorf("compute: instance %s is locked: %w", v.ID, errdefs.ErrConflict)
	}
	if v.TaskState != TaskNone {
		return fmt.Errorf("compute: cannot '%s' instance %s while it is in task_state %s: %w", action, v.ID, v.TaskState, errdefs.ErrConflict)
	}
	if !slices.Contains(attachStates, v.VMState) {
		return fmt.Errorf("compute: cannot '%s' instance %s while it is in vm_state %s: %w", action, v.ID, v.VMState, errdefs.ErrConflict)
	}
	return nil
}

// nextDevice chooses the guest device of a hot-plugged volume: the first
// vdX that neither a disk the domain got at boot (root, boot-time volumes,
// ephemeral, swap, config drive, named vda, vdb ... in that order) nor
// another attachment has. "" when all 26 are taken.
func nextDevice(v *Server) string {
	used := map[string]bool{}
	boot := 0
	if v.ImageID != "" {
		boot++
	}
	for _, bd := range v.BlockDevices {
		if bd.DeviceName != "" {
			used[strings.TrimPrefix(bd.DeviceName, "/dev/")] = true
		}
		if bd.ActionID == "" {
			boot++ // mapped at create
		}
	}
	if v.Flavor.EphemeralGB > 0 {
		boot++
	}
	if v.Flavor.SwapMB > 0 {
		boot++
	}
	if v.ConfigDrive {
		boot++
	}
	for i := range 26 {
		dev := "vd" + string(rune('a'+i))
		if i >= boot && !used[dev] {
			return "/dev/" + dev
		}
	}
	return ""
}

// AttachVolume attaches a volume of the server's project to a server
// (Nova's POST os-volume_attachments): it checks the server's state (409),
// the volume (404 when the project has no such volume; 400 when it is
// attached already or not available) and records the attachment and an
// attach_volume action; the conductor hot-plugs the disk. The volume is
// reserved before the call returns.
func (s *Service) AttachVolume(ctx context.Context, serverID string, o AttachVolumeOpts) (*VolumeAttachment, error) {
	c, srv, err := s.actionable(ctx, serverID, "compute:server:action")
	if err != nil {
		return nil, err
	}
	if !isUUID(o.VolumeID) {
		return nil, errdefs.Invalid("volumeAttachment.volumeId", "must be a volume uuid")
	}
	if o.Device != "" && !devicePath.MatchString(o.Device) {
		return nil, errdefs.Invalid("volumeAttachment.device", "the supplied device path (%.40q) is invalid", o.Device)
	}
	if o.Tag != "" {
		if err := CheckTag(o.Tag); err != nil {
			return nil, errdefs.Invalid("volumeAttachment.tag", "must be 1-60 printable characters without '/' or ','")
		}
	}
	if s.deps.Volumes == nil {
		return nil, fmt.Errorf("compute: attaching volumes needs a block storage service: %w", errdefs.ErrUnsupported)
	}
	if srv.HostID != "" {
		if d, err := s.driver(srv.HostID); err == nil && !d.Capabilities().VolumeAttach {
			return nil, fmt.Errorf("compute: the hypervisor of host %s cannot attach volumes: %w", srv.HostID, errdefs.ErrUnsupported)
		}
	}
	vol, err := s.deps.Volumes.GetVolume(ctx, srv.ProjectID, o.VolumeID)
	if errdefs.IsNotFound(err) {
		return nil, volumeNotFound(o.VolumeID)
	}
	if err != nil {
		return nil, err
	}
	if vol.Status != "available" && vol.Status != "in-use" {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Errorf("Invalid volume: volume %s status must be available or in-use, but is %s", vol.ID, vol.Status)) //nolint:staticcheck // Nova's wording
	}
	var bd BlockDevice
	v, err := s.mutateServer(ctx, serverID, func(tx *store.Txn, v *Server) error {
		if err := checkAttachState(v, "attach_volume", c.IsCloudAdmin()); err != nil {
			return err
		}
		if volumeBD(v, o.VolumeID) != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, fmt.Errorf("Invalid volume: volume %s already attached", o.VolumeID)) //nolint:staticcheck // Nova's wording
		}
		dev := nextDevice(v)
		if dev == "" {
			return fmt.Errorf("compute: the maximum allowed number of disk devices (26) to attach to a single instance has been exceeded: %w", errdefs.ErrForbidden)
		}
		if err := startActionTxn(tx, v, "attach_volume", c.UserID); err != nil {
			return err
		}
		bd = BlockDevice{BootIndex: -1, UUID: o.VolumeID, SourceType: "volume", DestinationType: "volume",
			DeleteOnTermination: o.DeleteOnTermination, DeviceName: dev, Tag: o.Tag, BDMID: newUUID(),
			Pending: volumeOpAttach, ActionID: v.ActionID}
		v.BlockDevices = append(slices.Clone(v.BlockDevices), bd)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Reserve now, as Nova does, so that a volume another server holds is
	// refused here. The conductor reserves too (idempotent per server);
	// when the mapping was rolled back or its server is being deleted
	// meanwhile, this reservation is undone.
	att, err := s.deps.Volumes.ReserveAttachment(ctx, srv.ProjectID, o.VolumeID, serverID)
	if err != nil {
		if !fatal(err) {
			s.log.Warn("volume reservation deferred to the conductor", "server", serverID, "volume", o.VolumeID, "err", err)
			out := attachmentOf(v, &bd)
			return &out, nil
		}
		_ = s.finishVolumeOp(context.WithoutCancel(ctx), serverID, bd.BDMID, "compute_reserve_volume", err, func(b *BlockDevice) {
			b.Pending = volumeOpRollback
		})
		if errdefs.IsNotFound(err) {
			return nil, volumeNotFound(o.VolumeID)
		}
		if errdefs.IsConflict(err) || errors.Is(err, errdefs.ErrInvalid) {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Errorf("Invalid volume: %w", err)) //nolint:staticcheck // Nova's wording
		}
		return nil, err
	}
	undo := false
	_, err = s.mutateServer(context.WithoutCancel(ctx), serverID, func(_ *store.Txn, v *Server) error {
		i := slices.IndexFunc(v.BlockDevices, func(b BlockDevice) bool { return b.BDMID == bd.BDMID })
		if i < 0 || v.TaskState == TaskDeleting || v.BlockDevices[i].Pending == volumeOpRollback {
			undo = true
			return errNoChange
		}
		if v.BlockDevices[i].AttachmentID != "" {
			return errNoChange
		}
		bds := slices.Clone(v.BlockDevices)
		bds[i].AttachmentID = att.ID
		v.BlockDevices = bds
		return nil
	})
	if errdefs.IsNotFound(err) {
		undo = true
	} else if err != nil && !errors.Is(err, errNoChange) {
		return nil, err
	}
	if undo {
		// The attach failed (or the server went) already; as in Nova the
		// failure is the action's to report, not this answer's.
		if err := s.deps.Volumes.DeleteAttachment(context.WithoutCancel(ctx), att.ID); err != nil && !errdefs.IsNotFound(err) {
			return nil, err
		}
	} else {
		bd.AttachmentID = att.ID
	}
	out := attachmentOf(v, &bd)
	return &out, nil
}

// DetachVolume starts detaching a volume from a server (Nova's DELETE
// os-volume_attachments/{volume}): 404 when the volume is not attached,
// 400 for the root volume or an attachment under way, 409 for a server
// state that refuses it. The conductor unplugs the disk and deletes the
// attachment.
func (s *Service) DetachVolume(ctx context.Context, serverID, volumeID string) error {
	c, srv, err := s.actionable(ctx, serverID, "compute:server:action")
	if err != nil {
		return err
	}
	if s.deps.Volumes == nil {
		return notAttached(serverID, volumeID)
	}
	if _, err := s.deps.Volumes.GetVolume(ctx, srv.ProjectID, volumeID); errdefs.IsNotFound(err) {
		return volumeNotFound(volumeID)
	} else if err != nil {
		return err
	}
	_, err = s.mutateServer(ctx, serverID, func(tx *store.Txn, v *Server) error {
		if err := checkAttachState(v, "detach_volume", c.IsCloudAdmin()); err != nil {
			return err
		}
		i := slices.IndexFunc(v.BlockDevices, func(bd BlockDevice) bool { return bd.SourceType == "volume" && bd.UUID == volumeID })
		if i < 0 {
			return notAttached(serverID, volumeID)
		}
		bds := slices.Clone(v.BlockDevices)
		bd := &bds[i]
		if bd.BootIndex == 0 {
			return errdefs.Wrap(errdefs.ErrInvalid, errors.New("Cannot detach a root device volume")) //nolint:staticcheck // Nova's wording
		}
		if bd.Pending != "" {
			return errdefs.Wrap(errdefs.ErrInvalid, fmt.Errorf("Invalid volume: unable to detach volume %s: it is %s", volumeID, attachmentOf(v, bd).State)) //nolint:staticcheck // Nova's wording
		}
		if err := startActionTxn(tx, v, "detach_volume", c.UserID); err != nil {
			return err
		}
		bd.Pending, bd.ActionID = volumeOpDetach, v.ActionID
		if bd.BDMID == "" {
			bd.BDMID = newUUID()
		}
		v.BlockDevices = bds
		return nil
	})
	return err
}

// SetVolumeDeleteOnTermination changes an attachment's
// delete_on_termination (Nova 2.85's PUT with the same volume).
func (s *Service) SetVolumeDeleteOnTermination(ctx context.Context, serverID, volumeID string, on bool) error {
	c, _, err := s.actionable(ctx, serverID, "compute:server:action")
	if err != nil {
		return err
	}
	_, err = s.mutateServer(ctx, serverID, func(_ *store.Txn, v *Server) error {
		if err := checkAttachState(v, "update_volume_attachment", c.IsCloudAdmin()); err != nil {
			return err
		}
		i := slices.IndexFunc(v.BlockDevices, func(bd BlockDevice) bool { return bd.SourceType == "volume" && bd.UUID == volumeID })
		if i < 0 {
			return notAttached(serverID, volumeID)
		}
		bds := slices.Clone(v.BlockDevices)
		bds[i].DeleteOnTermination = on
		v.BlockDevices = bds
		return nil
	})
	return err
}

// finishVolumeOp writes the outcome of a volume operation: fn changes the
// block device (nil removes it), and the operation's action gets its
// event. A block device that is gone (or a server deleted) was settled
// already.
func (s *Service) finishVolumeOp(ctx context.Context, serverID, bdmID, event string, cause error, fn func(bd *BlockDevice)) error {
	_, err := s.mutateServer(ctx, serverID, func(tx *store.Txn, v *Server) error {
		i := slices.IndexFunc(v.BlockDevices, func(bd BlockDevice) bool { return bd.BDMID == bdmID })
		if i < 0 {
			return errNoChange
		}
		bds := slices.Clone(v.BlockDevices)
		action := bds[i].ActionID
		if fn == nil {
			bds = slices.Delete(bds, i, i+1)
		} else {
			fn(&bds[i])
		}
		v.BlockDevices = bds
		if event == "" {
			return nil
		}
		ev := *v
		ev.ActionID = action
		return eventTxn(tx, &ev, event, v.HostID, cause)
	})
	if errors.Is(err, errNoChange) || errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// doVolumeOps drives the server's pending volume operations (conductor).
func (s *Service) doVolumeOps(ctx context.Context, srv *Server) error {
	for _, bd := range srv.BlockDevices {
		var err error
		switch bd.Pending {
		case volumeOpAttach:
			err = s.attachStep(ctx, srv, bd)
		case volumeOpDetach:
			err = s.detachStep(ctx, srv, bd)
		case volumeOpRollback:
			err = s.rollbackStep(ctx, srv, bd)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) attachStep(ctx context.Context, srv *Server, bd BlockDevice) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		if s.hostGoneOrDown(srv.HostID) {
			return s.finishVolumeOp(ctx, srv.ID, bd.BDMID, "compute_attach_volume", fmt.Errorf("volume %s: host %s: %w", bd.UUID, srv.HostID, err), func(b *BlockDevice) {
				b.Pending = volumeOpRollback
			})
		}
		return err
	}
	var att *Attachment
	a, err := s.deps.Volumes.ReserveAttachment(ctx, srv.ProjectID, bd.UUID, srv.ID)
	if err == nil {
		att = a
		if a.Connection == nil {
			a, err = s.deps.Volumes.ConnectAttachment(ctx, a.ID, HostConnector{Host: srv.HostID, Platform: "x86_64", OSType: "linux"})
			if err == nil {
				att = a
			}
		}
	}
	if err == nil && att.Connection == nil {
		err = fmt.Errorf("compute: attachment %s has no connection info: %w", att.ID, errdefs.ErrInvalid)
	}
	if err == nil {
		err = d.AttachVolume(ctx, srv.ID, DiskAttachment{VolumeID: bd.UUID, Device: bd.DeviceName, Connection: *att.Connection, BootIndex: -1})
	}
	if err == nil {
		err = s.deps.Volumes.CompleteAttachment(ctx, att.ID)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !fatal(err) {
			return err // transient: retried with backoff
		}
		// Roll back (rollbackStep runs next).
		return s.finishVolumeOp(ctx, srv.ID, bd.BDMID, "compute_attach_volume", fmt.Errorf("volume %s: %w", bd.UUID, err), func(b *BlockDevice) {
			b.Pending = volumeOpRollback
		})
	}
	return s.finishVolumeOp(ctx, srv.ID, bd.BDMID, "compute_attach_volume", nil, func(b *BlockDevice) {
		b.Pending, b.AttachmentID, b.Connection = "", att.ID, att.Connection
	})
}

// rollbackStep undoes a failed attach: the disk is unplugged, the
// attachment (found again by volume and server, so that one an API call
// reserved late is found too) deleted, and only then the mapping dropped.
func (s *Service) rollbackStep(ctx context.Context, srv *Server, bd BlockDevice) error {
	if d, err := s.driver(srv.HostID); err == nil {
		if err := d.DetachVolume(ctx, srv.ID, bd.UUID); err != nil && !errdefs.IsNotFound(err) && !fatal(err) {
			return err
		}
	}
	ids := []string{}
	if bd.AttachmentID != "" {
		ids = append(ids, bd.AttachmentID)
	}
	a, err := s.deps.Volumes.ReserveAttachment(ctx, srv.ProjectID, bd.UUID, srv.ID)
	switch {
	case err == nil:
		ids = append(ids, a.ID)
	case !fatal(err):
		return err
	}
	for _, id := range ids {
		if err := s.deps.Volumes.DeleteAttachment(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return s.finishVolumeOp(ctx, srv.ID, bd.BDMID, "", nil, nil)
}

func (s *Service) detachStep(ctx context.Context, srv *Server, bd BlockDevice) error {
	d, err := s.driver(srv.HostID)
	switch {
	case err == nil:
		err = d.DetachVolume(ctx, srv.ID, bd.UUID)
	case s.hostGoneOrDown(srv.HostID):
		err = nil // nothing to unplug on a host that is gone
	}
	if err != nil && !errdefs.IsNotFound(err) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !fatal(err) && !errors.Is(err, errdefs.ErrUnavailable) {
			return err
		}
		// The guest did not let the disk go (or the driver cannot): the
		// volume stays attached, as Nova rolls a failed detach back.
		return s.finishVolumeOp(ctx, srv.ID, bd.BDMID, "compute_detach_volume", fmt.Errorf("volume %s: %w", bd.UUID, err), func(b *BlockDevice) {
			b.Pending = ""
		})
	}
	if bd.AttachmentID != "" {
		if err := s.deps.Volumes.DeleteAttachment(ctx, bd.AttachmentID); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return s.finishVolumeOp(ctx, srv.ID, bd.BDMID, "compute_detach_volume", nil, nil)
}

// releaseVolumes lets a deleted server's volumes go: an attachment
// reserved by an attach that had not finished is found (by volume and
// server) and deleted, and volumes with delete_on_termination are
// deleted. It runs after cleanupHost and is idempotent.
func (s *Service) releaseVolumes(ctx context.Context, srv *Server) error {
	if s.deps.Volumes == nil {
		return nil
	}
	for _, bd := range srv.BlockDevices {
		if bd.SourceType != "volume" {
			continue
		}
		if bd.AttachmentID == "" && (bd.Pending == volumeOpAttach || bd.Pending == volumeOpRollback) {
			if a, err := s.deps.Volumes.ReserveAttachment(ctx, srv.ProjectID, bd.UUID, srv.ID); err == nil {
				if err := s.deps.Volumes.DeleteAttachment(ctx, a.ID); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			} else if !fatal(err) {
				return err
			}
		}
		if !bd.DeleteOnTermination {
			continue
		}
		del, ok := s.deps.Volumes.(VolumeDeleter)
		if !ok {
			s.log.Warn("delete_on_termination: the volume service cannot delete volumes", "server", srv.ID, "volume", bd.UUID)
			continue
		}
		if err := del.DeleteVolume(ctx, srv.ProjectID, bd.UUID); err != nil && !errdefs.IsNotFound(err) {
			if fatal(err) {
				s.log.Warn("delete_on_termination: volume not deleted", "server", srv.ID, "volume", bd.UUID, "err", err)
				continue
			}
			return err
		}
	}
	return nil
}
