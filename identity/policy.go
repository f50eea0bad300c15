package identity

import (
	"context"
	"fmt"
	"maps"

	"github.com/stratuskit/stratus/errdefs"
)

// Target describes what an action touches, for a Rule to decide on.
type Target struct {
	// ProjectID is the project that owns the resource, if any.
	ProjectID string
	// DomainID is the domain that owns the resource, if any. It is empty
	// for a change to a user (update, delete) or to a group's membership
	// when that user or group holds roles beyond its domain (on the system,
	// in another domain or on the admin project), and for a change to a
	// role assignment on the admin project, so that rules on the domain,
	// such as a domain admin's, do not allow it.
	DomainID string
	// UserID is the user the action is about, if any (a user record, the
	// subject of a token, the owner of a credential).
	UserID string
}

// Rule decides whether c may perform an action on t. c is never nil.
type Rule func(c *Credentials, t Target) bool

// Policy maps action names ("identity:get_project", "compute:create_server")
// to rules. Each service has its defaults; the host program overrides
// rules in Go by passing a Policy in the service's Config. An action with no
// rule is denied.
type Policy map[string]Rule

// With returns a copy of p with the rules of overrides replacing its own.
func (p Policy) With(overrides Policy) Policy {
	c := maps.Clone(p)
	if c == nil {
		c = Policy{}
	}
	maps.Copy(c, overrides)
	return c
}

// Allowed reports whether c may perform action on t.
func (p Policy) Allowed(c *Credentials, action string, t Target) bool {
	r := p[action]
	return c != nil && r != nil && r(c, t)
}

// Enforce checks action on t for the Credentials in ctx. It returns nil if
// allowed, an error matching errdefs.ErrUnauthenticated if ctx carries no
// Credentials, and one matching errdefs.ErrForbidden otherwise. Services
// that hide resources of other projects check visibility first and answer
// errdefs.ErrNotFound for what the caller may not see.
func (p Policy) Enforce(ctx context.Context, action string, t Target) error {
	c, err := requireCredentials(ctx)
	if err != nil {
		return err
	}
	if !p.Allowed(c, action, t) {
		return fmt.Errorf("identity: you are not authorized to perform the requested action: %s: %w", action, errdefs.ErrForbidden)
	}
	return nil
}

// Rules to build policies with.

// Admin allows cloud admins (see Credentials.IsCloudAdmin).
func Admin(c *Credentials, _ Target) bool { return c.IsCloudAdmin() }

// SystemReader allows cloud admins and readers with system scope or on
// the admin project.
func SystemReader(c *Credentials, _ Target) bool { return c.IsSystemReader() }

// Authenticated allows anyone with valid credentials.
func Authenticated(*Credentials, Target) bool { return true }

// Self allows the user the target is about.
func Self(c *Credentials, t Target) bool { return c.UserID != "" && c.UserID == t.UserID }

// ProjectRole returns a rule that allows callers scoped to the target's
// project with role (implied roles count: admin holds member and reader).
func ProjectRole(role string) Rule {
	return func(c *Credentials, t Target) bool {
		return c.ProjectID != "" && c.ProjectID == t.ProjectID && c.HasRole(role)
	}
}

// DomainRole returns a rule that allows callers scoped to the target's
// domain with role.
func DomainRole(role string) Rule {
	return func(c *Credentials, t Target) bool {
		return c.DomainID != "" && c.DomainID == t.DomainID && c.HasRole(role)
	}
}

// ServiceRole allows callers with the "service" role, which Keystone gives
// to the users that other services validate tokens with.
func ServiceRole(c *Credentials, _ Target) bool { return c.HasRole("service") }

// AnyOf allows what any of rules allows.
func AnyOf(rules ...Rule) Rule {
	return func(c *Credentials, t Target) bool {
		for _, r := range rules {
			if r(c, t) {
				return true
			}
		}
		return false
	}
}

// ProjectDefaults returns the usual rules of a service whose resources
// belong to projects, for the actions prefix+"get", "list", "create",
// "update" and "delete" (for example "compute:server:get"): readers read,
// members write the resources of their project, cloud admins do all.
func ProjectDefaults(prefix string) Policy {
	read := AnyOf(SystemReader, ProjectRole(RoleReader))
	write := AnyOf(Admin, ProjectRole(RoleMember))
	return Policy{
		prefix + "get": read, prefix + "list": read,
		prefix + "create": write, prefix + "update": write, prefix + "delete": write,
	}
}

// DefaultPolicy returns the identity service's default rules, close to
// Keystone's: cloud admins do all; domain admins manage their domain's
// projects, users, groups and grants; readers read; users see and change
// their own user, password and tokens.
func DefaultPolicy() Policy {
	adminOrDomainAdmin := AnyOf(Admin, DomainRole(RoleAdmin))
	readerOfDomain := AnyOf(SystemReader, DomainRole(RoleReader))
	p := Policy{
		"identity:get_domain": AnyOf(SystemReader, DomainRole(RoleReader), func(c *Credentials, t Target) bool {
			return c.ProjectDomainID == t.DomainID || c.UserDomainID == t.DomainID
		}),
		"identity:create_domain": Admin, "identity:update_domain": Admin, "identity:delete_domain": Admin,

		"identity:get_project":    AnyOf(readerOfDomain, func(c *Credentials, t Target) bool { return c.ProjectID != "" && c.ProjectID == t.ProjectID }),
		"identity:create_project": adminOrDomainAdmin, "identity:update_project": adminOrDomainAdmin,
		"identity:delete_project": adminOrDomainAdmin,

		"identity:get_user":    AnyOf(readerOfDomain, Self, ProjectRole(RoleReader)),
		"identity:create_user": adminOrDomainAdmin, "identity:update_user": adminOrDomainAdmin,
		"identity:delete_user": adminOrDomainAdmin, "identity:change_password": Self,

		"identity:get_group":    readerOfDomain,
		"identity:create_group": adminOrDomainAdmin, "identity:update_group": adminOrDomainAdmin,
		"identity:delete_group": adminOrDomainAdmin, "identity:add_user_to_group": adminOrDomainAdmin,
		"identity:remove_user_from_group": adminOrDomainAdmin,

		"identity:get_role":    Authenticated,
		"identity:create_role": Admin, "identity:update_role": Admin, "identity:delete_role": Admin,
		"identity:create_implied_role": Admin, "identity:delete_implied_role": Admin,

		"identity:get_grant":    AnyOf(readerOfDomain, ProjectRole(RoleReader)),
		"identity:create_grant": adminOrDomainAdmin, "identity:revoke_grant": adminOrDomainAdmin,
		"identity:create_system_grant": Admin, "identity:revoke_system_grant": Admin,

		"identity:get_catalog":    Authenticated,
		"identity:create_catalog": Admin, "identity:update_catalog": Admin, "identity:delete_catalog": Admin,

		"identity:validate_token": AnyOf(SystemReader, ServiceRole, Self),
		"identity:revoke_token":   AnyOf(Admin, Self),
		"identity:revoke":         Admin,
		"identity:rotate_keys":    Admin,

		"identity:get_application_credential": AnyOf(SystemReader, Self),
		"identity:get_trust":                  SystemReader,
		"identity:delete_trust":               Admin,

		"identity:get_credential":    AnyOf(SystemReader, Self),
		"identity:create_credential": AnyOf(Admin, Self),
		"identity:update_credential": AnyOf(Admin, Self),
		"identity:delete_credential": AnyOf(Admin, Self),
		"identity:ec2_lookup":        AnyOf(Admin, ServiceRole),
	}
	return p
}
