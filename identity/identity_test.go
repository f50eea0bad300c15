package identity

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

func TestDefaults(t *testing.T) {
	e := newEnv(t)
	d := must(e.svc.GetDomain(e.admin, "default"))
	if d.Name != "Default" || !d.Enabled {
		t.Fatalf("default domain %+v", d)
	}
	for _, n := range []string{"admin", "member", "reader"} {
		e.role(t, n)
	}
	// Bootstrap again is a no-op; the catalog keeps one identity service.
	if err := e.svc.Bootstrap(context.Background(), BootstrapOptions{AdminPassword: "secret",
		Services: []ServiceEndpoints{{Type: "identity", Name: "keystone", PublicURL: "http://127.0.0.1:5000/v3"}}}); err != nil {
		t.Fatal(err)
	}
	cat := must(e.svc.Catalog(e.admin))
	if len(cat) != 1 || len(cat[0].Endpoints) != 3 || cat[0].Type != "identity" {
		t.Fatalf("catalog %+v", cat)
	}
	// The admin logs in and is a cloud admin.
	_, ctx := e.login(t, "admin", "secret", AuthScope{ProjectName: "admin", ProjectDomainName: "Default"})
	if c := CredentialsFrom(ctx); !c.IsCloudAdmin() || !c.HasRole("reader") {
		t.Fatalf("admin credentials %+v", c)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	long := string(make([]byte, 300))
	cases := []struct {
		name  string
		field string
		do    func() error
	}{
		{"project no name", "name", func() error { _, err := e.svc.CreateProject(e.admin, CreateProjectOpts{}); return err }},
		{"project bad domain", "domain_id", func() error {
			_, err := e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "x", DomainID: "nope"})
			return err
		}},
		{"project bad parent", "parent_id", func() error {
			_, err := e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "x", ParentID: "nope"})
			return err
		}},
		{"project bad tag", "tags", func() error {
			_, err := e.svc.CreateProject(e.admin, CreateProjectOpts{Name: "x", Tags: []string{"a/b"}})
			return err
		}},
		{"user long name", "name", func() error { _, err := e.svc.CreateUser(e.admin, CreateUserOpts{Name: long}); return err }},
		{"user reserved extra", "password", func() error {
			_, err := e.svc.CreateUser(e.admin, CreateUserOpts{Name: "u", Extra: map[string]any{"password": "x"}})
			return err
		}},
		{"group control char", "name", func() error { _, err := e.svc.CreateGroup(e.admin, CreateGroupOpts{Name: "a\x01"}); return err }},
		{"role empty", "name", func() error { _, err := e.svc.CreateRole(e.admin, CreateRoleOpts{Name: " "}); return err }},
		{"endpoint interface", "interface", func() error {
			_, err := e.svc.CreateEndpoint(e.admin, Endpoint{Interface: "x", URL: "http://h"})
			return err
		}},
		{"endpoint url", "url", func() error {
			_, err := e.svc.CreateEndpoint(e.admin, Endpoint{Interface: "public", URL: "ftp://h"})
			return err
		}},
		{"grant no scope", "scope", func() error { return e.svc.CreateGrant(e.admin, Grant{UserID: "u", RoleID: "r"}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			var ve *errdefs.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error %v, want a validation error on %s", err, c.field)
			}
		})
	}
}

func TestCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := e.admin
	t.Run("domain", func(t *testing.T) {
		d := must(e.svc.CreateDomain(ctx, CreateDomainOpts{Name: "d1"}))
		_, err := e.svc.CreateDomain(ctx, CreateDomainOpts{Name: "d1"})
		wantKind(t, err, errdefs.ErrConflict)
		name := "d2"
		d = must(e.svc.UpdateDomain(ctx, d.ID, UpdateDomainOpts{Name: &name}))
		wantKind(t, e.svc.DeleteDomain(ctx, d.ID), errdefs.ErrForbidden) // enabled
		off := false
		must(e.svc.UpdateDomain(ctx, d.ID, UpdateDomainOpts{Enabled: &off}))
		if err := e.svc.DeleteDomain(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.GetDomain(ctx, d.ID)
		wantKind(t, err, errdefs.ErrNotFound)
	})
	t.Run("project", func(t *testing.T) {
		p := must(e.svc.CreateProject(ctx, CreateProjectOpts{Name: "p", Tags: []string{"a", "b"}}))
		if p.DomainID != "default" || !p.Enabled || p.ParentID != "" {
			t.Fatalf("%+v", p)
		}
		_, err := e.svc.CreateProject(ctx, CreateProjectOpts{Name: "p"})
		wantKind(t, err, errdefs.ErrConflict)
		desc := "hello"
		p = must(e.svc.UpdateProject(ctx, p.ID, UpdateProjectOpts{Description: &desc}))
		if p.Description != "hello" {
			t.Fatal(p)
		}
		if err := e.svc.AddProjectTag(ctx, p.ID, "c"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteProjectTag(ctx, p.ID, "a"); err != nil {
			t.Fatal(err)
		}
		got := must(e.svc.ListProjects(ctx, ListProjectsOpts{Tags: []string{"b", "c"}}))
		if len(got) != 1 || !slices.Equal(got[0].Tags, []string{"b", "c"}) {
			t.Fatalf("tags %+v", got)
		}
		if got := must(e.svc.ListProjects(ctx, ListProjectsOpts{NotTagsAny: []string{"c"}})); slices.ContainsFunc(got, func(x *Project) bool { return x.ID == p.ID }) {
			t.Fatal("not-tags-any did not filter")
		}
		if got := must(e.svc.ListProjects(ctx, ListProjectsOpts{NameContains: "P"})); len(got) != 1 {
			t.Fatalf("name__contains %d", len(got))
		}
		if err := e.svc.DeleteProject(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		wantKind(t, e.svc.DeleteProject(ctx, p.ID), errdefs.ErrNotFound)
	})
	t.Run("user", func(t *testing.T) {
		u := must(e.svc.CreateUser(ctx, CreateUserOpts{Name: "u", Password: "pw", Extra: map[string]any{"email": "u@example.com"}}))
		if u.PasswordHash != "" || u.Extra["email"] != "u@example.com" {
			t.Fatalf("%+v", u)
		}
		list := must(e.svc.ListUsers(ctx, ListUsersOpts{Name: "u"}))
		if len(list) != 1 || list[0].PasswordHash != "" {
			t.Fatalf("%+v", list)
		}
		off := false
		u = must(e.svc.UpdateUser(ctx, u.ID, UpdateUserOpts{Enabled: &off, Extra: map[string]any{"email": nil}}))
		if u.Enabled || u.Extra["email"] != nil {
			t.Fatalf("%+v", u)
		}
		if err := e.svc.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("group", func(t *testing.T) {
		g := must(e.svc.CreateGroup(ctx, CreateGroupOpts{Name: "g"}))
		u := must(e.svc.CreateUser(ctx, CreateUserOpts{Name: "gu"}))
		if err := e.svc.AddUserToGroup(ctx, g.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.IsUserInGroup(ctx, g.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		if gs := must(e.svc.ListUserGroups(ctx, u.ID)); len(gs) != 1 {
			t.Fatal(gs)
		}
		if err := e.svc.RemoveUserFromGroup(ctx, g.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		wantKind(t, e.svc.IsUserInGroup(ctx, g.ID, u.ID), errdefs.ErrNotFound)
		if err := e.svc.DeleteGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("role", func(t *testing.T) {
		r := must(e.svc.CreateRole(ctx, CreateRoleOpts{Name: "observer"}))
		_, err := e.svc.CreateRole(ctx, CreateRoleOpts{Name: "observer"})
		wantKind(t, err, errdefs.ErrConflict)
		if got := must(e.svc.ListRoles(ctx, ListRolesOpts{Name: "observer"})); len(got) != 1 {
			t.Fatal(got)
		}
		if err := e.svc.DeleteRole(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("catalog", func(t *testing.T) {
		r := must(e.svc.CreateRegion(ctx, Region{ID: "RegionTwo"}))
		sv := must(e.svc.CreateService(ctx, CatalogService{Type: "compute", Name: "nova", Enabled: true}))
		ep := must(e.svc.CreateEndpoint(ctx, Endpoint{ServiceID: sv.ID, Interface: "public", RegionID: r.ID, URL: "http://h:8774/v2.1", Enabled: true}))
		wantKind(t, e.svc.DeleteRegion(ctx, r.ID), errdefs.ErrConflict)
		if err := e.svc.DeleteEndpoint(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteService(ctx, sv.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteRegion(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHierarchy(t *testing.T) {
	e := newEnv(t)
	ctx := e.admin
	top := must(e.svc.CreateProject(ctx, CreateProjectOpts{Name: "top"}))
	parent := top
	var chain []*Project
	for i := 2; i <= MaxProjectDepth; i++ {
		p := must(e.svc.CreateProject(ctx, CreateProjectOpts{Name: "level" + string(rune('0'+i)), ParentID: parent.ID}))
		if p.ParentID != parent.ID || p.DomainID != "default" {
			t.Fatalf("%+v", p)
		}
		chain = append(chain, p)
		parent = p
	}
	_, err := e.svc.CreateProject(ctx, CreateProjectOpts{Name: "too-deep", ParentID: parent.ID})
	wantKind(t, err, errdefs.ErrInvalid)
	// parent_id may name the domain: a top-level project.
	p := must(e.svc.CreateProject(ctx, CreateProjectOpts{Name: "top2", ParentID: "default"}))
	if p.ParentID != "" {
		t.Fatal(p.ParentID)
	}
	kids := must(e.svc.ListProjects(ctx, ListProjectsOpts{ParentID: top.ID}))
	if len(kids) != 1 || kids[0].ID != chain[0].ID {
		t.Fatalf("children %+v", kids)
	}
	wantKind(t, e.svc.DeleteProject(ctx, top.ID), errdefs.ErrForbidden)
	if got := e.svc.subtree(e.st.Snapshot(), top.ID); len(got) != MaxProjectDepth-1 {
		t.Fatalf("subtree %v", got)
	}
}

func TestImpliedAndEffectiveRoles(t *testing.T) {
	e := newEnv(t)
	ctx := e.admin
	p := must(e.svc.CreateProject(ctx, CreateProjectOpts{Name: "p"}))
	u := must(e.svc.CreateUser(ctx, CreateUserOpts{Name: "u", Password: "pw"}))
	g := must(e.svc.CreateGroup(ctx, CreateGroupOpts{Name: "g"}))
	if err := e.svc.AddUserToGroup(ctx, g.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CreateGrant(ctx, Grant{GroupID: g.ID, ProjectID: p.ID, RoleID: e.role(t, "member").ID}); err != nil {
		t.Fatal(err)
	}
	// Through the group, member implies reader.
	_, uctx := e.login(t, "u", "pw", AuthScope{ProjectID: p.ID})
	if c := CredentialsFrom(uctx); !c.HasRole("member") || !c.HasRole("reader") || c.HasRole("admin") {
		t.Fatalf("roles %v", c.Roles)
	}
	ras := must(e.svc.ListRoleAssignments(ctx, ListRoleAssignmentsOpts{ProjectID: p.ID, Effective: true}))
	var names []string
	for _, ra := range ras {
		if ra.User == nil || ra.User.ID != u.ID {
			t.Fatalf("effective assignment not expanded: %+v", ra)
		}
		names = append(names, ra.Role.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"member", "reader"}) {
		t.Fatalf("effective roles %v", names)
	}
	// Direct list shows the group assignment.
	ras = must(e.svc.ListRoleAssignments(ctx, ListRoleAssignmentsOpts{ProjectID: p.ID}))
	if len(ras) != 1 || ras[0].Group == nil {
		t.Fatalf("%+v", ras)
	}
	// A custom implied role, and a cycle is refused.
	obs := must(e.svc.CreateRole(ctx, CreateRoleOpts{Name: "observer"}))
	must(e.svc.CreateImpliedRole(ctx, e.role(t, "reader").ID, obs.ID))
	_, err := e.svc.CreateImpliedRole(ctx, obs.ID, e.role(t, "admin").ID)
	wantKind(t, err, errdefs.ErrInvalid)
	_, uctx = e.login(t, "u", "pw", AuthScope{ProjectID: p.ID})
	if !CredentialsFrom(uctx).HasRole("observer") {
		t.Fatal("implied role not effective")
	}
}

// TestCatalogProjectSubstitution: an endpoint URL with %(project_id)s, as
// Swift's, is filled with the token's project; a token without a project
// does not list it.
func TestCatalogProjectSubstitution(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.Bootstrap(context.Background(), BootstrapOptions{AdminPassword: "secret", Services: []ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: "http://127.0.0.1:5000/v3"},
		{Type: "object-store", Name: "swift", PublicURL: "http://127.0.0.1:8080/v1/AUTH_%(project_id)s"},
	}}); err != nil {
		t.Fatal(err)
	}
	_, ctx := e.login(t, "admin", "secret", AuthScope{ProjectName: "admin", ProjectDomainName: "Default"})
	project := CredentialsFrom(ctx).ProjectID
	urls := func(cat []CatalogEntry) []string {
		var out []string
		for _, c := range cat {
			if c.Type == "object-store" {
				for _, ep := range c.Endpoints {
					out = append(out, ep.URL)
				}
			}
		}
		return out
	}
	got := urls(must(e.svc.Catalog(ctx)))
	if len(got) != 3 || got[0] != "http://127.0.0.1:8080/v1/AUTH_"+project {
		t.Fatalf("project-scoped object-store endpoints %v, want AUTH_%s", got, project)
	}
	if got := urls(must(e.svc.Catalog(e.admin))); len(got) != 0 {
		t.Fatalf("system-scoped catalog lists %v, want no object-store endpoint", got)
	}
}
