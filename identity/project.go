package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// MaxProjectDepth is the deepest a project hierarchy may be, as Keystone's
// max_project_tree_depth.
const MaxProjectDepth = 5

// Project is a Keystone project. A top-level project has an empty
// ParentID (the API shows its domain id there, as Keystone does).
type Project struct {
	store.Meta
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DomainID    string         `json:"domain_id"`
	Description string         `json:"description"`
	Enabled     bool           `json:"enabled"`
	ParentID    string         `json:"parent_id,omitempty"`
	Tags        []string       `json:"tags,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
}

// StoreKey implements store.Record.
func (p *Project) StoreKey() string { return p.ID }

// detach gives p its own copies of the slices and maps it shares with the
// stored record, so that a caller changing them cannot change the store.
func (p *Project) detach() *Project {
	p.Tags, p.Options = slices.Clone(p.Tags), cloneMap(p.Options)
	return p
}

var projectTableDef = store.Table{
	Name: projectTable,
	New:  func() store.Record { return new(Project) },
	Indexes: []*memdbIndex{
		index("name", true, func(o any) string { p := o.(*Project); return key(p.DomainID, p.Name) }),
		index("domain", false, func(o any) string { return o.(*Project).DomainID }),
		index("parent", false, func(o any) string { return o.(*Project).ParentID }),
	},
}

// CreateProjectOpts are the fields of a new project.
type CreateProjectOpts struct {
	Name string
	// DomainID defaults to the parent's domain, else the default domain.
	DomainID string
	// ParentID is the parent project; empty (or the domain's id) means a
	// top-level project.
	ParentID    string
	Description string
	// Enabled defaults to true.
	Enabled *bool
	Tags    []string
	Options map[string]any
}

// UpdateProjectOpts are the fields to change; nil means unchanged.
type UpdateProjectOpts struct {
	Name        *string
	Description *string
	Enabled     *bool
	Tags        *[]string
	Options     map[string]any
}

// ListProjectsOpts filters ListProjects. Empty fields do not filter.
type ListProjectsOpts struct {
	Name         string
	NameContains string
	DomainID     string
	// ParentID lists the children of a project, or the top-level projects
	// of a domain when it is a domain id.
	ParentID   string
	Enabled    *bool
	Tags       []string // all of them
	TagsAny    []string // at least one
	NotTags    []string // not all of them
	NotTagsAny []string // none of them
}

func projectTarget(p *Project) Target { return Target{ProjectID: p.ID, DomainID: p.DomainID} }

func checkTags(tags []string) error {
	if len(tags) > 80 {
		return errdefs.Invalid("tags", "at most 80 tags are allowed")
	}
	for _, t := range tags {
		if err := checkName("tags", t); err != nil {
			return err
		}
		if strings.ContainsAny(t, "/,") {
			return errdefs.Invalid("tags", "tag %q must not contain '/' or ','", t)
		}
	}
	return nil
}

func dedupe(tags []string) []string {
	var out []string
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// CreateProject creates a project. Cloud admins and admins of the domain.
func (s *Service) CreateProject(ctx context.Context, opts CreateProjectOpts) (*Project, error) {
	if err := checkName("name", opts.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(opts.Description); err != nil {
		return nil, err
	}
	if err := checkTags(opts.Tags); err != nil {
		return nil, err
	}
	p := &Project{ID: newID(), Name: opts.Name, DomainID: opts.DomainID, ParentID: opts.ParentID, Description: opts.Description,
		Enabled: ptrOr(opts.Enabled, true), Tags: dedupe(opts.Tags), Options: cloneMap(opts.Options)}
	err := s.update(ctx, func(tx *store.Txn) error {
		if p.ParentID != "" {
			if _, err := s.getDomain(tx, p.ParentID); err == nil {
				if p.DomainID != "" && p.DomainID != p.ParentID {
					return errdefs.Invalid("parent_id", "the parent domain must be the project's domain")
				}
				p.DomainID, p.ParentID = p.ParentID, ""
			}
		}
		if p.ParentID != "" {
			parent, err := store.Get[Project](nil, tx, projectTable, p.ParentID)
			if err != nil {
				return errdefs.Invalid("parent_id", "project %s does not exist", p.ParentID)
			}
			if p.DomainID == "" {
				p.DomainID = parent.DomainID
			} else if p.DomainID != parent.DomainID {
				return errdefs.Invalid("domain_id", "must be the parent project's domain")
			}
			if depth(tx, parent) >= MaxProjectDepth {
				return errdefs.Invalid("parent_id", "the project hierarchy may be at most %d deep", MaxProjectDepth)
			}
		}
		if p.DomainID == "" {
			p.DomainID = DefaultDomainID
		}
		d, err := s.getDomain(tx, p.DomainID)
		if err != nil {
			return errdefs.Invalid("domain_id", "domain %s does not exist", p.DomainID)
		}
		_ = d
		if err := s.policy.Enforce(ctx, "identity:create_project", Target{DomainID: p.DomainID, ProjectID: p.ParentID}); err != nil {
			return err
		}
		if _, err := store.First[Project](nil, tx, projectTable, "name", key(p.DomainID, p.Name)); err == nil {
			return conflict("duplicate entry: project with name %q in domain %s", p.Name, p.DomainID)
		}
		if err := tx.Insert(projectTable, p); err != nil {
			return err
		}
		return tx.Emit("identity.project.created", p.ID, p.ID, nil)
	})
	if err != nil {
		return nil, err
	}
	return s.getProject(s.st.Snapshot(), p.ID)
}

// depth returns the number of projects from p to the top, p included.
func depth(tx *store.Txn, p *Project) int {
	n := 1
	for p.ParentID != "" && n <= MaxProjectDepth+1 {
		parent, err := store.Get[Project](nil, tx, projectTable, p.ParentID)
		if err != nil {
			break
		}
		p = parent
		n++
	}
	return n
}

func (s *Service) getProject(tx *store.Txn, id string) (*Project, error) {
	p, err := store.Get[Project](nil, tx, projectTable, id)
	if err != nil {
		return nil, notFound("project", id)
	}
	return p.detach(), nil
}

// GetProject returns a project the caller may see: readers of its domain,
// system readers, and callers scoped to it.
func (s *Service) GetProject(ctx context.Context, id string) (*Project, error) {
	p, err := s.getProject(s.st.Snapshot(), id)
	if err != nil {
		return nil, err
	}
	if err := s.see(ctx, "identity:get_project", projectTarget(p), "project", id); err != nil {
		return nil, err
	}
	return p, nil
}

// ListProjects lists the projects the caller may see that match opts.
func (s *Service) ListProjects(ctx context.Context, opts ListProjectsOpts) ([]*Project, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	all, err := store.List[Project](nil, s.st.Snapshot(), projectTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Project
	for p := range all {
		if opts.match(p) && s.policy.Allowed(c, "identity:get_project", projectTarget(p)) {
			out = append(out, p.detach())
		}
	}
	return out, nil
}

func (o *ListProjectsOpts) match(p *Project) bool {
	switch {
	case o.Name != "" && p.Name != o.Name,
		o.NameContains != "" && !strings.Contains(strings.ToLower(p.Name), strings.ToLower(o.NameContains)),
		o.DomainID != "" && p.DomainID != o.DomainID,
		o.Enabled != nil && p.Enabled != *o.Enabled:
		return false
	}
	if o.ParentID != "" && p.ParentID != o.ParentID && (p.ParentID != "" || p.DomainID != o.ParentID) {
		return false
	}
	has := func(t string) bool { return slices.Contains(p.Tags, t) }
	all := func(ts []string) bool {
		for _, t := range ts {
			if !has(t) {
				return false
			}
		}
		return true
	}
	anyOf := func(ts []string) bool { return slices.ContainsFunc(ts, has) }
	if len(o.Tags) > 0 && !all(o.Tags) {
		return false
	}
	if len(o.TagsAny) > 0 && !anyOf(o.TagsAny) {
		return false
	}
	if len(o.NotTags) > 0 && all(o.NotTags) {
		return false
	}
	if len(o.NotTagsAny) > 0 && anyOf(o.NotTagsAny) {
		return false
	}
	return true
}

// Subtree returns the ids of the projects below id, depth first.
func (s *Service) subtree(tx *store.Txn, id string) []string {
	var out []string
	var walk func(string, int)
	walk = func(pid string, d int) {
		if d > MaxProjectDepth+1 {
			return
		}
		kids, err := store.List[Project](nil, tx, projectTable, "parent", pid)
		if err != nil {
			return
		}
		for k := range kids {
			out = append(out, k.ID)
			walk(k.ID, d+1)
		}
	}
	walk(id, 0)
	return out
}

// UpdateProject changes a project. Disabling it revokes its tokens.
func (s *Service) UpdateProject(ctx context.Context, id string, opts UpdateProjectOpts) (*Project, error) {
	err := s.update(ctx, func(tx *store.Txn) error {
		p, err := s.getProject(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_project", "identity:update_project", projectTarget(p), "project", id); err != nil {
			return err
		}
		if opts.Name != nil {
			if err := checkName("name", *opts.Name); err != nil {
				return err
			}
			if o, err := store.First[Project](nil, tx, projectTable, "name", key(p.DomainID, *opts.Name)); err == nil && o.ID != id {
				return conflict("duplicate entry: project with name %q in domain %s", *opts.Name, p.DomainID)
			}
			p.Name = *opts.Name
		}
		if opts.Description != nil {
			if err := checkDescription(*opts.Description); err != nil {
				return err
			}
			p.Description = *opts.Description
		}
		if opts.Tags != nil {
			if err := checkTags(*opts.Tags); err != nil {
				return err
			}
			p.Tags = dedupe(*opts.Tags)
		}
		if opts.Options != nil {
			p.Options = cloneMap(opts.Options)
		}
		disable := opts.Enabled != nil && !*opts.Enabled && p.Enabled
		if opts.Enabled != nil {
			p.Enabled = *opts.Enabled
		}
		if err := tx.Update(projectTable, p); err != nil {
			return err
		}
		if disable {
			return s.revokeTxn(tx, Revocation{ProjectID: id})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.getProject(s.st.Snapshot(), id)
}

// DeleteProject deletes a project without children, with its role
// assignments, application credentials and trusts, and revokes its tokens.
func (s *Service) DeleteProject(ctx context.Context, id string) error {
	return s.update(ctx, func(tx *store.Txn) error {
		p, err := s.getProject(tx, id)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, "identity:get_project", "identity:delete_project", projectTarget(p), "project", id); err != nil {
			return err
		}
		if has, err := any1[Project](tx, projectTable, "parent", id); err != nil {
			return err
		} else if has {
			return fmt.Errorf("identity: cannot delete project %s: it has children: %w", id, errdefs.ErrForbidden)
		}
		if err := deleteAssignmentsTxn(tx, "target", key(targetProject, id)); err != nil {
			return err
		}
		if err := deleteProjectDelegationsTxn(tx, id); err != nil {
			return err
		}
		if err := tx.Delete(projectTable, id); err != nil {
			return err
		}
		if err := s.revokeTxn(tx, Revocation{ProjectID: id}); err != nil {
			return err
		}
		return tx.Emit("identity.project.deleted", id, id, nil)
	})
}

// AddProjectTag adds one tag to a project.
func (s *Service) AddProjectTag(ctx context.Context, id, tag string) error {
	p, err := s.GetProject(ctx, id)
	if err != nil {
		return err
	}
	if slices.Contains(p.Tags, tag) {
		return nil
	}
	tags := append(slices.Clone(p.Tags), tag)
	_, err = s.UpdateProject(ctx, id, UpdateProjectOpts{Tags: &tags})
	return err
}

// DeleteProjectTag removes one tag from a project, or fails with
// errdefs.ErrNotFound if it has no such tag.
func (s *Service) DeleteProjectTag(ctx context.Context, id, tag string) error {
	p, err := s.GetProject(ctx, id)
	if err != nil {
		return err
	}
	if !slices.Contains(p.Tags, tag) {
		return notFound("tag", tag)
	}
	tags := slices.DeleteFunc(slices.Clone(p.Tags), func(t string) bool { return t == tag })
	_, err = s.UpdateProject(ctx, id, UpdateProjectOpts{Tags: &tags})
	return err
}
