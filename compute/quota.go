package compute

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// QuotaSet is a project's limits; -1 means unlimited.
type QuotaSet struct {
	store.Meta
	ProjectID          string `json:"project_id"`
	Instances          int    `json:"instances"`
	Cores              int    `json:"cores"`
	RAMMB              int    `json:"ram"`
	KeyPairs           int    `json:"key_pairs"`
	ServerGroups       int    `json:"server_groups"`
	ServerGroupMembers int    `json:"server_group_members"`
	MetadataItems      int    `json:"metadata_items"`
}

// StoreKey implements store.Record.
func (q *QuotaSet) StoreKey() string { return q.ProjectID }

// DefaultQuotaSet returns Nova's default limits.
func DefaultQuotaSet() QuotaSet {
	return QuotaSet{Instances: 10, Cores: 20, RAMMB: 51200, KeyPairs: 100, ServerGroups: 10, ServerGroupMembers: 10, MetadataItems: 128}
}

// QuotaUsage is what a project uses of the resources counted at create
// (instances, cores, RAM, server groups). It is changed in the same store
// transaction as the servers and groups it counts, so it always equals
// them.
type QuotaUsage struct {
	store.Meta
	ProjectID    string `json:"project_id"`
	Instances    int    `json:"instances"`
	Cores        int    `json:"cores"`
	RAMMB        int    `json:"ram"`
	ServerGroups int    `json:"server_groups"`
}

// StoreKey implements store.Record.
func (u *QuotaUsage) StoreKey() string { return u.ProjectID }

func (s *Service) quotaFor(tx *store.Txn, projectID string) QuotaSet {
	if q, err := store.Get[QuotaSet](nil, tx, quotaTable, projectID); err == nil {
		return *q
	}
	if s.cfg.DefaultQuota != nil {
		q := *s.cfg.DefaultQuota
		q.ProjectID = projectID
		return q
	}
	q := DefaultQuotaSet()
	q.ProjectID = projectID
	return q
}

func usageOf(tx *store.Txn, projectID string) *QuotaUsage {
	if u, err := store.Get[QuotaUsage](nil, tx, quotaUseTable, projectID); err == nil {
		return u
	}
	return &QuotaUsage{ProjectID: projectID}
}

// quotaError is Nova's message, naming the resource.
func quotaError(resource string, limit, used, want int) error {
	return fmt.Errorf("compute: quota exceeded for %s: requested %d, but already used %d of %d %s: %w",
		resource, want, used, limit, resource, errdefs.ErrQuotaExceeded)
}

// chargeTxn adds d to the project's usage inside tx, failing with a quota
// error naming the first resource over its limit when d is positive.
func (s *Service) chargeTxn(tx *store.Txn, projectID string, d QuotaUsage) error {
	u := usageOf(tx, projectID)
	q := s.quotaFor(tx, projectID)
	for _, c := range []struct {
		name              string
		limit, used, want int
	}{
		{"instances", q.Instances, u.Instances, d.Instances},
		{"cores", q.Cores, u.Cores, d.Cores},
		{"ram", q.RAMMB, u.RAMMB, d.RAMMB},
		{"server_groups", q.ServerGroups, u.ServerGroups, d.ServerGroups},
	} {
		if c.want > 0 && c.limit >= 0 && c.used+c.want > c.limit {
			return quotaError(c.name, c.limit, c.used, c.want)
		}
	}
	u.Instances += d.Instances
	u.Cores += d.Cores
	u.RAMMB += d.RAMMB
	u.ServerGroups += d.ServerGroups
	if u.Instances < 0 || u.Cores < 0 || u.RAMMB < 0 || u.ServerGroups < 0 {
		return fmt.Errorf("compute: quota usage of project %s would go negative: %w", projectID, errdefs.ErrConflict)
	}
	return tx.Put(quotaUseTable, u)
}

// Quota is one resource's limit and use, for os-quota-sets detail and
// limits.
type Quota struct {
	Limit, InUse, Reserved int
}

// ProjectQuota is a project's quota with usage.
type ProjectQuota struct {
	ProjectID string
	Set       QuotaSet
	Usage     QuotaUsage
	KeyPairs  int // of the caller's user
}

// GetQuota returns a project's limits and usage. Members read their own
// project; system readers any.
func (s *Service) GetQuota(ctx context.Context, projectID string) (*ProjectQuota, error) {
	c, err := s.enforce(ctx, "compute:quota:get", projectID)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	pq := &ProjectQuota{ProjectID: projectID, Set: s.quotaFor(tx, projectID), Usage: *usageOf(tx, projectID)}
	if it, err := store.List[Keypair](nil, tx, keypairTable, store.IDIndex+"_prefix", c.UserID+"/"); err == nil {
		for range it {
			pq.KeyPairs++
		}
	}
	return pq, nil
}

// UpdateQuotaOpts changes limits; nil fields are kept.
type UpdateQuotaOpts struct {
	Instances, Cores, RAMMB, KeyPairs, ServerGroups, ServerGroupMembers, MetadataItems *int
}

// UpdateQuota sets a project's limits (admin only).
func (s *Service) UpdateQuota(ctx context.Context, projectID string, o UpdateQuotaOpts) (*QuotaSet, error) {
	if _, err := s.enforce(ctx, "compute:quota:update", projectID); err != nil {
		return nil, err
	}
	if err := checkName("project_id", projectID); err != nil {
		return nil, err
	}
	var out QuotaSet
	err := s.update(ctx, func(tx *store.Txn) error {
		q := s.quotaFor(tx, projectID)
		for _, f := range []struct {
			name string
			v    *int
			dst  *int
		}{
			{"instances", o.Instances, &q.Instances}, {"cores", o.Cores, &q.Cores}, {"ram", o.RAMMB, &q.RAMMB},
			{"key_pairs", o.KeyPairs, &q.KeyPairs}, {"server_groups", o.ServerGroups, &q.ServerGroups},
			{"server_group_members", o.ServerGroupMembers, &q.ServerGroupMembers}, {"metadata_items", o.MetadataItems, &q.MetadataItems},
		} {
			if f.v == nil {
				continue
			}
			if *f.v < -1 {
				return errdefs.Invalid("quota_set."+f.name, "must be -1 or more")
			}
			*f.dst = *f.v
		}
		out = q
		return tx.Put(quotaTable, &q)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteQuota reverts a project to the default limits (admin only).
func (s *Service) DeleteQuota(ctx context.Context, projectID string) error {
	if _, err := s.enforce(ctx, "compute:quota:update", projectID); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(quotaTable, projectID); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	})
}

// DefaultQuota returns the limits of projects without their own.
func (s *Service) DefaultQuota() QuotaSet {
	if s.cfg.DefaultQuota != nil {
		return *s.cfg.DefaultQuota
	}
	return DefaultQuotaSet()
}
