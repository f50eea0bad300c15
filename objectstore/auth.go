package objectstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
)

// op is what a request wants to do, for authorization.
type op int

const (
	opAccountRead   op = iota // HEAD/GET account
	opAccountWrite            // POST account, PUT/DELETE/POST container
	opContainerRead           // HEAD container
	opContainerList           // GET container
	opObjectRead              // GET/HEAD object
	opObjectWrite             // PUT/POST/DELETE object
)

func (o op) read() bool {
	return o == opAccountRead || o == opContainerRead || o == opContainerList || o == opObjectRead
}

// errUnauthorized is Swift's answer to a request without valid
// credentials (401); errDenied to one whose credentials do not allow it
// (403). Both are decided before any lookup, so neither tells whether the
// resource exists.
func errUnauthorized() error {
	return errdefs.Wrap(errdefs.ErrUnauthenticated, fmt.Errorf("this request requires a token or a valid temp URL"))
}

func errDenied() error {
	return errdefs.Wrap(errdefs.ErrForbidden, fmt.Errorf("access was denied to this resource"))
}

// owns reports whether c may act as the account's owner: a member or
// admin of its project, or a cloud admin. readOnly is true for a reader
// of the project without the member role.
func owns(c *identity.Credentials, account string) (owner, readOnly bool) {
	if c == nil {
		return false, false
	}
	if c.IsCloudAdmin() {
		return true, false
	}
	if c.ProjectID == "" || AccountPrefix+c.ProjectID != account {
		return false, false
	}
	if c.HasRole(identity.RoleMember) || c.HasRole(identity.RoleAdmin) {
		return true, false
	}
	return false, c.HasRole(identity.RoleReader)
}

// authorize decides whether the caller in ctx may do o on account (and
// the container ct, nil for account operations, and object name).
func (s *Service) authorize(ctx context.Context, o op, account string, ct *Container, object string) error {
	if g := grantFrom(ctx); g != nil {
		if g.allows(o, account, ct, object) || (o == opObjectRead && segmentAllowed(ctx, account)) {
			return nil
		}
		return errUnauthorized()
	}
	c := identity.CredentialsFrom(ctx)
	owner, readOnly := owns(c, account)
	if owner || (readOnly && o.read()) {
		return nil
	}
	if ct != nil {
		switch o {
		case opObjectRead:
			if aclAllows(ct.Read, c, true, false) {
				return nil
			}
		case opContainerList, opContainerRead:
			if aclAllows(ct.Read, c, false, true) {
				return nil
			}
		case opObjectWrite:
			if aclAllows(ct.Write, c, false, false) {
				return nil
			}
		}
	}
	if c == nil {
		return errUnauthorized()
	}
	return errDenied()
}

// aclAllows reports whether the ACL (X-Container-Read or -Write) lets c
// in. Referrer entries (.r:*) admit anyone for object reads; .rlistings
// extends them to listings. User entries are project:user with ids,
// names or *.
func aclAllows(acl string, c *identity.Credentials, objectRead, listing bool) bool {
	if acl == "" {
		return false
	}
	public, listings := false, false
	for entry := range strings.SplitSeq(acl, ",") {
		entry = strings.TrimSpace(entry)
		switch {
		case entry == ".r:*":
			public = true
		case entry == ".rlistings":
			listings = true
		case strings.HasPrefix(entry, "."):
			// Other referrer forms (.r:host) are not honoured: a Referer
			// header is the client's to forge.
		case c != nil && aclEntryMatches(entry, c):
			return true
		}
	}
	return public && (objectRead || (listing && listings))
}

func aclEntryMatches(entry string, c *identity.Credentials) bool {
	project, user, hasUser := strings.Cut(entry, ":")
	if !hasUser {
		// A bare project id admits the whole project (Swift's legacy form).
		return project != "" && project == c.ProjectID
	}
	pOK := project == "*" || (project != "" && (project == c.ProjectID || project == c.ProjectName))
	uOK := user == "*" || (user != "" && (user == c.UserID || user == c.UserName))
	return pOK && uOK && c.ProjectID != ""
}

// checkACL validates an ACL header value.
func checkACL(field, acl string, write bool) error {
	if len(acl) > 4096 {
		return errdefs.Invalid(field, "must be at most 4096 bytes")
	}
	for entry := range strings.SplitSeq(acl, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.HasPrefix(entry, ".") {
			if write {
				return errdefs.Invalid(field, "referrer entries (%q) are not allowed in a write ACL", entry)
			}
			if entry != ".rlistings" && !strings.HasPrefix(entry, ".r:") {
				return errdefs.Invalid(field, "unknown ACL entry %q", entry)
			}
		}
	}
	return nil
}
