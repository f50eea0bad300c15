package identity

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Region is a catalog region.
type Region struct {
	store.Meta
	ID             string `json:"id"`
	Description    string `json:"description"`
	ParentRegionID string `json:"parent_region_id,omitempty"`
}

// StoreKey implements store.Record.
func (r *Region) StoreKey() string { return r.ID }

// CatalogService is a service of the catalog, such as "compute".
type CatalogService struct {
	store.Meta
	ID          string `json:"id"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// StoreKey implements store.Record.
func (c *CatalogService) StoreKey() string { return c.ID }

// Endpoint is a URL of a service in a region, for one interface.
type Endpoint struct {
	store.Meta
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	// Interface is "public", "internal" or "admin".
	Interface string `json:"interface"`
	RegionID  string `json:"region_id"`
	URL       string `json:"url"`
	Enabled   bool   `json:"enabled"`
}

// StoreKey implements store.Record.
func (e *Endpoint) StoreKey() string { return e.ID }

var regionTableDef = store.Table{Name: regionTable, New: func() store.Record { return new(Region) }}

var serviceTableDef = store.Table{
	Name: serviceTable,
	New:  func() store.Record { return new(CatalogService) },
	Indexes: []*memdbIndex{
		index("type", false, func(o any) string { return o.(*CatalogService).Type }),
	},
}

var endpointTableDef = store.Table{
	Name: endpointTable,
	New:  func() store.Record { return new(Endpoint) },
	Indexes: []*memdbIndex{
		index("service", false, func(o any) string { return o.(*Endpoint).ServiceID }),
		index("region", false, func(o any) string { return o.(*Endpoint).RegionID }),
	},
}

// CatalogEntry is one service of the catalog a token carries.
type CatalogEntry struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Name      string            `json:"name"`
	Endpoints []CatalogEndpoint `json:"endpoints"`
}

// CatalogEndpoint is one endpoint of a CatalogEntry.
type CatalogEndpoint struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	Region    string `json:"region"`
	RegionID  string `json:"region_id"`
	URL       string `json:"url"`
}

func validInterface(i string) bool { return i == "public" || i == "internal" || i == "admin" }

func checkURL(v string) error {
	u, err := url.Parse(strings.NewReplacer(urlSubstitutions[0], "p", urlSubstitutions[1], "p", urlSubstitutions[2], "p", urlSubstitutions[3], "p").Replace(v))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errdefs.Invalid("url", "must be an absolute http or https URL")
	}
	return nil
}

// Catalog returns the enabled services with their enabled endpoints.
func (s *Service) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "catalog", ""); err != nil {
		return nil, err
	}
	project := ""
	if c := CredentialsFrom(ctx); c != nil {
		project = c.ProjectID
	}
	return s.catalog(s.st.Snapshot(), project), nil
}

// urlSubstitutions are the placeholders Keystone fills in endpoint URLs
// with the token's project, such as Swift's .../v1/AUTH_%(project_id)s.
var urlSubstitutions = []string{"%(project_id)s", "$(project_id)s", "%(tenant_id)s", "$(tenant_id)s"}

// expandURL fills u's placeholders with project. ok is false when u has a
// placeholder and there is no project to fill it: Keystone leaves such
// endpoints out of unscoped, domain and system tokens' catalogs.
func expandURL(u, project string) (string, bool) {
	for _, p := range urlSubstitutions {
		if strings.Contains(u, p) {
			if project == "" {
				return "", false
			}
			u = strings.ReplaceAll(u, p, project)
		}
	}
	return u, true
}

// catalog is the catalog as a token scoped to project (or to no project)
// sees it.
func (s *Service) catalog(tx *store.Txn, project string) []CatalogEntry {
	out := []CatalogEntry{}
	svcs, err := store.List[CatalogService](nil, tx, serviceTable, store.IDIndex)
	if err != nil {
		return out
	}
	for sv := range svcs {
		if !sv.Enabled {
			continue
		}
		e := CatalogEntry{ID: sv.ID, Type: sv.Type, Name: sv.Name, Endpoints: []CatalogEndpoint{}}
		eps, err := store.List[Endpoint](nil, tx, endpointTable, "service", sv.ID)
		if err != nil {
			continue
		}
		for ep := range eps {
			if !ep.Enabled {
				continue
			}
			if u, ok := expandURL(ep.URL, project); ok {
				e.Endpoints = append(e.Endpoints, CatalogEndpoint{ID: ep.ID, Interface: ep.Interface, Region: ep.RegionID, RegionID: ep.RegionID, URL: u})
			}
		}
		out = append(out, e)
	}
	return out
}

// CreateRegion creates a region with the given id.
func (s *Service) CreateRegion(ctx context.Context, r Region) (*Region, error) {
	if err := s.policy.Enforce(ctx, "identity:create_catalog", Target{}); err != nil {
		return nil, err
	}
	if r.ID == "" {
		r.ID = newID()
	}
	if err := checkID("id", r.ID); err != nil {
		return nil, err
	}
	if err := checkDescription(r.Description); err != nil {
		return nil, err
	}
	rec := &Region{ID: r.ID, Description: r.Description, ParentRegionID: r.ParentRegionID}
	err := s.update(ctx, func(tx *store.Txn) error {
		if rec.ParentRegionID != "" {
			if _, err := store.Get[Region](nil, tx, regionTable, rec.ParentRegionID); err != nil {
				return errdefs.Invalid("parent_region_id", "region %s does not exist", rec.ParentRegionID)
			}
		}
		if _, err := store.Get[Region](nil, tx, regionTable, rec.ID); err == nil {
			return conflict("duplicate entry: region %s", rec.ID)
		}
		return tx.Insert(regionTable, rec)
	})
	if err != nil {
		return nil, err
	}
	return store.Get[Region](nil, s.st.Snapshot(), regionTable, rec.ID)
}

// GetRegion returns a region.
func (s *Service) GetRegion(ctx context.Context, id string) (*Region, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "region", id); err != nil {
		return nil, err
	}
	r, err := store.Get[Region](nil, s.st.Snapshot(), regionTable, id)
	if err != nil {
		return nil, notFound("region", id)
	}
	return r, nil
}

// ListRegions lists the regions.
func (s *Service) ListRegions(ctx context.Context) ([]*Region, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "region", ""); err != nil {
		return nil, err
	}
	return collect[Region](s.st.Snapshot(), regionTable, store.IDIndex)
}

// UpdateRegion changes a region's description.
func (s *Service) UpdateRegion(ctx context.Context, id string, description *string) (*Region, error) {
	if err := s.policy.Enforce(ctx, "identity:update_catalog", Target{}); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		r, err := store.Get[Region](nil, tx, regionTable, id)
		if err != nil {
			return notFound("region", id)
		}
		if description != nil {
			if err := checkDescription(*description); err != nil {
				return err
			}
			r.Description = *description
		}
		return tx.Update(regionTable, r)
	})
	if err != nil {
		return nil, err
	}
	return store.Get[Region](nil, s.st.Snapshot(), regionTable, id)
}

// DeleteRegion deletes a region that no endpoint uses.
func (s *Service) DeleteRegion(ctx context.Context, id string) error {
	if err := s.policy.Enforce(ctx, "identity:delete_catalog", Target{}); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[Region](nil, tx, regionTable, id); err != nil {
			return notFound("region", id)
		}
		if has, err := any1[Endpoint](tx, endpointTable, "region", id); err != nil {
			return err
		} else if has {
			return conflict("region %s has endpoints", id)
		}
		return tx.Delete(regionTable, id)
	})
}

// CreateService adds a service to the catalog.
func (s *Service) CreateService(ctx context.Context, c CatalogService) (*CatalogService, error) {
	if err := s.policy.Enforce(ctx, "identity:create_catalog", Target{}); err != nil {
		return nil, err
	}
	if err := checkName("type", c.Type); err != nil {
		return nil, err
	}
	if err := checkDescription(c.Description); err != nil {
		return nil, err
	}
	rec := &CatalogService{ID: newID(), Type: c.Type, Name: c.Name, Description: c.Description, Enabled: c.Enabled}
	if err := s.update(ctx, func(tx *store.Txn) error { return tx.Insert(serviceTable, rec) }); err != nil {
		return nil, err
	}
	return store.Get[CatalogService](nil, s.st.Snapshot(), serviceTable, rec.ID)
}

// GetService returns a catalog service.
func (s *Service) GetService(ctx context.Context, id string) (*CatalogService, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "service", id); err != nil {
		return nil, err
	}
	c, err := store.Get[CatalogService](nil, s.st.Snapshot(), serviceTable, id)
	if err != nil {
		return nil, notFound("service", id)
	}
	return c, nil
}

// ListServices lists the catalog services, all or those of a type.
func (s *Service) ListServices(ctx context.Context, typ, name string) ([]*CatalogService, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "service", ""); err != nil {
		return nil, err
	}
	all, err := collect[CatalogService](s.st.Snapshot(), serviceTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(c *CatalogService) bool {
		return (typ != "" && c.Type != typ) || (name != "" && c.Name != name)
	}), nil
}

// UpdateServiceOpts are the fields of a catalog service to change.
type UpdateServiceOpts struct {
	Type        *string
	Name        *string
	Description *string
	Enabled     *bool
}

// UpdateService changes a catalog service.
func (s *Service) UpdateService(ctx context.Context, id string, opts UpdateServiceOpts) (*CatalogService, error) {
	if err := s.policy.Enforce(ctx, "identity:update_catalog", Target{}); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		c, err := store.Get[CatalogService](nil, tx, serviceTable, id)
		if err != nil {
			return notFound("service", id)
		}
		if opts.Type != nil {
			if err := checkName("type", *opts.Type); err != nil {
				return err
			}
			c.Type = *opts.Type
		}
		if opts.Name != nil {
			c.Name = *opts.Name
		}
		if opts.Description != nil {
			c.Description = *opts.Description
		}
		if opts.Enabled != nil {
			c.Enabled = *opts.Enabled
		}
		return tx.Update(serviceTable, c)
	})
	if err != nil {
		return nil, err
	}
	return store.Get[CatalogService](nil, s.st.Snapshot(), serviceTable, id)
}

// DeleteService deletes a catalog service with its endpoints.
func (s *Service) DeleteService(ctx context.Context, id string) error {
	if err := s.policy.Enforce(ctx, "identity:delete_catalog", Target{}); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[CatalogService](nil, tx, serviceTable, id); err != nil {
			return notFound("service", id)
		}
		eps, err := collect[Endpoint](tx, endpointTable, "service", id)
		if err != nil {
			return err
		}
		for _, e := range eps {
			if err := tx.Delete(endpointTable, e.ID); err != nil {
				return err
			}
		}
		return tx.Delete(serviceTable, id)
	})
}

// CreateEndpoint adds an endpoint to a catalog service.
func (s *Service) CreateEndpoint(ctx context.Context, e Endpoint) (*Endpoint, error) {
	if err := s.policy.Enforce(ctx, "identity:create_catalog", Target{}); err != nil {
		return nil, err
	}
	if !validInterface(e.Interface) {
		return nil, errdefs.Invalid("interface", "must be public, internal or admin")
	}
	if err := checkURL(e.URL); err != nil {
		return nil, err
	}
	rec := &Endpoint{ID: newID(), ServiceID: e.ServiceID, Interface: e.Interface, RegionID: e.RegionID, URL: e.URL, Enabled: e.Enabled}
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[CatalogService](nil, tx, serviceTable, rec.ServiceID); err != nil {
			return errdefs.Invalid("service_id", "service %s does not exist", rec.ServiceID)
		}
		if rec.RegionID != "" {
			if _, err := store.Get[Region](nil, tx, regionTable, rec.RegionID); err != nil {
				return errdefs.Invalid("region_id", "region %s does not exist", rec.RegionID)
			}
		}
		return tx.Insert(endpointTable, rec)
	})
	if err != nil {
		return nil, err
	}
	return store.Get[Endpoint](nil, s.st.Snapshot(), endpointTable, rec.ID)
}

// GetEndpoint returns an endpoint.
func (s *Service) GetEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "endpoint", id); err != nil {
		return nil, err
	}
	e, err := store.Get[Endpoint](nil, s.st.Snapshot(), endpointTable, id)
	if err != nil {
		return nil, notFound("endpoint", id)
	}
	return e, nil
}

// ListEndpointsOpts filters ListEndpoints.
type ListEndpointsOpts struct {
	ServiceID string
	Interface string
	RegionID  string
}

// ListEndpoints lists endpoints.
func (s *Service) ListEndpoints(ctx context.Context, opts ListEndpointsOpts) ([]*Endpoint, error) {
	if err := s.see(ctx, "identity:get_catalog", Target{}, "endpoint", ""); err != nil {
		return nil, err
	}
	all, err := collect[Endpoint](s.st.Snapshot(), endpointTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e *Endpoint) bool {
		return (opts.ServiceID != "" && e.ServiceID != opts.ServiceID) || (opts.Interface != "" && e.Interface != opts.Interface) ||
			(opts.RegionID != "" && e.RegionID != opts.RegionID)
	}), nil
}

// UpdateEndpointOpts are the fields of an endpoint to change.
type UpdateEndpointOpts struct {
	Interface *string
	URL       *string
	RegionID  *string
	Enabled   *bool
}

// UpdateEndpoint changes an endpoint.
func (s *Service) UpdateEndpoint(ctx context.Context, id string, opts UpdateEndpointOpts) (*Endpoint, error) {
	if err := s.policy.Enforce(ctx, "identity:update_catalog", Target{}); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		e, err := store.Get[Endpoint](nil, tx, endpointTable, id)
		if err != nil {
			return notFound("endpoint", id)
		}
		if opts.Interface != nil {
			if !validInterface(*opts.Interface) {
				return errdefs.Invalid("interface", "must be public, internal or admin")
			}
			e.Interface = *opts.Interface
		}
		if opts.URL != nil {
			if err := checkURL(*opts.URL); err != nil {
				return err
			}
			e.URL = *opts.URL
		}
		if opts.RegionID != nil {
			if _, err := store.Get[Region](nil, tx, regionTable, *opts.RegionID); err != nil {
				return errdefs.Invalid("region_id", "region %s does not exist", *opts.RegionID)
			}
			e.RegionID = *opts.RegionID
		}
		if opts.Enabled != nil {
			e.Enabled = *opts.Enabled
		}
		return tx.Update(endpointTable, e)
	})
	if err != nil {
		return nil, err
	}
	return store.Get[Endpoint](nil, s.st.Snapshot(), endpointTable, id)
}

// DeleteEndpoint deletes an endpoint.
func (s *Service) DeleteEndpoint(ctx context.Context, id string) error {
	if err := s.policy.Enforce(ctx, "identity:delete_catalog", Target{}); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[Endpoint](nil, tx, endpointTable, id); err != nil {
			return notFound("endpoint", id)
		}
		return tx.Delete(endpointTable, id)
	})
}

func collect[T any](tx *store.Txn, table, idx string, args ...any) ([]*T, error) {
	it, err := store.List[T](nil, tx, table, idx, args...)
	if err != nil {
		return nil, err
	}
	var out []*T
	for v := range it {
		out = append(out, v)
	}
	return out, nil
}
