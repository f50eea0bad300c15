package compute

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Flavor is a server size.
type Flavor struct {
	store.Meta
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	VCPUs       int               `json:"vcpus"`
	RAMMB       int               `json:"ram"`
	DiskGB      int               `json:"disk"`
	EphemeralGB int               `json:"ephemeral"`
	SwapMB      int               `json:"swap"`
	RxTxFactor  float64           `json:"rxtx_factor"`
	IsPublic    bool              `json:"is_public"`
	Disabled    bool              `json:"disabled"`
	Description string            `json:"description,omitempty"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
	Created     time.Time         `json:"created"`
}

// StoreKey implements store.Record.
func (f *Flavor) StoreKey() string { return f.ID }

// flavorAccess grants a project a private flavor.
type flavorAccess struct {
	store.Meta
	FlavorID  string `json:"flavor_id"`
	ProjectID string `json:"project_id"`
}

func (a *flavorAccess) StoreKey() string { return a.FlavorID + "/" + a.ProjectID }

// CreateFlavorOpts creates a flavor.
type CreateFlavorOpts struct {
	// ID is the flavor id; empty or "auto" means a generated UUID.
	ID          string
	Name        string
	VCPUs       int
	RAMMB       int
	DiskGB      int
	EphemeralGB int
	SwapMB      int
	RxTxFactor  float64
	// IsPublic defaults to true.
	IsPublic    *bool
	Description string
}

const maxName = 255

func checkName(field, name string) error {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return errdefs.Invalid(field, "must not be empty")
	case len(name) > maxName || !utf8.ValidString(name):
		return errdefs.Invalid(field, "must be valid UTF-8 of at most %d bytes", maxName)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errdefs.Invalid(field, "must not contain control characters")
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// CreateFlavor creates a flavor (admin only).
func (s *Service) CreateFlavor(ctx context.Context, o CreateFlavorOpts) (*Flavor, error) {
	if _, err := s.enforce(ctx, "compute:flavor:create", ""); err != nil {
		return nil, err
	}
	if err := checkName("name", o.Name); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		field string
		v     int
		min   int
	}{{"vcpus", o.VCPUs, 1}, {"ram", o.RAMMB, 1}, {"disk", o.DiskGB, 0}, {"OS-FLV-EXT-DATA:ephemeral", o.EphemeralGB, 0}, {"swap", o.SwapMB, 0}} {
		if c.v < c.min || c.v > 1<<30 {
			return nil, errdefs.Invalid(c.field, "must be an integer between %d and %d", c.min, 1<<30)
		}
	}
	if o.ID == "" || o.ID == "auto" {
		o.ID = newUUID()
	} else if err := checkName("id", o.ID); err != nil || strings.ContainsAny(o.ID, "/?#%") {
		return nil, errdefs.Invalid("id", "must be 1-255 printable characters without / ? # %%")
	}
	if o.RxTxFactor <= 0 {
		o.RxTxFactor = 1
	}
	f := &Flavor{ID: o.ID, Name: strings.TrimSpace(o.Name), VCPUs: o.VCPUs, RAMMB: o.RAMMB, DiskGB: o.DiskGB,
		EphemeralGB: o.EphemeralGB, SwapMB: o.SwapMB, RxTxFactor: o.RxTxFactor, IsPublic: o.IsPublic == nil || *o.IsPublic,
		Description: o.Description, Created: s.st.Now().UTC()}
	err := s.st.Update(ctx, func(tx *store.Txn) error {
		if _, err := store.First[Flavor](nil, tx, flavorTable, "name", f.Name); err == nil {
			return fmt.Errorf("compute: flavor with name %s already exists: %w", f.Name, errdefs.ErrConflict)
		}
		if err := tx.Insert(flavorTable, f); err != nil {
			return fmt.Errorf("compute: flavor with id %s already exists: %w", f.ID, errdefs.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.getFlavor(f.ID)
}

func (s *Service) getFlavor(id string) (*Flavor, error) {
	f, err := store.Get[Flavor](nil, s.st.Snapshot(), flavorTable, id)
	if err != nil {
		return nil, notFound("flavor", id)
	}
	return f, nil
}

// flavorVisible reports whether the caller may use flavor f.
func (s *Service) flavorVisible(ctx context.Context, tx *store.Txn, f *Flavor) bool {
	if f.IsPublic {
		return true
	}
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return false
	}
	if c.IsSystemReader() {
		return true
	}
	_, err := store.Get[flavorAccess](nil, tx, accessTable, f.ID+"/"+c.ProjectID)
	return err == nil
}

// GetFlavor returns a flavor the caller may see, by id.
func (s *Service) GetFlavor(ctx context.Context, id string) (*Flavor, error) {
	if _, err := s.enforce(ctx, "compute:flavor:list", ""); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	f, err := store.Get[Flavor](nil, tx, flavorTable, id)
	if err != nil || !s.flavorVisible(ctx, tx, f) {
		return nil, notFound("flavor", id)
	}
	return f, nil
}

// ListFlavorsOpts filters ListFlavors.
type ListFlavorsOpts struct {
	// IsPublic: nil means public plus the caller's private ones (all for
	// admins, Nova's is_public=None); true public only; false private only.
	IsPublic  *bool
	MinRAMMB  int
	MinDiskGB int
}

// ListFlavors returns the flavors the caller may see, by id.
func (s *Service) ListFlavors(ctx context.Context, o ListFlavorsOpts) ([]*Flavor, error) {
	if _, err := s.enforce(ctx, "compute:flavor:list", ""); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[Flavor](nil, tx, flavorTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Flavor
	for f := range it {
		if o.IsPublic != nil && f.IsPublic != *o.IsPublic {
			continue
		}
		if !s.flavorVisible(ctx, tx, f) || f.RAMMB < o.MinRAMMB || f.DiskGB < o.MinDiskGB {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

// UpdateFlavorDescription changes a flavor's description (2.55).
func (s *Service) UpdateFlavorDescription(ctx context.Context, id, desc string) (*Flavor, error) {
	if _, err := s.enforce(ctx, "compute:flavor:update", ""); err != nil {
		return nil, err
	}
	if len(desc) > 65535 {
		return nil, errdefs.Invalid("description", "must be at most 65535 bytes")
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		f, err := store.Get[Flavor](nil, tx, flavorTable, id)
		if err != nil {
			return notFound("flavor", id)
		}
		f.Description = desc
		return tx.Update(flavorTable, f)
	})
	if err != nil {
		return nil, err
	}
	return s.getFlavor(id)
}

// DeleteFlavor deletes a flavor. Servers keep their copy of it.
func (s *Service) DeleteFlavor(ctx context.Context, id string) error {
	if _, err := s.enforce(ctx, "compute:flavor:delete", ""); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(flavorTable, id); err != nil {
			return notFound("flavor", id)
		}
		it, err := store.List[flavorAccess](nil, tx, accessTable, store.IDIndex+"_prefix", id+"/")
		if err != nil {
			return err
		}
		for a := range it {
			if err := tx.Delete(accessTable, a.StoreKey()); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetFlavorExtraSpecs merges specs into a flavor's extra_specs.
func (s *Service) SetFlavorExtraSpecs(ctx context.Context, id string, specs map[string]string) (map[string]string, error) {
	if _, err := s.enforce(ctx, "compute:flavor:extra_specs", ""); err != nil {
		return nil, err
	}
	for k, v := range specs {
		if err := checkName("extra_specs", k); err != nil || len(v) > 255 || strings.ContainsAny(k, "/") {
			return nil, errdefs.Invalid("extra_specs", "keys must be 1-255 characters without '/', values at most 255")
		}
	}
	var out map[string]string
	err := s.update(ctx, func(tx *store.Txn) error {
		f, err := store.Get[Flavor](nil, tx, flavorTable, id)
		if err != nil {
			return notFound("flavor", id)
		}
		m := maps.Clone(f.ExtraSpecs)
		if m == nil {
			m = map[string]string{}
		}
		maps.Copy(m, specs)
		if len(m) > 128 {
			return errdefs.Invalid("extra_specs", "at most 128 per flavor")
		}
		f.ExtraSpecs, out = m, m
		return tx.Update(flavorTable, f)
	})
	return out, err
}

// DeleteFlavorExtraSpec removes one extra spec.
func (s *Service) DeleteFlavorExtraSpec(ctx context.Context, id, key string) error {
	if _, err := s.enforce(ctx, "compute:flavor:extra_specs", ""); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		f, err := store.Get[Flavor](nil, tx, flavorTable, id)
		if err != nil {
			return notFound("flavor", id)
		}
		if _, ok := f.ExtraSpecs[key]; !ok {
			return notFound("flavor extra spec", key)
		}
		m := maps.Clone(f.ExtraSpecs)
		delete(m, key)
		f.ExtraSpecs = m
		return tx.Update(flavorTable, f)
	})
}

// AddFlavorAccess grants project a private flavor.
func (s *Service) AddFlavorAccess(ctx context.Context, id, projectID string) error {
	if _, err := s.enforce(ctx, "compute:flavor:access", ""); err != nil {
		return err
	}
	if err := checkName("tenant", projectID); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		f, err := store.Get[Flavor](nil, tx, flavorTable, id)
		if err != nil {
			return notFound("flavor", id)
		}
		if f.IsPublic {
			return fmt.Errorf("compute: can not add access to a public flavor: %w", errdefs.ErrConflict)
		}
		if err := tx.Insert(accessTable, &flavorAccess{FlavorID: id, ProjectID: projectID}); err != nil {
			return fmt.Errorf("compute: flavor access already exists for flavor %s and project %s combination: %w", id, projectID, errdefs.ErrConflict)
		}
		return nil
	})
}

// RemoveFlavorAccess revokes a project's access to a private flavor.
func (s *Service) RemoveFlavorAccess(ctx context.Context, id, projectID string) error {
	if _, err := s.enforce(ctx, "compute:flavor:access", ""); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(accessTable, id+"/"+projectID); err != nil {
			return notFound("flavor access", id+"/"+projectID)
		}
		return nil
	})
}

// ListFlavorAccess returns the projects with access to a private flavor.
func (s *Service) ListFlavorAccess(ctx context.Context, id string) ([]string, error) {
	if _, err := s.enforce(ctx, "compute:flavor:access", ""); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	f, err := store.Get[Flavor](nil, tx, flavorTable, id)
	if err != nil {
		return nil, notFound("flavor", id)
	}
	if f.IsPublic {
		return nil, fmt.Errorf("compute: access list not available for public flavors: %w", errdefs.ErrNotFound)
	}
	it, err := store.List[flavorAccess](nil, tx, accessTable, store.IDIndex+"_prefix", id+"/")
	if err != nil {
		return nil, err
	}
	var out []string
	for a := range it {
		out = append(out, a.ProjectID)
	}
	slices.Sort(out)
	return out, nil
}
