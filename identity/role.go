package identity

import (
	"context"
	"slices"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Role is a Keystone role. Global roles have no DomainID.
type Role struct {
	store.Meta
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DomainID    string         `json:"domain_id,omitempty"`
	Description string         `json:"description,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
}

// StoreKey implements store.Record.
func (r *Role) StoreKey() string { return r.ID }

// detach gives r its own copy of the map it shares with the stored record.
func (r *Role) detach() *Role {
	r.Options = cloneMap(r.Options)
	return r
}

// ImpliedRole records that holding PriorID implies holding ImpliedID.
type ImpliedRole struct {
	store.Meta
	PriorID   string `json:"prior_role_id"`
	ImpliedID string `json:"implied_role_id"`
}

// StoreKey implements store.Record.
func (i *ImpliedRole) StoreKey() string { return key(i.PriorID, i.ImpliedID) }

func roleNameKey(domainID, name string) string { return key(domainID, name) }

var roleTableDef = store.Table{
	Name: roleTable,
	New:  func() store.Record { return new(Role) },
	Indexes: []*memdbIndex{
		index("name", true, func(o any) string { r := o.(*Role); return roleNameKey(r.DomainID, r.Name) }),
	},
}

var impliedTableDef = store.Table{
	Name: impliedTable,
	New:  func() store.Record { return new(ImpliedRole) },
	Indexes: []*memdbIndex{
		index("prior", false, func(o any) string { return o.(*ImpliedRole).PriorID }),
		index("implied", false, func(o any) string { return o.(*ImpliedRole).ImpliedID }),
	},
}

// CreateRoleOpts are the fields of a new role.
type CreateRoleOpts struct {
	Name        string
	DomainID    string
	Description string
	Options     map[string]any
}

// UpdateRoleOpts are the fields to change; nil means unchanged.
type UpdateRoleOpts struct {
	Name        *string
	Description *string
	Options     map[string]any
}

// ListRolesOpts filters ListRoles.
type ListRolesOpts struct {
	Name         string
	NameContains string
	DomainID     string
}

// CreateRole creates a role. Cloud admins only.
func (s *Service) CreateRole(ctx context.Context, opts CreateRoleOpts) (*Role, error) {
	if err := s.policy.Enforce(ctx, "identity:create_role", Target{DomainID: opts.DomainID}); err != nil {
		return nil, err
	}
	if err := checkName("name", opts.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(opts.Description); err != nil {
		return nil, err
	}
	r := &Role{ID: newID(), Name: opts.Name, DomainID: opts.DomainID, Description: opts.Description, Options: cloneMap(opts.Options)}
	err := s.update(ctx, func(tx *store.Txn) error {
		if r.DomainID != "" {
			if _, err := s.getDomain(tx, r.DomainID); err != nil {
				return errdefs.Invalid("domain_id", "domain %s does not exist", r.DomainID)
			}
		}
		if _, err := store.First[Role](nil, tx, roleTable, "name", roleNameKey(r.DomainID, r.Name)); err == nil {
			return conflict("duplicate entry: role with name %q", r.Name)
		}
		return tx.Insert(roleTable, r)
	})
	if err != nil {
		return nil, err
	}
	return s.getRole(s.st.Snapshot(), r.ID)
}

func (s *Service) getRole(tx *store.Txn, id string) (*Role, error) {
	r, err := store.Get[Role](nil, tx, roleTable, id)
	if err != nil {
		return nil, notFound("role", id)
	}
	return r.detach(), nil
}

// GetRole returns a role.
func (s *Service) GetRole(ctx context.Context, id string) (*Role, error) {
	r, err := s.getRole(s.st.Snapshot(), id)
	if err != nil {
		return nil, err
	}
	if err := s.see(ctx, "identity:get_role", Target{DomainID: r.DomainID}, "role", id); err != nil {
		return nil, err
	}
	return r, nil
}

// RoleByName returns the global role called name.
func (s *Service) RoleByName(ctx context.Context, name string) (*Role, error) {
	r, err := store.First[Role](nil, s.st.Snapshot(), roleTable, "name", roleNameKey("", name))
	if err != nil {
		return nil, notFound("role", name)
	}
	return s.GetRole(ctx, r.ID)
}

// ListRoles lists roles.
func (s *Service) ListRoles(ctx context.Context, opts ListRolesOpts) ([]*Role, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	all, err := store.List[Role](nil, s.st.Snapshot(), roleTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Role
	for r := range all {
		if (opts.Name != "" && r.Name != opts.Name) || (opts.NameContains != "" && !containsFold(r.Name, opts.NameContains)) || r.DomainID != opts.DomainID {
			continue
		}
		if s.policy.Allowed(c, "identity:get_role", Target{DomainID: r.DomainID}) {
			out = append(out, r.detach())
		}
	}
	return out, nil
}

// UpdateRole changes a role.
func (s *Service) UpdateRole(ctx context.Context, id string, opts UpdateRoleOpts) (*Role, error) {
	err := s.update(ctx, func(tx *store.Txn) error {
		r, err := s.getRole(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_role", "identity:update_role", Target{DomainID: r.DomainID}, "role", id); err != nil {
			return err
		}
		if opts.Name != nil {
			if err := checkName("name", *opts.Name); err != nil {
				return err
			}
			if o, err := store.First[Role](nil, tx, roleTable, "name", roleNameKey(r.DomainID, *opts.Name)); err == nil && o.ID != id {
				return conflict("duplicate entry: role with name %q", *opts.Name)
			}
			r.Name = *opts.Name
		}
		if opts.Description != nil {
			if err := checkDescription(*opts.Description); err != nil {
				return err
			}
			r.Description = *opts.Description
		}
		if opts.Options != nil {
			r.Options = cloneMap(opts.Options)
		}
		return tx.Update(roleTable, r)
	})
	if err != nil {
		return nil, err
	}
	return s.getRole(s.st.Snapshot(), id)
}

// DeleteRole deletes a role with its assignments and implication rules,
// and revokes the tokens of the users who held it.
func (s *Service) DeleteRole(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *store.Txn) error {
		r, err := s.getRole(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_role", "identity:delete_role", Target{DomainID: r.DomainID}, "role", id); err != nil {
			return err
		}
		as, err := listAssignments(tx, "role", id)
		if err != nil {
			return err
		}
		for _, a := range as {
			if err := s.deleteAssignmentTxn(tx, a); err != nil {
				return err
			}
		}
		for _, idx := range []string{"prior", "implied"} {
			it, err := store.List[ImpliedRole](nil, tx, impliedTable, idx, id)
			if err != nil {
				return err
			}
			var keys []string
			for i := range it {
				keys = append(keys, i.StoreKey())
			}
			for _, k := range keys {
				if err := tx.Delete(impliedTable, k); err != nil {
					return err
				}
			}
		}
		return tx.Delete(roleTable, id)
	})
}

// CreateImpliedRole makes prior imply implied. A rule that would make a
// cycle is refused.
func (s *Service) CreateImpliedRole(ctx context.Context, priorID, impliedID string) (*ImpliedRole, error) {
	if err := s.policy.Enforce(ctx, "identity:create_implied_role", Target{}); err != nil {
		return nil, err
	}
	ir := &ImpliedRole{PriorID: priorID, ImpliedID: impliedID}
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := s.getRole(tx, priorID); err != nil {
			return err
		}
		if _, err := s.getRole(tx, impliedID); err != nil {
			return err
		}
		if priorID == impliedID || slices.ContainsFunc(impliedClosure(tx, []string{impliedID}), func(r *Role) bool { return r.ID == priorID }) {
			return errdefs.Invalid("implied_role", "role %s implying %s would make a cycle", priorID, impliedID)
		}
		if _, err := store.Get[ImpliedRole](nil, tx, impliedTable, ir.StoreKey()); err == nil {
			return nil
		}
		return tx.Insert(impliedTable, ir)
	})
	if err != nil {
		return nil, err
	}
	return ir, nil
}

// DeleteImpliedRole removes an implication rule.
func (s *Service) DeleteImpliedRole(ctx context.Context, priorID, impliedID string) error {
	if err := s.policy.Enforce(ctx, "identity:delete_implied_role", Target{}); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		k := key(priorID, impliedID)
		if _, err := store.Get[ImpliedRole](nil, tx, impliedTable, k); err != nil {
			return notFound("implied role", priorID+"/"+impliedID)
		}
		return tx.Delete(impliedTable, k)
	})
}

// GetImpliedRole checks that prior implies implied.
func (s *Service) GetImpliedRole(ctx context.Context, priorID, impliedID string) (*ImpliedRole, error) {
	if err := s.see(ctx, "identity:get_role", Target{}, "implied role", priorID); err != nil {
		return nil, err
	}
	ir, err := store.Get[ImpliedRole](nil, s.st.Snapshot(), impliedTable, key(priorID, impliedID))
	if err != nil {
		return nil, notFound("implied role", priorID+"/"+impliedID)
	}
	return ir, nil
}

// ListImpliedRoles lists the rules, all of them or those of one prior
// role.
func (s *Service) ListImpliedRoles(ctx context.Context, priorID string) ([]*ImpliedRole, error) {
	if err := s.see(ctx, "identity:get_role", Target{}, "role", priorID); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	var it func(func(*ImpliedRole) bool)
	var err error
	if priorID != "" {
		if _, err := s.getRole(tx, priorID); err != nil {
			return nil, err
		}
		it, err = store.List[ImpliedRole](nil, tx, impliedTable, "prior", priorID)
	} else {
		it, err = store.List[ImpliedRole](nil, tx, impliedTable, store.IDIndex)
	}
	if err != nil {
		return nil, err
	}
	var out []*ImpliedRole
	for i := range it {
		out = append(out, i)
	}
	return out, nil
}

// impliedClosure returns the roles of ids and every role they imply.
func impliedClosure(tx *store.Txn, ids []string) []*Role {
	seen := map[string]bool{}
	var out []*Role
	queue := slices.Clone(ids)
	for len(queue) > 0 && len(seen) < 1000 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		r, err := store.Get[Role](nil, tx, roleTable, id)
		if err != nil {
			continue
		}
		out = append(out, r)
		it, err := store.List[ImpliedRole](nil, tx, impliedTable, "prior", id)
		if err != nil {
			continue
		}
		for i := range it {
			queue = append(queue, i.ImpliedID)
		}
	}
	return out
}
