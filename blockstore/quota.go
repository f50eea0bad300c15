package blockstore

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Quota resources. Per-type resources add "_<type name>" to volumes,
// gigabytes and snapshots.
const (
	QuotaVolumes         = "volumes"
	QuotaGigabytes       = "gigabytes"
	QuotaSnapshots       = "snapshots"
	QuotaBackups         = "backups"
	QuotaBackupGigabytes = "backup_gigabytes"
	QuotaGroups          = "groups"
	QuotaPerVolumeGiB    = "per_volume_gigabytes"
)

// DefaultQuota is Cinder's default quota (-1 is unlimited).
func DefaultQuota() map[string]int {
	return map[string]int{QuotaVolumes: 10, QuotaGigabytes: 1000, QuotaSnapshots: 10, QuotaBackups: 10,
		QuotaBackupGigabytes: 1000, QuotaGroups: 10, QuotaPerVolumeGiB: -1}
}

// QuotaSet is a project's quota limits, where they differ from the
// defaults.
type QuotaSet struct {
	store.Meta
	ProjectID string         `json:"project_id"`
	Limits    map[string]int `json:"limits"`
}

// StoreKey implements store.Record.
func (q *QuotaSet) StoreKey() string { return q.ProjectID }

// Usage is a project's use of one quota resource.
type Usage struct {
	Limit int `json:"limit"`
	InUse int `json:"in_use"`
	// Reserved is always 0: usage is counted from the records.
	Reserved  int `json:"reserved"`
	Allocated int `json:"allocated"`
}

type quotaDelta struct {
	volumes, gigabytes, snapshots, backups, backupGigabytes int
}

// limits returns project's limits: defaults, config, then the project's
// own, with -1 for per-type resources not set.
func (s *Service) limits(tx *store.Txn, project string) map[string]int {
	l := DefaultQuota()
	for k, v := range s.cfg.Quota {
		l[k] = v
	}
	if q, err := store.Get[QuotaSet](nil, tx, quotaTable, project); err == nil {
		maps.Copy(l, q.Limits)
	}
	return l
}

// usage counts project's use from the records.
func usage(tx *store.Txn, project string) (map[string]int, error) {
	u := map[string]int{}
	types := map[string]string{}
	tit, err := store.List[VolumeType](nil, tx, typeTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	for t := range tit {
		types[t.ID] = t.Name
	}
	vit, err := store.List[Volume](nil, tx, volumeTable, projectIndex, project)
	if err != nil {
		return nil, err
	}
	vtypes := map[string]string{}
	for v := range vit {
		vtypes[v.ID] = types[v.TypeID]
		if v.QuotaReleased {
			continue
		}
		u[QuotaVolumes]++
		u[QuotaGigabytes] += v.quotaSize()
		u[QuotaVolumes+"_"+types[v.TypeID]]++
		u[QuotaGigabytes+"_"+types[v.TypeID]] += v.quotaSize()
	}
	sit, err := store.List[Snapshot](nil, tx, snapshotTable, projectIndex, project)
	if err != nil {
		return nil, err
	}
	for sn := range sit {
		if sn.QuotaReleased {
			continue
		}
		u[QuotaSnapshots]++
		u[QuotaGigabytes] += sn.SizeGiB
		u[QuotaSnapshots+"_"+types[sn.TypeID]]++
		u[QuotaGigabytes+"_"+types[sn.TypeID]] += sn.SizeGiB
	}
	bit, err := store.List[Backup](nil, tx, backupTable, projectIndex, project)
	if err != nil {
		return nil, err
	}
	for b := range bit {
		if b.QuotaReleased {
			continue
		}
		u[QuotaBackups]++
		u[QuotaBackupGigabytes] += b.SizeGiB
	}
	return u, nil
}

// checkQuota fails with Cinder's message naming the resource if adding d
// to project's usage exceeds a limit.
func (s *Service) checkQuota(tx *store.Txn, project string, t *VolumeType, d quotaDelta) error {
	lim := s.limits(tx, project)
	u, err := usage(tx, project)
	if err != nil {
		return err
	}
	if pv := lim[QuotaPerVolumeGiB]; pv >= 0 && d.volumes > 0 && d.gigabytes > pv {
		return quotaError("VolumeSizeExceedsLimit: Requested volume size %dG is larger than maximum allowed limit %dG.", d.gigabytes, pv)
	}
	tn := typeName(t)
	type check struct {
		res  string
		add  int
		size bool
	}
	checks := []check{
		{QuotaVolumes, d.volumes, false}, {QuotaVolumes + "_" + tn, d.volumes, false},
		{QuotaSnapshots, d.snapshots, false}, {QuotaSnapshots + "_" + tn, d.snapshots, false},
		{QuotaGigabytes, d.gigabytes, true}, {QuotaGigabytes + "_" + tn, d.gigabytes, true},
		{QuotaBackups, d.backups, false}, {QuotaBackupGigabytes, d.backupGigabytes, true},
	}
	for _, c := range checks {
		limit, ok := lim[c.res]
		if c.add <= 0 || !ok || limit < 0 || u[c.res]+c.add <= limit {
			continue
		}
		switch {
		case c.size && strings.HasPrefix(c.res, QuotaBackupGigabytes):
			return quotaError("VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.", c.add, limit, u[c.res])
		case c.size:
			return quotaError("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed %s quota. Requested %dG, quota is %dG and %dG has been consumed.", c.res, c.add, limit, u[c.res])
		case strings.HasPrefix(c.res, QuotaSnapshots):
			return quotaError("SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded for quota '%s'.", limit, c.res)
		case c.res == QuotaBackups:
			return quotaError("BackupLimitExceeded: Maximum number of backups allowed (%d) exceeded for quota '%s'.", limit, c.res)
		default:
			return quotaError("VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota '%s'.", limit, c.res)
		}
	}
	return nil
}

func quotaError(format string, args ...any) error {
	return errdefs.Wrap(errdefs.ErrQuotaExceeded, fmt.Errorf(format, args...))
}

// GetQuota returns a project's limits and usage (its own project for
// readers of it; any for readers of the cloud). Per-type resources of
// every type are included.
func (s *Service) GetQuota(ctx context.Context, project string) (map[string]Usage, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !sees(c, project) {
		return nil, notFound("Project", project)
	}
	if err := s.allowed(c, "volume:quota_show", project); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	lim := s.limits(tx, project)
	u, err := usage(tx, project)
	if err != nil {
		return nil, err
	}
	tit, err := store.List[VolumeType](nil, tx, typeTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	for t := range tit {
		for _, r := range []string{QuotaVolumes, QuotaGigabytes, QuotaSnapshots} {
			if _, ok := lim[r+"_"+t.Name]; !ok {
				lim[r+"_"+t.Name] = -1
			}
		}
	}
	out := make(map[string]Usage, len(lim))
	for k, l := range lim {
		out[k] = Usage{Limit: l, InUse: u[k]}
	}
	return out, nil
}

// SetQuota sets some of a project's limits (admin only); -1 is unlimited.
func (s *Service) SetQuota(ctx context.Context, project string, limits map[string]int) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := s.allowed(c, "volume:quota_update", project); err != nil {
		return err
	}
	if project == "" || len(project) > 64 {
		return invalid("project_id", "must be a project id")
	}
	for k, v := range limits {
		base := k
		for _, r := range []string{QuotaVolumes, QuotaGigabytes, QuotaSnapshots} {
			if strings.HasPrefix(k, r+"_") {
				base = r
			}
		}
		if _, ok := DefaultQuota()[base]; !ok {
			return invalid("quota_set", "Invalid input received: Bad key(s) in quota set: %s", k)
		}
		if v < -1 {
			return invalid("quota_set", "Invalid input received: Quota limit %d for %s must be -1 or greater.", v, k)
		}
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		q, err := store.Get[QuotaSet](nil, tx, quotaTable, project)
		if err != nil {
			q = &QuotaSet{ProjectID: project, Limits: map[string]int{}}
		}
		maps.Copy(q.Limits, limits)
		return tx.Put(quotaTable, q)
	})
}

// DeleteQuota puts a project's limits back to the defaults (admin only).
func (s *Service) DeleteQuota(ctx context.Context, project string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := s.allowed(c, "volume:quota_update", project); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(quotaTable, project); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	})
}
