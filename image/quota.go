package image

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Quota bounds what one project may hold, like Glance's unified limits
// image_count_total, image_size_total and image_stage_total. Zero means
// unlimited.
type Quota struct {
	// Images is the number of images.
	Images int64 `json:"images,omitempty"`
	// Bytes is the total size of the project's image data.
	Bytes int64 `json:"bytes,omitempty"`
	// StagedBytes is the total size of data staged for import.
	StagedBytes int64 `json:"staged_bytes,omitempty"`
}

func (q Quota) validate() error {
	if q.Images < 0 || q.Bytes < 0 || q.StagedBytes < 0 {
		return errdefs.Invalid("quota", "limits must not be negative")
	}
	return nil
}

// Usage is what a project holds, counted as its quota is.
type Usage struct {
	Images      int64
	Bytes       int64
	StagedBytes int64
}

type quotaRecord struct {
	store.Meta
	ProjectID string `json:"project_id"`
	Quota     Quota  `json:"quota"`
}

func (q *quotaRecord) StoreKey() string { return q.ProjectID }

var quotaTableDef = store.Table{Name: quotaTable, New: func() store.Record { return new(quotaRecord) }}

// SetQuota sets a project's quota (admin only), replacing Config.Quota for
// it.
func (s *Service) SetQuota(ctx context.Context, projectID string, q Quota) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := s.allowed(c, "image:set_quota", projectID); err != nil {
		return err
	}
	if err := q.validate(); err != nil {
		return err
	}
	if projectID == "" {
		return errdefs.Invalid("project_id", "must not be empty")
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		return tx.Put(quotaTable, &quotaRecord{ProjectID: projectID, Quota: q})
	})
}

// quotaOf returns the quota of a project.
func (s *Service) quotaOf(tx *store.Txn, project string) Quota {
	if r, err := store.Get[quotaRecord](nil, tx, quotaTable, project); err == nil {
		return r.Quota
	}
	return s.cfg.Quota
}

// usage counts what project holds: every image, the bytes of stored
// images, and staged bytes. Transfers in flight count once they commit.
func usage(tx *store.Txn, project string) (Usage, error) {
	var u Usage
	it, err := store.List[Image](nil, tx, imageTable, "owner", project)
	if err != nil {
		return u, err
	}
	for img := range it {
		u.Images++
		if img.BlobKey != "" && img.Size != nil {
			u.Bytes += *img.Size
		}
		if img.Staged != nil {
			u.StagedBytes += img.Staged.Size
		}
	}
	return u, nil
}

// checkQuota fails with ErrQuotaExceeded if adding images, bytes and staged
// bytes to project's usage goes over its quota.
func (s *Service) checkQuota(tx *store.Txn, project string, images, bytes, staged int64) error {
	q := s.quotaOf(tx, project)
	if q == (Quota{}) {
		return nil
	}
	u, err := usage(tx, project)
	if err != nil {
		return err
	}
	over := func(limit, used, add int64, what string) error {
		if limit > 0 && add > 0 && used+add > limit {
			return fmt.Errorf("image: project %s is over its limit for %s (%d of %d): %w", project, what, used+add, limit, errdefs.ErrQuotaExceeded)
		}
		return nil
	}
	if err := over(q.Images, u.Images, images, "image_count_total"); err != nil {
		return err
	}
	if err := over(q.Bytes, u.Bytes, bytes, "image_size_total"); err != nil {
		return err
	}
	return over(q.StagedBytes, u.StagedBytes, staged, "image_stage_total")
}

// remaining returns how many more bytes (data or staged) project may
// store, or -1 for unlimited.
func (s *Service) remaining(project string, staged bool) (int64, error) {
	tx := s.st.Snapshot()
	q := s.quotaOf(tx, project)
	limit := q.Bytes
	if staged {
		limit = q.StagedBytes
	}
	if limit == 0 {
		return -1, nil
	}
	u, err := usage(tx, project)
	if err != nil {
		return 0, err
	}
	used := u.Bytes
	if staged {
		used = u.StagedBytes
	}
	return max(limit-used, 0), nil
}
