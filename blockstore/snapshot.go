package blockstore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// SnapshotStatus is a snapshot's status.
type SnapshotStatus string

// Snapshot statuses.
const (
	SnapshotCreating      SnapshotStatus = "creating"
	SnapshotAvailable     SnapshotStatus = "available"
	SnapshotDeleting      SnapshotStatus = "deleting"
	SnapshotError         SnapshotStatus = "error"
	SnapshotErrorDeleting SnapshotStatus = "error_deleting"
)

// Snapshot is a point-in-time copy of a volume.
type Snapshot struct {
	store.Meta
	ID            string            `json:"id"`
	VolumeID      string            `json:"volume_id"`
	ProjectID     string            `json:"project_id"`
	UserID        string            `json:"user_id"`
	TypeID        string            `json:"type_id"`
	Name          string            `json:"name,omitempty"`
	Description   string            `json:"description,omitempty"`
	SizeGiB       int               `json:"size"`
	Status        SnapshotStatus    `json:"status"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	QuotaReleased bool              `json:"quota_released,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// StoreKey implements store.Record.
func (s *Snapshot) StoreKey() string { return s.ID }

func snapshotsOf(tx *store.Txn, volumeID string) ([]*Snapshot, error) {
	it, err := store.List[Snapshot](nil, tx, snapshotTable, volumeIndex, volumeID)
	if err != nil {
		return nil, err
	}
	return slices.Collect(it), nil
}

func (s *Service) visibleSnapshot(tx *store.Txn, c *identity.Credentials, id string) (*Snapshot, error) {
	sn, err := store.Get[Snapshot](nil, tx, snapshotTable, id)
	if err != nil || !sees(c, sn.ProjectID) {
		return nil, notFound("Snapshot", id)
	}
	return sn, nil
}

// CreateSnapshotOpts describe a new snapshot.
type CreateSnapshotOpts struct {
	VolumeID    string
	Name        string
	Description string
	Metadata    map[string]string
	// Force allows a snapshot of an in-use volume.
	Force bool
}

// CreateSnapshot snapshots a volume of the caller's project: "creating"
// when it returns, "available" once the backend made it.
func (s *Service) CreateSnapshot(ctx context.Context, opts CreateSnapshotOpts) (*Snapshot, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validName("name", opts.Name, maxNameLen); err != nil {
		return nil, err
	}
	if err := validName("description", opts.Description, maxDescription); err != nil {
		return nil, err
	}
	if err := validMetadata(opts.Metadata); err != nil {
		return nil, err
	}
	var sn *Snapshot
	var vol *Volume
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, opts.VolumeID)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:snapshot", v.ProjectID); err != nil {
			return err
		}
		if v.Status != StatusAvailable && (!opts.Force || v.Status != StatusInUse) {
			return badRequest("Invalid volume: Volume %s status must be available, but current status is: %s.", v.ID, v.Status)
		}
		vt, _ := store.Get[VolumeType](nil, tx, typeTable, v.TypeID)
		if err := s.checkQuota(tx, v.ProjectID, vt, quotaDelta{snapshots: 1, gigabytes: v.SizeGiB}); err != nil {
			return err
		}
		sn = &Snapshot{ID: newID(), VolumeID: v.ID, ProjectID: v.ProjectID, UserID: c.UserID, TypeID: v.TypeID, Name: opts.Name,
			Description: opts.Description, SizeGiB: v.SizeGiB, Status: SnapshotCreating, Metadata: maps.Clone(opts.Metadata),
			CreatedAt: tx.Now(), UpdatedAt: tx.Now()}
		vol = v
		if err := tx.Insert(snapshotTable, sn); err != nil {
			return err
		}
		return tx.Emit("snapshot.create.start", sn.ID, sn.ProjectID, nil)
	})
	if err != nil {
		return nil, err
	}
	s.spawn(ctx, "create snapshot", sn.ID, func(ctx context.Context) error {
		err := s.backends[vol.Backend].CreateSnapshot(ctx, vol.ID, sn.ID)
		if err != nil {
			_ = s.backends[vol.Backend].DeleteSnapshot(context.WithoutCancel(ctx), sn.ID)
		}
		return errors.Join(err, s.setSnapshot(context.WithoutCancel(ctx), sn.ID, func(sn *Snapshot) {
			if err != nil {
				sn.Status, sn.QuotaReleased = SnapshotError, true
			} else if sn.Status == SnapshotCreating {
				sn.Status = SnapshotAvailable
			}
		}))
	})
	return sn, nil
}

func (s *Service) setSnapshot(ctx context.Context, id string, fn func(*Snapshot)) error {
	return s.st.Update(ctx, func(tx *store.Txn) error {
		sn, err := store.Get[Snapshot](nil, tx, snapshotTable, id)
		if err != nil {
			return err
		}
		fn(sn)
		sn.UpdatedAt = tx.Now()
		if err := tx.Update(snapshotTable, sn); err != nil {
			return err
		}
		return tx.Emit("snapshot.update", sn.ID, sn.ProjectID, map[string]string{"status": string(sn.Status)})
	})
}

// GetSnapshot returns a snapshot of the caller's project.
func (s *Service) GetSnapshot(ctx context.Context, id string) (*Snapshot, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.visibleSnapshot(s.st.Snapshot(), c, id)
}

// ListSnapshots returns the snapshots the caller may see, oldest first,
// filtered like ListVolumes (Name, Status, AllTenants); volumeID filters
// by volume when set.
func (s *Service) ListSnapshots(ctx context.Context, opts ListVolumesOpts, volumeID string) ([]*Snapshot, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	all := opts.AllTenants && s.policy.Allowed(c, "volume:all_tenants", identity.Target{})
	it, err := listScope[Snapshot](s.st.Snapshot(), snapshotTable, all, c.ProjectID)
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for sn := range it {
		if opts.Name != "" && sn.Name != opts.Name || opts.Status != "" && string(sn.Status) != opts.Status ||
			volumeID != "" && sn.VolumeID != volumeID || all && opts.ProjectID != "" && sn.ProjectID != opts.ProjectID {
			continue
		}
		out = append(out, sn)
	}
	return oldestFirst(out, func(x *Snapshot) (time.Time, string) { return x.CreatedAt, x.ID }), nil
}

// UpdateSnapshot changes a snapshot's name, description or metadata.
func (s *Service) UpdateSnapshot(ctx context.Context, id string, name, description *string, metadata map[string]string) (*Snapshot, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if name != nil {
		if err := validName("name", *name, maxNameLen); err != nil {
			return nil, err
		}
	}
	if description != nil {
		if err := validName("description", *description, maxDescription); err != nil {
			return nil, err
		}
	}
	if err := validMetadata(metadata); err != nil {
		return nil, err
	}
	var out *Snapshot
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		sn, err := s.visibleSnapshot(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:snapshot", sn.ProjectID); err != nil {
			return err
		}
		if name != nil {
			sn.Name = *name
		}
		if description != nil {
			sn.Description = *description
		}
		if metadata != nil {
			sn.Metadata = maps.Clone(metadata)
		}
		sn.UpdatedAt = tx.Now()
		out = sn
		return tx.Update(snapshotTable, sn)
	})
	return out, err
}

// DeleteSnapshot deletes an available or failed snapshot; volumes made
// from it keep their bytes.
func (s *Service) DeleteSnapshot(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	var sn *Snapshot
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		sn, err = s.visibleSnapshot(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:snapshot", sn.ProjectID); err != nil {
			return err
		}
		if sn.Status != SnapshotAvailable && sn.Status != SnapshotError && sn.Status != SnapshotErrorDeleting {
			return badRequest("Invalid snapshot: Volume Snapshot status must be available or error, but current status is: %s.", sn.Status)
		}
		sn.Status, sn.UpdatedAt = SnapshotDeleting, tx.Now()
		return tx.Update(snapshotTable, sn)
	})
	if err != nil {
		return err
	}
	s.spawn(ctx, "delete snapshot", id, func(ctx context.Context) error { return s.finishSnapshotDelete(ctx, sn) })
	return nil
}

func (s *Service) finishSnapshotDelete(ctx context.Context, sn *Snapshot) error {
	ctx = context.WithoutCancel(ctx)
	v, err := store.Get[Volume](nil, s.st.Snapshot(), volumeTable, sn.VolumeID)
	if err == nil {
		if b := s.backends[v.Backend]; b != nil {
			err = b.DeleteSnapshot(ctx, sn.ID)
		}
	} else if errdefs.IsNotFound(err) {
		err = nil
	}
	if err != nil {
		_ = s.setSnapshot(ctx, sn.ID, func(sn *Snapshot) { sn.Status = SnapshotErrorDeleting })
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(snapshotTable, sn.ID); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return tx.Emit("snapshot.delete.end", sn.ID, sn.ProjectID, nil)
	})
}
