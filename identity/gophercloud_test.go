package identity

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// newServer runs the API on loopback and returns its /v3 URL.
func newServer(t *testing.T) (*env, string) {
	e := newEnv(t)
	srv := httptest.NewServer(NewHandler(e.svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	if err := e.svc.Bootstrap(context.Background(), BootstrapOptions{AdminPassword: "secret",
		Services: []ServiceEndpoints{{Type: "identity", Name: "keystone", PublicURL: srv.URL + "/v3"}}}); err != nil {
		t.Fatal(err)
	}
	return e, srv.URL + "/v3"
}

func client(t *testing.T, url string, opts gophercloud.AuthOptions) (*gophercloud.ServiceClient, *gophercloud.ProviderClient) {
	t.Helper()
	opts.IdentityEndpoint = url
	pc, err := openstack.AuthenticatedClient(context.Background(), opts)
	if err != nil {
		t.Fatalf("auth %+v: %v", opts.Scope, err)
	}
	c, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return c, pc
}

func adminOpts() gophercloud.AuthOptions {
	return gophercloud.AuthOptions{Username: "admin", Password: "secret", DomainName: "Default", TenantName: "admin"}
}

func TestGophercloudAuth(t *testing.T) {
	e, url := newServer(t)
	ctx := context.Background()
	c, pc := client(t, url, adminOpts())
	p, _ := e.tenant(t, "p1", "alice", "member")

	scopes := map[string]*gophercloud.AuthScope{
		"project": {ProjectID: p.ID},
		"domain":  {DomainID: "default"},
		"system":  {System: true},
	}
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: must(e.svc.ListUsers(e.admin, ListUsersOpts{Name: "admin"}))[0].ID, DomainID: "default", RoleID: e.role(t, "admin").ID}); err != nil {
		t.Fatal(err)
	}
	for name, sc := range scopes {
		opts := gophercloud.AuthOptions{Username: "admin", Password: "secret", DomainName: "Default", Scope: sc}
		if name == "project" {
			opts = gophercloud.AuthOptions{Username: "alice", Password: "alice-pw", DomainID: "default", Scope: sc}
		}
		res := tokens.Create(ctx, c, &tokens.AuthOptions{IdentityEndpoint: url, Username: opts.Username, Password: opts.Password,
			DomainID: "default", Scope: tokens.Scope{ProjectID: sc.ProjectID, DomainID: sc.DomainID, System: sc.System}})
		tok, err := res.ExtractToken()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "project" {
			pr, err := res.ExtractProject()
			if err != nil || pr.ID != p.ID {
				t.Fatalf("project %v %v", pr, err)
			}
			cat, err := res.ExtractServiceCatalog()
			if err != nil || len(cat.Entries) != 1 {
				t.Fatalf("catalog %+v %v", cat, err)
			}
		}
		// Validate and rescope (token method).
		got := tokens.Get(ctx, c, tok.ID)
		if u, err := got.ExtractUser(); err != nil || u.Name != opts.Username {
			t.Fatalf("%s: get %v %v", name, u, err)
		}
		resc := tokens.Create(ctx, c, &tokens.AuthOptions{TokenID: tok.ID, Scope: tokens.Scope{ProjectID: p.ID}})
		if name == "project" {
			if _, err := resc.ExtractToken(); err != nil {
				t.Fatalf("rescope: %v", err)
			}
		}
	}
	// Unscoped.
	res := tokens.Create(ctx, c, &tokens.AuthOptions{Username: "alice", Password: "alice-pw", DomainName: "Default"})
	unscoped, err := res.ExtractToken()
	if err != nil {
		t.Fatal(err)
	}
	if pr, _ := res.ExtractProject(); pr == nil || pr.ID != p.ID {
		t.Fatalf("default project scope: %+v", pr)
	}
	// Validate and revoke.
	if ok, err := tokens.Validate(ctx, c, unscoped.ID); err != nil || !ok {
		t.Fatalf("validate: %v %v", ok, err)
	}
	if err := tokens.Revoke(ctx, c, unscoped.ID).Err; err != nil {
		t.Fatal(err)
	}
	if ok, _ := tokens.Validate(ctx, c, unscoped.ID); ok {
		t.Fatal("revoked token valid")
	}
	if err := tokens.Get(ctx, c, unscoped.ID).Err; !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("revoked token get: %v", err)
	}
	// Catalog.
	pages, err := catalog.List(c).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := catalog.ExtractServiceCatalog(pages)
	if err != nil || len(entries) != 1 || entries[0].Type != "identity" || len(entries[0].Endpoints) != 3 {
		t.Fatalf("catalog %+v %v", entries, err)
	}
	// A bad password is 401.
	_, err = openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: url, Username: "alice", Password: "x", DomainID: "default"})
	if !gophercloud.ResponseCodeIs(err, 401) {
		t.Fatalf("bad password: %v", err)
	}
	_ = pc
}

func TestGophercloudCRUD(t *testing.T) {
	_, url := newServer(t)
	ctx := context.Background()
	c, _ := client(t, url, adminOpts())

	d, err := domains.Get(ctx, c, "default").Extract()
	if err != nil || d.Name != "Default" {
		t.Fatalf("domain %v %v", d, err)
	}
	// Projects.
	p, err := projects.Create(ctx, c, projects.CreateOpts{Name: "gp", Description: "d", Tags: []string{"a"}}).Extract()
	if err != nil || p.ParentID != "default" || p.DomainID != "default" {
		t.Fatalf("project %+v %v", p, err)
	}
	child, err := projects.Create(ctx, c, projects.CreateOpts{Name: "gchild", ParentID: p.ID}).Extract()
	if err != nil || child.ParentID != p.ID {
		t.Fatalf("child %+v %v", child, err)
	}
	desc := "changed"
	if p, err = projects.Update(ctx, c, p.ID, projects.UpdateOpts{Description: &desc}).Extract(); err != nil || p.Description != desc {
		t.Fatalf("update %v %v", p, err)
	}
	pages, err := projects.List(c, projects.ListOpts{Filters: map[string]string{"name__contains": "gch"}}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != child.ID {
		t.Fatalf("list %+v", ps)
	}
	// Users with an extra attribute.
	u, err := users.Create(ctx, c, users.CreateOpts{Name: "gu", Password: "pw", DefaultProjectID: p.ID, Extra: map[string]any{"email": "gu@example.com"}}).Extract()
	if err != nil || u.Extra["email"] != "gu@example.com" {
		t.Fatalf("user %+v %v", u, err)
	}
	if u, err = users.Get(ctx, c, u.ID).Extract(); err != nil || u.Name != "gu" {
		t.Fatalf("get user %v %v", u, err)
	}
	enabled := false
	if u, err = users.Update(ctx, c, u.ID, users.UpdateOpts{Enabled: &enabled}).Extract(); err != nil || u.Enabled {
		t.Fatalf("update user %v %v", u, err)
	}
	// Groups.
	g, err := groups.Create(ctx, c, groups.CreateOpts{Name: "gg"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := users.AddToGroup(ctx, c, g.ID, u.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if in, err := users.IsMemberOfGroup(ctx, c, g.ID, u.ID).Extract(); err != nil || !in {
		t.Fatalf("member %v %v", in, err)
	}
	// Roles and assignments.
	r, err := roles.Create(ctx, c, roles.CreateOpts{Name: "gr"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := roles.Assign(ctx, c, r.ID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := roles.Assign(ctx, c, r.ID, roles.AssignOpts{GroupID: g.ID, ProjectID: child.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	yes := true
	pages, err = roles.ListAssignments(c, roles.ListAssignmentsOpts{ScopeProjectID: p.ID, IncludeSubtree: &yes, Effective: &yes, IncludeNames: &yes}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	as, err := roles.ExtractRoleAssignments(pages)
	if err != nil || len(as) != 2 {
		t.Fatalf("assignments %+v %v", as, err)
	}
	for _, a := range as {
		if a.User.ID != u.ID || a.User.Domain.ID != "default" || a.Scope.Project.Domain.ID != "default" || a.Role.Name != "gr" {
			t.Fatalf("assignment %+v", a)
		}
	}
	if err := roles.Unassign(ctx, c, r.ID, roles.UnassignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := roles.Validate(ctx, c, r.ID, roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).Err; !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("validate unassigned: %v", err)
	}
	// Implied roles.
	if _, err := roles.CreateRoleInferenceRule(ctx, c, r.ID, must(roleID(ctx, c, "reader"))).Extract(); err != nil {
		t.Fatal(err)
	}
	// Deletes.
	for _, err := range []error{
		roles.Delete(ctx, c, r.ID).ExtractErr(),
		groups.Delete(ctx, c, g.ID).ExtractErr(),
		users.Delete(ctx, c, u.ID).ExtractErr(),
		projects.Delete(ctx, c, child.ID).ExtractErr(),
		projects.Delete(ctx, c, p.ID).ExtractErr(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := projects.Get(ctx, c, p.ID).Err; !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("deleted project: %v", err)
	}
}

func roleID(ctx context.Context, c *gophercloud.ServiceClient, name string) (string, error) {
	pages, err := roles.List(c, roles.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return "", err
	}
	rs, err := roles.ExtractRoles(pages)
	if err != nil || len(rs) != 1 {
		return "", err
	}
	return rs[0].ID, nil
}
