package image

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// MemberStatus is a project's answer to an image shared with it.
type MemberStatus string

// The member statuses. A new member is pending; only the member project
// accepts or rejects, and only accepted images appear in its default list.
const (
	MemberPending  MemberStatus = "pending"
	MemberAccepted MemberStatus = "accepted"
	MemberRejected MemberStatus = "rejected"
)

// Member is a project an image is shared with.
type Member struct {
	store.Meta
	ImageID   string       `json:"image_id"`
	MemberID  string       `json:"member_id"`
	Status    MemberStatus `json:"status"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// StoreKey implements store.Record.
func (m *Member) StoreKey() string { return memberKey(m.ImageID, m.MemberID) }

func memberKey(imageID, memberID string) string { return imageID + "/" + memberID }

var memberTableDef = store.Table{
	Name: memberTable,
	New:  func() store.Record { return new(Member) },
	Indexes: []*memdbIndex{
		index("image", func(o any) string { return o.(*Member).ImageID }),
		index("member", func(o any) string { return o.(*Member).MemberID }),
	},
}

// AddMember shares a shared image with project memberID (owner only). The
// membership starts pending.
func (s *Service) AddMember(ctx context.Context, imageID, memberID string) (*Member, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkText("member", memberID, maxKeyLen); err != nil || memberID == "" {
		return nil, errdefs.Invalid("member", "must be a project id")
	}
	var out *Member
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := s.visible(tx, c, imageID)
		if err != nil {
			return err
		}
		if !owns(c, img) {
			return forbidden("you are not permitted to add members to image %s", imageID)
		}
		if err := s.allowed(c, "image:add_member", img.Owner); err != nil {
			return err
		}
		if img.Visibility != VisibilityShared {
			return forbidden("only shared images have members")
		}
		if memberID == img.Owner {
			return forbidden("the owner of an image cannot be one of its members")
		}
		if _, err := store.Get[Member](nil, tx, memberTable, memberKey(imageID, memberID)); err == nil {
			return conflict("member %s is duplicated for image %s", memberID, imageID)
		}
		ms, err := store.List[Member](nil, tx, memberTable, "image", imageID)
		if err != nil {
			return err
		}
		if n := len(slices.Collect(ms)); n >= maxMembers {
			return fmt.Errorf("image: maximum number of image members exceeded (%d): %w", maxMembers, errdefs.ErrQuotaExceeded)
		}
		m := &Member{ImageID: imageID, MemberID: memberID, Status: MemberPending, CreatedAt: tx.Now(), UpdatedAt: tx.Now()}
		if err := tx.Insert(memberTable, m); err != nil {
			return err
		}
		out = m
		return tx.Emit("image.member.create", imageID, img.Owner, map[string]string{"member_id": memberID})
	})
	return out, err
}

// ListMembers lists an image's members: all of them for the owner, only
// its own membership for a member.
func (s *Service) ListMembers(ctx context.Context, imageID string) ([]*Member, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	img, err := s.visible(tx, c, imageID)
	if err != nil {
		return nil, err
	}
	if img.Visibility != VisibilityShared && !owns(c, img) {
		return nil, forbidden("only shared images have members")
	}
	it, err := store.List[Member](nil, tx, memberTable, "image", imageID)
	if err != nil {
		return nil, err
	}
	var out []*Member
	for m := range it {
		if owns(c, img) || m.MemberID == c.ProjectID {
			out = append(out, m)
		}
	}
	return out, nil
}

// GetMember returns one membership, seen by the owner or by the member.
func (s *Service) GetMember(ctx context.Context, imageID, memberID string) (*Member, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	img, err := s.visible(tx, c, imageID)
	if err != nil {
		return nil, err
	}
	m, err := store.Get[Member](nil, tx, memberTable, memberKey(imageID, memberID))
	if err != nil || (!owns(c, img) && memberID != c.ProjectID) {
		return nil, fmt.Errorf("image: %s is not a member of image %s: %w", memberID, imageID, errdefs.ErrNotFound)
	}
	return m, nil
}

// UpdateMember sets a membership's status. Only the member project itself
// may (Glance: the owner cannot accept on the member's behalf).
func (s *Service) UpdateMember(ctx context.Context, imageID, memberID string, status MemberStatus) (*Member, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	switch status {
	case MemberPending, MemberAccepted, MemberRejected:
	default:
		return nil, errdefs.Invalid("status", "%q is not one of pending, accepted, rejected", status)
	}
	var out *Member
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := s.visible(tx, c, imageID)
		if err != nil {
			return err
		}
		m, err := store.Get[Member](nil, tx, memberTable, memberKey(imageID, memberID))
		if err != nil || (!owns(c, img) && memberID != c.ProjectID) {
			return fmt.Errorf("image: %s is not a member of image %s: %w", memberID, imageID, errdefs.ErrNotFound)
		}
		if memberID != c.ProjectID && !c.IsCloudAdmin() {
			return forbidden("only the member may change the status of its membership")
		}
		if err := s.allowed(c, "image:modify_member", memberID); err != nil {
			return err
		}
		m.Status = status
		m.UpdatedAt = tx.Now()
		if err := tx.Update(memberTable, m); err != nil {
			return err
		}
		out = m
		return tx.Emit("image.member.update", imageID, img.Owner, map[string]string{"member_id": memberID, "status": string(status)})
	})
	return out, err
}

// DeleteMember stops sharing an image with a project (owner only).
func (s *Service) DeleteMember(ctx context.Context, imageID, memberID string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		img, err := s.visible(tx, c, imageID)
		if err != nil {
			return err
		}
		if _, err := store.Get[Member](nil, tx, memberTable, memberKey(imageID, memberID)); err != nil {
			return fmt.Errorf("image: %s is not a member of image %s: %w", memberID, imageID, errdefs.ErrNotFound)
		}
		if !owns(c, img) {
			return forbidden("you are not permitted to remove members of image %s", imageID)
		}
		if err := s.allowed(c, "image:delete_member", img.Owner); err != nil {
			return err
		}
		if err := tx.Delete(memberTable, memberKey(imageID, memberID)); err != nil {
			return err
		}
		return tx.Emit("image.member.delete", imageID, img.Owner, map[string]string{"member_id": memberID})
	})
}
