package identity

import (
	"context"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Group is a Keystone group of users; roles granted to it apply to its
// members.
type Group struct {
	store.Meta
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id"`
	Description string `json:"description"`
}

// StoreKey implements store.Record.
func (g *Group) StoreKey() string { return g.ID }

// Membership records that a user belongs to a group.
type Membership struct {
	store.Meta
	GroupID string `json:"group_id"`
	UserID  string `json:"user_id"`
}

// StoreKey implements store.Record.
func (m *Membership) StoreKey() string { return key(m.GroupID, m.UserID) }

var groupTableDef = store.Table{
	Name: groupTable,
	New:  func() store.Record { return new(Group) },
	Indexes: []*memdbIndex{
		index("name", true, func(o any) string { g := o.(*Group); return key(g.DomainID, g.Name) }),
		index("domain", false, func(o any) string { return o.(*Group).DomainID }),
	},
}

var memberTableDef = store.Table{
	Name: memberTable,
	New:  func() store.Record { return new(Membership) },
	Indexes: []*memdbIndex{
		index("user", false, func(o any) string { return o.(*Membership).UserID }),
		index("group", false, func(o any) string { return o.(*Membership).GroupID }),
	},
}

// CreateGroupOpts are the fields of a new group.
type CreateGroupOpts struct {
	Name string
	// DomainID defaults to the default domain.
	DomainID    string
	Description string
}

// UpdateGroupOpts are the fields to change; nil means unchanged.
type UpdateGroupOpts struct {
	Name        *string
	Description *string
}

// ListGroupsOpts filters ListGroups.
type ListGroupsOpts struct {
	Name     string
	DomainID string
}

func groupTarget(g *Group) Target { return Target{DomainID: g.DomainID} }

// CreateGroup creates a group.
func (s *Service) CreateGroup(ctx context.Context, opts CreateGroupOpts) (*Group, error) {
	if err := checkName("name", opts.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(opts.Description); err != nil {
		return nil, err
	}
	g := &Group{ID: newID(), Name: opts.Name, DomainID: opts.DomainID, Description: opts.Description}
	if g.DomainID == "" {
		g.DomainID = DefaultDomainID
	}
	if err := s.policy.Enforce(ctx, "identity:create_group", groupTarget(g)); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := s.getDomain(tx, g.DomainID); err != nil {
			return errdefs.Invalid("domain_id", "domain %s does not exist", g.DomainID)
		}
		if _, err := store.First[Group](nil, tx, groupTable, "name", key(g.DomainID, g.Name)); err == nil {
			return conflict("duplicate entry: group with name %q in domain %s", g.Name, g.DomainID)
		}
		return tx.Insert(groupTable, g)
	})
	if err != nil {
		return nil, err
	}
	return s.getGroup(s.st.Snapshot(), g.ID)
}

func (s *Service) getGroup(tx *store.Txn, id string) (*Group, error) {
	g, err := store.Get[Group](nil, tx, groupTable, id)
	if err != nil {
		return nil, notFound("group", id)
	}
	return g, nil
}

// GetGroup returns a group the caller may see.
func (s *Service) GetGroup(ctx context.Context, id string) (*Group, error) {
	g, err := s.getGroup(s.st.Snapshot(), id)
	if err != nil {
		return nil, err
	}
	if err := s.see(ctx, "identity:get_group", groupTarget(g), "group", id); err != nil {
		return nil, err
	}
	return g, nil
}

// ListGroups lists the groups the caller may see; with userID, only that
// user's groups.
func (s *Service) ListGroups(ctx context.Context, opts ListGroupsOpts) ([]*Group, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	all, err := store.List[Group](nil, s.st.Snapshot(), groupTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Group
	for g := range all {
		if (opts.Name != "" && g.Name != opts.Name) || (opts.DomainID != "" && g.DomainID != opts.DomainID) {
			continue
		}
		if s.policy.Allowed(c, "identity:get_group", groupTarget(g)) {
			out = append(out, g)
		}
	}
	return out, nil
}

// ListUserGroups lists the groups of a user the caller may see.
func (s *Service) ListUserGroups(ctx context.Context, userID string) ([]*Group, error) {
	if _, err := s.GetUser(ctx, userID); err != nil {
		return nil, err
	}
	c := CredentialsFrom(ctx)
	tx := s.st.Snapshot()
	ms, err := store.List[Membership](nil, tx, memberTable, "user", userID)
	if err != nil {
		return nil, err
	}
	var out []*Group
	for m := range ms {
		g, err := s.getGroup(tx, m.GroupID)
		if err != nil {
			continue
		}
		if c.UserID == userID || s.policy.Allowed(c, "identity:get_group", groupTarget(g)) {
			out = append(out, g)
		}
	}
	return out, nil
}

// UpdateGroup changes a group.
func (s *Service) UpdateGroup(ctx context.Context, id string, opts UpdateGroupOpts) (*Group, error) {
	err := s.update(ctx, func(tx *store.Txn) error {
		g, err := s.getGroup(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_group", "identity:update_group", groupTarget(g), "group", id); err != nil {
			return err
		}
		if opts.Name != nil {
			if err := checkName("name", *opts.Name); err != nil {
				return err
			}
			if o, err := store.First[Group](nil, tx, groupTable, "name", key(g.DomainID, *opts.Name)); err == nil && o.ID != id {
				return conflict("duplicate entry: group with name %q in domain %s", *opts.Name, g.DomainID)
			}
			g.Name = *opts.Name
		}
		if opts.Description != nil {
			if err := checkDescription(*opts.Description); err != nil {
				return err
			}
			g.Description = *opts.Description
		}
		return tx.Update(groupTable, g)
	})
	if err != nil {
		return nil, err
	}
	return s.getGroup(s.st.Snapshot(), id)
}

// DeleteGroup deletes a group with its memberships and role assignments,
// and revokes its members' tokens.
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *store.Txn) error {
		g, err := s.getGroup(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_group", "identity:delete_group", groupTarget(g), "group", id); err != nil {
			return err
		}
		members, err := groupMembers(tx, id)
		if err != nil {
			return err
		}
		if err := deleteAssignmentsTxn(tx, "actor", key(actorGroup, id)); err != nil {
			return err
		}
		for _, u := range members {
			if err := tx.Delete(memberTable, key(id, u)); err != nil {
				return err
			}
			if err := s.revokeTxn(tx, Revocation{UserID: u}); err != nil {
				return err
			}
		}
		return tx.Delete(groupTable, id)
	})
}

func groupMembers(tx *store.Txn, groupID string) ([]string, error) {
	ms, err := store.List[Membership](nil, tx, memberTable, "group", groupID)
	if err != nil {
		return nil, err
	}
	var out []string
	for m := range ms {
		out = append(out, m.UserID)
	}
	return out, nil
}

// AddUserToGroup adds a user to a group. It is idempotent.
func (s *Service) AddUserToGroup(ctx context.Context, groupID, userID string) error {
	return s.update(ctx, func(tx *store.Txn) error {
		g, err := s.getGroup(tx, groupID)
		if err != nil {
			return err
		}
		if err := s.see(ctx, "identity:get_group", groupTarget(g), "group", groupID); err != nil {
			return err
		}
		if err := s.policy.Enforce(ctx, "identity:add_user_to_group", s.writeTarget(tx, groupTarget(g), [2]string{actorGroup, groupID})); err != nil {
			return err
		}
		if _, err := s.getUser(tx, userID); err != nil {
			return err
		}
		m := &Membership{GroupID: groupID, UserID: userID}
		if _, err := store.Get[Membership](nil, tx, memberTable, m.StoreKey()); err == nil {
			return nil
		}
		return tx.Insert(memberTable, m)
	})
}

// RemoveUserFromGroup removes a user from a group and revokes its tokens.
func (s *Service) RemoveUserFromGroup(ctx context.Context, groupID, userID string) error {
	return s.update(ctx, func(tx *store.Txn) error {
		g, err := s.getGroup(tx, groupID)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_group", "identity:remove_user_from_group", groupTarget(g), "group", groupID); err != nil {
			return err
		}
		k := key(groupID, userID)
		if _, err := store.Get[Membership](nil, tx, memberTable, k); err != nil {
			return notFound("user in group", userID)
		}
		if err := tx.Delete(memberTable, k); err != nil {
			return err
		}
		if err := pruneAppCredsTxn(tx, []string{userID}, ""); err != nil {
			return err
		}
		return s.revokeTxn(tx, Revocation{UserID: userID})
	})
}

// IsUserInGroup reports whether a user is a member of a group, or fails
// with errdefs.ErrNotFound.
func (s *Service) IsUserInGroup(ctx context.Context, groupID, userID string) error {
	if _, err := s.GetGroup(ctx, groupID); err != nil {
		return err
	}
	if _, err := store.Get[Membership](nil, s.st.Snapshot(), memberTable, key(groupID, userID)); err != nil {
		return notFound("user in group", userID)
	}
	return nil
}

// ListGroupUsers lists the members of a group.
func (s *Service) ListGroupUsers(ctx context.Context, groupID string) ([]*User, error) {
	if _, err := s.GetGroup(ctx, groupID); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	ids, err := groupMembers(tx, groupID)
	if err != nil {
		return nil, err
	}
	var out []*User
	for _, id := range ids {
		if u, err := s.getUser(tx, id); err == nil {
			out = append(out, u)
		}
	}
	return out, nil
}
