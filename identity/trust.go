package identity

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Trust (OS-TRUST) delegates roles of a trustor on a project to a trustee,
// who gets trust-scoped tokens carrying those roles: this is how a service
// (orchestration, metering) acts for a user long after the user's own token
// expired. The trustor must keep the roles: when it loses one, is disabled
// or deleted, or the trust is deleted or expires, the trust's tokens stop
// validating.
type Trust struct {
	store.Meta
	ID            string `json:"id"`
	TrustorUserID string `json:"trustor_user_id"`
	TrusteeUserID string `json:"trustee_user_id"`
	ProjectID     string `json:"project_id"`
	// Impersonation makes the trust's tokens the trustor's (user id);
	// without it they are the trustee's.
	Impersonation bool       `json:"impersonation"`
	RoleIDs       []string   `json:"role_ids"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	// RemainingUses, if set, is the number of tokens the trust may still
	// issue.
	RemainingUses *int `json:"remaining_uses,omitempty"`
	// AllowRedelegation lets the trustee create trusts from this one's
	// tokens, RedelegationCount levels deep.
	AllowRedelegation  bool   `json:"allow_redelegation"`
	RedelegationCount  int    `json:"redelegation_count"`
	RedelegatedTrustID string `json:"redelegated_trust_id,omitempty"`
	// Roles are the roles of RoleIDs, filled in for callers.
	Roles []Ref `json:"-"`
}

// StoreKey implements store.Record.
func (t *Trust) StoreKey() string { return t.ID }

var trustTableDef = store.Table{
	Name: trustTable,
	New:  func() store.Record { return new(Trust) },
	Indexes: []*memdbIndex{
		index("trustor", false, func(o any) string { return o.(*Trust).TrustorUserID }),
		index("trustee", false, func(o any) string { return o.(*Trust).TrusteeUserID }),
		index("parent", false, func(o any) string { return o.(*Trust).RedelegatedTrustID }),
	},
}

// CreateTrustOpts are the fields of a new trust.
type CreateTrustOpts struct {
	// TrustorUserID must be the caller.
	TrustorUserID string
	TrusteeUserID string
	// ProjectID is required (a redelegation inherits its parent's).
	ProjectID     string
	Impersonation bool
	// Roles name roles by id or name; the trustor must hold them on the
	// project.
	Roles         []Ref
	ExpiresAt     *time.Time
	RemainingUses *int
	// AllowRedelegation and RedelegationCount (default: the maximum,
	// Config.MaxTrustRedelegation) allow redelegation.
	AllowRedelegation bool
	RedelegationCount *int
}

// ListTrustsOpts filters ListTrusts.
type ListTrustsOpts struct {
	TrustorUserID string
	TrusteeUserID string
}

func (s *Service) detachTrust(tx *store.Txn, t *Trust) *Trust {
	c := *t
	c.RoleIDs = slices.Clone(t.RoleIDs)
	c.Roles = nil
	for _, id := range t.RoleIDs {
		if r, err := store.Get[Role](nil, tx, roleTable, id); err == nil {
			c.Roles = append(c.Roles, Ref{ID: r.ID, Name: r.Name})
		}
	}
	if t.ExpiresAt != nil {
		e := *t.ExpiresAt
		c.ExpiresAt = &e
	}
	if t.RemainingUses != nil {
		n := *t.RemainingUses
		c.RemainingUses = &n
	}
	return &c
}

func forbidden(format string, args ...any) error {
	return fmt.Errorf("identity: you are not authorized to perform the requested action: "+format+": %w", append(args, errdefs.ErrForbidden)...)
}

// CreateTrust creates a trust from the caller (the trustor) to a trustee.
// With a trust-scoped token it redelegates that trust: the new trust may
// not grant more roles, last longer or impersonate where its parent does
// not, and its redelegation count is one less.
func (s *Service) CreateTrust(ctx context.Context, opts CreateTrustOpts) (*Trust, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case c.restrictedAppCred():
		return nil, forbidden("a restricted application credential cannot create trusts")
	case opts.TrustorUserID == "" || c.UserID != opts.TrustorUserID:
		return nil, forbidden("the trustor must be the caller")
	case opts.TrusteeUserID == "":
		return nil, errdefs.Invalid("trustee_user_id", "is required")
	case opts.RemainingUses != nil && *opts.RemainingUses <= 0:
		return nil, errdefs.Invalid("remaining_uses", "must be a positive integer")
	case opts.RedelegationCount != nil && (*opts.RedelegationCount < 0 || *opts.RedelegationCount > s.cfg.MaxTrustRedelegation):
		return nil, errdefs.Invalid("redelegation_count", "must be between 0 and %d", s.cfg.MaxTrustRedelegation)
	case len(opts.Roles) == 0:
		return nil, errdefs.Invalid("roles", "at least one role is required")
	case len(opts.Roles) > 64:
		return nil, errdefs.Invalid("roles", "at most 64 roles")
	}
	now := s.now()
	if opts.ExpiresAt != nil && !opts.ExpiresAt.After(now) {
		return nil, errdefs.Invalid("expires_at", "must be in the future")
	}
	t := &Trust{ID: newID(), TrustorUserID: opts.TrustorUserID, TrusteeUserID: opts.TrusteeUserID, ProjectID: opts.ProjectID,
		Impersonation: opts.Impersonation, AllowRedelegation: opts.AllowRedelegation, RemainingUses: opts.RemainingUses}
	if opts.ExpiresAt != nil {
		e := opts.ExpiresAt.UTC()
		t.ExpiresAt = &e
	}
	if t.AllowRedelegation {
		t.RedelegationCount = ptrOr(opts.RedelegationCount, s.cfg.MaxTrustRedelegation)
	}
	err = s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[User](nil, tx, userTable, t.TrusteeUserID); err != nil {
			return errdefs.Invalid("trustee_user_id", "user %s does not exist", t.TrusteeUserID)
		}
		var allowed []*Role // roles the trustor may delegate
		if c.TrustID != "" {
			parent, err := store.Get[Trust](nil, tx, trustTable, c.TrustID)
			if err != nil {
				return notFound("trust", c.TrustID)
			}
			switch {
			case !parent.AllowRedelegation || parent.RedelegationCount < 1:
				return forbidden("trust %s does not allow redelegation", parent.ID)
			case t.Impersonation && !parent.Impersonation:
				return forbidden("a redelegated trust cannot impersonate when its parent does not")
			case t.ProjectID != "" && t.ProjectID != parent.ProjectID:
				return forbidden("a redelegated trust must be on its parent's project")
			}
			t.ProjectID, t.RedelegatedTrustID = parent.ProjectID, parent.ID
			if t.AllowRedelegation {
				t.RedelegationCount = min(ptrOr(opts.RedelegationCount, parent.RedelegationCount-1), parent.RedelegationCount-1)
				t.AllowRedelegation = t.RedelegationCount > 0
			}
			if parent.ExpiresAt != nil && (t.ExpiresAt == nil || t.ExpiresAt.After(*parent.ExpiresAt)) {
				e := *parent.ExpiresAt
				t.ExpiresAt = &e
			}
			allowed = impliedClosure(tx, parent.RoleIDs)
		} else {
			if t.ProjectID == "" {
				return errdefs.Invalid("project_id", "is required")
			}
			if _, err := s.getProject(tx, t.ProjectID); err != nil {
				return errdefs.Invalid("project_id", "project %s does not exist", t.ProjectID)
			}
			allowed = effectiveRoles(tx, t.TrustorUserID, targetProject, t.ProjectID)
		}
		for i, want := range opts.Roles {
			idx := slices.IndexFunc(allowed, func(r *Role) bool {
				return (want.ID != "" && r.ID == want.ID) || (want.ID == "" && want.Name != "" && r.Name == want.Name)
			})
			if idx < 0 {
				return forbidden("roles[%d]: the trustor does not hold the role on project %s", i, t.ProjectID)
			}
			if !slices.Contains(t.RoleIDs, allowed[idx].ID) {
				t.RoleIDs = append(t.RoleIDs, allowed[idx].ID)
			}
		}
		return tx.Insert(trustTable, t)
	})
	if err != nil {
		return nil, err
	}
	return s.detachTrust(s.st.Snapshot(), t), nil
}

func (s *Service) trustVisible(c *Credentials, t *Trust) bool {
	return c.UserID == t.TrustorUserID || c.UserID == t.TrusteeUserID ||
		s.policy.Allowed(c, "identity:get_trust", Target{UserID: t.TrustorUserID})
}

// GetTrust returns a trust the caller is the trustor or trustee of (any,
// for cloud readers).
func (s *Service) GetTrust(ctx context.Context, id string) (*Trust, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	t, err := store.Get[Trust](nil, tx, trustTable, id)
	if err != nil || !s.trustVisible(c, t) || s.trustExpired(t) {
		return nil, notFound("trust", id)
	}
	return s.detachTrust(tx, t), nil
}

func (s *Service) trustExpired(t *Trust) bool {
	return t.ExpiresAt != nil && !s.now().Before(*t.ExpiresAt)
}

// ListTrusts lists the trusts the caller may see that match opts.
func (s *Service) ListTrusts(ctx context.Context, opts ListTrustsOpts) ([]*Trust, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	it, err := store.List[Trust](nil, tx, trustTable, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Trust
	for t := range it {
		switch {
		case opts.TrustorUserID != "" && t.TrustorUserID != opts.TrustorUserID,
			opts.TrusteeUserID != "" && t.TrusteeUserID != opts.TrusteeUserID,
			!s.trustVisible(c, t), s.trustExpired(t):
			continue
		}
		out = append(out, s.detachTrust(tx, t))
	}
	return out, nil
}

// DeleteTrust deletes a trust and the trusts redelegated from it; their
// tokens stop validating. The trustor or a cloud admin may delete it.
func (s *Service) DeleteTrust(ctx context.Context, id string) error {
	c, err := requireCredentials(ctx)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Txn) error {
		t, err := store.Get[Trust](nil, tx, trustTable, id)
		if err != nil || !s.trustVisible(c, t) {
			return notFound("trust", id)
		}
		if c.UserID != t.TrustorUserID && !s.policy.Allowed(c, "identity:delete_trust", Target{UserID: t.TrustorUserID}) {
			return forbidden("only the trustor may delete a trust")
		}
		if c.restrictedAppCred() {
			return forbidden("a restricted application credential cannot delete trusts")
		}
		return deleteTrustTxn(tx, id)
	})
}

// deleteTrustTxn deletes a trust and, recursively, its redelegations.
func deleteTrustTxn(tx *store.Txn, id string) error {
	it, err := store.List[Trust](nil, tx, trustTable, "parent", id)
	if err != nil {
		return err
	}
	var kids []string
	for k := range it {
		kids = append(kids, k.ID)
	}
	for _, k := range kids {
		if err := deleteTrustTxn(tx, k); err != nil {
			return err
		}
	}
	return tx.Delete(trustTable, id)
}

// deleteUserTrustsTxn deletes the trusts a user is the trustor or the
// trustee of.
func deleteUserTrustsTxn(tx *store.Txn, userID string) error {
	var ids []string
	for _, idx := range []string{"trustor", "trustee"} {
		it, err := store.List[Trust](nil, tx, trustTable, idx, userID)
		if err != nil {
			return err
		}
		for t := range it {
			ids = append(ids, t.ID)
		}
	}
	for _, id := range ids {
		if _, err := store.Get[Trust](nil, tx, trustTable, id); err != nil {
			continue // deleted with its parent
		}
		if err := deleteTrustTxn(tx, id); err != nil {
			return err
		}
	}
	return nil
}

// useTrust checks that userID may get a token from trust id now, and
// counts the use when the trust has limited uses (the only case that
// writes).
func (s *Service) useTrust(ctx context.Context, id, userID string, now time.Time) (*Trust, error) {
	check := func(tx *store.Txn) (*Trust, error) {
		t, err := store.Get[Trust](nil, tx, trustTable, id)
		if err != nil || t.TrusteeUserID != userID {
			return nil, errUnauthenticated("the request you have made requires authentication: could not find trust: " + id)
		}
		if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
			return nil, errUnauthenticated("the request you have made requires authentication: trust " + id + " has expired")
		}
		if t.RemainingUses != nil && *t.RemainingUses <= 0 {
			return nil, forbidden("No remaining uses for trust: %s", id)
		}
		return t, nil
	}
	t, err := check(s.st.Snapshot())
	if err != nil || t.RemainingUses == nil {
		return t, err
	}
	err = s.update(ctx, func(tx *store.Txn) error {
		var err error
		if t, err = check(tx); err != nil {
			return err
		}
		n := *t.RemainingUses - 1
		t.RemainingUses = &n
		return tx.Update(trustTable, t)
	})
	return t, err
}

// resolveTrust checks the trust of p and returns the roles its token
// carries, setting t's user (the trustor's with impersonation) and trust.
func (s *Service) resolveTrust(tx *store.Txn, p *payload, t *Token) ([]*Role, error) {
	deny := func(why string) error {
		return errUnauthenticated("the request you have made requires authentication: " + why)
	}
	tr, err := store.Get[Trust](nil, tx, trustTable, p.trustID)
	if err != nil || tr.TrusteeUserID != p.userID || tr.ProjectID != p.scopeID {
		return nil, deny("trust not found")
	}
	trustor, err := store.Get[User](nil, tx, userTable, tr.TrustorUserID)
	if err != nil || !trustor.Enabled {
		return nil, deny("the trustor is disabled or gone")
	}
	td, err := store.Get[Domain](nil, tx, domainTable, trustor.DomainID)
	if err != nil || !td.Enabled {
		return nil, deny("the trustor's domain is disabled")
	}
	if !holdsAll(tx, tr.TrustorUserID, tr.ProjectID, tr.RoleIDs) {
		return nil, deny("the trustor no longer holds the trust's roles")
	}
	if tr.Impersonation {
		t.User = TokenUser{ID: trustor.ID, Name: trustor.Name, Domain: Ref{ID: td.ID, Name: td.Name}, PasswordExpiresAt: trustor.PasswordExpiresAt}
	}
	t.Trust = &TokenTrust{ID: tr.ID, Impersonation: tr.Impersonation, TrustorUserID: tr.TrustorUserID, TrusteeUserID: tr.TrusteeUserID}
	return impliedClosure(tx, tr.RoleIDs), nil
}

// AuthenticateTrust issues a trust-scoped token to the caller, who must be
// the trust's trustee: the Go way for a service to act for a user whose own
// token has expired. The service authenticates its own user (the trustee)
// once with Authenticate, keeps its Credentials, and whenever it must act
// for the trustor calls AuthenticateTrust with them in ctx; the returned
// Token's Credentials carry the trust's roles on the trustor's project.
// Credentials past their token's expiry are refused: the service logs in
// again when its own token expires.
func (s *Service) AuthenticateTrust(ctx context.Context, trustID string) (string, *Token, error) {
	c, err := requireCredentials(ctx)
	if err != nil {
		return "", nil, err
	}
	if c.TrustID != "" || c.ApplicationCredentialID != "" {
		return "", nil, forbidden("a trust-scoped or application credential token cannot get a trust token")
	}
	now := s.now()
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return "", nil, errUnauthenticated("the request you have made requires authentication: the trustee's token has expired")
	}
	tr, err := s.useTrust(ctx, trustID, c.UserID, now)
	if err != nil {
		return "", nil, err
	}
	p := &payload{methods: methodToken, issuedAt: now.UnixMicro(), expiresAt: now.Add(s.cfg.TokenTTL).UnixMicro(),
		userID: c.UserID, scope: scopeProject, scopeID: tr.ProjectID, trustID: tr.ID,
		auditIDs: [][auditIDLen]byte{newAuditID()}}
	if tr.ExpiresAt != nil {
		p.expiresAt = min(p.expiresAt, tr.ExpiresAt.UnixMicro())
	}
	return s.issue(ctx, p)
}

// deleteProjectDelegationsTxn deletes the application credentials and
// trusts on a project.
func deleteProjectDelegationsTxn(tx *store.Txn, projectID string) error {
	acs, err := store.List[ApplicationCredential](nil, tx, appCredTable, store.IDIndex)
	if err != nil {
		return err
	}
	var gone []string
	for ac := range acs {
		if ac.ProjectID == projectID {
			gone = append(gone, ac.ID)
		}
	}
	for _, id := range gone {
		if err := tx.Delete(appCredTable, id); err != nil {
			return err
		}
	}
	trs, err := store.List[Trust](nil, tx, trustTable, store.IDIndex)
	if err != nil {
		return err
	}
	gone = gone[:0]
	for t := range trs {
		if t.ProjectID == projectID {
			gone = append(gone, t.ID)
		}
	}
	for _, id := range gone {
		if _, err := store.Get[Trust](nil, tx, trustTable, id); err != nil {
			continue // deleted with its parent
		}
		if err := deleteTrustTxn(tx, id); err != nil {
			return err
		}
	}
	return nil
}
