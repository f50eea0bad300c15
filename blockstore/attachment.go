package blockstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// AttachStatus is an attachment's attach_status.
type AttachStatus string

// Attachment statuses.
const (
	AttachReserved  AttachStatus = "reserved"
	AttachAttaching AttachStatus = "attaching"
	AttachAttached  AttachStatus = "attached"
	AttachDetached  AttachStatus = "detached"
)

// Attachment is a volume attachment in Cinder's v3 flow: created
// (reserved) → updated with a host connector (attaching, connection info)
// → completed (attached, volume in-use) → deleted.
type Attachment struct {
	store.Meta
	ID         string          `json:"id"`
	VolumeID   string          `json:"volume_id"`
	ProjectID  string          `json:"project_id"`
	InstanceID string          `json:"instance_id,omitempty"`
	Status     AttachStatus    `json:"attach_status"`
	Mode       string          `json:"attach_mode"`
	Connector  *Connector      `json:"connector,omitempty"`
	Connection *ConnectionInfo `json:"connection_info,omitempty"`
	Mountpoint string          `json:"mountpoint,omitempty"`
	AttachedAt time.Time       `json:"attached_at,omitzero"`
	CreatedAt  time.Time       `json:"created_at"`
}

// StoreKey implements store.Record.
func (a *Attachment) StoreKey() string { return a.ID }

func attachmentsOf(tx *store.Txn, volumeID string) ([]*Attachment, error) {
	it, err := store.List[Attachment](nil, tx, attachmentTable, volumeIndex, volumeID)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(it)
	slices.SortFunc(out, func(a, b *Attachment) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// VolumeAttachments returns a volume's attachments.
func (s *Service) VolumeAttachments(ctx context.Context, volumeID string) ([]*Attachment, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	if _, err := s.visibleVolume(tx, c, volumeID); err != nil {
		return nil, err
	}
	return attachmentsOf(tx, volumeID)
}

// settleStatus sets a volume's status from its attachments: in-use if any
// is attached, attaching or reserved if one is on its way, else available.
func settleStatus(v *Volume, atts []*Attachment) {
	st := StatusAvailable
	for _, a := range atts {
		switch a.Status {
		case AttachAttached:
			st = StatusInUse
		case AttachAttaching:
			if st != StatusInUse {
				st = StatusAttaching
			}
		case AttachReserved:
			if st == StatusAvailable {
				st = StatusReserved
			}
		}
	}
	v.Status = st
}

// attachable are the statuses a new attachment may start from.
var attachable = []VolumeStatus{StatusAvailable, StatusReserved, StatusAttaching, StatusInUse}

// CreateAttachmentOpts describe a new attachment.
type CreateAttachmentOpts struct {
	VolumeID   string
	InstanceID string
	// Connector, if set, connects at once (as attachment update does).
	Connector *Connector
	// Mode is "rw" (default) or "ro".
	Mode string
}

// CreateAttachment reserves a volume of the caller's project for an
// instance. It is idempotent per (volume, instance): an attachment that
// exists for the pair is returned. A volume that is attached elsewhere
// needs multiattach.
func (s *Service) CreateAttachment(ctx context.Context, opts CreateAttachmentOpts) (*Attachment, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Mode == "" {
		opts.Mode = "rw"
	}
	if opts.Mode != "rw" && opts.Mode != "ro" {
		return nil, invalid("mode", "Invalid input received: mode must be rw or ro")
	}
	if opts.InstanceID != "" {
		if err := validName("instance_uuid", opts.InstanceID, 64); err != nil {
			return nil, err
		}
	}
	var a *Attachment
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		v, err := s.visibleVolume(tx, c, opts.VolumeID)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:attach", v.ProjectID); err != nil {
			return err
		}
		atts, err := attachmentsOf(tx, v.ID)
		if err != nil {
			return err
		}
		for _, x := range atts {
			if opts.InstanceID != "" && x.InstanceID == opts.InstanceID {
				a = x
				return nil
			}
		}
		if !slices.Contains(attachable, v.Status) {
			return badRequest("Invalid volume: Volume %s status must be available or in-use (multiattach) to attach, but current status is: %s.", v.ID, v.Status)
		}
		if len(atts) > 0 && !v.Multiattach {
			return badRequest("Invalid volume: Volume %s is already attached and is not multiattach.", v.ID)
		}
		a = &Attachment{ID: newID(), VolumeID: v.ID, ProjectID: v.ProjectID, InstanceID: opts.InstanceID, Status: AttachReserved,
			Mode: opts.Mode, CreatedAt: tx.Now()}
		if err := tx.Insert(attachmentTable, a); err != nil {
			return err
		}
		settleStatus(v, append(atts, a))
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.attach.reserve", v.ID, v.ProjectID, map[string]string{"attachment_id": a.ID})
	})
	if err != nil {
		return nil, err
	}
	if opts.Connector != nil && a.Connection == nil {
		return s.UpdateAttachment(ctx, a.ID, *opts.Connector)
	}
	return a, nil
}

// visibleAttachment returns an attachment whose volume c may see.
func (s *Service) visibleAttachment(tx *store.Txn, c *identity.Credentials, id string) (*Attachment, *Volume, error) {
	a, err := store.Get[Attachment](nil, tx, attachmentTable, id)
	if err != nil || !sees(c, a.ProjectID) {
		return nil, nil, notFound("Attachment", id)
	}
	v, err := store.Get[Volume](nil, tx, volumeTable, a.VolumeID)
	if err != nil {
		return nil, nil, notFound("Attachment", id)
	}
	return a, v, nil
}

// GetAttachment returns an attachment of a volume of the caller's project.
func (s *Service) GetAttachment(ctx context.Context, id string) (*Attachment, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, _, err := s.visibleAttachment(s.st.Snapshot(), c, id)
	return a, err
}

// ListAttachments returns the attachments of the caller's project's
// volumes (every project's with allTenants, for readers of the cloud),
// filtered by volume and instance when set.
func (s *Service) ListAttachments(ctx context.Context, allTenants bool, volumeID, instanceID string) ([]*Attachment, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	all := allTenants && s.policy.Allowed(c, "volume:all_tenants", identity.Target{})
	it, err := store.List[Attachment](nil, s.st.Snapshot(), attachmentTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Attachment
	for a := range it {
		if (!all && a.ProjectID != c.ProjectID) || (volumeID != "" && a.VolumeID != volumeID) || (instanceID != "" && a.InstanceID != instanceID) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Attachment) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// UpdateAttachment connects an attachment to the host conn describes and
// returns it with its connection info; the volume is "attaching". Calling
// it again reconnects (idempotent for the same host).
func (s *Service) UpdateAttachment(ctx context.Context, id string, conn Connector) (*Attachment, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validName("connector.host", conn.Host, 255); err != nil {
		return nil, err
	}
	a, v, err := s.visibleAttachment(s.st.Snapshot(), c, id)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, "volume:attach", v.ProjectID); err != nil {
		return nil, err
	}
	if a.Status == AttachAttached {
		return nil, badRequest("Invalid attachment: attachment %s is already attached.", id)
	}
	ci, err := s.backends[v.Backend].Connect(ctx, v.ID, conn)
	if err != nil {
		return nil, err
	}
	var out *Attachment
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		a, v, err := s.visibleAttachment(tx, c, id)
		if err != nil {
			return err
		}
		a.Connector, a.Connection, a.Status = &conn, ci, AttachAttaching
		if err := tx.Update(attachmentTable, a); err != nil {
			return err
		}
		atts, err := attachmentsOf(tx, v.ID)
		if err != nil {
			return err
		}
		settleStatus(v, atts)
		v.UpdatedAt = tx.Now()
		out = a
		return tx.Update(volumeTable, v)
	})
	if err != nil {
		_ = s.backends[v.Backend].Disconnect(context.WithoutCancel(ctx), v.ID, conn)
		return nil, err
	}
	return out, nil
}

// CompleteAttachment marks a connected attachment attached and its volume
// in-use (os-complete).
func (s *Service) CompleteAttachment(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		a, v, err := s.visibleAttachment(tx, c, id)
		if err != nil {
			return err
		}
		if err := s.allowed(c, "volume:attach", v.ProjectID); err != nil {
			return err
		}
		if a.Connection == nil {
			return badRequest("Invalid attachment: attachment %s has no connector yet; update it first.", id)
		}
		if a.Status != AttachAttached {
			a.Status, a.AttachedAt = AttachAttached, tx.Now()
			if err := tx.Update(attachmentTable, a); err != nil {
				return err
			}
		}
		atts, err := attachmentsOf(tx, v.ID)
		if err != nil {
			return err
		}
		settleStatus(v, atts)
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.attach.end", v.ID, v.ProjectID, map[string]string{"attachment_id": a.ID, "instance_id": a.InstanceID})
	})
}

// DeleteAttachment disconnects and removes an attachment; the volume goes
// back to available when it was the last. Absent is not found.
func (s *Service) DeleteAttachment(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	a, v, err := s.visibleAttachment(s.st.Snapshot(), c, id)
	if err != nil {
		return err
	}
	if err := s.allowed(c, "volume:attach", v.ProjectID); err != nil {
		return err
	}
	if a.Connector != nil {
		if err := s.backends[v.Backend].Disconnect(ctx, v.ID, *a.Connector); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return s.removeAttachment(ctx, id)
}

// removeAttachment deletes an attachment record and settles its volume.
func (s *Service) removeAttachment(ctx context.Context, id string) error {
	return s.st.Update(ctx, func(tx *store.Txn) error {
		a, err := store.Get[Attachment](nil, tx, attachmentTable, id)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil
			}
			return err
		}
		if err := tx.Delete(attachmentTable, id); err != nil {
			return err
		}
		v, err := store.Get[Volume](nil, tx, volumeTable, a.VolumeID)
		if err != nil {
			return nil //nolint:nilerr // the volume is gone: nothing to settle
		}
		atts, err := attachmentsOf(tx, v.ID)
		if err != nil {
			return err
		}
		if slices.Contains(attachable, v.Status) || v.Status == StatusDetaching {
			settleStatus(v, atts)
		}
		v.UpdatedAt = tx.Now()
		if err := tx.Update(volumeTable, v); err != nil {
			return err
		}
		return tx.Emit("volume.detach.end", v.ID, v.ProjectID, map[string]string{"attachment_id": id})
	})
}

// errNoAttachment is returned by Detach for a volume with no attachment
// to the instance.
var errNoAttachment = errors.New("blockstore: no such attachment")

// LegacyAttach is os-attach: an attachment of the volume to an instance,
// attached at once (no connector).
func (s *Service) LegacyAttach(ctx context.Context, volumeID, instanceID, host, mountpoint, mode string) error {
	a, err := s.CreateAttachment(ctx, CreateAttachmentOpts{VolumeID: volumeID, InstanceID: instanceID, Mode: mode})
	if err != nil {
		return err
	}
	a, err = s.UpdateAttachment(ctx, a.ID, Connector{Host: host})
	if err != nil {
		return err
	}
	if mountpoint != "" {
		_ = s.st.Update(ctx, func(tx *store.Txn) error {
			cur, err := store.Get[Attachment](nil, tx, attachmentTable, a.ID)
			if err != nil {
				return err
			}
			cur.Mountpoint = mountpoint
			return tx.Update(attachmentTable, cur)
		})
	}
	return s.CompleteAttachment(ctx, a.ID)
}

// LegacyDetach is os-detach: it deletes the attachment named, or the
// volume's only one.
func (s *Service) LegacyDetach(ctx context.Context, volumeID, attachmentID string) error {
	atts, err := s.VolumeAttachments(ctx, volumeID)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if attachmentID == "" && len(atts) == 1 || a.ID == attachmentID {
			return s.DeleteAttachment(ctx, a.ID)
		}
	}
	return badRequest("Invalid volume: %v", errNoAttachment)
}
