package blockstore

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// DefaultTypeName is the name of the type volumes get when none is named.
const DefaultTypeName = "__DEFAULT__"

// Extra spec keys the scheduler reads.
const (
	// SpecBackendName selects a backend by its name.
	SpecBackendName = "volume_backend_name"
	// SpecMultiattach ("<is> True") makes the type's volumes multiattach.
	SpecMultiattach = "multiattach"
	// SpecCapabilityPrefix prefixes keys matched against a pool's
	// capabilities ("capabilities:volume_format": "qcow2").
	SpecCapabilityPrefix = "capabilities:"
)

// VolumeType is a volume type: extra specs that select where its volumes
// go, and who may use it.
type VolumeType struct {
	store.Meta
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	IsPublic    bool              `json:"is_public"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
	// Projects may use a private type.
	Projects  []string  `json:"projects,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// StoreKey implements store.Record.
func (t *VolumeType) StoreKey() string { return t.ID }

func (t *VolumeType) multiattach() bool {
	return t != nil && strings.EqualFold(strings.TrimSpace(t.ExtraSpecs[SpecMultiattach]), "<is> True")
}

func (t *VolumeType) usableBy(c *identity.Credentials) bool {
	return t.IsPublic || c.IsCloudAdmin() || c.IsSystemReader() || slices.Contains(t.Projects, c.ProjectID)
}

func (s *Service) ensureDefaultType(ctx context.Context) error {
	if _, err := store.First[VolumeType](nil, s.st.Snapshot(), typeTable, nameIndex, DefaultTypeName); err == nil {
		return nil
	}
	err := s.st.Update(ctx, func(tx *store.Txn) error {
		if _, err := store.First[VolumeType](nil, tx, typeTable, nameIndex, DefaultTypeName); err == nil {
			return nil
		}
		return tx.Insert(typeTable, &VolumeType{ID: newID(), Name: DefaultTypeName, Description: "Default Volume Type", IsPublic: true, CreatedAt: tx.Now()})
	})
	return err
}

// resolveType finds a type by name or id that c may use; "" is the
// default type.
func (s *Service) resolveType(tx *store.Txn, c *identity.Credentials, ref string) (*VolumeType, error) {
	if ref == "" {
		ref = DefaultTypeName
	}
	t, err := store.Get[VolumeType](nil, tx, typeTable, ref)
	if err != nil {
		t, err = store.First[VolumeType](nil, tx, typeTable, nameIndex, ref)
	}
	if err != nil || !t.usableBy(c) {
		return nil, notFound("Volume type", ref)
	}
	return t, nil
}

// CreateTypeOpts describe a new volume type.
type CreateTypeOpts struct {
	Name        string
	Description string
	// IsPublic defaults to true.
	IsPublic   *bool
	ExtraSpecs map[string]string
}

func validSpecs(specs map[string]string) error {
	if len(specs) > maxMetadata {
		return invalid("extra_specs", "at most %d items", maxMetadata)
	}
	for k, v := range specs {
		if k == "" || len(k) > maxMetaKeyLen || len(v) > maxMetaValLen {
			return invalid("extra_specs", "keys must be 1 to 255 characters and values at most 255")
		}
	}
	return nil
}

// CreateType creates a volume type (admin only).
func (s *Service) CreateType(ctx context.Context, opts CreateTypeOpts) (*VolumeType, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, "volume:manage_types", ""); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(opts.Name)
	if name == "" {
		return nil, invalid("name", "Invalid input received: Volume type name can not be empty.")
	}
	if err := validName("name", name, maxNameLen); err != nil {
		return nil, err
	}
	if err := validName("description", opts.Description, maxDescription); err != nil {
		return nil, err
	}
	if err := validSpecs(opts.ExtraSpecs); err != nil {
		return nil, err
	}
	t := &VolumeType{ID: newID(), Name: name, Description: opts.Description, IsPublic: opts.IsPublic == nil || *opts.IsPublic, ExtraSpecs: maps.Clone(opts.ExtraSpecs)}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if _, err := store.First[VolumeType](nil, tx, typeTable, nameIndex, name); err == nil {
			return errdefs.Wrap(errdefs.ErrConflict, errorf("Volume Type %s already exists.", name))
		}
		t.CreatedAt = tx.Now()
		return tx.Insert(typeTable, t)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// GetType returns a type the caller may use, by id or name.
func (s *Service) GetType(ctx context.Context, ref string) (*VolumeType, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.resolveType(s.st.Snapshot(), c, ref)
}

// DefaultType returns the default type.
func (s *Service) DefaultType(ctx context.Context) (*VolumeType, error) { return s.GetType(ctx, "") }

// ListTypes returns the types the caller may use (all, for admins),
// ordered by name. isPublic filters when not nil (admins only; others see
// the public ones and those shared with them).
func (s *Service) ListTypes(ctx context.Context, isPublic *bool) ([]*VolumeType, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := store.List[VolumeType](nil, s.st.Snapshot(), typeTable, nameIndex)
	if err != nil {
		return nil, err
	}
	var out []*VolumeType
	for t := range it {
		if !t.usableBy(c) || (isPublic != nil && c.IsCloudAdmin() && t.IsPublic != *isPublic) {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// UpdateTypeOpts change a type; nil fields are kept.
type UpdateTypeOpts struct {
	Name        *string
	Description *string
	IsPublic    *bool
	// SetSpecs adds or replaces extra specs; DeleteSpec removes one.
	SetSpecs   map[string]string
	DeleteSpec string
	// AddProject and RemoveProject change a private type's access.
	AddProject    string
	RemoveProject string
}

// UpdateType changes a type (admin only).
func (s *Service) UpdateType(ctx context.Context, ref string, opts UpdateTypeOpts) (*VolumeType, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(c, "volume:manage_types", ""); err != nil {
		return nil, err
	}
	if opts.Name != nil {
		if err := validName("name", *opts.Name, maxNameLen); err != nil || strings.TrimSpace(*opts.Name) == "" {
			return nil, invalid("name", "Invalid input received: Volume type name can not be empty.")
		}
	}
	if err := validSpecs(opts.SetSpecs); err != nil {
		return nil, err
	}
	var out *VolumeType
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		t, err := s.resolveType(tx, c, ref)
		if err != nil {
			return err
		}
		if opts.Name != nil && *opts.Name != t.Name {
			if _, err := store.First[VolumeType](nil, tx, typeTable, nameIndex, *opts.Name); err == nil {
				return errdefs.Wrap(errdefs.ErrConflict, errorf("Volume Type %s already exists.", *opts.Name))
			}
			t.Name = *opts.Name
		}
		if opts.Description != nil {
			t.Description = *opts.Description
		}
		if opts.IsPublic != nil {
			t.IsPublic = *opts.IsPublic
		}
		if len(opts.SetSpecs) > 0 {
			if t.ExtraSpecs == nil {
				t.ExtraSpecs = map[string]string{}
			}
			maps.Copy(t.ExtraSpecs, opts.SetSpecs)
			if err := validSpecs(t.ExtraSpecs); err != nil {
				return err
			}
		}
		if opts.DeleteSpec != "" {
			if _, ok := t.ExtraSpecs[opts.DeleteSpec]; !ok {
				return errdefs.Wrap(errdefs.ErrNotFound, errorf("Volume Type %s has no extra specs with key %s.", t.ID, opts.DeleteSpec))
			}
			delete(t.ExtraSpecs, opts.DeleteSpec)
		}
		if opts.AddProject != "" {
			if t.IsPublic {
				return badRequest("Invalid volume type: Type access modification is not applicable to public volume type.")
			}
			if slices.Contains(t.Projects, opts.AddProject) {
				return errdefs.Wrap(errdefs.ErrConflict, errorf("Volume type access for %s / %s combination already exists.", t.ID, opts.AddProject))
			}
			t.Projects = append(t.Projects, opts.AddProject)
		}
		if opts.RemoveProject != "" {
			i := slices.Index(t.Projects, opts.RemoveProject)
			if i < 0 {
				return errdefs.Wrap(errdefs.ErrNotFound, errorf("Volume type access not found for %s / %s combination.", t.ID, opts.RemoveProject))
			}
			t.Projects = slices.Delete(t.Projects, i, i+1)
		}
		out = t
		return tx.Update(typeTable, t)
	})
	return out, err
}

// DeleteType deletes a type that no volume uses (admin only).
func (s *Service) DeleteType(ctx context.Context, ref string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := s.allowed(c, "volume:manage_types", ""); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		t, err := s.resolveType(tx, c, ref)
		if err != nil {
			return err
		}
		if t.Name == DefaultTypeName {
			return badRequest("Invalid volume type: Default volume type can not be deleted.")
		}
		it, err := store.List[Volume](nil, tx, volumeTable, store.IDIndex)
		if err != nil {
			return err
		}
		for v := range it {
			if v.TypeID == t.ID {
				return badRequest("Target volume type is still in use.")
			}
		}
		return tx.Delete(typeTable, t.ID)
	})
}

func getType(tx *store.Txn, id string) (*VolumeType, error) {
	return store.Get[VolumeType](nil, tx, typeTable, id)
}
