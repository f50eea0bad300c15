package identity

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Domain is a Keystone domain: a namespace of projects, users and groups.
type Domain struct {
	store.Meta
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Enabled     bool           `json:"enabled"`
	Options     map[string]any `json:"options,omitempty"`
}

// StoreKey implements store.Record.
func (d *Domain) StoreKey() string { return d.ID }

// detach gives d its own copy of the map it shares with the stored record.
func (d *Domain) detach() *Domain {
	d.Options = cloneMap(d.Options)
	return d
}

var domainTableDef = store.Table{
	Name: domainTable,
	New:  func() store.Record { return new(Domain) },
	Indexes: []*memdbIndex{
		index("name", true, func(o any) string { return o.(*Domain).Name }),
	},
}

// CreateDomainOpts are the fields of a new domain.
type CreateDomainOpts struct {
	// ID is the new domain's id; empty means a generated one.
	ID          string
	Name        string
	Description string
	// Enabled defaults to true.
	Enabled *bool
	Options map[string]any
}

// UpdateDomainOpts are the fields to change; nil means unchanged.
type UpdateDomainOpts struct {
	Name        *string
	Description *string
	Enabled     *bool
	Options     map[string]any
}

// ListDomainsOpts filters ListDomains.
type ListDomainsOpts struct {
	Name    string
	Enabled *bool
}

func domainTarget(d *Domain) Target { return Target{DomainID: d.ID} }

// CreateDomain creates a domain. Cloud admins only.
func (s *Service) CreateDomain(ctx context.Context, opts CreateDomainOpts) (*Domain, error) {
	if err := s.policy.Enforce(ctx, "identity:create_domain", Target{}); err != nil {
		return nil, err
	}
	if err := checkName("name", opts.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(opts.Description); err != nil {
		return nil, err
	}
	d := &Domain{ID: opts.ID, Name: opts.Name, Description: opts.Description, Enabled: ptrOr(opts.Enabled, true), Options: cloneMap(opts.Options)}
	if d.ID == "" {
		d.ID = newID()
	} else if err := checkID("id", d.ID); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.First[Domain](nil, tx, domainTable, "name", d.Name); err == nil {
			return conflict("duplicate entry: domain with name %q", d.Name)
		}
		if _, err := store.Get[Domain](nil, tx, domainTable, d.ID); err == nil {
			return conflict("duplicate entry: domain with id %q", d.ID)
		}
		return tx.Insert(domainTable, d)
	})
	if err != nil {
		return nil, err
	}
	return s.getDomain(s.st.Snapshot(), d.ID)
}

func (s *Service) getDomain(tx *store.Txn, id string) (*Domain, error) {
	d, err := store.Get[Domain](nil, tx, domainTable, id)
	if err != nil {
		return nil, notFound("domain", id)
	}
	return d.detach(), nil
}

// GetDomain returns a domain the caller may see.
func (s *Service) GetDomain(ctx context.Context, id string) (*Domain, error) {
	d, err := s.getDomain(s.st.Snapshot(), id)
	if err != nil {
		return nil, err
	}
	if err := s.see(ctx, "identity:get_domain", domainTarget(d), "domain", id); err != nil {
		return nil, err
	}
	return d, nil
}

// ListDomains lists the domains the caller may see.
func (s *Service) ListDomains(ctx context.Context, opts ListDomainsOpts) ([]*Domain, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	all, err := store.List[Domain](nil, s.st.Snapshot(), domainTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Domain
	for d := range all {
		if (opts.Name != "" && d.Name != opts.Name) || (opts.Enabled != nil && d.Enabled != *opts.Enabled) {
			continue
		}
		if s.policy.Allowed(c, "identity:get_domain", domainTarget(d)) {
			out = append(out, d.detach())
		}
	}
	return out, nil
}

// UpdateDomain changes a domain. Disabling a domain makes the tokens of its
// users and projects invalid.
func (s *Service) UpdateDomain(ctx context.Context, id string, opts UpdateDomainOpts) (*Domain, error) {
	var d *Domain
	err := s.update(ctx, func(tx *store.Txn) error {
		var err error
		if d, err = s.getDomain(tx, id); err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_domain", "identity:update_domain", domainTarget(d), "domain", id); err != nil {
			return err
		}
		if opts.Name != nil {
			if err := checkName("name", *opts.Name); err != nil {
				return err
			}
			if o, err := store.First[Domain](nil, tx, domainTable, "name", *opts.Name); err == nil && o.ID != id {
				return conflict("duplicate entry: domain with name %q", *opts.Name)
			}
			d.Name = *opts.Name
		}
		if opts.Description != nil {
			if err := checkDescription(*opts.Description); err != nil {
				return err
			}
			d.Description = *opts.Description
		}
		if opts.Enabled != nil {
			if id == DefaultDomainID && !*opts.Enabled {
				return fmt.Errorf("identity: the default domain cannot be disabled: %w", errdefs.ErrForbidden)
			}
			if d.Enabled && !*opts.Enabled {
				// Disabling revokes the tokens of the domain's users and
				// projects for good: enabling it again does not revive them.
				if err := s.revokeDomainTxn(tx, id); err != nil {
					return err
				}
			}
			d.Enabled = *opts.Enabled
		}
		if opts.Options != nil {
			d.Options = cloneMap(opts.Options)
		}
		return tx.Update(domainTable, d)
	})
	if err != nil {
		return nil, err
	}
	return s.getDomain(s.st.Snapshot(), id)
}

// DeleteDomain deletes a disabled domain that holds no projects, users or
// groups.
func (s *Service) DeleteDomain(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *store.Txn) error {
		d, err := s.getDomain(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_domain", "identity:delete_domain", domainTarget(d), "domain", id); err != nil {
			return err
		}
		if d.Enabled {
			return fmt.Errorf("identity: cannot delete a domain that is enabled, please disable it first: %w", errdefs.ErrForbidden)
		}
		for _, tb := range []string{projectTable, userTable, groupTable} {
			if has, err := tableHas(tx, tb, "domain", id); err != nil {
				return err
			} else if has {
				return conflict("domain %s is not empty", id)
			}
		}
		if err := deleteAssignmentsTxn(tx, "target", key(targetDomain, id)); err != nil {
			return err
		}
		return tx.Delete(domainTable, id)
	})
}

// see checks a read rule; a denied read is answered as not found.
func (s *Service) see(ctx context.Context, action string, t Target, kind, id string) error {
	c, err := requireCredentials(ctx)
	if err != nil {
		return err
	}
	if !s.policy.Allowed(c, action, t) {
		return notFound(kind, id)
	}
	return nil
}

// authorize checks a read rule (not found if denied), then a write rule
// (forbidden if denied).
func (s *Service) authorize(ctx context.Context, read, write string, t Target, kind, id string) error {
	if err := s.see(ctx, read, t, kind, id); err != nil {
		return err
	}
	return s.policy.Enforce(ctx, write, t)
}

// tableHas reports whether any record of table matches index value v.
func tableHas(tx *store.Txn, table, idx, v string) (bool, error) {
	var has bool
	var err error
	switch table {
	case projectTable:
		has, err = any1[Project](tx, table, idx, v)
	case userTable:
		has, err = any1[User](tx, table, idx, v)
	case groupTable:
		has, err = any1[Group](tx, table, idx, v)
	}
	return has, err
}

func any1[T any](tx *store.Txn, table, idx, v string) (bool, error) {
	it, err := store.List[T](nil, tx, table, idx, v)
	if err != nil {
		return false, err
	}
	for range it {
		return true, nil
	}
	return false, nil
}

// revokeDomainTxn writes revocation events for the users and projects of
// a domain.
func (s *Service) revokeDomainTxn(tx *store.Txn, domainID string) error {
	var evs []Revocation
	users, err := store.List[User](nil, tx, userTable, "domain", domainID)
	if err != nil {
		return err
	}
	for u := range users {
		evs = append(evs, Revocation{UserID: u.ID})
	}
	projects, err := store.List[Project](nil, tx, projectTable, "domain", domainID)
	if err != nil {
		return err
	}
	for p := range projects {
		evs = append(evs, Revocation{ProjectID: p.ID})
	}
	for _, ev := range evs {
		if err := s.revokeTxn(tx, ev); err != nil {
			return err
		}
	}
	return nil
}
