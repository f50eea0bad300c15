package metering

import (
	"context"
	"fmt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
)

// who is the caller as metering's policy sees it.
type who struct {
	project string
	admin   bool
}

// caller reads the caller from ctx: cloud admins and system readers see
// every project; anyone else needs a project scope and sees its own.
func caller(ctx context.Context) (who, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return who{}, fmt.Errorf("metering: %w: no credentials", errdefs.ErrUnauthenticated)
	}
	if c.IsCloudAdmin() || c.IsSystemReader() {
		return who{project: c.ProjectID, admin: true}, nil
	}
	if c.ProjectID == "" {
		return who{}, fmt.Errorf("metering: %w: a project-scoped token is needed", errdefs.ErrForbidden)
	}
	return who{project: c.ProjectID}, nil
}

// sees reports whether the caller may see a record of project.
func (w who) sees(project string) bool { return w.admin || project == w.project }

// writer fails unless the caller may write measures and resources: cloud
// admins only, so that tenants cannot forge what they are billed for.
func (w who) writer(ctx context.Context, what string) error {
	c := identity.CredentialsFrom(ctx)
	if c != nil && c.IsCloudAdmin() {
		return nil
	}
	return fmt.Errorf("metering: %s: %w", what, errdefs.ErrForbidden)
}
