package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// AuthRequest is a request for a token: the body of POST /v3/auth/tokens.
type AuthRequest struct {
	// Methods lists the methods to authenticate with: "password",
	// "token" or both (then both must name the same user).
	Methods []string
	// Password is the password method's input.
	Password *PasswordAuth
	// Token is the token method's input: a token to rescope.
	Token string
	// ApplicationCredential is the application_credential method's input.
	ApplicationCredential *AppCredAuth
	// Scope is the scope of the new token.
	Scope AuthScope
}

// AppCredAuth identifies an application credential by id, or by name and
// its user (by id, or by name and domain), and gives its secret.
type AppCredAuth struct {
	ID         string
	Name       string
	UserID     string
	UserName   string
	DomainID   string
	DomainName string
	Secret     string
}

// PasswordAuth identifies a user by id, or by name and domain (id or
// name), and gives its password.
type PasswordAuth struct {
	UserID     string
	UserName   string
	DomainID   string
	DomainName string
	Password   string
}

// AuthScope is the scope a token is asked for. The zero value asks for the
// user's default project if it has a role there, else an unscoped token.
type AuthScope struct {
	ProjectID         string
	ProjectName       string
	ProjectDomainID   string
	ProjectDomainName string
	DomainID          string
	DomainName        string
	System            bool
	// Unscoped asks for an unscoped token even if the user has a default
	// project.
	Unscoped bool
	// TrustID asks for a trust-scoped token: the authenticated user must
	// be the trust's trustee.
	TrustID string
}

// The wire form of an auth request.
type wireAuth struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *struct {
					ID       string   `json:"id"`
					Name     string   `json:"name"`
					Password string   `json:"password"`
					Domain   *wireRef `json:"domain"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
			ApplicationCredential *struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				Secret string `json:"secret"`
				User   *struct {
					ID     string   `json:"id"`
					Name   string   `json:"name"`
					Domain *wireRef `json:"domain"`
				} `json:"user"`
			} `json:"application_credential"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type wireRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type wireScope struct {
	Project *struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Domain *wireRef `json:"domain"`
	} `json:"project"`
	Domain *wireRef `json:"domain"`
	System *struct {
		All bool `json:"all"`
	} `json:"system"`
	Trust *struct {
		ID string `json:"id"`
	} `json:"OS-TRUST:trust"`
}

// ParseAuthRequest parses the JSON body of POST /v3/auth/tokens. Errors
// are *errdefs.ValidationError naming the field.
func ParseAuthRequest(body []byte) (*AuthRequest, error) {
	var w wireAuth
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, errdefs.Invalid("auth", "malformed JSON: %v", err)
	}
	if dec.More() {
		return nil, errdefs.Invalid("auth", "unexpected data after the JSON object")
	}
	if w.Auth == nil || w.Auth.Identity == nil {
		return nil, errdefs.Invalid("auth.identity", "is required")
	}
	id := w.Auth.Identity
	req := &AuthRequest{Methods: id.Methods}
	if len(req.Methods) == 0 {
		return nil, errdefs.Invalid("auth.identity.methods", "is required")
	}
	for _, m := range req.Methods {
		switch m {
		case "password":
			if id.Password == nil || id.Password.User == nil {
				return nil, errdefs.Invalid("auth.identity.password.user", "is required")
			}
			u := id.Password.User
			pa := &PasswordAuth{UserID: u.ID, UserName: u.Name, Password: u.Password}
			if u.Domain != nil {
				pa.DomainID, pa.DomainName = u.Domain.ID, u.Domain.Name
			}
			req.Password = pa
		case "token":
			if id.Token == nil || id.Token.ID == "" {
				return nil, errdefs.Invalid("auth.identity.token.id", "is required")
			}
			req.Token = id.Token.ID
		case "application_credential":
			ac := id.ApplicationCredential
			if ac == nil || ac.Secret == "" {
				return nil, errdefs.Invalid("auth.identity.application_credential.secret", "is required")
			}
			a := &AppCredAuth{ID: ac.ID, Name: ac.Name, Secret: ac.Secret}
			if ac.User != nil {
				a.UserID, a.UserName = ac.User.ID, ac.User.Name
				if ac.User.Domain != nil {
					a.DomainID, a.DomainName = ac.User.Domain.ID, ac.User.Domain.Name
				}
			}
			if a.ID == "" && (a.Name == "" || (a.UserID == "" && a.UserName == "")) {
				return nil, errdefs.Invalid("auth.identity.application_credential", "needs an id, or a name and a user")
			}
			req.ApplicationCredential = a
		default:
			return nil, errdefs.Invalid("auth.identity.methods", "method %q is not supported", m)
		}
	}
	if err := req.Scope.parse(w.Auth.Scope); err != nil {
		return nil, err
	}
	return req, nil
}

func (s *AuthScope) parse(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		if str != "unscoped" {
			return errdefs.Invalid("auth.scope", "must be an object or \"unscoped\"")
		}
		s.Unscoped = true
		return nil
	}
	var w wireScope
	if err := json.Unmarshal(raw, &w); err != nil {
		return errdefs.Invalid("auth.scope", "malformed: %v", err)
	}
	n := 0
	if w.Trust != nil {
		n++
		if w.Trust.ID == "" {
			return errdefs.Invalid("auth.scope.OS-TRUST:trust.id", "is required")
		}
		s.TrustID = w.Trust.ID
	}
	if p := w.Project; p != nil {
		n++
		s.ProjectID, s.ProjectName = p.ID, p.Name
		if p.Domain != nil {
			s.ProjectDomainID, s.ProjectDomainName = p.Domain.ID, p.Domain.Name
		}
		if s.ProjectID == "" && (s.ProjectName == "" || (s.ProjectDomainID == "" && s.ProjectDomainName == "")) {
			return errdefs.Invalid("auth.scope.project", "needs an id, or a name and a domain")
		}
	}
	if d := w.Domain; d != nil {
		n++
		s.DomainID, s.DomainName = d.ID, d.Name
		if s.DomainID == "" && s.DomainName == "" {
			return errdefs.Invalid("auth.scope.domain", "needs an id or a name")
		}
	}
	if w.System != nil {
		n++
		if !w.System.All {
			return errdefs.Invalid("auth.scope.system", "only {\"all\": true} is supported")
		}
		s.System = true
	}
	if n > 1 {
		return errdefs.Invalid("auth.scope", "only one of project, domain, system and trust may be given")
	}
	return nil
}

var errAuthFailed = errUnauthenticated("the request you have made requires authentication")

// Authenticate checks a request for a token and issues one. It returns the
// token id (the X-Subject-Token) and what it grants. Failed authentication
// gives an error matching errdefs.ErrUnauthenticated that does not say
// which check failed (except Keystone's account errors: locked, disabled,
// password expired); a bad request gives an *errdefs.ValidationError.
func (s *Service) Authenticate(ctx context.Context, req AuthRequest) (string, *Token, error) {
	if len(req.Methods) == 0 {
		return "", nil, errdefs.Invalid("auth.identity.methods", "is required")
	}
	now := s.now()
	p := &payload{issuedAt: now.UnixMicro(), expiresAt: now.Add(s.cfg.TokenTTL).UnixMicro()}
	p.auditIDs = [][auditIDLen]byte{newAuditID()}
	var userID string
	var defaultProject string
	var appCred *ApplicationCredential
	methods := dedupe(req.Methods)
	for _, m := range methods {
		switch m {
		case "password":
			if req.Password == nil {
				return "", nil, errdefs.Invalid("auth.identity.password", "is required")
			}
			u, err := s.checkPassword(ctx, *req.Password)
			if err != nil {
				return "", nil, err
			}
			if userID != "" && userID != u.ID {
				return "", nil, errAuthFailed
			}
			userID, defaultProject = u.ID, u.DefaultProjectID
			p.methods |= methodPassword
		case "token":
			orig, err := s.ValidateToken(ctx, req.Token)
			if err != nil {
				return "", nil, err
			}
			if orig.Trust != nil || orig.ApplicationCredential != nil {
				return "", nil, fmt.Errorf("identity: a token from a trust or an application credential cannot be rescoped: %w", errdefs.ErrForbidden)
			}
			if userID != "" && userID != orig.User.ID {
				return "", nil, errAuthFailed
			}
			userID = orig.User.ID
			// A rescoped token never outlives the original and carries
			// the audit ids of its chain, so that revoking any token of
			// the chain revokes this.
			p.expiresAt = min(p.expiresAt, orig.ExpiresAt.UnixMicro())
			if len(orig.chain) >= maxAuditChain {
				return "", nil, fmt.Errorf("identity: token rescoped too many times (%d): %w", maxAuditChain, errdefs.ErrForbidden)
			}
			p.auditIDs = append(p.auditIDs[:1], orig.chain...)
			p.methods |= methodToken
			for _, om := range orig.Methods {
				for _, mn := range methodNames {
					if mn.name == om {
						p.methods |= mn.bit
					}
				}
			}
		case "application_credential":
			if len(methods) != 1 {
				return "", nil, errdefs.Invalid("auth.identity.methods", "application_credential cannot be combined with other methods")
			}
			if req.ApplicationCredential == nil {
				return "", nil, errdefs.Invalid("auth.identity.application_credential", "is required")
			}
			ac, err := s.checkAppCred(*req.ApplicationCredential, now)
			if err != nil {
				return "", nil, err
			}
			appCred, userID = ac, ac.UserID
			p.methods |= methodAppCred
		default:
			return "", nil, errdefs.Invalid("auth.identity.methods", "method %q is not supported", m)
		}
	}
	p.userID = userID
	tx := s.st.Snapshot()
	switch {
	case appCred != nil:
		sc := req.Scope
		if sc.TrustID != "" || sc.DomainID != "" || sc.DomainName != "" || sc.System ||
			(sc.ProjectID != "" && sc.ProjectID != appCred.ProjectID) {
			return "", nil, errUnauthenticated("Error authenticating with application credential: Application credentials cannot request a scope.")
		}
		p.scope, p.scopeID, p.appCredID = scopeProject, appCred.ProjectID, appCred.ID
		if appCred.ExpiresAt != nil {
			p.expiresAt = min(p.expiresAt, appCred.ExpiresAt.UnixMicro())
		}
	case req.Scope.TrustID != "":
		tr, err := s.useTrust(ctx, req.Scope.TrustID, userID, now)
		if err != nil {
			return "", nil, err
		}
		p.scope, p.scopeID, p.trustID = scopeProject, tr.ProjectID, tr.ID
		if tr.ExpiresAt != nil {
			p.expiresAt = min(p.expiresAt, tr.ExpiresAt.UnixMicro())
		}
	default:
		if err := s.scopeTo(tx, p, req.Scope, defaultProject); err != nil {
			return "", nil, err
		}
	}
	if p.expiresAt <= p.issuedAt {
		return "", nil, errUnauthenticated("the request you have made requires authentication: token has expired")
	}
	return s.issue(ctx, p)
}

func decodeAuditID(s string) ([auditIDLen]byte, error) {
	var a [auditIDLen]byte
	raw, err := base64URLDecode(s)
	if err != nil || len(raw) != auditIDLen {
		return a, errors.New("bad audit id")
	}
	copy(a[:], raw)
	return a, nil
}

// checkPassword finds the user of pa and verifies its password, spending
// the same KDF time whether or not the user exists, and applies the
// account rules: lockout, inactivity, password expiry.
func (s *Service) checkPassword(ctx context.Context, pa PasswordAuth) (*User, error) {
	if len(pa.Password) > MaxPasswordLen || pa.Password == "" {
		return nil, errAuthFailed
	}
	u, err := findUser(s.st.Snapshot(), pa.UserID, pa.UserName, pa.DomainID, pa.DomainName, "auth.identity.password.user")
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	if err != nil || u.PasswordHash == "" {
		s.cfg.PasswordHashing.hash(pa.Password) // same cost as a real check
		return nil, errAuthFailed
	}
	now := s.now()
	if s.locked(u, now) {
		return nil, errAccountLocked(u.ID)
	}
	if !verifyPassword(u.PasswordHash, pa.Password) {
		s.recordAuthFailure(ctx, u.ID)
		return nil, errAuthFailed
	}
	if !u.Enabled {
		return nil, errAuthFailed
	}
	if s.inactive(u, now) {
		return nil, errUserDisabled(u.ID)
	}
	if passwordExpired(u, now) {
		return nil, errPasswordExpired(u.ID)
	}
	s.recordAuthSuccess(ctx, u)
	return u, nil
}

// findUser finds a user by id, or by name in a domain given by id or name.
// An unknown user or domain is errdefs.ErrNotFound; a request that names
// no user is a validation error on field.
func findUser(tx *store.Txn, id, name, domainID, domainName, field string) (*User, error) {
	switch {
	case id != "":
		return store.Get[User](nil, tx, userTable, id)
	case name != "":
		if domainID == "" && domainName != "" {
			if d, derr := store.First[Domain](nil, tx, domainTable, "name", domainName); derr == nil {
				domainID = d.ID
			}
		}
		switch {
		case domainID != "":
			return store.First[User](nil, tx, userTable, "name", key(domainID, name))
		case domainName != "":
			// An unknown domain fails like an unknown user, so that the
			// answer does not tell which domain names exist.
			return nil, errdefs.ErrNotFound
		default:
			return nil, errdefs.Invalid(field+".domain", "is required with a user name")
		}
	}
	return nil, errdefs.Invalid(field, "needs an id or a name")
}

// scopeTo sets the scope of p from the request.
func (s *Service) scopeTo(tx *store.Txn, p *payload, sc AuthScope, defaultProject string) error {
	switch {
	case sc.ProjectID != "" || sc.ProjectName != "":
		id := sc.ProjectID
		if id == "" {
			domainID := sc.ProjectDomainID
			if domainID == "" {
				d, err := store.First[Domain](nil, tx, domainTable, "name", sc.ProjectDomainName)
				if err != nil {
					return errAuthFailed
				}
				domainID = d.ID
			}
			pr, err := store.First[Project](nil, tx, projectTable, "name", key(domainID, sc.ProjectName))
			if err != nil {
				return errAuthFailed
			}
			id = pr.ID
		}
		p.scope, p.scopeID = scopeProject, id
	case sc.DomainID != "" || sc.DomainName != "":
		id := sc.DomainID
		if id == "" {
			d, err := store.First[Domain](nil, tx, domainTable, "name", sc.DomainName)
			if err != nil {
				return errAuthFailed
			}
			id = d.ID
		}
		p.scope, p.scopeID = scopeDomain, id
	case sc.System:
		p.scope, p.scopeID = scopeSystem, systemAll
	case !sc.Unscoped && defaultProject != "":
		if pr, err := store.Get[Project](nil, tx, projectTable, defaultProject); err == nil && pr.Enabled &&
			len(directRoleIDs(tx, p.userID, targetProject, pr.ID)) > 0 {
			p.scope, p.scopeID = scopeProject, pr.ID
		}
	}
	if len(p.scopeID) > 255 {
		return errAuthFailed
	}
	return nil
}
