package identity

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

func (e *env) mustReject(t *testing.T, tok, why string) {
	t.Helper()
	if _, err := e.svc.ValidateToken(context.Background(), tok); !errdefsIsUnauth(err) {
		t.Fatalf("%s: token accepted or wrong error: %v", why, err)
	}
}

func errdefsIsUnauth(err error) bool { return err != nil && errorsIs(err, errdefs.ErrUnauthenticated) }

func TestTokenScopes(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	d := must(e.svc.CreateDomain(e.admin, CreateDomainOpts{Name: "d1"}))
	u := must(e.svc.RoleByName(e.admin, "reader"))
	alice := must(e.svc.ListUsers(e.admin, ListUsersOpts{Name: "alice"}))[0]
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: alice.ID, DomainID: d.ID, RoleID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: alice.ID, System: true, RoleID: u.ID}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		scope AuthScope
		check func(*Token) bool
	}{
		{"default project", AuthScope{}, func(t *Token) bool { return t.Project != nil && t.Project.ID == p.ID }},
		{"unscoped", AuthScope{Unscoped: true}, func(t *Token) bool { return t.Project == nil && t.Domain == nil && !t.System && len(t.Roles) == 0 }},
		{"project by name", AuthScope{ProjectName: "p1", ProjectDomainName: "Default"}, func(t *Token) bool { return t.Project != nil && t.Project.Name == "p1" }},
		{"domain", AuthScope{DomainName: "d1"}, func(t *Token) bool { return t.Domain != nil && t.Domain.ID == d.ID }},
		{"system", AuthScope{System: true}, func(t *Token) bool { return t.System && t.Credentials().System }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, tok, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
				Password: &PasswordAuth{UserID: alice.ID, Password: "alice-pw"}, Scope: c.scope})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(tok) {
				t.Fatalf("token %+v", tok)
			}
			v, err := e.svc.ValidateToken(context.Background(), id)
			if err != nil || !c.check(v) || v.ExpiresAt.Sub(v.IssuedAt) != time.Hour || len(v.AuditIDs) != 1 {
				t.Fatalf("validate: %v %+v", err, v)
			}
		})
	}
	// No role on the project: no token.
	p2 := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "p2"}))
	_, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserID: alice.ID, Password: "alice-pw"}, Scope: AuthScope{ProjectID: p2.ID}})
	wantKind(t, err, errdefs.ErrUnauthenticated)
	// Wrong password, unknown user.
	for _, pa := range []PasswordAuth{{UserID: alice.ID, Password: "nope"}, {UserName: "nobody", DomainID: "default", Password: "x"}} {
		_, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"}, Password: &pa})
		wantKind(t, err, errdefs.ErrUnauthenticated)
	}
}

func TestTokenAttacks(t *testing.T) {
	e := newEnv(t)
	e.tenant(t, "p1", "alice", "member")
	tok, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectName: "p1", ProjectDomainID: "default"})
	if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		e.mustReject(t, base64.RawURLEncoding.EncodeToString(b), "tampered byte")
	}
	for _, n := range []int{0, 1, 10, len(tok) / 2, len(tok) - 1} {
		e.mustReject(t, tok[:n], "truncated")
	}
	e.mustReject(t, tok+"A", "extended")
	e.mustReject(t, strings.Repeat("A", 5000), "huge")
	e.mustReject(t, "not base64!", "garbage")

	// A token of another cloud (another key) is rejected.
	other := newEnv(t)
	other.tenant(t, "p1", "alice", "member")
	foreign, _ := other.login(t, "alice", "alice-pw", AuthScope{ProjectName: "p1", ProjectDomainID: "default"})
	e.mustReject(t, foreign, "wrong key")

	// Expired, cached or not.
	e.clock.Advance(time.Hour)
	e.mustReject(t, tok, "expired")
	e.svc.cache.m.Clear()
	e.mustReject(t, tok, "expired uncached")
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	p, u := e.tenant(t, "p1", "alice", "member")
	scope := AuthScope{ProjectID: p.ID}
	check := func(t *testing.T, revoke func(tok string, ctx context.Context)) {
		t.Helper()
		tok, ctx := e.login(t, "alice", "alice-pw", scope)
		if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		revoke(tok, ctx)
		e.mustReject(t, tok, "revoked")
		e.svc.cache.m.Clear()
		e.mustReject(t, tok, "revoked uncached")
		e.clock.Advance(time.Millisecond)
	}
	t.Run("by token", func(t *testing.T) {
		check(t, func(tok string, ctx context.Context) {
			if err := e.svc.RevokeToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("by user", func(t *testing.T) {
		check(t, func(string, context.Context) {
			if err := e.svc.Revoke(e.admin, RevokeOpts{UserID: u.ID}); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("by project", func(t *testing.T) {
		check(t, func(string, context.Context) {
			if err := e.svc.Revoke(e.admin, RevokeOpts{ProjectID: p.ID}); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("password change", func(t *testing.T) {
		check(t, func(_ string, ctx context.Context) {
			if err := e.svc.ChangePassword(ctx, u.ID, "alice-pw", "alice-pw2"); err != nil {
				t.Fatal(err)
			}
			pw := "alice-pw"
			must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Password: &pw}))
		})
	})
	t.Run("user disabled", func(t *testing.T) {
		check(t, func(string, context.Context) {
			off, on := false, true
			must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &off}))
			must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &on}))
		})
	})
	t.Run("role unassigned", func(t *testing.T) {
		check(t, func(string, context.Context) {
			g := Grant{UserID: u.ID, ProjectID: p.ID, RoleID: e.role(t, "member").ID}
			if err := e.svc.DeleteGrant(e.admin, g); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.CreateGrant(e.admin, g); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("project disabled", func(t *testing.T) {
		check(t, func(string, context.Context) {
			off, on := false, true
			must(e.svc.UpdateProject(e.admin, p.ID, UpdateProjectOpts{Enabled: &off}))
			must(e.svc.UpdateProject(e.admin, p.ID, UpdateProjectOpts{Enabled: &on}))
		})
	})
	t.Run("user deleted", func(t *testing.T) {
		check(t, func(string, context.Context) {
			if err := e.svc.DeleteUser(e.admin, u.ID); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("project deleted", func(t *testing.T) {
		p2, _ := e.tenant(t, "p2", "bob", "member")
		tok, _ := e.login(t, "bob", "bob-pw", AuthScope{ProjectID: p2.ID})
		if err := e.svc.DeleteProject(e.admin, p2.ID); err != nil {
			t.Fatal(err)
		}
		e.mustReject(t, tok, "project deleted")
	})
	// Pruning drops the events once no token they match can be valid.
	e.clock.Advance(2 * time.Hour)
	n, err := e.svc.PruneRevocations(context.Background())
	if err != nil || n == 0 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if e.svc.revocations().count != 0 {
		t.Fatal("index not rebuilt after prune")
	}
}

func rescope(e *env, tok string, scope AuthScope) (string, *Token, error) {
	return e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"token"}, Token: tok, Scope: scope})
}

// OSSA-2016-008 class: revoking a token must revoke the tokens rescoped
// from it, and a revoked token cannot be rescoped.
func TestOSSA2016008RescopedTokensFollowRevocation(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	unscoped, ctx := e.login(t, "alice", "alice-pw", AuthScope{Unscoped: true})
	scoped, tok, err := rescope(e, unscoped, AuthScope{ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	orig := CredentialsFrom(ctx)
	if len(tok.AuditIDs) != 2 || tok.AuditIDs[1] != orig.AuditIDs[0] || tok.AuditIDs[0] == orig.AuditIDs[0] {
		t.Fatalf("audit chain %v from %v", tok.AuditIDs, orig.AuditIDs)
	}
	// A second rescope keeps the chain id of the first token.
	twice, tok2, err := rescope(e, scoped, AuthScope{ProjectID: p.ID})
	if err != nil || tok2.AuditIDs[1] != orig.AuditIDs[0] {
		t.Fatalf("rescope of rescoped: %v %v", err, tok2)
	}
	if err := e.svc.RevokeToken(ctx, unscoped); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{unscoped, scoped, twice} {
		e.mustReject(t, tk, "rescoped from revoked")
	}
	_, _, err = rescope(e, unscoped, AuthScope{ProjectID: p.ID})
	wantKind(t, err, errdefs.ErrUnauthenticated)
}

// OSSA-2012-014 class: a rescoped token must not outlive the token it was
// made from, and an expired token cannot be rescoped.
func TestOSSA2012014RescopeCannotExtendExpiry(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	unscoped, ctx := e.login(t, "alice", "alice-pw", AuthScope{Unscoped: true})
	e.clock.Advance(50 * time.Minute)
	scoped, tok, err := rescope(e, unscoped, AuthScope{ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(CredentialsFrom(ctx).ExpiresAt) {
		t.Fatalf("rescoped expiry %v, original %v", tok.ExpiresAt, CredentialsFrom(ctx).ExpiresAt)
	}
	e.clock.Advance(10 * time.Minute)
	e.mustReject(t, scoped, "rescoped past the original's expiry")
	_, _, err = rescope(e, unscoped, AuthScope{ProjectID: p.ID})
	wantKind(t, err, errdefs.ErrUnauthenticated)
	_, _, err = rescope(e, scoped, AuthScope{})
	wantKind(t, err, errdefs.ErrUnauthenticated)
}

// OSSA-2013-011 class: disabled users, projects and domains can neither
// get nor use tokens, cached or not, including by rescoping.
func TestOSSA2013011DisabledCannotUseTokens(t *testing.T) {
	e := newEnv(t)
	p, u := e.tenant(t, "p1", "alice", "member")
	off, on := false, true
	t.Run("user", func(t *testing.T) {
		unscoped, _ := e.login(t, "alice", "alice-pw", AuthScope{Unscoped: true})
		must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &off}))
		e.mustReject(t, unscoped, "disabled user")
		_, _, err := rescope(e, unscoped, AuthScope{ProjectID: p.ID})
		wantKind(t, err, errdefs.ErrUnauthenticated)
		_, _, err = e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"}, Password: &PasswordAuth{UserID: u.ID, Password: "alice-pw"}})
		wantKind(t, err, errdefs.ErrUnauthenticated)
		must(e.svc.UpdateUser(e.admin, u.ID, UpdateUserOpts{Enabled: &on}))
		// Re-enabling does not bring back the revoked token.
		e.mustReject(t, unscoped, "token of a re-enabled user")
	})
	t.Run("project", func(t *testing.T) {
		e.clock.Advance(time.Second)
		unscoped, _ := e.login(t, "alice", "alice-pw", AuthScope{Unscoped: true})
		must(e.svc.UpdateProject(e.admin, p.ID, UpdateProjectOpts{Enabled: &off}))
		_, _, err := rescope(e, unscoped, AuthScope{ProjectID: p.ID})
		wantKind(t, err, errdefs.ErrUnauthenticated)
		_, _, err = e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
			Password: &PasswordAuth{UserID: u.ID, Password: "alice-pw"}, Scope: AuthScope{ProjectID: p.ID}})
		wantKind(t, err, errdefs.ErrUnauthenticated)
		must(e.svc.UpdateProject(e.admin, p.ID, UpdateProjectOpts{Enabled: &on}))
	})
	t.Run("domain", func(t *testing.T) {
		d := must(e.svc.CreateDomain(e.admin, CreateDomainOpts{Name: "d1"}))
		du := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "dave", DomainID: d.ID, Password: "pw"}))
		tok, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"}, Password: &PasswordAuth{UserID: du.ID, Password: "pw"}})
		if err != nil {
			t.Fatal(err)
		}
		must(e.svc.UpdateDomain(e.admin, d.ID, UpdateDomainOpts{Enabled: &off}))
		e.mustReject(t, tok, "user of a disabled domain")
	})
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	p1, u1 := e.tenant(t, "p1", "alice", "member")
	p2, u2 := e.tenant(t, "p2", "bob", "member")
	_, r1 := e.tenant(t, "p3", "carol", "reader")
	_, alice := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p1.ID})
	_, carol := e.login(t, "carol", "carol-pw", AuthScope{})
	_ = r1

	// Read: other project and its users are absent.
	_, err := e.svc.GetProject(alice, p2.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	_, err = e.svc.GetUser(alice, u2.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	if _, err := e.svc.GetProject(alice, p1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetUser(alice, u1.ID); err != nil {
		t.Fatal(err)
	}
	// List: filtered.
	ps := must(e.svc.ListProjects(alice, ListProjectsOpts{}))
	if len(ps) != 1 || ps[0].ID != p1.ID {
		t.Fatalf("alice sees projects %v", ps)
	}
	us := must(e.svc.ListUsers(alice, ListUsersOpts{}))
	if len(us) != 1 || us[0].ID != u1.ID {
		t.Fatalf("alice sees users %v", us)
	}
	ras := must(e.svc.ListRoleAssignments(alice, ListRoleAssignmentsOpts{}))
	for _, ra := range ras {
		if ra.Project == nil || ra.Project.ID != p1.ID {
			t.Fatalf("alice sees assignment %+v", ra)
		}
	}
	// Change: other project 404, own project 403 (not an admin).
	name := "x"
	_, err = e.svc.UpdateProject(alice, p2.ID, UpdateProjectOpts{Name: &name})
	wantKind(t, err, errdefs.ErrNotFound)
	wantKind(t, e.svc.DeleteProject(alice, p2.ID), errdefs.ErrNotFound)
	_, err = e.svc.UpdateUser(alice, u2.ID, UpdateUserOpts{Name: &name})
	wantKind(t, err, errdefs.ErrNotFound)
	wantKind(t, e.svc.DeleteUser(alice, u2.ID), errdefs.ErrNotFound)
	wantKind(t, e.svc.CreateGrant(alice, Grant{UserID: u1.ID, ProjectID: p2.ID, RoleID: e.role(t, "admin").ID}), errdefs.ErrNotFound)
	wantKind(t, e.svc.CreateGrant(alice, Grant{UserID: u1.ID, ProjectID: p1.ID, RoleID: e.role(t, "admin").ID}), errdefs.ErrForbidden)
	_, err = e.svc.UpdateProject(alice, p1.ID, UpdateProjectOpts{Name: &name})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.CreateProject(alice, CreateProjectOpts{Name: "mine"})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.CreateUser(alice, CreateUserOpts{Name: "mine"})
	wantKind(t, err, errdefs.ErrForbidden)
	// Admin on p1 is not a cloud admin.
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: u1.ID, ProjectID: p1.ID, RoleID: e.role(t, "admin").ID}); err != nil {
		t.Fatal(err)
	}
	_, alice = e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p1.ID})
	_, err = e.svc.CreateProject(alice, CreateProjectOpts{Name: "mine"})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.GetProject(alice, p2.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	// A reader cannot write, not even its own things.
	p3 := must(e.svc.ListProjects(carol, ListProjectsOpts{}))
	if len(p3) != 1 || p3[0].Name != "p3" {
		t.Fatalf("carol sees %v", p3)
	}
	_, err = e.svc.UpdateProject(carol, p3[0].ID, UpdateProjectOpts{Name: &name})
	wantKind(t, err, errdefs.ErrForbidden)
	if pol := ProjectDefaults("compute:server:"); pol.Allowed(CredentialsFrom(carol), "compute:server:create", Target{ProjectID: p3[0].ID}) ||
		!pol.Allowed(CredentialsFrom(carol), "compute:server:get", Target{ProjectID: p3[0].ID}) {
		t.Fatal("ProjectDefaults: a reader reads and does not write")
	}
	_, err = e.svc.CreateRole(carol, CreateRoleOpts{Name: "r"})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.CreateService(carol, CatalogService{Type: "x"})
	wantKind(t, err, errdefs.ErrForbidden)
	wantKind(t, e.svc.Revoke(carol, RevokeOpts{UserID: u1.ID}), errdefs.ErrForbidden)
	// Without credentials: unauthenticated.
	_, err = e.svc.ListProjects(context.Background(), ListProjectsOpts{})
	wantKind(t, err, errdefs.ErrUnauthenticated)
}

func TestPolicyOverride(t *testing.T) {
	e := newEnv(t)
	svc := must(New(Config{Store: e.st, PasswordHashing: cheapHashing, Policy: Policy{
		"identity:create_project": AnyOf(Admin, ProjectRole(RoleMember)),
	}}))
	p, _ := e.tenant(t, "p1", "alice", "member")
	_, ctx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	if _, err := svc.CreateProject(ctx, CreateProjectOpts{Name: "child", ParentID: p.ID}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.CreateProject(ctx, CreateProjectOpts{Name: "child2", ParentID: p.ID})
	wantKind(t, err, errdefs.ErrForbidden)
	pol := ProjectDefaults("compute:server:")
	c := CredentialsFrom(ctx)
	if !pol.Allowed(c, "compute:server:create", Target{ProjectID: p.ID}) || pol.Allowed(c, "compute:server:create", Target{ProjectID: "other"}) {
		t.Fatal("ProjectDefaults")
	}
	if err := pol.Enforce(ctx, "compute:server:nope", Target{ProjectID: p.ID}); !errorsIs(err, errdefs.ErrForbidden) {
		t.Fatal(err)
	}
}

func TestMiddleware(t *testing.T) {
	e := newEnv(t)
	p, _ := e.tenant(t, "p1", "alice", "member")
	tok, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	h := Middleware(e.svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := CredentialsFrom(r.Context())
		if c == nil {
			w.WriteHeader(299)
			return
		}
		_, _ = w.Write([]byte(c.ProjectID))
	}), &MiddlewareOptions{Public: func(r *http.Request) bool { return r.URL.Path == "/" }})
	do := func(path, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if token != "" {
			r.Header.Set("X-Auth-Token", token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("/x", tok); w.Code != 200 || w.Body.String() != p.ID {
		t.Fatalf("valid: %d %s", w.Code, w.Body)
	}
	if w := do("/", ""); w.Code != 299 {
		t.Fatalf("public: %d", w.Code)
	}
	for _, bad := range []string{"", "garbage", tok[:len(tok)-2]} {
		w := do("/x", bad)
		if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "Keystone") ||
			!strings.Contains(w.Body.String(), `"code":401`) {
			t.Fatalf("bad token %q: %d %v %s", bad, w.Code, w.Header(), w.Body)
		}
	}
}
