package network

import (
	"context"
	"maps"
	"slices"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Quota resources, as Neutron names them.
const (
	resNetwork       = "network"
	resSubnet        = "subnet"
	resPort          = "port"
	resRouter        = "router"
	resFloatingIP    = "floatingip"
	resSecurityGroup = "security_group"
	resRule          = "security_group_rule"
)

// QuotaResources lists the resources a quota limits.
var QuotaResources = []string{resNetwork, resSubnet, resPort, resRouter, resFloatingIP, resSecurityGroup, resRule}

// Quota maps a resource name (QuotaResources) to its limit; -1 means
// unlimited.
type Quota map[string]int

// neutronDefaults are Neutron's default quotas.
var neutronDefaults = Quota{resNetwork: 100, resSubnet: 100, resPort: 500, resRouter: 10, resFloatingIP: 50,
	resSecurityGroup: 10, resRule: 100}

func (q Quota) withDefaults() Quota {
	out := maps.Clone(neutronDefaults)
	for k, v := range q {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// QuotaDetail is a resource's limit and usage.
type QuotaDetail struct {
	Limit    int `json:"limit"`
	Used     int `json:"used"`
	Reserved int `json:"reserved"`
}

type quotaRecord struct {
	store.Meta
	ProjectID string `json:"project_id"`
	Limits    Quota  `json:"limits"`
}

func (q *quotaRecord) StoreKey() string { return q.ProjectID }

var quotaTableDef = store.Table{Name: quotaTable, New: func() store.Record { return new(quotaRecord) }}

// usage counts a project's resources; it changes in the same transaction
// as the resources, so it is exact.
type usage struct {
	store.Meta
	ProjectID string         `json:"project_id"`
	Used      map[string]int `json:"used"`
}

func (u *usage) StoreKey() string { return u.ProjectID }

var usageTableDef = store.Table{Name: usageTable, New: func() store.Record { return new(usage) }}

func (s *Service) limitsTx(tx *store.Txn, project string) Quota {
	q := maps.Clone(s.quota)
	if r, err := store.Get[quotaRecord](nil, tx, quotaTable, project); err == nil {
		maps.Copy(q, r.Limits)
	}
	return q
}

// chargeTxn adds delta to the project's usage of res, failing with
// ErrQuotaExceeded (Neutron's OverQuota, 409) when a positive delta would
// pass the limit.
func (s *Service) chargeTxn(tx *store.Txn, project, res string, delta int) error {
	return s.usageTxn(tx, project, res, delta, true)
}

// addUsageTxn counts resources the service creates itself (a default
// group's rules) without checking the limit.
func (s *Service) addUsageTxn(tx *store.Txn, project, res string, delta int) error {
	return s.usageTxn(tx, project, res, delta, false)
}

func (s *Service) usageTxn(tx *store.Txn, project, res string, delta int, check bool) error {
	if project == "" || delta == 0 {
		return nil
	}
	u, err := store.Get[usage](nil, tx, usageTable, project)
	fresh := err != nil
	if fresh {
		u = &usage{ProjectID: project, Used: map[string]int{}}
	}
	n := u.Used[res] + delta
	if delta > 0 && check {
		if lim := s.limitsTx(tx, project)[res]; lim >= 0 && n > lim {
			return fault("OverQuota", errdefs.ErrQuotaExceeded, "quota exceeded for resources: ['%s']", res)
		}
	}
	u.Used = maps.Clone(u.Used)
	u.Used[res] = max(n, 0)
	if fresh {
		return tx.Insert(usageTable, u)
	}
	return tx.Update(usageTable, u)
}

// GetQuota returns a project's limits. A member may read its own.
func (s *Service) GetQuota(ctx context.Context, project string) (Quota, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !s.canRead(c, project) {
		return nil, fault("PolicyNotAuthorized", errdefs.ErrForbidden, "the policy does not allow reading quotas of project %s", project)
	}
	return s.limitsTx(s.st.Snapshot(), project), nil
}

// DefaultQuota returns the limits of a project with none of its own.
func (s *Service) DefaultQuota() Quota { return maps.Clone(s.quota) }

// QuotaDetails returns a project's limits with its usage.
func (s *Service) QuotaDetails(ctx context.Context, project string) (map[string]QuotaDetail, error) {
	q, err := s.GetQuota(ctx, project)
	if err != nil {
		return nil, err
	}
	out := map[string]QuotaDetail{}
	u, err := store.Get[usage](nil, s.st.Snapshot(), usageTable, project)
	for k, v := range q {
		d := QuotaDetail{Limit: v}
		if err == nil {
			d.Used = u.Used[k]
		}
		out[k] = d
	}
	return out, nil
}

// UpdateQuota sets some of a project's limits (admin only).
func (s *Service) UpdateQuota(ctx context.Context, project string, limits Quota) (Quota, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(c, "quotas"); err != nil {
		return nil, err
	}
	if project == "" || len(project) > 64 {
		return nil, errdefs.Invalid("project_id", "invalid project id")
	}
	for k, v := range limits {
		if !slices.Contains(QuotaResources, k) {
			return nil, errdefs.Invalid(k, "unknown quota resource")
		}
		if v < -1 {
			return nil, errdefs.Invalid(k, "must be -1 or more")
		}
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		r, err := store.Get[quotaRecord](nil, tx, quotaTable, project)
		if err != nil {
			return tx.Insert(quotaTable, &quotaRecord{ProjectID: project, Limits: maps.Clone(limits)})
		}
		l := maps.Clone(r.Limits)
		if l == nil {
			l = Quota{}
		}
		maps.Copy(l, limits)
		r.Limits = l
		return tx.Update(quotaTable, r)
	})
	if err != nil {
		return nil, err
	}
	return s.limitsTx(s.st.Snapshot(), project), nil
}

// ResetQuota returns a project to the default limits (admin only).
func (s *Service) ResetQuota(ctx context.Context, project string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := s.requireAdmin(c, "quotas"); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(quotaTable, project); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	})
}

// ListQuotas returns the projects with limits of their own (admin only).
func (s *Service) ListQuotas(ctx context.Context) (map[string]Quota, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(c, "quotas"); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[quotaRecord](nil, tx, quotaTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	out := map[string]Quota{}
	for r := range it {
		out[r.ProjectID] = s.limitsTx(tx, r.ProjectID)
	}
	return out, nil
}
