package compute

import (
	"context"
	"slices"
	"time"

	"github.com/stratuskit/stratus/compute/scheduler"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// ServerGroup places its members together or apart.
type ServerGroup struct {
	store.Meta
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Policy    string `json:"policy"`
	// MaxServerPerHost is rules.max_server_per_host (anti-affinity, 2.64).
	MaxServerPerHost int       `json:"max_server_per_host,omitempty"`
	Members          []string  `json:"members"`
	Created          time.Time `json:"created"`
}

// StoreKey implements store.Record.
func (g *ServerGroup) StoreKey() string { return g.ID }

// CreateServerGroupOpts creates a server group.
type CreateServerGroupOpts struct {
	Name             string
	Policy           string
	MaxServerPerHost int
}

// CreateServerGroup creates a server group in the caller's project,
// counted against the server_groups quota.
func (s *Service) CreateServerGroup(ctx context.Context, o CreateServerGroupOpts) (*ServerGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.enforce(ctx, "compute:server_group:create", c.ProjectID); err != nil {
		return nil, err
	}
	if err := checkName("name", o.Name); err != nil {
		return nil, err
	}
	switch scheduler.GroupPolicy(o.Policy) {
	case scheduler.Affinity, scheduler.AntiAffinity, scheduler.SoftAffinity, scheduler.SoftAntiAffinity:
	default:
		return nil, errdefs.Invalid("policy", "must be one of affinity, anti-affinity, soft-affinity, soft-anti-affinity")
	}
	if o.MaxServerPerHost < 0 || (o.MaxServerPerHost > 0 && o.Policy != string(scheduler.AntiAffinity)) {
		return nil, errdefs.Invalid("rules", "max_server_per_host is a positive integer for anti-affinity only")
	}
	g := &ServerGroup{ID: newUUID(), Name: o.Name, ProjectID: c.ProjectID, UserID: c.UserID, Policy: o.Policy,
		MaxServerPerHost: o.MaxServerPerHost, Members: []string{}, Created: s.st.Now().UTC()}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if err := s.chargeTxn(tx, c.ProjectID, QuotaUsage{ServerGroups: 1}); err != nil {
			return err
		}
		return tx.Insert(groupTable, g)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// GetServerGroup returns a server group the caller may see.
func (s *Service) GetServerGroup(ctx context.Context, id string) (*ServerGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	g, err := store.Get[ServerGroup](nil, s.st.Snapshot(), groupTable, id)
	if err != nil || !visible(c, g.ProjectID) {
		return nil, notFound("server group", id)
	}
	if _, err := s.enforce(ctx, "compute:server_group:get", g.ProjectID); err != nil {
		return nil, err
	}
	return g, nil
}

// ListServerGroups returns the caller's project's groups, or every
// project's with allProjects (system readers).
func (s *Service) ListServerGroups(ctx context.Context, allProjects bool) ([]*ServerGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if allProjects {
		if _, err := s.enforce(ctx, "compute:server_group:all_tenants", ""); err != nil {
			return nil, err
		}
	} else if _, err := s.enforce(ctx, "compute:server_group:get", c.ProjectID); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	var out []*ServerGroup
	if allProjects {
		it, err := store.List[ServerGroup](nil, tx, groupTable, store.IDIndex)
		if err != nil {
			return nil, err
		}
		out = slices.Collect(it)
	} else {
		it, err := store.List[ServerGroup](nil, tx, groupTable, "project", c.ProjectID)
		if err != nil {
			return nil, err
		}
		out = slices.Collect(it)
	}
	return out, nil
}

// DeleteServerGroup deletes a group; its members stay.
func (s *Service) DeleteServerGroup(ctx context.Context, id string) error {
	g, err := s.GetServerGroup(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.enforce(ctx, "compute:server_group:delete", g.ProjectID); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(groupTable, id); err != nil {
			return notFound("server group", id)
		}
		return s.chargeTxn(tx, g.ProjectID, QuotaUsage{ServerGroups: -1})
	})
}

// addMemberTxn adds server ids to group gid inside tx, checking
// server_group_members.
func (s *Service) addMemberTxn(tx *store.Txn, gid, projectID string, ids []string) error {
	g, err := store.Get[ServerGroup](nil, tx, groupTable, gid)
	if err != nil || g.ProjectID != projectID {
		return errdefs.Invalid("os:scheduler_hints.group", "server group %s not found", gid)
	}
	limit := s.quotaFor(tx, projectID).ServerGroupMembers
	if limit >= 0 && len(g.Members)+len(ids) > limit {
		return quotaError("server_group_members", limit, len(g.Members), len(ids))
	}
	g.Members = append(slices.Clone(g.Members), ids...)
	return tx.Update(groupTable, g)
}

// removeMemberTxn drops a server from its group, if the group still exists.
func removeMemberTxn(tx *store.Txn, gid, serverID string) error {
	if gid == "" {
		return nil
	}
	g, err := store.Get[ServerGroup](nil, tx, groupTable, gid)
	if err != nil {
		return nil //nolint:nilerr // the group was deleted: nothing to remove
	}
	i := slices.Index(g.Members, serverID)
	if i < 0 {
		return nil
	}
	g.Members = slices.Delete(slices.Clone(g.Members), i, i+1)
	return tx.Update(groupTable, g)
}
