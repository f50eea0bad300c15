package identity

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// User is a Keystone user. The password hash never leaves the Service.
type User struct {
	store.Meta
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	DomainID         string         `json:"domain_id"`
	Enabled          bool           `json:"enabled"`
	DefaultProjectID string         `json:"default_project_id,omitempty"`
	Description      string         `json:"description,omitempty"`
	Options          map[string]any `json:"options,omitempty"`
	// Extra holds the attributes Keystone does not know, such as
	// "email"; the API returns them at the top level of the user.
	Extra             map[string]any `json:"extra,omitempty"`
	PasswordHash      string         `json:"password_hash,omitempty"`
	PasswordExpiresAt *time.Time     `json:"password_expires_at,omitempty"`
	// PasswordCreatedAt is when the password was set (minimum age).
	PasswordCreatedAt *time.Time `json:"password_created_at,omitempty"`
	// PasswordHistory holds the hashes of former passwords, the most
	// recent first (SecurityCompliance.UniqueLastPasswordCount).
	PasswordHistory []string `json:"password_history,omitempty"`
	// FailedAuthCount and FailedAuthAt count consecutive failed password
	// authentications (SecurityCompliance.LockoutFailureAttempts).
	FailedAuthCount int        `json:"failed_auth_count,omitempty"`
	FailedAuthAt    *time.Time `json:"failed_auth_at,omitempty"`
	// LastActiveAt is when the user last authenticated, kept when
	// SecurityCompliance.DisableUserAccountDaysInactive is set.
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
}

// StoreKey implements store.Record.
func (u *User) StoreKey() string { return u.ID }

var userTableDef = store.Table{
	Name: userTable,
	New:  func() store.Record { return new(User) },
	Indexes: []*memdbIndex{
		index("name", true, func(o any) string { u := o.(*User); return key(u.DomainID, u.Name) }),
		index("domain", false, func(o any) string { return o.(*User).DomainID }),
	},
}

// CreateUserOpts are the fields of a new user.
type CreateUserOpts struct {
	Name string
	// DomainID defaults to the default domain.
	DomainID         string
	Password         string
	Enabled          *bool
	DefaultProjectID string
	Description      string
	Options          map[string]any
	Extra            map[string]any
}

// UpdateUserOpts are the fields to change; nil means unchanged. Extra
// attributes are merged; a nil value removes one.
type UpdateUserOpts struct {
	Name             *string
	Password         *string
	Enabled          *bool
	DefaultProjectID *string
	Description      *string
	Options          map[string]any
	Extra            map[string]any
}

// ListUsersOpts filters ListUsers.
type ListUsersOpts struct {
	Name         string
	NameContains string
	DomainID     string
	Enabled      *bool
}

// reserved are user attributes that are not "extra".
var reservedUserFields = map[string]bool{
	"id": true, "name": true, "domain_id": true, "enabled": true, "default_project_id": true,
	"description": true, "options": true, "password": true, "links": true, "password_expires_at": true,
	"extra": true, "domain": true,
}

func checkExtra(extra map[string]any) error {
	for k := range extra {
		if reservedUserFields[k] {
			return errdefs.Invalid(k, "is not an extra attribute")
		}
	}
	return nil
}

// clean drops the password hash from u and gives it its own copies of the
// maps it shares with the stored record.
func clean(u *User) *User {
	u.PasswordHash, u.PasswordHistory = "", nil
	u.Options, u.Extra = cloneMap(u.Options), cloneMap(u.Extra)
	if u.PasswordExpiresAt != nil {
		t := *u.PasswordExpiresAt
		u.PasswordExpiresAt = &t
	}
	return u
}

// userTarget returns the target of an action on u for the caller c: the
// project is c's project when u has a role there, so that readers of a
// project see its users.
func userTarget(tx *store.Txn, c *Credentials, u *User) Target {
	t := Target{UserID: u.ID, DomainID: u.DomainID}
	if c != nil && c.ProjectID != "" && len(effectiveRoles(tx, u.ID, targetProject, c.ProjectID)) > 0 {
		t.ProjectID = c.ProjectID
	}
	return t
}

// CreateUser creates a user, hashing its password with argon2id.
func (s *Service) CreateUser(ctx context.Context, opts CreateUserOpts) (*User, error) {
	if err := checkName("name", opts.Name); err != nil {
		return nil, err
	}
	if opts.Password != "" {
		if err := checkPassword("password", opts.Password); err != nil {
			return nil, err
		}
	}
	if err := checkDescription(opts.Description); err != nil {
		return nil, err
	}
	if err := checkExtra(opts.Extra); err != nil {
		return nil, err
	}
	u := &User{ID: newID(), Name: opts.Name, DomainID: opts.DomainID, Enabled: ptrOr(opts.Enabled, true),
		DefaultProjectID: opts.DefaultProjectID, Description: opts.Description, Options: cloneMap(opts.Options), Extra: cloneMap(opts.Extra)}
	if u.DomainID == "" {
		u.DomainID = DefaultDomainID
	}
	if err := s.policy.Enforce(ctx, "identity:create_user", Target{DomainID: u.DomainID}); err != nil {
		return nil, err
	}
	if opts.Password != "" {
		if err := s.checkNewPassword(nil, opts.Password, false); err != nil {
			return nil, err
		}
		s.setPassword(u, s.cfg.PasswordHashing.hash(opts.Password), false, s.now())
	}
	if s.cfg.Security.DisableUserAccountDaysInactive > 0 {
		now := s.now()
		u.LastActiveAt = &now
	}
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := s.getDomain(tx, u.DomainID); err != nil {
			return errdefs.Invalid("domain_id", "domain %s does not exist", u.DomainID)
		}
		if u.DefaultProjectID != "" {
			if _, err := s.getProject(tx, u.DefaultProjectID); err != nil {
				return errdefs.Invalid("default_project_id", "project %s does not exist", u.DefaultProjectID)
			}
		}
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

func (s *Service) getUser(tx *store.Txn, id string) (*User, error) {
	u, err := store.Get[User](nil, tx, userTable, id)
	if err != nil {
		return nil, notFound("user", id)
	}
	return clean(u), nil
}

// GetUser returns a user the caller may see: itself, the users with a role
// on its project (for readers), and every user for domain and system
// readers.
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	u, err := s.getUser(tx, id)
	if err != nil {
		return nil, err
	}
	if !s.policy.Allowed(c, "identity:get_user", userTarget(tx, c, u)) {
		return nil, notFound("user", id)
	}
	return u, nil
}

// ListUsers lists the users the caller may see that match opts.
func (s *Service) ListUsers(ctx context.Context, opts ListUsersOpts) ([]*User, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	all, err := store.List[User](nil, tx, userTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*User
	for u := range all {
		switch {
		case opts.Name != "" && u.Name != opts.Name,
			opts.NameContains != "" && !containsFold(u.Name, opts.NameContains),
			opts.DomainID != "" && u.DomainID != opts.DomainID,
			opts.Enabled != nil && u.Enabled != *opts.Enabled:
			continue
		}
		if s.policy.Allowed(c, "identity:get_user", userTarget(tx, c, u)) {
			out = append(out, clean(u))
		}
	}
	return out, nil
}

// UpdateUser changes a user. Disabling it or changing its password revokes
// its tokens.
func (s *Service) UpdateUser(ctx context.Context, id string, opts UpdateUserOpts) (*User, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkExtra(opts.Extra); err != nil {
		return nil, err
	}
	var hash string
	if opts.Password != nil {
		if err := checkPassword("password", *opts.Password); err != nil {
			return nil, err
		}
		// Check policy before paying for the KDF.
		u, err := s.userForWrite(ctx, s.st.Snapshot(), c, id, "identity:update_user")
		if err != nil {
			return nil, err
		}
		if err := s.checkNewPassword(u, *opts.Password, false); err != nil {
			return nil, err
		}
		hash = s.cfg.PasswordHashing.hash(*opts.Password)
	}
	err = s.update(ctx, func(tx *store.Txn) error {
		u, err := s.userForWrite(ctx, tx, c, id, "identity:update_user")
		if err != nil {
			return err
		}
		if opts.Name != nil {
			if err := checkName("name", *opts.Name); err != nil {
				return err
			}
			if o, err := store.First[User](nil, tx, userTable, "name", key(u.DomainID, *opts.Name)); err == nil && o.ID != id {
				return conflict("duplicate entry: user with name %q in domain %s", *opts.Name, u.DomainID)
			}
			u.Name = *opts.Name
		}
		if opts.DefaultProjectID != nil {
			if *opts.DefaultProjectID != "" {
				if _, err := s.getProject(tx, *opts.DefaultProjectID); err != nil {
					return errdefs.Invalid("default_project_id", "project %s does not exist", *opts.DefaultProjectID)
				}
			}
			u.DefaultProjectID = *opts.DefaultProjectID
		}
		if opts.Description != nil {
			if err := checkDescription(*opts.Description); err != nil {
				return err
			}
			u.Description = *opts.Description
		}
		if opts.Options != nil {
			u.Options = cloneMap(opts.Options)
		}
		if opts.Extra != nil {
			u.Extra = maps.Clone(u.Extra)
			if u.Extra == nil {
				u.Extra = map[string]any{}
			}
			for k, v := range opts.Extra {
				if v == nil {
					delete(u.Extra, k)
				} else {
					u.Extra[k] = v
				}
			}
		}
		revoke := false
		if opts.Enabled != nil {
			revoke = u.Enabled && !*opts.Enabled
			if !u.Enabled && *opts.Enabled {
				// Re-enabling unlocks and restarts the inactivity clock,
				// as in Keystone.
				u.FailedAuthCount, u.FailedAuthAt = 0, nil
				if s.cfg.Security.DisableUserAccountDaysInactive > 0 {
					now := s.now()
					u.LastActiveAt = &now
				}
			}
			u.Enabled = *opts.Enabled
		}
		if hash != "" {
			s.setPassword(u, hash, false, s.now())
			revoke = true
		}
		if err := tx.Update(userTable, u); err != nil {
			return err
		}
		if revoke {
			return s.revokeTxn(tx, Revocation{UserID: id})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.getUser(s.st.Snapshot(), id)
}

// userForWrite reads a user for a write: not found if the caller may not
// see it, forbidden if it may not do action.
func (s *Service) userForWrite(ctx context.Context, tx *store.Txn, c *Credentials, id, action string) (*User, error) {
	u, err := store.Get[User](nil, tx, userTable, id)
	if err != nil {
		return nil, notFound("user", id)
	}
	t := userTarget(tx, c, u)
	if !s.policy.Allowed(c, "identity:get_user", t) {
		return nil, notFound("user", id)
	}
	if action != "identity:change_password" {
		t = s.writeTarget(tx, t, userActors(tx, u.ID)...)
	}
	if err := s.policy.Enforce(ctx, action, t); err != nil {
		return nil, err
	}
	return u, nil
}

// ChangePassword changes a user's own password after checking the
// original one, applies the password rules (SecurityCompliance) and
// revokes the user's tokens. As in Keystone it needs no token, so that a
// user whose password expired can change it: the original password proves
// who calls. With credentials in ctx, they must be the user's own.
func (s *Service) ChangePassword(ctx context.Context, userID, original, password string) error {
	if err := checkPassword("password", password); err != nil {
		return err
	}
	if err := checkPassword("original_password", original); err != nil {
		return err
	}
	tx := s.st.Snapshot()
	var u *User
	if c := CredentialsFrom(ctx); c != nil {
		var err error
		if u, err = s.userForWrite(ctx, tx, c, userID, "identity:change_password"); err != nil {
			return err
		}
	} else {
		var err error
		if u, err = store.Get[User](nil, tx, userTable, userID); err != nil {
			s.cfg.PasswordHashing.hash(original) // same cost as a real check
			return errAuthFailed
		}
	}
	now := s.now()
	if s.locked(u, now) {
		return errAccountLocked(u.ID)
	}
	if u.PasswordHash == "" || !verifyPassword(u.PasswordHash, original) {
		s.recordAuthFailure(ctx, u.ID)
		return errAuthFailed
	}
	if !u.Enabled {
		return errAuthFailed
	}
	if err := s.checkNewPassword(u, password, true); err != nil {
		return err
	}
	hash := s.cfg.PasswordHashing.hash(password)
	return s.update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[User](nil, tx, userTable, userID)
		if err != nil {
			return notFound("user", userID)
		}
		if cur.PasswordHash != u.PasswordHash {
			return conflict("the password changed meanwhile")
		}
		s.setPassword(cur, hash, true, now)
		if err := tx.Update(userTable, cur); err != nil {
			return err
		}
		return s.revokeTxn(tx, Revocation{UserID: userID})
	})
}

// DeleteUser deletes a user with its group memberships and role
// assignments, and revokes its tokens.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	c, err := requireCredentials(ctx)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		if _, err := s.userForWrite(ctx, tx, c, id, "identity:delete_user"); err != nil {
			return err
		}
		if err := deleteAssignmentsTxn(tx, "actor", key(actorUser, id)); err != nil {
			return err
		}
		ms, err := store.List[Membership](nil, tx, memberTable, "user", id)
		if err != nil {
			return err
		}
		var keys []string
		for m := range ms {
			keys = append(keys, m.StoreKey())
		}
		for _, k := range keys {
			if err := tx.Delete(memberTable, k); err != nil {
				return err
			}
		}
		if err := deleteUserAppCredsTxn(tx, id); err != nil {
			return err
		}
		if err := deleteUserTrustsTxn(tx, id); err != nil {
			return err
		}
		if err := deleteUserCredentialsTxn(tx, id); err != nil {
			return err
		}
		if err := tx.Delete(userTable, id); err != nil {
			return err
		}
		return s.revokeTxn(tx, Revocation{UserID: id})
	})
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
