package network

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
)

// Policy actions. A host program may override any of them in
// Config.Policy.
const (
	// ActionRead allows reading a resource of the target project.
	ActionRead = "network:read"
	// ActionWrite allows creating, changing, tagging and deleting a
	// resource of the target project.
	ActionWrite = "network:write"
	// ActionAdmin allows the admin-only attributes: shared,
	// router:external, provider:*, binding:*, another project's
	// resources, quotas.
	ActionAdmin = "network:admin"
)

// DefaultPolicy returns Neutron's default rules: readers read their
// project's resources, members change them, cloud admins do everything.
func DefaultPolicy() identity.Policy {
	return identity.Policy{
		ActionRead: func(c *identity.Credentials, t identity.Target) bool {
			return c.IsCloudAdmin() || c.IsSystemReader() || (c.ProjectID != "" && c.ProjectID == t.ProjectID && c.HasRole(identity.RoleReader))
		},
		ActionWrite: func(c *identity.Credentials, t identity.Target) bool {
			return c.IsCloudAdmin() || (c.ProjectID != "" && c.ProjectID == t.ProjectID && c.HasRole(identity.RoleMember))
		},
		ActionAdmin: func(c *identity.Credentials, _ identity.Target) bool { return c.IsCloudAdmin() },
	}
}

func (s *Service) allowed(c *identity.Credentials, action, project string) bool {
	return s.policy.Allowed(c, action, identity.Target{ProjectID: project})
}

func (s *Service) isAdmin(c *identity.Credentials) bool { return s.allowed(c, ActionAdmin, "") }

// canRead reports whether c may see a resource owned by project.
func (s *Service) canRead(c *identity.Credentials, project string) bool {
	return s.allowed(c, ActionRead, project)
}

// mayWrite checks that c may change a resource of project it can see.
func (s *Service) mayWrite(c *identity.Credentials, project string) error {
	if s.allowed(c, ActionWrite, project) {
		return nil
	}
	return fault("PolicyNotAuthorized", errdefs.ErrForbidden, "the policy does not allow this operation")
}

func (s *Service) requireAdmin(c *identity.Credentials, what string) error {
	if s.isAdmin(c) {
		return nil
	}
	return fault("PolicyNotAuthorized", errdefs.ErrForbidden, "only an admin may set %s", what)
}

// newID returns a new resource id: a random UUID (version 4), as Neutron's.
// Its first 11 characters name the resource's devices on the dataplane
// (tap…, brq…, as Neutron's agents do), so they must differ between
// resources made at the same moment: a time-ordered id (version 7) would
// give every port created within a quarter second the same tap name.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
