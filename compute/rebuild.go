package compute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/stratuskit/stratus/compute/scheduler"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Rescuer is implemented by drivers that can boot a domain from a rescue
// image with its own root disk attached second, and back.
type Rescuer interface {
	// Rescue restarts the domain from spec.Image, the rescue image, with
	// the domain's root disk attached as a second disk. Idempotent.
	Rescue(ctx context.Context, spec *DomainSpec) error
	// Unrescue restarts the domain from its own root disk. Idempotent.
	Unrescue(ctx context.Context, serverID string) error
}

// Snapshotter is implemented by drivers that can copy a domain's root
// disk (createImage, shelve-offload).
type Snapshotter interface {
	// Snapshot returns a consistent copy of the root disk and its
	// disk_format (raw or qcow2). The caller closes it.
	Snapshot(ctx context.Context, serverID string) (io.ReadCloser, string, error)
}

// NewImage describes an image compute creates (a snapshot).
type NewImage struct {
	Name       string
	DiskFormat string
	MinDiskGB  int
	MinRAMMB   int
	Properties map[string]string
}

// ImageWriter is what compute needs of the image service to store
// snapshots; the Images dependency may implement it.
type ImageWriter interface {
	// CreateImage creates a queued private image of the project.
	CreateImage(ctx context.Context, projectID string, o NewImage) (string, error)
	// UploadImage stores the image's bytes (setting its disk_format).
	UploadImage(ctx context.Context, projectID, imageID, diskFormat string, r io.Reader) error
	// DeleteImage deletes an image (absent is nil).
	DeleteImage(ctx context.Context, projectID, imageID string) error
}

// VolumeSnapshotter is what compute needs of block storage to snapshot a
// volume-backed server; the Volumes dependency may implement it.
type VolumeSnapshotter interface {
	// SnapshotVolume snapshots an attached volume and returns the
	// snapshot's id once it is available.
	SnapshotVolume(ctx context.Context, projectID, volumeID, name string) (string, error)
}

// RebuildOpts rebuilds a server; nil fields are kept.
type RebuildOpts struct {
	// ImageRef is the image to rebuild from (required; the server's own
	// image rebuilds it as it was).
	ImageRef    string
	Name        *string
	Metadata    map[string]string // nil: kept
	KeyName     *string           // "" removes the key (2.54)
	UserData    *string           // base64 (2.57)
	Description *string
	Hostname    *string
}

// RebuildServer re-creates a server's domain from an image on its host,
// with the same ports and volumes. A new image must pass the scheduler's
// image filters on the server's host again (OSSA-2017-005: rebuild must
// not bypass them); if it does not, the server goes to ERROR with the
// fault "No valid host was found", as in Nova.
func (s *Service) RebuildServer(ctx context.Context, id string, o RebuildOpts) (*Server, error) {
	_, srv, err := s.actionable(ctx, id, "compute:server:action")
	if err != nil {
		return nil, err
	}
	if i := strings.LastIndex(o.ImageRef, "/"); i >= 0 {
		o.ImageRef = o.ImageRef[i+1:]
	}
	if o.ImageRef == "" {
		return nil, errdefs.Invalid("rebuild.imageRef", "is required")
	}
	if srv.BootFromVolume && o.ImageRef != srv.ImageID {
		return nil, errdefs.Invalid("rebuild.imageRef", "a volume-backed server cannot be rebuilt with another image")
	}
	if !srv.BootFromVolume {
		if s.deps.Images == nil {
			return nil, errdefs.Invalid("rebuild.imageRef", "no image service")
		}
		img, err := s.deps.Images.GetImage(ctx, srv.ProjectID, o.ImageRef)
		if err != nil {
			return nil, errdefs.Invalid("rebuild.imageRef", "image %s could not be used: %s", o.ImageRef, err)
		}
		if img.MinDiskGB > srv.Flavor.DiskGB && srv.Flavor.DiskGB > 0 || img.MinRAMMB > srv.Flavor.RAMMB {
			return nil, errdefs.Invalid("rebuild.imageRef", "the flavor of the server is too small for image %s", img.ID)
		}
	}
	if o.Name != nil {
		if err := checkName("rebuild.name", *o.Name); err != nil {
			return nil, err
		}
	}
	if o.UserData != nil {
		if _, err := CheckUserData(*o.UserData); err != nil {
			return nil, err
		}
	}
	if o.Hostname != nil && hostnameFrom(*o.Hostname) != *o.Hostname {
		return nil, errdefs.Invalid("rebuild.hostname", "must be a valid RFC 1123 host name")
	}
	if o.Description != nil && len(*o.Description) > 255 {
		return nil, errdefs.Invalid("rebuild.description", "must be at most 255 characters")
	}
	limit := s.quotaFor(s.st.Snapshot(), srv.ProjectID).MetadataItems
	if o.Metadata != nil {
		if err := CheckMetadata("rebuild.metadata", o.Metadata, limit); err != nil {
			return nil, err
		}
	}
	var key *Keypair
	if o.KeyName != nil && *o.KeyName != "" {
		c, _ := caller(ctx)
		k, err := store.Get[Keypair](nil, s.st.Snapshot(), keypairTable, c.UserID+"/"+*o.KeyName)
		if err != nil {
			return nil, errdefs.Invalid("rebuild.key_name", "invalid key_name provided")
		}
		key = k
	}
	return s.startMove(ctx, id, "compute:server:action", "rebuild", []VMState{VMActive, VMStopped, VMError}, func(_ *store.Txn, _ *identity.Credentials, v *Server) error {
		if v.HostID == "" {
			return conflictState("rebuild", v)
		}
		if o.ImageRef != v.ImageID {
			v.Move.NewImageID = o.ImageRef
		}
		v.Move.PrevVMState = v.VMState
		if v.VMState == VMError {
			v.Move.PrevVMState = VMActive
		}
		if o.Name != nil {
			v.Name = strings.TrimSpace(*o.Name)
		}
		if o.Metadata != nil {
			v.Metadata = maps.Clone(o.Metadata)
		}
		if o.KeyName != nil {
			v.KeyName, v.KeyData = "", ""
			if key != nil {
				v.KeyName, v.KeyData = key.Name, key.PublicKey
			}
		}
		if o.UserData != nil {
			v.UserData = strings.Join(strings.Fields(*o.UserData), "")
		}
		if o.Description != nil {
			v.Description = *o.Description
		}
		if o.Hostname != nil {
			v.Hostname = *o.Hostname
		}
		v.TaskState = TaskRebuilding
		return nil
	})
}

// imageFiltersPass runs the scheduler's image filters for img on the
// server's own host (the capacity filters do not run on rebuild: the
// server already holds its claim there).
func (s *Service) imageFiltersPass(srv *Server, img *ImageInfo) string {
	h, err := s.getHost(srv.HostID)
	if err != nil {
		return "ComputeFilter (host gone)"
	}
	sh := s.schedHost(h, &HostUsage{HostID: h.ID}, nil)
	sh.Up, sh.Enabled = true, true
	return scheduler.Why(&sh, &scheduler.Request{ImageProperties: img.Properties})
}

// rebuildFault puts a server whose rebuild failed in ERROR with a fault;
// it keeps its host, claim and ports.
func (s *Service) rebuildFault(ctx context.Context, srv *Server, from TaskState, cause error, event string) error {
	return s.advance(ctx, srv.ID, from, func(tx *store.Txn, v *Server) error {
		v.VMState, v.TaskState, v.Move.NewImageID = VMError, TaskNone, ""
		v.Fault = &Fault{Code: 500, Message: cause.Error(), Created: tx.Now()}
		if err := eventTxn(tx, v, event, v.HostID, cause); err != nil {
			return err
		}
		return tx.Emit("compute.server.error", v.ID, v.ProjectID, map[string]any{"fault": cause.Error()})
	})
}

func (s *Service) doRebuild(ctx context.Context, srv *Server) error {
	if m := migrationOf(s.st.Snapshot(), srv); m != nil && m.Type == MigrationEvacuate {
		return s.doEvacuate(ctx, srv, m)
	}
	if srv.Move.NewImageID != "" {
		img, err := s.deps.Images.GetImage(ctx, srv.ProjectID, srv.Move.NewImageID)
		if err != nil {
			if fatal(err) {
				return s.rebuildFault(ctx, srv, TaskRebuilding, fmt.Errorf("image %s: %w", srv.Move.NewImageID, err), "conductor_rebuild_server")
			}
			return err
		}
		if why := s.imageFiltersPass(srv, img); why != "" {
			return s.rebuildFault(ctx, srv, TaskRebuilding, fmt.Errorf("%w: %s rejected host %s for image %s",
				errNoValidHost, why, srv.HostID, img.ID), "conductor_rebuild_server")
		}
	}
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	if err := d.Destroy(ctx, srv.ID); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return s.advance(ctx, srv.ID, TaskRebuilding, func(tx *store.Txn, v *Server) error {
		if v.Move.NewImageID != "" {
			v.ImageID, v.Move.NewImageID = v.Move.NewImageID, ""
		}
		v.TaskState = TaskRebuildSpawning
		return nil
	})
}

func (s *Service) doRebuildSpawn(ctx context.Context, srv *Server) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	spec, err := s.domainSpecOf(ctx, srv)
	if err == nil {
		err = d.Spawn(ctx, spec)
	}
	if err == nil && srv.Move.PrevVMState == VMStopped {
		err = d.PowerOff(ctx, srv.ID, s.cfg.PowerOffTimeout)
	}
	if err != nil {
		if ctx.Err() != nil || !fatal(err) {
			return err
		}
		return s.rebuildFault(ctx, srv, TaskRebuildSpawning, err, "compute_rebuild_instance")
	}
	return s.advance(ctx, srv.ID, TaskRebuildSpawning, func(tx *store.Txn, v *Server) error {
		now := tx.Now()
		v.VMState, v.PowerState, v.TaskState, v.LaunchedAt, v.Fault = VMActive, PowerRunning, TaskNone, &now, nil
		if v.Move.PrevVMState == VMStopped {
			v.VMState, v.PowerState = VMStopped, PowerShutdown
		}
		v.Move.PrevVMState = ""
		return eventTxn(tx, v, "compute_rebuild_instance", v.HostID, nil)
	})
}

// doEvacuate places the server of a down host elsewhere and rebuilds it
// there from its image, with its ports bound to the new host and its
// volumes kept.
func (s *Service) doEvacuate(ctx context.Context, srv *Server, m *Migration) error {
	if m.Status == migrationPre {
		return s.placeStep(ctx, srv, m, TaskRebuilding, TaskRebuilding, []string{m.SourceHost}, "conductor_rebuild_server", "conductor_rebuild_server")
	}
	ports, err := s.evacuateSpawn(ctx, srv, m)
	if err != nil {
		if ctx.Err() != nil || !fatal(err) {
			return err
		}
		s.undoMoveDomain(ctx, srv, m)
		return s.moveFault(ctx, srv, TaskRebuilding, err, "compute_rebuild_instance")
	}
	return s.landMove(ctx, srv, m, TaskRebuilding, migrationDone, ports, "compute_rebuild_instance", func(tx *store.Txn, v *Server) {
		now := tx.Now()
		v.LaunchedAt, v.Fault = &now, nil
		v.VMState, v.PowerState = VMActive, PowerRunning
		if v.Move.PrevVMState == VMStopped {
			v.VMState, v.PowerState = VMStopped, PowerShutdown
		}
		v.Move.PrevVMState = ""
	})
}

func (s *Service) evacuateSpawn(ctx context.Context, srv *Server, m *Migration) ([]Port, error) {
	dd, ports, spec, err := s.destSpec(ctx, srv, m, srv.Flavor)
	if err != nil {
		return nil, err
	}
	if err := dd.Spawn(ctx, spec); err != nil {
		return nil, err
	}
	if srv.Move.PrevVMState == VMStopped {
		if err := dd.PowerOff(ctx, srv.ID, s.cfg.PowerOffTimeout); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// ShelveServer stops a server and keeps it shelved on its host; with
// offload (or ShelveOffloadServer later) its domain is snapshotted and
// removed and its host's claim freed.
func (s *Service) ShelveServer(ctx context.Context, id string, offload bool) error {
	_, err := s.startMove(ctx, id, "compute:server:action", "shelve", []VMState{VMActive, VMStopped, VMPaused, VMSuspended}, func(_ *store.Txn, _ *identity.Credentials, v *Server) error {
		v.TaskState, v.Move.Offload = TaskShelving, offload
		return nil
	})
	return err
}

// ShelveOffloadServer removes a shelved server from its host (admin).
func (s *Service) ShelveOffloadServer(ctx context.Context, id string) error {
	return s.startTask(ctx, id, "compute:server:shelve_offload", "shelveOffload", []VMState{VMShelved}, TaskShelvingOffload)
}

// UnshelveServer starts a shelved server again; an offloaded one is
// scheduled (in az, when given) and spawned from its shelve snapshot.
func (s *Service) UnshelveServer(ctx context.Context, id, az string) error {
	if az != "" {
		if err := s.checkAZ(s.st.Snapshot(), az); err != nil {
			return err
		}
	}
	_, err := s.startMove(ctx, id, "compute:server:action", "unshelve", []VMState{VMShelved, VMShelvedOffloaded}, func(_ *store.Txn, _ *identity.Credentials, v *Server) error {
		if v.VMState == VMShelved {
			v.TaskState = TaskUnshelving
			return nil
		}
		if az != "" {
			v.RequestedAZ = az
		}
		v.TaskState, v.Attempts, v.TriedHosts = TaskScheduling, 0, nil
		return nil
	})
	return err
}

func (s *Service) doShelve(ctx context.Context, srv *Server) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	if err := d.PowerOff(ctx, srv.ID, s.cfg.PowerOffTimeout); err != nil && !fatal(err) {
		return err
	}
	return s.advance(ctx, srv.ID, TaskShelving, func(tx *store.Txn, v *Server) error {
		v.VMState, v.PowerState, v.TaskState = VMShelved, PowerShutdown, TaskNone
		if v.Move.Offload {
			v.TaskState, v.Move.Offload = TaskShelvingOffload, false
		}
		return eventTxn(tx, v, "compute_shelve_instance", v.HostID, nil)
	})
}

// doShelveOffload snapshots an image-backed server's disk to the image
// service (the snapshot's id is kept first, so that a restart finds it),
// then removes the domain, unbinds the ports, drops the volume
// connections and frees the claim.
func (s *Service) doShelveOffload(ctx context.Context, srv *Server) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	if !srv.BootFromVolume {
		done, err := s.shelveSnapshot(ctx, srv, d)
		if err != nil || !done {
			return err
		}
	}
	if err := d.Destroy(ctx, srv.ID); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	if err := s.cleanupHost(ctx, srv); err != nil {
		return err
	}
	var usage *HostUsage
	err = s.advance(ctx, srv.ID, TaskShelvingOffload, func(tx *store.Txn, v *Server) error {
		u, err := releaseTxn(tx, v.ID)
		if err != nil {
			return err
		}
		usage = u
		bds := make([]BlockDevice, len(v.BlockDevices))
		copy(bds, v.BlockDevices)
		for i := range bds {
			bds[i].AttachmentID, bds[i].Connection = "", nil
		}
		if err := eventTxn(tx, v, "compute_shelve_offload_instance", v.HostID, nil); err != nil {
			return err
		}
		v.BlockDevices, v.HostID = bds, ""
		v.VMState, v.PowerState, v.TaskState = VMShelvedOffloaded, PowerNoState, TaskNone
		return nil
	})
	if usage != nil {
		s.sched.setUsage(usage)
	}
	return err
}

// shelveSnapshot takes the shelve snapshot; it returns false when it wrote
// a step and the conductor should come back.
func (s *Service) shelveSnapshot(ctx context.Context, srv *Server, d Hypervisor) (bool, error) {
	w, wok := s.deps.Images.(ImageWriter)
	sn, sok := d.(Snapshotter)
	if !wok || !sok {
		err := fmt.Errorf("compute: cannot offload server %s: no snapshot support (image service or hypervisor): %w", srv.ID, errdefs.ErrUnsupported)
		return false, s.advance(ctx, srv.ID, TaskShelvingOffload, func(tx *store.Txn, v *Server) error {
			v.TaskState = TaskNone
			return eventTxn(tx, v, "compute_shelve_offload_instance", v.HostID, err)
		})
	}
	if srv.Move.ShelvedImageID == "" {
		id, err := w.CreateImage(ctx, srv.ProjectID, NewImage{Name: srv.Name + "-shelved", MinDiskGB: srv.Flavor.DiskGB,
			Properties: s.snapshotProps(ctx, srv)})
		if err != nil {
			return false, err
		}
		return false, s.advance(ctx, srv.ID, TaskShelvingOffload, func(_ *store.Txn, v *Server) error {
			v.Move.ShelvedImageID = id
			return nil
		})
	}
	if _, err := s.deps.Images.GetImage(ctx, srv.ProjectID, srv.Move.ShelvedImageID); err == nil {
		return true, nil // uploaded before a restart
	}
	err := s.uploadSnapshot(ctx, srv, sn, w, srv.Move.ShelvedImageID)
	if err == nil {
		return true, nil
	}
	if ctx.Err() != nil || !fatal(err) {
		return false, err
	}
	// The snapshot failed for good: drop it; the server stays shelved.
	if derr := s.dropImage(ctx, srv.ProjectID, srv.Move.ShelvedImageID); derr != nil {
		return false, derr
	}
	return false, s.advance(ctx, srv.ID, TaskShelvingOffload, func(tx *store.Txn, v *Server) error {
		v.TaskState, v.Move.ShelvedImageID = TaskNone, ""
		return eventTxn(tx, v, "compute_shelve_offload_instance", v.HostID, err)
	})
}

func (s *Service) uploadSnapshot(ctx context.Context, srv *Server, sn Snapshotter, w ImageWriter, imageID string) error {
	rc, format, err := sn.Snapshot(ctx, srv.ID)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	return w.UploadImage(ctx, srv.ProjectID, imageID, format, rc)
}

// snapshotProps are the properties of a snapshot of srv: its base
// image's (kernel, ramdisk, command line, hypervisor type ..., so that the
// snapshot boots like its base), and Nova's instance_uuid, image_type,
// base_image_ref and user_id.
func (s *Service) snapshotProps(ctx context.Context, srv *Server) map[string]string {
	props := map[string]string{}
	if srv.ImageID != "" && s.deps.Images != nil {
		if base, err := s.deps.Images.GetImage(ctx, srv.ProjectID, srv.ImageID); err == nil {
			maps.Copy(props, base.Properties)
			if base.KernelID != "" {
				props["kernel_id"] = base.KernelID
			}
			if base.RamdiskID != "" {
				props["ramdisk_id"] = base.RamdiskID
			}
		}
		props["base_image_ref"] = srv.ImageID
	}
	props["instance_uuid"], props["image_type"], props["user_id"] = srv.ID, "snapshot", srv.UserID
	return props
}

// dropImage deletes an image compute made (absent is nil).
func (s *Service) dropImage(ctx context.Context, projectID, imageID string) error {
	if imageID == "" {
		return nil
	}
	w, ok := s.deps.Images.(ImageWriter)
	if !ok {
		return nil
	}
	if err := w.DeleteImage(ctx, projectID, imageID); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

func (s *Service) doUnshelve(ctx context.Context, srv *Server) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	if err := d.PowerOn(ctx, srv.ID); err != nil {
		if ctx.Err() != nil || !fatal(err) {
			return err
		}
		return s.rebuildFault(ctx, srv, TaskUnshelving, err, "compute_unshelve_instance")
	}
	return s.advance(ctx, srv.ID, TaskUnshelving, func(tx *store.Txn, v *Server) error {
		v.VMState, v.PowerState, v.TaskState = VMActive, PowerRunning, TaskNone
		return eventTxn(tx, v, "compute_unshelve_instance", v.HostID, nil)
	})
}

// RescueServer restarts a server from a rescue image (imageRef, or its
// own image) with its disk attached second; UnrescueServer undoes it.
func (s *Service) RescueServer(ctx context.Context, id, imageRef string) error {
	_, srv, err := s.actionable(ctx, id, "compute:server:action")
	if err != nil {
		return err
	}
	if i := strings.LastIndex(imageRef, "/"); i >= 0 {
		imageRef = imageRef[i+1:]
	}
	imageRef = cmpOrS(imageRef, srv.ImageID)
	if imageRef == "" {
		return errdefs.Invalid("rescue.rescue_image_ref", "a volume-backed server needs a rescue image")
	}
	if s.deps.Images == nil {
		return errdefs.Invalid("rescue.rescue_image_ref", "no image service")
	}
	if _, err := s.deps.Images.GetImage(ctx, srv.ProjectID, imageRef); err != nil {
		return errdefs.Invalid("rescue.rescue_image_ref", "image %s could not be used: %s", imageRef, err)
	}
	if err := s.needDriver(srv, func(d Hypervisor) bool { _, ok := d.(Rescuer); return ok }, "rescue"); err != nil {
		return err
	}
	_, err = s.startMove(ctx, id, "compute:server:action", "rescue", []VMState{VMActive, VMStopped, VMError}, func(_ *store.Txn, _ *identity.Credentials, v *Server) error {
		if v.HostID == "" {
			return conflictState("rescue", v)
		}
		v.TaskState, v.Move.RescueImageID = TaskRescuing, imageRef
		return nil
	})
	return err
}

// UnrescueServer boots a rescued server from its own disk again.
func (s *Service) UnrescueServer(ctx context.Context, id string) error {
	return s.startTask(ctx, id, "compute:server:action", "unrescue", []VMState{VMRescued}, TaskUnrescuing)
}

// needDriver refuses an action the server's hypervisor cannot do.
func (s *Service) needDriver(srv *Server, has func(Hypervisor) bool, what string) error {
	if srv.HostID == "" {
		return nil
	}
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	if !has(d) {
		return fmt.Errorf("compute: %s is not supported by the hypervisor of host %s: %w", what, srv.HostID, errdefs.ErrUnsupported)
	}
	return nil
}

func (s *Service) doRescue(ctx context.Context, srv *Server) error {
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	r, ok := d.(Rescuer)
	if !ok {
		err = fmt.Errorf("compute: rescue is not supported by the hypervisor of host %s: %w", srv.HostID, errdefs.ErrUnsupported)
	} else if srv.TaskState == TaskRescuing {
		v := *srv
		v.ImageID, v.Move.ShelvedImageID = srv.Move.RescueImageID, ""
		var spec *DomainSpec
		if spec, err = s.domainSpecOf(ctx, &v); err == nil {
			err = r.Rescue(ctx, spec)
		}
	} else {
		err = r.Unrescue(ctx, srv.ID)
	}
	if err != nil && (ctx.Err() != nil || !fatal(err)) {
		return err
	}
	event := "compute_rescue_instance"
	if srv.TaskState == TaskUnrescuing {
		event = "compute_unrescue_instance"
	}
	return s.advance(ctx, srv.ID, srv.TaskState, func(tx *store.Txn, v *Server) error {
		if err == nil {
			v.VMState, v.PowerState = VMRescued, PowerRunning
			if v.TaskState == TaskUnrescuing {
				v.VMState, v.Move.RescueImageID = VMActive, ""
			}
		}
		v.TaskState = TaskNone
		return eventTxn(tx, v, event, v.HostID, err)
	})
}

// CreateServerImage snapshots a server to a new image of its project and
// returns the image's id (createImage). The image exists at once, queued;
// the conductor uploads the root disk into it. A volume-backed server's
// volumes are snapshotted instead, and the image refers to the snapshots.
func (s *Service) CreateServerImage(ctx context.Context, id, name string, meta map[string]string) (string, error) {
	_, srv, err := s.actionable(ctx, id, "compute:server:action")
	if err != nil {
		return "", err
	}
	if err := checkName("createImage.name", name); err != nil {
		return "", err
	}
	if err := CheckMetadata("createImage.metadata", meta, 128); err != nil {
		return "", err
	}
	w, ok := s.deps.Images.(ImageWriter)
	if !ok {
		return "", fmt.Errorf("compute: the image service takes no snapshots: %w", errdefs.ErrUnsupported)
	}
	props := s.snapshotProps(ctx, srv)
	maps.Copy(props, meta)
	switch srv.VMState {
	case VMActive, VMStopped, VMPaused, VMSuspended:
	default:
		return "", conflictState("createImage", srv)
	}
	if srv.BootFromVolume {
		return s.snapshotVolumes(ctx, srv, w, name, props)
	}
	if err := s.needDriver(srv, func(d Hypervisor) bool { _, ok := d.(Snapshotter); return ok }, "snapshot"); err != nil {
		return "", err
	}
	imageID, err := w.CreateImage(ctx, srv.ProjectID, NewImage{Name: name, MinDiskGB: srv.Flavor.DiskGB, Properties: props})
	if err != nil {
		return "", err
	}
	_, err = s.startMove(ctx, id, "compute:server:action", "createImage", []VMState{VMActive, VMStopped, VMPaused, VMSuspended}, func(_ *store.Txn, _ *identity.Credentials, v *Server) error {
		v.TaskState, v.Move.SnapshotImageID = TaskImageSnapshot, imageID
		return nil
	})
	if err != nil {
		if derr := s.dropImage(ctx, srv.ProjectID, imageID); derr != nil {
			err = errors.Join(err, derr)
		}
		return "", err
	}
	return imageID, nil
}

// snapshotVolumes is createImage of a volume-backed server: a snapshot of
// each volume, and an image with no data whose block_device_mapping names
// them, as Nova makes.
func (s *Service) snapshotVolumes(ctx context.Context, srv *Server, w ImageWriter, name string, props map[string]string) (string, error) {
	vs, ok := s.deps.Volumes.(VolumeSnapshotter)
	if !ok {
		return "", fmt.Errorf("compute: block storage takes no snapshots: %w", errdefs.ErrUnsupported)
	}
	var bdm []string
	for _, bd := range srv.BlockDevices {
		if bd.SourceType != "volume" || bd.UUID == "" {
			continue
		}
		snap, err := vs.SnapshotVolume(ctx, srv.ProjectID, bd.UUID, "snapshot for "+name)
		if err != nil {
			return "", err
		}
		bdm = append(bdm, fmt.Sprintf(`{"boot_index": %d, "source_type": "snapshot", "destination_type": "volume", "snapshot_id": %q, "volume_size": %d, "device_name": %q, "delete_on_termination": false}`,
			bd.BootIndex, snap, bd.VolumeSizeGB, bd.DeviceName))
	}
	props["block_device_mapping"] = "[" + strings.Join(bdm, ", ") + "]"
	props["bdm_v2"], props["root_device_name"] = "True", "/dev/vda"
	imageID, err := w.CreateImage(ctx, srv.ProjectID, NewImage{Name: name, DiskFormat: "raw", Properties: props})
	if err != nil {
		return "", err
	}
	if err := w.UploadImage(ctx, srv.ProjectID, imageID, "raw", strings.NewReader("")); err != nil {
		return "", errors.Join(err, s.dropImage(ctx, srv.ProjectID, imageID))
	}
	return imageID, nil
}

func (s *Service) doSnapshot(ctx context.Context, srv *Server) error {
	imageID := srv.Move.SnapshotImageID
	d, err := s.driver(srv.HostID)
	if err != nil {
		return err
	}
	w, wok := s.deps.Images.(ImageWriter)
	sn, sok := d.(Snapshotter)
	switch {
	case imageID == "":
		err = errors.New("compute: snapshot image lost")
	case !wok || !sok:
		err = fmt.Errorf("compute: no snapshot support: %w", errdefs.ErrUnsupported)
	default:
		if _, gerr := s.deps.Images.GetImage(ctx, srv.ProjectID, imageID); gerr != nil {
			err = s.uploadSnapshot(ctx, srv, sn, w, imageID)
		}
	}
	if err != nil && ctx.Err() != nil {
		return err
	}
	if err != nil && !fatal(err) && !errdefs.IsConflict(err) {
		return err
	}
	if err != nil {
		if derr := s.dropImage(ctx, srv.ProjectID, imageID); derr != nil {
			return derr
		}
	}
	return s.advance(ctx, srv.ID, TaskImageSnapshot, func(tx *store.Txn, v *Server) error {
		v.TaskState, v.Move.SnapshotImageID = TaskNone, ""
		return eventTxn(tx, v, "compute_snapshot_instance", v.HostID, err)
	})
}
