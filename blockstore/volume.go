package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// VolumeStatus is a volume's status, as Cinder names it.
type VolumeStatus string

// Volume statuses.
const (
	StatusCreating         VolumeStatus = "creating"
	StatusAvailable        VolumeStatus = "available"
	StatusReserved         VolumeStatus = "reserved"
	StatusAttaching        VolumeStatus = "attaching"
	StatusInUse            VolumeStatus = "in-use"
	StatusDetaching        VolumeStatus = "detaching"
	StatusDeleting         VolumeStatus = "deleting"
	StatusError            VolumeStatus = "error"
	StatusErrorDeleting    VolumeStatus = "error_deleting"
	StatusErrorExtending   VolumeStatus = "error_extending"
	StatusErrorRestoring   VolumeStatus = "error_restoring"
	StatusExtending        VolumeStatus = "extending"
	StatusBackingUp        VolumeStatus = "backing-up"
	StatusRestoringBackup  VolumeStatus = "restoring-backup"
	StatusDownloading      VolumeStatus = "downloading"
	StatusUploading        VolumeStatus = "uploading"
	StatusAwaitingTransfer VolumeStatus = "awaiting-transfer"
)

// Limits on user input.
const (
	maxNameLen     = 255
	maxMetadata    = 128
	maxMetaKeyLen  = 255
	maxMetaValLen  = 255
	maxVolumeGiB   = 16 << 10
	maxDescription = 255
)

// Volume is a block storage volume.
type Volume struct {
	store.Meta
	ID          string            `json:"id"`
	ProjectID   string            `json:"project_id"`
	UserID      string            `json:"user_id"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	SizeGiB     int               `json:"size"`
	Status      VolumeStatus      `json:"status"`
	TypeID      string            `json:"type_id"`
	Zone        string            `json:"availability_zone"`
	Bootable    bool              `json:"bootable,omitempty"`
	Multiattach bool              `json:"multiattach,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// ImageMetadata is volume_image_metadata: the image the volume was
	// made from.
	ImageMetadata map[string]string `json:"image_metadata,omitempty"`
	SnapshotID    string            `json:"snapshot_id,omitempty"`
	SourceVolID   string            `json:"source_volid,omitempty"`
	ImageID       string            `json:"image_id,omitempty"`
	BackupID      string            `json:"backup_id,omitempty"`
	// Backend and Pool place the volume.
	Backend string `json:"backend"`
	Pool    string `json:"pool"`
	// QuotaReleased is set when a failed create gave its quota back: the
	// volume no longer counts against its project.
	QuotaReleased bool `json:"quota_released,omitempty"`
	// NewSizeGiB is the size an extend in flight grows to (counted by the
	// quota from the start).
	NewSizeGiB int `json:"new_size,omitempty"`
	// PrevStatus is the status a temporary one (backing-up, uploading,
	// extending) returns to.
	PrevStatus VolumeStatus `json:"prev_status,omitempty"`
	// Fault says why the volume is in error.
	Fault     string    `json:"fault,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StoreKey implements store.Record.
func (v *Volume) StoreKey() string { return v.ID }

// Host is the volume's host as Cinder writes it: host@backend#pool.
func (v *Volume) host(s *Service) string {
	if v.Backend == "" {
		return ""
	}
	return s.cfg.Host + "@" + v.Backend + "#" + v.Pool
}

func (v *Volume) clone() *Volume {
	c := *v
	c.Metadata = maps.Clone(v.Metadata)
	c.ImageMetadata = maps.Clone(v.ImageMetadata)
	return &c
}

// quotaSize is what the volume counts in gigabytes.
func (v *Volume) quotaSize() int { return max(v.SizeGiB, v.NewSizeGiB) }

// CreateVolumeOpts describe a new volume. At most one source (ImageID,
// SnapshotID, SourceVolID) may be set.
type CreateVolumeOpts struct {
	Name        string
	Description string
	// SizeGiB is the size; 0 takes the source's size.
	SizeGiB int
	// VolumeType is a type's name or id; empty means the default type.
	VolumeType       string
	AvailabilityZone string
	Metadata         map[string]string
	ImageID          string
	SnapshotID       string
	SourceVolID      string
	Multiattach      bool
	// backupID is set by a restore to a new volume.
	backupID string
}

func validName(field, name string, maxLen int) error {
	if len(name) > maxLen {
		return invalid(field, "must be at most %d characters", maxLen)
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return invalid(field, "must be valid UTF-8 text")
	}
	return nil
}

func validMetadata(md map[string]string) error {
	if len(md) > maxMetadata {
		return invalid("metadata", "at most %d items", maxMetadata)
	}
	for k, v := range md {
		if k == "" || len(k) > maxMetaKeyLen || !utf8.ValidString(k) {
			return invalid("metadata", "keys must be 1 to %d characters", maxMetaKeyLen)
		}
		if len(v) > maxMetaValLen || !utf8.ValidString(v) {
			return invalid("metadata", "value of %q must be at most %d characters", k, maxMetaValLen)
		}
	}
	return nil
}

func (o *CreateVolumeOpts) validate() error {
	if err := validName("name", o.Name, maxNameLen); err != nil {
		return err
	}
	if err := validName("description", o.Description, maxDescription); err != nil {
		return err
	}
	if o.SizeGiB < 0 || o.SizeGiB > maxVolumeGiB {
		return invalid("size", "Invalid input received: volume size %d must be an integer between 1 and %d", o.SizeGiB, maxVolumeGiB)
	}
	n := 0
	for _, src := range []string{o.ImageID, o.SnapshotID, o.SourceVolID, o.backupID} {
		if src != "" {
			n++
		}
	}
	if n > 1 {
		return invalid("volume", "Invalid input received: only one of imageRef, snapshot_id and source_volid may be given")
	}
	if n == 0 && o.SizeGiB == 0 {
		return invalid("size", "Invalid input received: volume size must be given for a new volume")
	}
	return validMetadata(o.Metadata)
}

// CreateVolume creates a volume in the caller's project: the record is
// "creating" when it returns and the backend makes the bytes in the
// background, after which it is "available" (or "error", with its quota
// released and no bytes left behind).
func (s *Service) CreateVolume(ctx context.Context, opts CreateVolumeOpts) (*Volume, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, "volume:create", c.ProjectID); err != nil {
		return nil, err
	}
	if c.ProjectID == "" {
		return nil, errdefs.Wrap(errdefs.ErrForbidden, errors.New("creating a volume needs a project-scoped token"))
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.AvailabilityZone != "" && opts.AvailabilityZone != s.cfg.AvailabilityZone {
		return nil, invalid("availability_zone", "Invalid input received: Availability zone '%s' is invalid.", opts.AvailabilityZone)
	}
	snap := s.st.Snapshot()
	vtype, err := s.resolveType(snap, c, opts.VolumeType)
	if err != nil {
		return nil, err
	}
	v := &Volume{
		ID: newID(), ProjectID: c.ProjectID, UserID: c.UserID, Name: opts.Name, Description: opts.Description,
		SizeGiB: opts.SizeGiB, Status: StatusCreating, TypeID: vtype.ID, Zone: s.cfg.AvailabilityZone,
		Multiattach: opts.Multiattach || vtype.multiattach(), Metadata: maps.Clone(opts.Metadata),
		SnapshotID: opts.SnapshotID, SourceVolID: opts.SourceVolID, ImageID: opts.ImageID, BackupID: opts.backupID,
	}
	var img *ImageInfo
	var fixed *Volume // the volume whose pool a snapshot or clone must use
	switch {
	case opts.SnapshotID != "":
		sn, err := s.visibleSnapshot(snap, c, opts.SnapshotID)
		if err != nil {
			return nil, err
		}
		if sn.Status != SnapshotAvailable {
			return nil, badRequest("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		if v.SizeGiB == 0 {
			v.SizeGiB = sn.SizeGiB
		}
		if v.SizeGiB < sn.SizeGiB {
			return nil, invalid("size", "Invalid input received: Volume size '%d'GB cannot be smaller than the snapshot size %dGB. They must be >= original snapshot size.", v.SizeGiB, sn.SizeGiB)
		}
		fixed, err = store.Get[Volume](nil, snap, volumeTable, sn.VolumeID)
		if err != nil {
			return nil, notFound("Snapshot", opts.SnapshotID)
		}
		v.Bootable = fixed.Bootable
		v.ImageMetadata = maps.Clone(fixed.ImageMetadata)
	case opts.SourceVolID != "":
		src, err := s.visibleVolume(snap, c, opts.SourceVolID)
		if err != nil {
			return nil, err
		}
		if src.Status != StatusAvailable && src.Status != StatusInUse {
			return nil, badRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", src.ID, src.Status)
		}
		if v.SizeGiB == 0 {
			v.SizeGiB = src.SizeGiB
		}
		if v.SizeGiB < src.SizeGiB {
			return nil, invalid("size", "Invalid input received: Clones currently must be >= original volume size.")
		}
		fixed = src
		v.Bootable = src.Bootable
		v.ImageMetadata = maps.Clone(src.ImageMetadata)
	case opts.ImageID != "":
		ims, err := s.imageSvc()
		if err != nil {
			return nil, err
		}
		img, err = ims.GetImage(ctx, opts.ImageID)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, badRequest("Invalid image identifier or unable to access requested image.")
			}
			return nil, err
		}
		if img.Status != "active" {
			return nil, badRequest("Invalid image: Image %s is not active.", img.ID)
		}
		need := max(ceilGiB(img.VirtualSize), ceilGiB(img.Size), int(img.MinDisk))
		if v.SizeGiB == 0 {
			v.SizeGiB = max(need, 1)
		}
		if v.SizeGiB < need {
			return nil, invalid("size", "Invalid input received: Size of specified image %d GiB is larger than volume size %d GiB.", need, v.SizeGiB)
		}
		v.Bootable = true
		v.ImageMetadata = map[string]string{"image_id": img.ID, "image_name": img.Name, "disk_format": img.DiskFormat,
			"container_format": img.ContainerFormat, "checksum": img.Checksum, "size": fmt.Sprint(img.Size), "min_disk": fmt.Sprint(img.MinDisk)}
		for k, val := range img.Properties {
			if len(v.ImageMetadata) < maxMetadata {
				v.ImageMetadata[k] = val
			}
		}
	}
	pools, err := s.poolStats(ctx, fixed)
	if err != nil {
		return nil, err
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if err := s.checkQuota(tx, v.ProjectID, vtype, quotaDelta{volumes: 1, gigabytes: v.SizeGiB}); err != nil {
			return err
		}
		p, err := s.schedule(tx, pools, vtype, v)
		if err != nil {
			return err
		}
		v.Backend, v.Pool = p.backend, p.Name
		v.CreatedAt, v.UpdatedAt = tx.Now(), tx.Now()
		if err := tx.Insert(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.create.start", v.ID, v.ProjectID, map[string]int{"size": v.SizeGiB})
	})
	if err != nil {
		return nil, err
	}
	src := Source{SnapshotID: opts.SnapshotID, VolumeID: opts.SourceVolID}
	if img != nil {
		ims, _ := s.imageSvc()
		id := img.ID
		src.Image = &ImageSource{ID: img.ID, Checksum: img.Checksum, Format: img.DiskFormat,
			Open: func(ctx context.Context) (io.ReadCloser, error) { return ims.OpenImage(ctx, id) }}
	}
	if opts.backupID == "" {
		s.spawn(ctx, "create volume", v.ID, func(ctx context.Context) error { return s.finishCreate(ctx, v, src) })
	}
	return v.clone(), nil
}

func ceilGiB(n int64) int { return int((n + (1 << 30) - 1) >> 30) }

// finishCreate makes the volume's bytes and settles its status.
func (s *Service) finishCreate(ctx context.Context, v *Volume, src Source) error {
	b := s.backends[v.Backend]
	err := b.CreateVolume(ctx, VolumeSpec{ID: v.ID, SizeGiB: v.SizeGiB, Pool: v.Pool}, src)
	if err != nil {
		s.failCreate(v.ID, err)
		return err
	}
	return s.setStatus(context.WithoutCancel(ctx), v.ID, func(v *Volume) error {
		if v.Status != StatusCreating {
			return nil
		}
		v.Status = StatusAvailable
		return nil
	}, "volume.create.end")
}

// failCreate puts a volume whose create failed in error, deletes what the
// backend may have made and gives its quota back.
func (s *Service) failCreate(id string, cause error) {
	ctx := context.Background()
	v, err := store.Get[Volume](nil, s.st.Snapshot(), volumeTable, id)
	if err != nil {
		return
	}
	if b, ok := s.backends[v.Backend]; ok {
		if err := b.DeleteVolume(ctx, id); err != nil {
			s.log.Warn("blockstore: cleanup of a failed create failed", "volume", id, "err", err)
		}
	}
	_ = s.setStatus(ctx, id, func(v *Volume) error {
		v.Status, v.QuotaReleased = StatusError, true
		v.Fault = faultOf(cause)
		return nil
	}, "volume.create.error")
}

// faultOf is what a user may be told of a backend error: its kind.
func faultOf(err error) string {
	if k := errdefs.Kind(err); k != nil && !errors.Is(k, errdefs.ErrUnavailable) {
		return err.Error()
	}
	return "the backend failed to complete the operation"
}

// setStatus changes a volume in one transaction and emits event.
func (s *Service) setStatus(ctx context.Context, id string, fn func(v *Volume) error, event string) error {
	return s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := store.Get[Volume](nil, tx, volumeTable, id)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		if event != "" {
			return tx.Emit(event, v.ID, v.ProjectID, map[string]string{"status": string(v.Status)})
		}
		return nil
	})
}

// visibleVolume returns volume id as c may see it, or not found.
func (s *Service) visibleVolume(tx *store.Txn, c *identity.Credentials, id string) (*Volume, error) {
	v, err := store.Get[Volume](nil, tx, volumeTable, id)
	if err != nil || !sees(c, v.ProjectID) {
		return nil, notFound("Volume", id)
	}
	return v, nil
}

// GetVolume returns a volume of the caller's project.
func (s *Service) GetVolume(ctx context.Context, id string) (*Volume, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.visibleVolume(s.st.Snapshot(), c, id)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, "volume:get", v.ProjectID); err != nil {
		return nil, err
	}
	return v, nil
}

// ListVolumesOpts filter ListVolumes.
type ListVolumesOpts struct {
	// AllTenants lists every project's volumes (for readers of the whole
	// cloud; ignored for others).
	AllTenants bool
	// ProjectID keeps one project's volumes (with AllTenants).
	ProjectID string
	Name      string
	Status    string
	Metadata  map[string]string
	Bootable  *bool
}

// oldestFirst sorts records by creation time, then id (the order of the
// lists), and returns them.
func oldestFirst[T any](out []*T, key func(*T) (time.Time, string)) []*T {
	slices.SortStableFunc(out, func(a, b *T) int {
		ta, ia := key(a)
		tb, ib := key(b)
		if c := ta.Compare(tb); c != 0 {
			return c
		}
		return strings.Compare(ia, ib)
	})
	return out
}

// listScope lists table's records of project, or every project's with all.
func listScope[T any](tx *store.Txn, table string, all bool, project string) (func(func(*T) bool), error) {
	if all {
		return store.List[T](nil, tx, table, store.IDIndex)
	}
	return store.List[T](nil, tx, table, projectIndex, project)
}

// ListVolumes returns the volumes the caller may see, oldest first.
func (s *Service) ListVolumes(ctx context.Context, opts ListVolumesOpts) ([]*Volume, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	all := opts.AllTenants && s.policy.Allowed(c, "volume:all_tenants", identity.Target{})
	if !all {
		if err := s.allowed(c, "volume:get", c.ProjectID); err != nil {
			return nil, err
		}
	}
	tx := s.st.Snapshot()
	var it func(yield func(*Volume) bool)
	if all && opts.ProjectID == "" {
		it, err = store.List[Volume](nil, tx, volumeTable, store.IDIndex)
	} else {
		p := c.ProjectID
		if all {
			p = opts.ProjectID
		}
		it, err = store.List[Volume](nil, tx, volumeTable, projectIndex, p)
	}
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for v := range it {
		if opts.Name != "" && v.Name != opts.Name || opts.Status != "" && string(v.Status) != opts.Status ||
			opts.Bootable != nil && v.Bootable != *opts.Bootable {
			continue
		}
		if !metaMatch(v.Metadata, opts.Metadata) {
			continue
		}
		out = append(out, v)
	}
	return oldestFirst(out, func(x *Volume) (time.Time, string) { return x.CreatedAt, x.ID }), nil
}

func metaMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// UpdateVolumeOpts change a volume; nil fields are kept.
type UpdateVolumeOpts struct {
	Name        *string
	Description *string
	// Metadata replaces the metadata.
	Metadata map[string]string
	// MergeMetadata adds to it.
	MergeMetadata map[string]string
	// DeleteMetadataKey removes one key.
	DeleteMetadataKey string
}

// UpdateVolume changes a volume's name, description or metadata.
func (s *Service) UpdateVolume(ctx context.Context, id string, opts UpdateVolumeOpts) (*Volume, error) {
	if opts.Name != nil {
		if err := validName("name", *opts.Name, maxNameLen); err != nil {
			return nil, err
		}
	}
	if opts.Description != nil {
		if err := validName("description", *opts.Description, maxDescription); err != nil {
			return nil, err
		}
	}
	return s.changeVolume(ctx, id, "volume:update", "volume.update", func(v *Volume) error {
		if opts.Name != nil {
			v.Name = *opts.Name
		}
		if opts.Description != nil {
			v.Description = *opts.Description
		}
		if opts.Metadata != nil {
			v.Metadata = maps.Clone(opts.Metadata)
		}
		if opts.MergeMetadata != nil {
			if v.Metadata == nil {
				v.Metadata = map[string]string{}
			}
			maps.Copy(v.Metadata, opts.MergeMetadata)
		}
		if opts.DeleteMetadataKey != "" {
			if _, ok := v.Metadata[opts.DeleteMetadataKey]; !ok {
				return errdefs.Wrap(errdefs.ErrNotFound, errorf("Volume %s has no metadata with key %s.", v.ID, opts.DeleteMetadataKey))
			}
			delete(v.Metadata, opts.DeleteMetadataKey)
		}
		return validMetadata(v.Metadata)
	})
}

// changeVolume applies fn to a visible volume after checking action.
func (s *Service) changeVolume(ctx context.Context, id, action, event string, fn func(v *Volume) error) (*Volume, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var out *Volume
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, action, v.ProjectID); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		out = v
		return tx.Emit(event, v.ID, v.ProjectID, nil)
	})
	if err != nil {
		return nil, err
	}
	return out.clone(), nil
}

// SetBootable sets a volume's bootable flag.
func (s *Service) SetBootable(ctx context.Context, id string, bootable bool) error {
	_, err := s.changeVolume(ctx, id, "volume:update", "volume.update", func(v *Volume) error {
		v.Bootable = bootable
		return nil
	})
	return err
}

// ResetVolumeStatus sets a volume's status (admin only), as
// os-reset_status does; attachStatus "detached" also removes its
// attachments.
func (s *Service) ResetVolumeStatus(ctx context.Context, id string, status VolumeStatus, attachStatus string) error {
	if !slices.Contains(allStatuses, status) && status != "" {
		return invalid("status", "Invalid input received: Must specify a valid status")
	}
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:reset_status", v.ProjectID); err != nil {
			return err
		}
		if status != "" {
			v.Status = status
		}
		if attachStatus == "detached" {
			atts, err := attachmentsOf(tx, id)
			if err != nil {
				return err
			}
			for _, a := range atts {
				if err := tx.Delete(attachmentTable, a.ID); err != nil {
					return err
				}
			}
		}
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.reset_status", v.ID, v.ProjectID, nil)
	})
}

var allStatuses = []VolumeStatus{StatusCreating, StatusAvailable, StatusReserved, StatusAttaching, StatusInUse,
	StatusDetaching, StatusDeleting, StatusError, StatusErrorDeleting, StatusErrorExtending, StatusErrorRestoring,
	StatusExtending, StatusBackingUp, StatusRestoringBackup, StatusDownloading, StatusUploading, StatusAwaitingTransfer}

// deletable are the statuses a volume may be deleted from.
var deletable = []VolumeStatus{StatusAvailable, StatusError, StatusErrorRestoring, StatusErrorExtending, StatusErrorDeleting}

// msgDeleteRefused is Cinder's message for a volume that may not be deleted.
const msgDeleteRefused = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer."

// DeleteVolumeOpts change how DeleteVolume works.
type DeleteVolumeOpts struct {
	// Cascade also deletes the volume's snapshots.
	Cascade bool
	// Force deletes a volume in any status that has no attachments
	// (admin only, os-force_delete).
	Force bool
}

// DeleteVolume deletes a volume: it is "deleting" when the call returns
// and gone once the backend deleted its bytes ("error_deleting" if that
// failed). An attached volume, one with snapshots (without Cascade), or
// one in a busy status is refused with Cinder's 400 message.
func (s *Service) DeleteVolume(ctx context.Context, id string, opts DeleteVolumeOpts) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var v *Volume
	var snaps []*Snapshot
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		var err error
		v, err = s.visibleVolume(tx, c, id)
		if err != nil {
			return err
		}
		action := "volume:delete"
		if opts.Force {
			action = "volume:force_delete"
		}
		if err := s.allowed(c, action, v.ProjectID); err != nil {
			return err
		}
		atts, err := attachmentsOf(tx, id)
		if err != nil {
			return err
		}
		if len(atts) > 0 || (!opts.Force && !slices.Contains(deletable, v.Status)) {
			return badRequest(msgDeleteRefused)
		}
		snaps, err = snapshotsOf(tx, id)
		if err != nil {
			return err
		}
		if len(snaps) > 0 && !opts.Cascade {
			return badRequest(msgDeleteRefused)
		}
		for _, sn := range snaps {
			if sn.Status != SnapshotAvailable && sn.Status != SnapshotError {
				return badRequest("Invalid volume: Snapshot %s of the volume is %s.", sn.ID, sn.Status)
			}
			sn.Status = SnapshotDeleting
			if err := tx.Update(snapshotTable, sn); err != nil {
				return err
			}
		}
		if tr, err := store.First[Transfer](nil, tx, transferTable, volumeIndex, id); err == nil {
			if err := tx.Delete(transferTable, tr.ID); err != nil {
				return err
			}
		}
		v.Status, v.UpdatedAt = StatusDeleting, tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.delete.start", v.ID, v.ProjectID, nil)
	})
	if err != nil {
		return err
	}
	s.spawn(ctx, "delete volume", id, func(ctx context.Context) error { return s.finishDelete(ctx, v) })
	return nil
}

// finishDelete deletes a "deleting" volume's snapshots and bytes, then
// its record.
func (s *Service) finishDelete(ctx context.Context, v *Volume) error {
	b := s.backends[v.Backend]
	ctx = context.WithoutCancel(ctx)
	snaps, _ := snapshotsOf(s.st.Snapshot(), v.ID)
	var err error
	for _, sn := range snaps {
		if err = s.finishSnapshotDelete(ctx, sn); err != nil {
			break
		}
	}
	if err == nil && b != nil {
		err = b.DeleteVolume(ctx, v.ID)
	}
	if err != nil {
		_ = s.setStatus(ctx, v.ID, func(v *Volume) error {
			v.Status, v.Fault = StatusErrorDeleting, faultOf(err)
			return nil
		}, "volume.delete.error")
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(volumeTable, v.ID); err != nil {
			if errdefs.IsNotFound(err) {
				return nil
			}
			return err
		}
		return tx.Emit("volume.delete.end", v.ID, v.ProjectID, nil)
	})
}

// ExtendVolume grows a volume to newSize GiB: an available volume, or an
// in-use one where the backend can grow attached volumes.
func (s *Service) ExtendVolume(ctx context.Context, id string, newSize int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if newSize <= 0 || newSize > maxVolumeGiB {
		return invalid("new_size", "Invalid input received: New size for extend must be an integer between 1 and %d", maxVolumeGiB)
	}
	var v *Volume
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err = s.visibleVolume(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:extend", v.ProjectID); err != nil {
			return err
		}
		switch {
		case v.Status == StatusInUse && !s.backends[v.Backend].Capabilities().OnlineExtend:
			return badRequest("Invalid volume: Volume %s status must be available to extend; the backend cannot extend attached volumes.", v.ID)
		case v.Status != StatusAvailable && v.Status != StatusInUse:
			return badRequest("Invalid volume: Volume %s status must be 'available' or 'in-use' to extend, but current status is: %s.", v.ID, v.Status)
		case newSize <= v.SizeGiB:
			return invalid("new_size", "Invalid input received: New size for extend must be greater than current size. (current: %d, extended: %d).", v.SizeGiB, newSize)
		}
		vt, _ := store.Get[VolumeType](nil, tx, typeTable, v.TypeID)
		if err := s.checkQuota(tx, v.ProjectID, vt, quotaDelta{gigabytes: newSize - v.SizeGiB}); err != nil {
			return err
		}
		v.PrevStatus, v.Status, v.NewSizeGiB, v.UpdatedAt = v.Status, StatusExtending, newSize, tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.resize.start", v.ID, v.ProjectID, map[string]int{"size": newSize})
	})
	if err != nil {
		return err
	}
	s.spawn(ctx, "extend volume", id, func(ctx context.Context) error {
		err := s.backends[v.Backend].ExtendVolume(ctx, id, newSize)
		return errors.Join(err, s.setStatus(context.WithoutCancel(ctx), id, func(v *Volume) error {
			if err != nil {
				v.Status, v.Fault = StatusErrorExtending, faultOf(err)
			} else {
				v.Status, v.SizeGiB = v.PrevStatus, newSize
			}
			v.NewSizeGiB, v.PrevStatus = 0, ""
			return nil
		}, "volume.resize.end"))
	})
	return nil
}

// UploadImageOpts describe the image os-volume_upload_image makes.
type UploadImageOpts struct {
	ImageName       string
	DiskFormat      string // raw (default) or qcow2 is converted by the image service's reader; raw only here
	ContainerFormat string
	Visibility      string
	Protected       bool
	// Force allows an in-use volume.
	Force bool
}

// UploadVolumeToImage makes an image of a volume's bytes: the image is
// created queued, the volume is "uploading" until its bytes are stored,
// then back to its status.
func (s *Service) UploadVolumeToImage(ctx context.Context, id string, opts UploadImageOpts) (*ImageInfo, *Volume, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	ims, err := s.imageSvc()
	if err != nil {
		return nil, nil, err
	}
	if opts.DiskFormat == "" {
		opts.DiskFormat = "raw"
	}
	if opts.DiskFormat != "raw" {
		return nil, nil, invalid("disk_format", "Invalid input received: only raw images can be made of volumes here, not %q", opts.DiskFormat)
	}
	if opts.ContainerFormat == "" {
		opts.ContainerFormat = "bare"
	}
	if err := validName("image_name", opts.ImageName, maxNameLen); err != nil {
		return nil, nil, err
	}
	v, err := s.visibleVolume(s.st.Snapshot(), c, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.allowed(c, "volume:upload_image", v.ProjectID); err != nil {
		return nil, nil, err
	}
	if v.Status != StatusAvailable && (!opts.Force || v.Status != StatusInUse) {
		return nil, nil, badRequest("Invalid volume: Volume %s status must be available or in-use (with force), but current status is: %s.", v.ID, v.Status)
	}
	props := map[string]string{}
	for k, val := range v.ImageMetadata {
		switch k {
		case "image_id", "image_name", "disk_format", "container_format", "checksum", "size", "min_disk":
		default:
			props[k] = val
		}
	}
	img, err := ims.CreateImage(ctx, NewImage{Name: opts.ImageName, DiskFormat: opts.DiskFormat, ContainerFormat: opts.ContainerFormat,
		Visibility: opts.Visibility, Protected: opts.Protected, Properties: props})
	if err != nil {
		return nil, nil, err
	}
	err = s.setStatus(ctx, id, func(cur *Volume) error {
		if cur.Status != v.Status {
			return errdefs.Wrap(errdefs.ErrConflict, fmt.Errorf("volume %s changed status", id))
		}
		cur.PrevStatus, cur.Status = cur.Status, StatusUploading
		v = cur
		return nil
	}, "volume.upload.start")
	if err != nil {
		return nil, nil, err
	}
	s.spawn(ctx, "upload volume", id, func(ctx context.Context) error {
		var err error
		rc, err := s.backends[v.Backend].OpenVolume(ctx, id)
		if err == nil {
			err = ims.UploadImage(ctx, img.ID, rc)
			rc.Close()
		}
		return errors.Join(err, s.setStatus(context.WithoutCancel(ctx), id, func(v *Volume) error {
			v.Status, v.PrevStatus = v.PrevStatus, ""
			return nil
		}, "volume.upload.end"))
	})
	return img, v.clone(), nil
}
