package identity

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

// domainAdmin makes a domain, a user of it with admin on it, and returns
// the domain, the user and a context carrying its domain-scoped token.
func (e *env) domainAdmin(t *testing.T, name string) (*Domain, *User, context.Context) {
	t.Helper()
	d := must(e.svc.CreateDomain(e.admin, CreateDomainOpts{Name: name}))
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: name + "-admin", DomainID: d.ID, Password: "pw"}))
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: u.ID, DomainID: d.ID, RoleID: e.role(t, RoleAdmin).ID}); err != nil {
		t.Fatal(err)
	}
	_, tok, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserID: u.ID, Password: "pw"}, Scope: AuthScope{DomainID: d.ID}})
	if err != nil {
		t.Fatal(err)
	}
	return d, u, WithCredentials(context.Background(), tok.Credentials())
}

// A domain admin must not gain system scope by adding itself to a group
// of its domain that holds a system role, nor to one holding roles in
// another domain; groups confined to its domain stay its to manage.
func TestDomainAdminCannotEscalateThroughGroup(t *testing.T) {
	e := newEnv(t)
	admin := e.role(t, RoleAdmin)
	d1, dadm, ctx := e.domainAdmin(t, "d1")
	d2 := must(e.svc.CreateDomain(e.admin, CreateDomainOpts{Name: "d2"}))
	p2 := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "p2", DomainID: d2.ID}))
	p1 := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "p1", DomainID: d1.ID}))

	ops := must(e.svc.CreateGroup(e.admin, CreateGroupOpts{Name: "ops", DomainID: d1.ID}))
	must(0, e.svc.CreateGrant(e.admin, Grant{GroupID: ops.ID, System: true, RoleID: admin.ID}))
	wantKind(t, e.svc.AddUserToGroup(ctx, ops.ID, dadm.ID), errdefs.ErrForbidden)
	_, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserID: dadm.ID, Password: "pw"}, Scope: AuthScope{System: true}})
	wantKind(t, err, errdefs.ErrUnauthenticated)

	other := must(e.svc.CreateGroup(e.admin, CreateGroupOpts{Name: "other", DomainID: d1.ID}))
	must(0, e.svc.CreateGrant(e.admin, Grant{GroupID: other.ID, ProjectID: p2.ID, RoleID: admin.ID}))
	wantKind(t, e.svc.AddUserToGroup(ctx, other.ID, dadm.ID), errdefs.ErrForbidden)

	local := must(e.svc.CreateGroup(ctx, CreateGroupOpts{Name: "local", DomainID: d1.ID}))
	must(0, e.svc.CreateGrant(ctx, Grant{GroupID: local.ID, ProjectID: p1.ID, RoleID: admin.ID}))
	if err := e.svc.AddUserToGroup(ctx, local.ID, dadm.ID); err != nil {
		t.Fatalf("group confined to the domain: %v", err)
	}
	// The cloud admin is not restricted.
	if err := e.svc.AddUserToGroup(e.admin, ops.ID, dadm.ID); err != nil {
		t.Fatal(err)
	}
}

// A domain admin must not reset the password of (or disable, or delete) a
// user of its domain whose roles reach beyond it, directly or through a
// group: that would take over a cloud admin.
func TestDomainAdminCannotTakeOverWiderUser(t *testing.T) {
	e := newEnv(t)
	admin := e.role(t, RoleAdmin)
	d1, _, ctx := e.domainAdmin(t, "d1")
	p1 := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "p1", DomainID: d1.ID}))
	root := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "root", DomainID: d1.ID, Password: "pw"}))
	must(0, e.svc.CreateGrant(e.admin, Grant{UserID: root.ID, System: true, RoleID: admin.ID}))
	viaGroup := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "via-group", DomainID: d1.ID, Password: "pw"}))
	g := must(e.svc.CreateGroup(e.admin, CreateGroupOpts{Name: "ops", DomainID: d1.ID}))
	must(0, e.svc.CreateGrant(e.admin, Grant{GroupID: g.ID, System: true, RoleID: admin.ID}))
	must(0, e.svc.AddUserToGroup(e.admin, g.ID, viaGroup.ID))
	local := must(e.svc.CreateUser(ctx, CreateUserOpts{Name: "local", DomainID: d1.ID, Password: "pw"}))
	must(0, e.svc.CreateGrant(ctx, Grant{UserID: local.ID, ProjectID: p1.ID, RoleID: admin.ID}))

	pw, off := "stolen", false
	for _, u := range []*User{root, viaGroup} {
		_, err := e.svc.UpdateUser(ctx, u.ID, UpdateUserOpts{Password: &pw})
		wantKind(t, err, errdefs.ErrForbidden)
		_, err = e.svc.UpdateUser(ctx, u.ID, UpdateUserOpts{Enabled: &off})
		wantKind(t, err, errdefs.ErrForbidden)
		wantKind(t, e.svc.DeleteUser(ctx, u.ID), errdefs.ErrForbidden)
		if _, err := e.svc.GetUser(ctx, u.ID); err != nil {
			t.Fatalf("the domain admin still sees its users: %v", err)
		}
	}
	if _, err := e.svc.UpdateUser(ctx, local.ID, UpdateUserOpts{Password: &pw}); err != nil {
		t.Fatalf("user confined to the domain: %v", err)
	}
	if _, err := e.svc.UpdateUser(e.admin, root.ID, UpdateUserOpts{Password: &pw}); err != nil {
		t.Fatal(err)
	}
}

// An unknown user domain name fails authentication like an unknown user
// (401), rather than with a 400 that tells which domain names exist.
func TestUnknownUserDomainNameIsUnauthenticated(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserName: "admin", DomainName: "NoSuchDomain", Password: "secret"}})
	wantKind(t, err, errdefs.ErrUnauthenticated)
	// No domain at all is still a bad request.
	_, _, err = e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserName: "admin", Password: "secret"}})
	wantKind(t, err, errdefs.ErrInvalid)
}

// limit=0 used to panic (500) when building the next link of an empty page.
func TestListLimitZero(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(NewHandler(e.svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	tok, _ := e.login(t, "admin", "secret", AuthScope{ProjectName: "admin", ProjectDomainID: DefaultDomainID})
	for _, path := range []string{"/v3/projects?limit=0", "/v3/users?limit=0", "/v3/roles?limit=0", "/v3/auth/projects?limit=0"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set(AuthTokenHeader, tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d, want 200", path, resp.StatusCode)
		}
	}
}

// Records returned by the Service share no slices or maps with the store:
// a caller changing them cannot change what others read.
func TestReturnedRecordsAreDetached(t *testing.T) {
	e := newEnv(t)
	p := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "p", Tags: []string{"a"},
		Options: map[string]any{"k": "v", "nested": map[string]any{"x": "y"}}}))
	p.Tags[0] = "changed"
	p.Options["k"] = "changed"
	p.Options["nested"].(map[string]any)["x"] = "changed"
	for _, q := range append(must(e.svc.ListProjects(e.admin, ListProjectsOpts{Name: "p"})), must(e.svc.GetProject(e.admin, p.ID))) {
		if q.Tags[0] != "a" || q.Options["k"] != "v" || q.Options["nested"].(map[string]any)["x"] != "y" {
			t.Fatalf("store changed through a returned project: %v %v", q.Tags, q.Options)
		}
		q.Tags[0] = "changed"
	}
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "u", Extra: map[string]any{"email": "a@b"}, Options: map[string]any{"o": true}}))
	u.Extra["email"] = "changed"
	u.Options["o"] = false
	for _, v := range append(must(e.svc.ListUsers(e.admin, ListUsersOpts{Name: "u"})), must(e.svc.GetUser(e.admin, u.ID))) {
		if v.Extra["email"] != "a@b" || v.Options["o"] != true {
			t.Fatalf("store changed through a returned user: %v %v", v.Extra, v.Options)
		}
		v.Extra["email"] = "changed"
	}
	d := must(e.svc.CreateDomain(e.admin, CreateDomainOpts{Name: "d", Options: map[string]any{"k": "v"}}))
	d.Options["k"] = "changed"
	if got := must(e.svc.GetDomain(e.admin, d.ID)); got.Options["k"] != "v" {
		t.Fatalf("store changed through a returned domain: %v", got.Options)
	}
	r := must(e.svc.CreateRole(e.admin, CreateRoleOpts{Name: "r", Options: map[string]any{"k": "v"}}))
	r.Options["k"] = "changed"
	if got := must(e.svc.GetRole(e.admin, r.ID)); got.Options["k"] != "v" {
		t.Fatalf("store changed through a returned role: %v", got.Options)
	}
}

// A member of p1 who can see a user of p1 must not learn, through that
// user's project list, the projects it has no access to.
func TestListUserProjectsHidesOtherProjects(t *testing.T) {
	e := newEnv(t)
	p1, _ := e.tenant(t, "p1", "alice", "member")
	p2, bob := e.tenant(t, "p2", "bob", "member")
	must(0, e.svc.CreateGrant(e.admin, Grant{UserID: bob.ID, ProjectID: p1.ID, RoleID: e.role(t, RoleMember).ID}))
	_, alice := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p1.ID})
	ps := must(e.svc.ListUserProjects(alice, bob.ID))
	if len(ps) != 1 || ps[0].ID != p1.ID {
		t.Fatalf("alice sees bob's projects %v, want only p1", ps)
	}
	_, bobCtx := e.login(t, "bob", "bob-pw", AuthScope{ProjectID: p2.ID})
	if ps := must(e.svc.ListUserProjects(bobCtx, bob.ID)); len(ps) != 2 {
		t.Fatalf("bob sees %d of his projects, want 2", len(ps))
	}
	if ps := must(e.svc.ListUserProjects(e.admin, bob.ID)); len(ps) != 2 {
		t.Fatalf("admin sees %d of bob's projects, want 2", len(ps))
	}
}

// Revoke with an audit id that no token can carry is an error, not an
// event that silently revokes nothing.
func TestRevokeRejectsBadAuditID(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"not-an-audit-id", "AAAA", "!!!!!!!!!!!!!!!!!!!!!!"} {
		wantKind(t, e.svc.Revoke(e.admin, RevokeOpts{AuditID: id}), errdefs.ErrInvalid)
	}
	p, _ := e.tenant(t, "p1", "alice", "member")
	tok, ctx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	if err := e.svc.Revoke(e.admin, RevokeOpts{AuditID: CredentialsFrom(ctx).AuditIDs[0]}); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, tok, "revoked by audit id")
}

// An admin of the admin project's domain must not make itself (or anyone)
// a cloud admin with a role on the admin project, nor take over or remove
// a cloud admin whose power comes from that project.
func TestDomainAdminCannotUseAdminProject(t *testing.T) {
	e := newEnv(t)
	admin := e.role(t, RoleAdmin)
	adminProject := must(e.svc.ListProjects(e.admin, ListProjectsOpts{Name: "admin", DomainID: DefaultDomainID}))[0]
	dadm := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "dadm", Password: "pw"}))
	must(0, e.svc.CreateGrant(e.admin, Grant{UserID: dadm.ID, DomainID: DefaultDomainID, RoleID: admin.ID}))
	_, tok, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserID: dadm.ID, Password: "pw"}, Scope: AuthScope{DomainID: DefaultDomainID}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithCredentials(context.Background(), tok.Credentials())
	wantKind(t, e.svc.CreateGrant(ctx, Grant{UserID: dadm.ID, ProjectID: adminProject.ID, RoleID: admin.ID}), errdefs.ErrForbidden)

	ops := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: "ops", Password: "pw"}))
	must(0, e.svc.CreateGrant(e.admin, Grant{UserID: ops.ID, ProjectID: adminProject.ID, RoleID: admin.ID}))
	pw := "stolen"
	_, err = e.svc.UpdateUser(ctx, ops.ID, UpdateUserOpts{Password: &pw})
	wantKind(t, err, errdefs.ErrForbidden)
	wantKind(t, e.svc.DeleteGrant(ctx, Grant{UserID: ops.ID, ProjectID: adminProject.ID, RoleID: admin.ID}), errdefs.ErrForbidden)
	if err := e.svc.CheckGrant(ctx, Grant{UserID: ops.ID, ProjectID: adminProject.ID, RoleID: admin.ID}); err != nil {
		t.Fatalf("the domain admin still sees the grant: %v", err)
	}
	// Other projects of the domain stay the domain admin's to manage.
	p := must(e.svc.CreateProject(ctx, CreateProjectOpts{Name: "p"}))
	if err := e.svc.CreateGrant(ctx, Grant{UserID: dadm.ID, ProjectID: p.ID, RoleID: admin.ID}); err != nil {
		t.Fatal(err)
	}
}
