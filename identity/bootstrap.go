package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// BootstrapOptions says what Bootstrap creates.
type BootstrapOptions struct {
	// AdminPassword is the admin user's password. Required. If the user
	// exists with another password, the password is reset.
	AdminPassword string
	// AdminUser is the admin user's name. Default: "admin".
	AdminUser string
	// Region is the region of the catalog entries. Default: "RegionOne".
	Region string
	// Services are the services the host program runs, each registered
	// in the catalog with its endpoints.
	Services []ServiceEndpoints
}

// ServiceEndpoints is one service for the catalog, with one URL per
// interface. An empty InternalURL or AdminURL means PublicURL.
type ServiceEndpoints struct {
	Type        string
	Name        string
	PublicURL   string
	InternalURL string
	AdminURL    string
}

// Bootstrap makes a usable cloud: the default domain and roles, the admin
// project, the admin user with the admin role on the admin project and on
// the system, the region, and a catalog entry per service with public,
// internal and admin endpoints. It is idempotent: run it at every start;
// URLs that changed are updated.
func (s *Service) Bootstrap(ctx context.Context, opts BootstrapOptions) error {
	if err := checkPassword("AdminPassword", opts.AdminPassword); err != nil {
		return err
	}
	if opts.AdminUser == "" {
		opts.AdminUser = "admin"
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	ctx = WithCredentials(ctx, SystemAdmin())
	if err := s.ensureDefaults(ctx); err != nil {
		return err
	}
	if _, err := s.keyring(ctx); err != nil {
		return err
	}
	tx := s.st.Snapshot()
	proj, err := store.First[Project](nil, tx, projectTable, "name", key(s.cfg.AdminProjectDomainID, s.cfg.AdminProjectName))
	if err != nil {
		if proj, err = s.CreateProject(ctx, CreateProjectOpts{Name: s.cfg.AdminProjectName, DomainID: s.cfg.AdminProjectDomainID,
			Description: "Bootstrap project for initializing the cloud."}); err != nil {
			return fmt.Errorf("identity: bootstrap: admin project: %w", err)
		}
	}
	user, err := store.First[User](nil, tx, userTable, "name", key(DefaultDomainID, opts.AdminUser))
	switch {
	case err != nil:
		if user, err = s.CreateUser(ctx, CreateUserOpts{Name: opts.AdminUser, DomainID: DefaultDomainID, Password: opts.AdminPassword,
			DefaultProjectID: proj.ID}); err != nil {
			return fmt.Errorf("identity: bootstrap: admin user: %w", err)
		}
	case user.PasswordHash == "" || !verifyPassword(user.PasswordHash, opts.AdminPassword) || !user.Enabled:
		enabled := true
		if _, err := s.UpdateUser(ctx, user.ID, UpdateUserOpts{Password: &opts.AdminPassword, Enabled: &enabled}); err != nil {
			return fmt.Errorf("identity: bootstrap: admin user: %w", err)
		}
	}
	admin, err := store.First[Role](nil, s.st.Snapshot(), roleTable, "name", roleNameKey("", RoleAdmin))
	if err != nil {
		return fmt.Errorf("identity: bootstrap: admin role: %w", err)
	}
	for _, g := range []Grant{{UserID: user.ID, ProjectID: proj.ID, RoleID: admin.ID}, {UserID: user.ID, System: true, RoleID: admin.ID}} {
		if err := s.CreateGrant(ctx, g); err != nil {
			return fmt.Errorf("identity: bootstrap: grant: %w", err)
		}
	}
	if _, err := s.CreateRegion(ctx, Region{ID: opts.Region}); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return fmt.Errorf("identity: bootstrap: region: %w", err)
	}
	for _, sv := range opts.Services {
		if err := s.ensureService(ctx, opts.Region, sv); err != nil {
			return fmt.Errorf("identity: bootstrap: service %s: %w", sv.Type, err)
		}
	}
	return nil
}

func (s *Service) ensureService(ctx context.Context, region string, sv ServiceEndpoints) error {
	svcs, err := s.ListServices(ctx, sv.Type, "")
	if err != nil {
		return err
	}
	var rec *CatalogService
	if len(svcs) > 0 {
		rec = svcs[0]
	} else if rec, err = s.CreateService(ctx, CatalogService{Type: sv.Type, Name: sv.Name, Enabled: true}); err != nil {
		return err
	}
	urls := map[string]string{"public": sv.PublicURL, "internal": sv.InternalURL, "admin": sv.AdminURL}
	eps, err := s.ListEndpoints(ctx, ListEndpointsOpts{ServiceID: rec.ID})
	if err != nil {
		return err
	}
	for _, iface := range []string{"public", "internal", "admin"} {
		url := urls[iface]
		if url == "" {
			url = sv.PublicURL
		}
		var found *Endpoint
		for _, e := range eps {
			if e.Interface == iface && e.RegionID == region {
				found = e
			}
		}
		if found == nil {
			if _, err := s.CreateEndpoint(ctx, Endpoint{ServiceID: rec.ID, Interface: iface, RegionID: region, URL: url, Enabled: true}); err != nil {
				return err
			}
		} else if found.URL != url || !found.Enabled {
			enabled := true
			if _, err := s.UpdateEndpoint(ctx, found.ID, UpdateEndpointOpts{URL: &url, Enabled: &enabled}); err != nil {
				return err
			}
		}
	}
	return nil
}
