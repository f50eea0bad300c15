package identity

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// ApplicationCredential lets an application authenticate as a user on one
// project with a subset of the user's roles there, with a secret of its
// own that is shown once and stored hashed (argon2id, as passwords).
type ApplicationCredential struct {
	store.Meta
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	UserID      string `json:"user_id"`
	ProjectID   string `json:"project_id"`
	// RoleIDs are the roles the credential's tokens carry (implied roles
	// added); the user must keep every one of them on the project.
	RoleIDs   []string   `json:"role_ids"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Unrestricted credentials may create and delete application
	// credentials and trusts; restricted ones (the default) may not.
	Unrestricted bool `json:"unrestricted"`
	// AccessRules, if any, are the only requests its tokens may make.
	AccessRules []AccessRule `json:"access_rules,omitempty"`
	SecretHash  string       `json:"secret_hash"`
	// Secret is set only in the result of CreateApplicationCredential.
	Secret string `json:"-"`
	// Roles are the roles of RoleIDs, filled in for callers.
	Roles []Ref `json:"-"`
}

// StoreKey implements store.Record.
func (a *ApplicationCredential) StoreKey() string { return a.ID }

var appCredTableDef = store.Table{
	Name: appCredTable,
	New:  func() store.Record { return new(ApplicationCredential) },
	Indexes: []*memdbIndex{
		index("user", false, func(o any) string { return o.(*ApplicationCredential).UserID }),
		index("name", true, func(o any) string { a := o.(*ApplicationCredential); return key(a.UserID, a.Name) }),
	},
}

// CreateAppCredOpts are the fields of a new application credential.
type CreateAppCredOpts struct {
	Name        string
	Description string
	// Secret is generated when empty.
	Secret    string
	ExpiresAt *time.Time
	// Roles name roles by id or name; empty means every role of the
	// caller's token.
	Roles        []Ref
	Unrestricted bool
	AccessRules  []AccessRule
}

// appCredSecrets remembers secrets already verified against a stored hash,
// so that an application authenticating many times pays the KDF once. An
// entry holds SHA-256 of the secret and the hash it was verified against:
// a changed or deleted credential no longer matches.
type appCredSecrets struct {
	mu sync.Mutex
	m  map[string]verifiedSecret
}

type verifiedSecret struct {
	hash string
	sum  [32]byte
}

const maxVerifiedSecrets = 10_000

func (c *appCredSecrets) check(id, hash, secret string) bool {
	c.mu.Lock()
	v, ok := c.m[id]
	c.mu.Unlock()
	sum := sha256.Sum256([]byte(secret))
	return ok && v.hash == hash && subtle.ConstantTimeCompare(v.sum[:], sum[:]) == 1
}

func (c *appCredSecrets) remember(id, hash, secret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerifiedSecrets {
		c.m = map[string]verifiedSecret{}
	}
	c.m[id] = verifiedSecret{hash: hash, sum: sha256.Sum256([]byte(secret))}
}

// appCredOwner checks that the caller may manage the application
// credentials of userID: its own, with a token that is neither
// trust-scoped nor from a restricted application credential.
func appCredOwner(c *Credentials, userID string) error {
	switch {
	case c.UserID != userID:
		return fmt.Errorf("identity: you are not authorized to perform the requested action: application credentials belong to their user: %w", errdefs.ErrForbidden)
	case c.TrustID != "":
		return fmt.Errorf("identity: you are not authorized to perform the requested action: a trust-scoped token cannot manage application credentials: %w", errdefs.ErrForbidden)
	case c.restrictedAppCred():
		return fmt.Errorf("identity: you are not authorized to perform the requested action: a restricted application credential cannot create or delete application credentials: %w", errdefs.ErrForbidden)
	}
	return nil
}

// CreateApplicationCredential creates an application credential for the
// caller (userID must be the caller's) on the project of its token. The
// result carries the secret, which is never shown again.
func (s *Service) CreateApplicationCredential(ctx context.Context, userID string, opts CreateAppCredOpts) (*ApplicationCredential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	if err := appCredOwner(c, userID); err != nil {
		return nil, err
	}
	if c.ProjectID == "" {
		return nil, errdefs.Invalid("application_credential", "needs a project-scoped token")
	}
	if err := checkName("name", opts.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(opts.Description); err != nil {
		return nil, err
	}
	now := s.now()
	if opts.ExpiresAt != nil && !opts.ExpiresAt.After(now) {
		return nil, errdefs.Invalid("expires_at", "must be in the future")
	}
	if len(opts.AccessRules) > maxAccessRules {
		return nil, errdefs.Invalid("access_rules", "at most %d rules", maxAccessRules)
	}
	rules := slices.Clone(opts.AccessRules)
	for i := range rules {
		if err := rules[i].validate(fmt.Sprintf("access_rules[%d]", i)); err != nil {
			return nil, err
		}
		if rules[i].ID == "" {
			rules[i].ID = newID()
		}
	}
	secret := opts.Secret
	if secret == "" {
		b := make([]byte, 64)
		_, _ = rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
	} else if err := checkPassword("secret", secret); err != nil {
		return nil, err
	}
	ac := &ApplicationCredential{ID: newID(), Name: opts.Name, Description: opts.Description, UserID: userID,
		ProjectID: c.ProjectID, Unrestricted: opts.Unrestricted, AccessRules: rules,
		SecretHash: s.cfg.PasswordHashing.hash(secret)}
	if opts.ExpiresAt != nil {
		t := opts.ExpiresAt.UTC()
		ac.ExpiresAt = &t
	}
	err = s.update(ctx, func(tx *store.Txn) error {
		held := effectiveRoles(tx, userID, targetProject, c.ProjectID)
		if len(opts.Roles) == 0 {
			for _, name := range c.Roles {
				for _, r := range held {
					if r.Name == name && !slices.Contains(ac.RoleIDs, r.ID) {
						ac.RoleIDs = append(ac.RoleIDs, r.ID)
					}
				}
			}
		}
		for i, want := range opts.Roles {
			idx := slices.IndexFunc(held, func(r *Role) bool {
				return (want.ID != "" && r.ID == want.ID) || (want.ID == "" && want.Name != "" && r.Name == want.Name)
			})
			if idx < 0 {
				return fmt.Errorf("identity: %w", errdefs.Invalid(fmt.Sprintf("roles[%d]", i),
					"the user does not hold role %s on project %s", cmp.Or(want.ID, want.Name), c.ProjectID))
			}
			if !slices.Contains(ac.RoleIDs, held[idx].ID) {
				ac.RoleIDs = append(ac.RoleIDs, held[idx].ID)
			}
		}
		if len(ac.RoleIDs) == 0 {
			return errdefs.Invalid("roles", "the user holds no role on project %s", c.ProjectID)
		}
		if _, err := store.First[ApplicationCredential](nil, tx, appCredTable, "name", key(userID, ac.Name)); err == nil {
			return conflict("duplicate entry: application credential with name %q", ac.Name)
		}
		return tx.Insert(appCredTable, ac)
	})
	if err != nil {
		return nil, err
	}
	out := s.detachAppCred(s.st.Snapshot(), ac)
	out.Secret = secret
	return out, nil
}

// detachAppCred returns a copy of ac for callers: no hash, roles named.
func (s *Service) detachAppCred(tx *store.Txn, ac *ApplicationCredential) *ApplicationCredential {
	c := *ac
	c.SecretHash = ""
	c.RoleIDs = slices.Clone(ac.RoleIDs)
	c.AccessRules = slices.Clone(ac.AccessRules)
	c.Roles = nil
	for _, id := range ac.RoleIDs {
		if r, err := store.Get[Role](nil, tx, roleTable, id); err == nil {
			c.Roles = append(c.Roles, Ref{ID: r.ID, Name: r.Name})
		}
	}
	if ac.ExpiresAt != nil {
		t := *ac.ExpiresAt
		c.ExpiresAt = &t
	}
	return &c
}

// appCredVisible checks that the caller may read the application
// credentials of userID: its own, or any for cloud admins (readers).
func (s *Service) appCredVisible(c *Credentials, userID string) bool {
	return s.policy.Allowed(c, "identity:get_application_credential", Target{UserID: userID})
}

// GetApplicationCredential returns an application credential of userID.
func (s *Service) GetApplicationCredential(ctx context.Context, userID, id string) (*ApplicationCredential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	ac, err := store.Get[ApplicationCredential](nil, tx, appCredTable, id)
	if err != nil || ac.UserID != userID || !s.appCredVisible(c, userID) {
		return nil, notFound("application credential", id)
	}
	return s.detachAppCred(tx, ac), nil
}

// ListApplicationCredentials lists the application credentials of userID,
// those named name if name is not empty.
func (s *Service) ListApplicationCredentials(ctx context.Context, userID, name string) ([]*ApplicationCredential, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	if !s.appCredVisible(c, userID) {
		return nil, notFound("user", userID)
	}
	tx := s.st.Snapshot()
	it, err := store.List[ApplicationCredential](nil, tx, appCredTable, "user", userID)
	if err != nil {
		return nil, err
	}
	var out []*ApplicationCredential
	for ac := range it {
		if name == "" || ac.Name == name {
			out = append(out, s.detachAppCred(tx, ac))
		}
	}
	return out, nil
}

// DeleteApplicationCredential deletes an application credential; its
// tokens stop validating.
func (s *Service) DeleteApplicationCredential(ctx context.Context, userID, id string) error {
	c, err := requireCredentials(ctx)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		ac, err := store.Get[ApplicationCredential](nil, tx, appCredTable, id)
		if err != nil || ac.UserID != userID || !s.appCredVisible(c, userID) {
			return notFound("application credential", id)
		}
		if !c.IsCloudAdmin() {
			if err := appCredOwner(c, userID); err != nil {
				return err
			}
		}
		return tx.Delete(appCredTable, id)
	})
}

var errAppCredAuth = errUnauthenticated("the request you have made requires authentication")

// checkAppCred finds the application credential of a and verifies its
// secret, its expiry and its user.
func (s *Service) checkAppCred(a AppCredAuth, now time.Time) (*ApplicationCredential, error) {
	if len(a.Secret) > MaxPasswordLen {
		return nil, errAppCredAuth
	}
	tx := s.st.Snapshot()
	var ac *ApplicationCredential
	var err error
	if a.ID != "" {
		ac, err = store.Get[ApplicationCredential](nil, tx, appCredTable, a.ID)
	} else {
		var u *User
		if u, err = findUser(tx, a.UserID, a.UserName, a.DomainID, a.DomainName, "auth.identity.application_credential.user"); err == nil {
			ac, err = store.First[ApplicationCredential](nil, tx, appCredTable, "name", key(u.ID, a.Name))
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
	}
	if err != nil {
		s.cfg.PasswordHashing.hash(a.Secret) // same cost as a real check
		return nil, errAppCredAuth
	}
	if !s.secrets.check(ac.ID, ac.SecretHash, a.Secret) {
		if !verifyPassword(ac.SecretHash, a.Secret) {
			return nil, errAppCredAuth
		}
		s.secrets.remember(ac.ID, ac.SecretHash, a.Secret)
	}
	if ac.ExpiresAt != nil && !now.Before(*ac.ExpiresAt) {
		return nil, errUnauthenticated("Error authenticating with application credential: Application credential has expired.")
	}
	u, err := store.Get[User](nil, tx, userTable, ac.UserID)
	if err != nil || !u.Enabled {
		return nil, errAppCredAuth
	}
	if s.inactive(u, now) {
		return nil, errUserDisabled(u.ID)
	}
	return ac, nil
}

// resolveAppCred checks the application credential of p and returns the
// roles its token carries: its roles, which the user must still hold.
func (s *Service) resolveAppCred(tx *store.Txn, p *payload, t *Token) ([]*Role, error) {
	ac, err := store.Get[ApplicationCredential](nil, tx, appCredTable, p.appCredID)
	if err != nil || ac.UserID != p.userID || ac.ProjectID != p.scopeID {
		return nil, errUnauthenticated("the request you have made requires authentication: application credential not found")
	}
	if !holdsAll(tx, p.userID, ac.ProjectID, ac.RoleIDs) {
		return nil, errUnauthenticated("the request you have made requires authentication: the user no longer holds the application credential's roles")
	}
	t.ApplicationCredential = &TokenAppCred{ID: ac.ID, Name: ac.Name, Unrestricted: ac.Unrestricted, AccessRules: slices.Clone(ac.AccessRules)}
	return impliedClosure(tx, ac.RoleIDs), nil
}

// holdsAll reports whether user holds every role of ids on project,
// directly, through a group or by implication.
func holdsAll(tx *store.Txn, userID, projectID string, ids []string) bool {
	held := effectiveRoles(tx, userID, targetProject, projectID)
	for _, id := range ids {
		if !slices.ContainsFunc(held, func(r *Role) bool { return r.ID == id }) {
			return false
		}
	}
	return true
}

// pruneAppCredsTxn deletes the application credentials of users on
// project (any project if empty) that carry a role they no longer hold.
func pruneAppCredsTxn(tx *store.Txn, users []string, projectID string) error {
	for _, u := range users {
		it, err := store.List[ApplicationCredential](nil, tx, appCredTable, "user", u)
		if err != nil {
			return err
		}
		var gone []string
		for ac := range it {
			if (projectID == "" || ac.ProjectID == projectID) && !holdsAll(tx, u, ac.ProjectID, ac.RoleIDs) {
				gone = append(gone, ac.ID)
			}
		}
		for _, id := range gone {
			if err := tx.Delete(appCredTable, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteUserAppCredsTxn deletes every application credential of a user.
func deleteUserAppCredsTxn(tx *store.Txn, userID string) error {
	it, err := store.List[ApplicationCredential](nil, tx, appCredTable, "user", userID)
	if err != nil {
		return err
	}
	var ids []string
	for ac := range it {
		ids = append(ids, ac.ID)
	}
	for _, id := range ids {
		if err := tx.Delete(appCredTable, id); err != nil {
			return err
		}
	}
	return nil
}

// ListAccessRules lists the access rules of the application credentials
// of userID. A rule lives with the credential that holds it.
func (s *Service) ListAccessRules(ctx context.Context, userID string) ([]AccessRule, error) {
	acs, err := s.ListApplicationCredentials(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	var out []AccessRule
	for _, ac := range acs {
		out = append(out, ac.AccessRules...)
	}
	return out, nil
}

// GetAccessRule returns an access rule of userID's application credentials.
func (s *Service) GetAccessRule(ctx context.Context, userID, id string) (*AccessRule, error) {
	rules, err := s.ListAccessRules(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if r.ID == id {
			return &r, nil
		}
	}
	return nil, notFound("access rule", id)
}

// DeleteAccessRule refuses to delete a rule in use: every rule is, by the
// credential that holds it (delete the credential instead).
func (s *Service) DeleteAccessRule(ctx context.Context, userID, id string) error {
	if _, err := s.GetAccessRule(ctx, userID, id); err != nil {
		return err
	}
	return forbidden("access rule %s is in use by an application credential", id)
}
