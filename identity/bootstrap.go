package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"

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
	// ServiceUsers are users for services that act on their own or for
	// users (orchestration, metering): each gets the "service" role on the
	// "service" project, as in a Keystone deployment, and can be a trust's
	// trustee (see AuthenticateTrust). None by default.
	ServiceUsers []ServiceUser
}

// ServiceUser is a user Bootstrap creates for a service.
type ServiceUser struct {
	Name     string
	Password string
}

// Names of what Bootstrap creates for ServiceUsers.
const (
	ServiceProjectName = "service"
	RoleService        = "service"
)

// bootstrapOptions exempt the users Bootstrap makes, whose passwords the
// host generates, from first-use change and expiry.
var bootstrapUserOptions = map[string]any{"ignore_change_password_upon_first_use": true, "ignore_password_expiry": true}

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
		if user, err = s.bootstrapUser(ctx, opts.AdminUser, opts.AdminPassword, proj.ID); err != nil {
			return fmt.Errorf("identity: bootstrap: admin user: %w", err)
		}
	case user.PasswordHash == "" || !verifyPassword(user.PasswordHash, opts.AdminPassword) || !user.Enabled:
		if err := s.resetBootstrapUser(ctx, user.ID, opts.AdminPassword); err != nil {
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
	if len(opts.ServiceUsers) > 0 {
		if err := s.ensureServiceUsers(ctx, opts.ServiceUsers); err != nil {
			return fmt.Errorf("identity: bootstrap: service users: %w", err)
		}
	}
	return nil
}

// bootstrapUser creates a user exempt from first-use change and expiry,
// with the password rules bypassed (the host chose the password).
func (s *Service) bootstrapUser(ctx context.Context, name, password, projectID string) (*User, error) {
	u := &User{ID: newID(), Name: name, DomainID: DefaultDomainID, Enabled: true, DefaultProjectID: projectID,
		Options: cloneMap(bootstrapUserOptions)}
	s.setPassword(u, s.cfg.PasswordHashing.hash(password), false, s.now())
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.First[User](nil, tx, userTable, "name", key(u.DomainID, u.Name)); err == nil {
			return conflict("duplicate entry: user with name %q in domain %s", u.Name, u.DomainID)
		}
		return tx.Insert(userTable, u)
	})
	if err != nil {
		return nil, err
	}
	return s.getUser(s.st.Snapshot(), u.ID)
}

// resetBootstrapUser sets a bootstrap user's password and enables it.
func (s *Service) resetBootstrapUser(ctx context.Context, id, password string) error {
	hash := s.cfg.PasswordHashing.hash(password)
	return s.update(ctx, func(tx *store.Txn) error {
		u, err := store.Get[User](nil, tx, userTable, id)
		if err != nil {
			return err
		}
		u.Options = cloneMap(u.Options)
		if u.Options == nil {
			u.Options = map[string]any{}
		}
		maps.Copy(u.Options, bootstrapUserOptions)
		u.PasswordHistory = nil // the host's password, not the user's choice
		u.PasswordHash = ""
		s.setPassword(u, hash, false, s.now())
		u.Enabled = true
		if err := tx.Update(userTable, u); err != nil {
			return err
		}
		return s.revokeTxn(tx, Revocation{UserID: id})
	})
}

// ensureServiceUsers creates the service project and role and the service
// users with the role on the project.
func (s *Service) ensureServiceUsers(ctx context.Context, users []ServiceUser) error {
	tx := s.st.Snapshot()
	proj, err := store.First[Project](nil, tx, projectTable, "name", key(DefaultDomainID, ServiceProjectName))
	if err != nil {
		if proj, err = s.CreateProject(ctx, CreateProjectOpts{Name: ServiceProjectName, DomainID: DefaultDomainID,
			Description: "Project of the service users."}); err != nil {
			return err
		}
	}
	role, err := store.First[Role](nil, tx, roleTable, "name", roleNameKey("", RoleService))
	if err != nil {
		if role, err = s.CreateRole(ctx, CreateRoleOpts{Name: RoleService}); err != nil {
			return err
		}
	}
	for _, su := range users {
		if err := checkPassword("ServiceUsers.Password", su.Password); err != nil {
			return err
		}
		u, err := store.First[User](nil, s.st.Snapshot(), userTable, "name", key(DefaultDomainID, su.Name))
		switch {
		case err != nil:
			if u, err = s.bootstrapUser(ctx, su.Name, su.Password, proj.ID); err != nil {
				return err
			}
		case u.PasswordHash == "" || !verifyPassword(u.PasswordHash, su.Password) || !u.Enabled:
			if err := s.resetBootstrapUser(ctx, u.ID, su.Password); err != nil {
				return err
			}
		}
		if err := s.CreateGrant(ctx, Grant{UserID: u.ID, ProjectID: proj.ID, RoleID: role.ID}); err != nil {
			return err
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
