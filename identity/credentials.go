package identity

import (
	"context"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

// Credentials say who makes a request and with what authority: the
// validated token's user, scope and effective roles (implied roles
// included). Services read them from the context with CredentialsFrom and
// decide with a Policy.
type Credentials struct {
	// UserID and UserName identify the user; UserDomainID and
	// UserDomainName its domain.
	UserID         string
	UserName       string
	UserDomainID   string
	UserDomainName string
	// ProjectID, ProjectName and ProjectDomainID are set for a
	// project-scoped token.
	ProjectID       string
	ProjectName     string
	ProjectDomainID string
	// DomainID and DomainName are set for a domain-scoped token.
	DomainID   string
	DomainName string
	// System is true for a system-scoped token.
	System bool
	// IsAdminProject is true when ProjectID is the cloud's admin project.
	IsAdminProject bool
	// Roles are the names of the effective roles on the scope.
	Roles []string
	// AuditIDs are the token's audit ids: its own first, then the one of
	// the token it was rescoped from, if any.
	AuditIDs []string
	// ExpiresAt is the token's expiry.
	ExpiresAt time.Time
	// TrustID, TrustorUserID and TrusteeUserID are set for a trust-scoped
	// token. UserID is the trustor's with impersonation, else the trustee's.
	TrustID       string
	TrustorUserID string
	TrusteeUserID string
	// ApplicationCredentialID is set for a token issued to an application
	// credential; AppCredUnrestricted tells whether that credential may
	// create application credentials and trusts.
	ApplicationCredentialID string
	AppCredUnrestricted     bool
	// AccessRules, if not empty, are the only requests the credentials may
	// make (see AccessRule and MiddlewareOptions.ServiceType).
	AccessRules []AccessRule
}

// restrictedAppCred reports whether c comes from a restricted application
// credential, which may not create or delete application credentials or
// trusts.
func (c *Credentials) restrictedAppCred() bool {
	return c.ApplicationCredentialID != "" && !c.AppCredUnrestricted
}

// HasRole reports whether c holds the role called name on its scope.
func (c *Credentials) HasRole(name string) bool {
	return c != nil && slices.Contains(c.Roles, name)
}

// IsCloudAdmin reports whether c may administer the whole cloud: admin on
// the admin project, or admin with system scope.
func (c *Credentials) IsCloudAdmin() bool {
	return c != nil && (c.System || c.IsAdminProject) && c.HasRole(RoleAdmin)
}

// IsSystemReader reports whether c may read everything: a cloud admin, or
// a reader with system scope or on the admin project.
func (c *Credentials) IsSystemReader() bool {
	return c != nil && (c.System || c.IsAdminProject) && c.HasRole(RoleReader)
}

type credentialsKey struct{}

// WithCredentials returns a copy of ctx carrying c. The HTTP middleware
// does this for every authenticated request; library callers do it
// themselves.
func WithCredentials(ctx context.Context, c *Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey{}, c)
}

// CredentialsFrom returns the Credentials in ctx, or nil.
func CredentialsFrom(ctx context.Context) *Credentials {
	c, _ := ctx.Value(credentialsKey{}).(*Credentials)
	return c
}

// SystemAdmin returns Credentials with the system scope and the admin,
// member and reader roles, for a host program that calls services
// directly with full authority (bootstrap, maintenance).
func SystemAdmin() *Credentials {
	return &Credentials{UserName: "system", System: true, Roles: []string{RoleAdmin, RoleMember, RoleReader}}
}

// requireCredentials returns the context's credentials or an
// ErrUnauthenticated error.
func requireCredentials(ctx context.Context) (*Credentials, error) {
	c := CredentialsFrom(ctx)
	if c == nil {
		return nil, errUnauthenticated("the request you have made requires authentication")
	}
	return c, nil
}

type authError struct{ msg string }

func (e *authError) Error() string        { return e.msg }
func (e *authError) Is(target error) bool { return target == errdefs.ErrUnauthenticated }

func errUnauthenticated(msg string) error { return &authError{msg: msg} }
