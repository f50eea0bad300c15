package identity

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

func roleNames(t *Token) []string {
	var out []string
	for _, r := range t.Roles {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

func TestApplicationCredentials(t *testing.T) {
	e := newEnv(t)
	p, u := e.tenant(t, "p1", "alice", "admin") // admin implies member and reader
	_, ctx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})

	// Roles must be held by the user on the project.
	_, err := e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "x", Roles: []Ref{{Name: "nope"}}})
	wantKind(t, err, errdefs.ErrInvalid)
	// Another user's credentials cannot be created.
	_, bob := e.tenant(t, "p2", "bob", "member")
	_, err = e.svc.CreateApplicationCredential(ctx, bob.ID, CreateAppCredOpts{Name: "x"})
	wantKind(t, err, errdefs.ErrForbidden)

	exp := e.clock.Now().Add(48 * time.Hour)
	ac := must(e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "ci", Roles: []Ref{{Name: "member"}}, ExpiresAt: &exp}))
	if ac.Secret == "" || ac.ProjectID != p.ID || len(ac.Roles) != 1 || ac.Roles[0].Name != "member" {
		t.Fatalf("created %+v", ac)
	}
	// The secret is shown once and stored hashed.
	got := must(e.svc.GetApplicationCredential(ctx, u.ID, ac.ID))
	if got.Secret != "" || got.SecretHash != "" {
		t.Fatalf("get shows the secret: %+v", got)
	}
	_, err = e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "ci"})
	wantKind(t, err, errdefs.ErrConflict)

	auth := func(a AppCredAuth) (string, *Token, error) {
		return e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"application_credential"}, ApplicationCredential: &a})
	}
	for _, a := range []AppCredAuth{{ID: ac.ID, Secret: ac.Secret}, {Name: "ci", UserID: u.ID, Secret: ac.Secret},
		{Name: "ci", UserName: "alice", DomainName: "Default", Secret: ac.Secret}} {
		_, tok, err := auth(a)
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if tok.User.ID != u.ID || tok.Project == nil || tok.Project.ID != p.ID || tok.ApplicationCredential == nil ||
			!slices.Equal(roleNames(tok), []string{"member", "reader"}) || !slices.Equal(tok.Methods, []string{"application_credential"}) {
			t.Fatalf("token %+v roles %v", tok, roleNames(tok))
		}
	}
	_, _, err = auth(AppCredAuth{ID: ac.ID, Secret: "wrong"})
	wantKind(t, err, errdefs.ErrUnauthenticated)
	_, _, err = auth(AppCredAuth{ID: ac.ID, Secret: ac.Secret + "x"}) // after a cached success
	wantKind(t, err, errdefs.ErrUnauthenticated)

	// A restricted credential's token may not create credentials or trusts.
	tokID, tok, err := auth(AppCredAuth{ID: ac.ID, Secret: ac.Secret})
	if err != nil {
		t.Fatal(err)
	}
	actx := WithCredentials(context.Background(), tok.Credentials())
	_, err = e.svc.CreateApplicationCredential(actx, u.ID, CreateAppCredOpts{Name: "y"})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.CreateTrust(actx, CreateTrustOpts{TrustorUserID: u.ID, TrusteeUserID: bob.ID, ProjectID: p.ID, Roles: []Ref{{Name: "member"}}})
	wantKind(t, err, errdefs.ErrForbidden)
	// ... and cannot be rescoped.
	_, _, err = rescope(e, tokID, AuthScope{ProjectID: p.ID})
	wantKind(t, err, errdefs.ErrForbidden)
	// An unrestricted one may.
	un := must(e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "un", Unrestricted: true}))
	_, utok, err := auth(AppCredAuth{ID: un.ID, Secret: un.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateApplicationCredential(WithCredentials(context.Background(), utok.Credentials()), u.ID, CreateAppCredOpts{Name: "z"}); err != nil {
		t.Fatal(err)
	}

	// Expiry: its tokens do not outlive it; after it, no token.
	if !tok.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("token expires %v", tok.ExpiresAt)
	}
	e.clock.Advance(49 * time.Hour)
	_, _, err = auth(AppCredAuth{ID: ac.ID, Secret: ac.Secret})
	wantKind(t, err, errdefs.ErrUnauthenticated)

	// Removing a role the credential carries revokes it and its tokens.
	_, ctx = e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	m := must(e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "m", Roles: []Ref{{Name: "admin"}}}))
	mtok, _, err := auth(AppCredAuth{ID: m.ID, Secret: m.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteGrant(e.admin, Grant{UserID: u.ID, ProjectID: p.ID, RoleID: e.role(t, "admin").ID}); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, mtok, "the credential's role was removed")
	_, err = e.svc.GetApplicationCredential(e.admin, u.ID, m.ID)
	wantKind(t, err, errdefs.ErrNotFound)

	// Deleting the user deletes its credentials.
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: u.ID, ProjectID: p.ID, RoleID: e.role(t, "member").ID}); err != nil {
		t.Fatal(err)
	}
	_, ctx = e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	last := must(e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "last"}))
	ltok, _, err := auth(AppCredAuth{ID: last.ID, Secret: last.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteUser(e.admin, u.ID); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, ltok, "the user was deleted")
	if n, _ := e.svc.ListApplicationCredentials(e.admin, u.ID, ""); len(n) != 0 {
		t.Fatalf("credentials left: %d", len(n))
	}
}

func TestApplicationCredentialDelete(t *testing.T) {
	e := newEnv(t)
	p, u := e.tenant(t, "p1", "alice", "member")
	_, ctx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	ac := must(e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "ci"}))
	tok, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"application_credential"},
		ApplicationCredential: &AppCredAuth{ID: ac.ID, Secret: ac.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ValidateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// Another user sees nothing.
	_, bob := e.tenant(t, "p2", "bob", "member")
	_, bctx := e.login(t, "bob", "bob-pw", AuthScope{})
	wantKind(t, e.svc.DeleteApplicationCredential(bctx, u.ID, ac.ID), errdefs.ErrNotFound)
	_, err = e.svc.ListApplicationCredentials(bctx, u.ID, "")
	wantKind(t, err, errdefs.ErrNotFound)
	_ = bob
	if err := e.svc.DeleteApplicationCredential(ctx, u.ID, ac.ID); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, tok, "the credential was deleted")
}

func TestAccessRules(t *testing.T) {
	e := newEnv(t)
	p, u := e.tenant(t, "p1", "alice", "member")
	_, ctx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	_, err := e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "bad",
		AccessRules: []AccessRule{{Service: "compute", Method: "GET", Path: "/v2.1/***"}}})
	wantKind(t, err, errdefs.ErrInvalid)
	ac := must(e.svc.CreateApplicationCredential(ctx, u.ID, CreateAppCredOpts{Name: "ro", AccessRules: []AccessRule{
		{Service: "compute", Method: "GET", Path: "/v2.1/servers/*"},
		{Service: "compute", Method: "POST", Path: "/v2.1/servers/{id}/action"},
		{Service: "image", Method: "GET", Path: "/v2/**"},
	}}))
	tok, _, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"application_credential"},
		ApplicationCredential: &AppCredAuth{ID: ac.ID, Secret: ac.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	compute := Middleware(e.svc, ok, &MiddlewareOptions{ServiceType: "compute"})
	image := Middleware(e.svc, ok, &MiddlewareOptions{ServiceType: "image"})
	unnamed := Middleware(e.svc, ok, nil)
	identityAPI := NewHandler(e.svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, c := range []struct {
		h            http.Handler
		method, path string
		want         int
	}{
		{compute, "GET", "/v2.1/servers/abc", 204},
		{compute, "GET", "/v2.1/servers/abc/ips", 401},
		{compute, "DELETE", "/v2.1/servers/abc", 401},
		{compute, "POST", "/v2.1/servers/abc/action", 204},
		{compute, "GET", "/v2.1/flavors", 401},
		{image, "GET", "/v2/images/x/file", 204},
		{image, "GET", "/v2.1/servers/abc", 401},
		{unnamed, "GET", "/v2.1/servers/abc", 401},
		{identityAPI, "GET", "/v3/projects", 401},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		req.Header.Set(AuthTokenHeader, tok)
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.want)
		}
	}
	// Tokens without rules are not restricted.
	ptok, _ := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	req := httptest.NewRequest("DELETE", "/v2.1/servers/abc", nil)
	req.Header.Set(AuthTokenHeader, ptok)
	rec := httptest.NewRecorder()
	compute.ServeHTTP(rec, req)
	if rec.Code != 204 {
		t.Fatalf("password token: %d", rec.Code)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/v2.1/servers", "/v2.1/servers", true},
		{"/v2.1/servers", "/v2.1/servers/", false},
		{"/v2.1/servers/*", "/v2.1/servers/a", true},
		{"/v2.1/servers/*", "/v2.1/servers/", false},
		{"/v2.1/servers/*", "/v2.1/servers/a/b", false},
		{"/v2.1/servers/**", "/v2.1/servers/a/b/c", true},
		{"/v2.1/servers/**", "/v2.1/servers/", true},
		{"/v2.1/servers/{id}/ips", "/v2.1/servers/abc/ips", true},
		{"/v2.1/servers/{id}/ips", "/v2.1/servers/a/b/ips", false},
		{"/**/ips", "/v2.1/servers/a/ips", true},
		{"/*/*", "/a/b", true},
		{"/a*b", "/axxb", true},
		{"/a*b", "/a/b", false},
	} {
		toks, ok := parseGlob(c.pattern)
		if !ok {
			t.Fatalf("%q: not parsed", c.pattern)
		}
		if got := matchGlob(toks, c.path); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"/***", "/{a", "/a}", "/{a/b}"} {
		if _, ok := parseGlob(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTrusts(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.TokenTTL = time.Hour })
	p, alice := e.tenant(t, "p1", "alice", "member")
	_, heat := e.tenant(t, "svc", "heat", "member")
	_, actx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})

	// The trustor must be the caller and hold the roles.
	_, err := e.svc.CreateTrust(actx, CreateTrustOpts{TrustorUserID: heat.ID, TrusteeUserID: alice.ID, ProjectID: p.ID, Roles: []Ref{{Name: "member"}}})
	wantKind(t, err, errdefs.ErrForbidden)
	_, err = e.svc.CreateTrust(actx, CreateTrustOpts{TrustorUserID: alice.ID, TrusteeUserID: heat.ID, ProjectID: p.ID, Roles: []Ref{{Name: "admin"}}})
	wantKind(t, err, errdefs.ErrForbidden)

	tr := must(e.svc.CreateTrust(actx, CreateTrustOpts{TrustorUserID: alice.ID, TrusteeUserID: heat.ID, ProjectID: p.ID,
		Roles: []Ref{{Name: "member"}}, Impersonation: true, AllowRedelegation: true}))
	if tr.RedelegationCount != 3 || len(tr.Roles) != 1 {
		t.Fatalf("trust %+v", tr)
	}
	// Both ends see it; others do not.
	_, hctx := e.login(t, "heat", "heat-pw", AuthScope{Unscoped: true})
	must(e.svc.GetTrust(hctx, tr.ID))
	_, _, cctx := e.domainAdmin(t, "other")
	_, err = e.svc.GetTrust(cctx, tr.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	if ts := must(e.svc.ListTrusts(hctx, ListTrustsOpts{TrusteeUserID: heat.ID})); len(ts) != 1 {
		t.Fatalf("trustee lists %d trusts", len(ts))
	}

	// The trustee gets a trust-scoped token by password.
	id, tok, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserID: heat.ID, Password: "heat-pw"}, Scope: AuthScope{TrustID: tr.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.User.ID != alice.ID || tok.Trust == nil || tok.Trust.TrusteeUserID != heat.ID || tok.Project.ID != p.ID ||
		!slices.Equal(roleNames(tok), []string{"member", "reader"}) {
		t.Fatalf("trust token %+v", tok)
	}
	// Another user cannot use it.
	_, _, err = e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserID: alice.ID, Password: "alice-pw"}, Scope: AuthScope{TrustID: tr.ID}})
	wantKind(t, err, errdefs.ErrUnauthenticated)

	// Hours later, alice's tokens long expired, heat acts for her.
	e.clock.Advance(5 * time.Hour)
	_, hctx = e.login(t, "heat", "heat-pw", AuthScope{Unscoped: true})
	_, t2, err := e.svc.AuthenticateTrust(hctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := t2.Credentials()
	if c.UserID != alice.ID || c.ProjectID != p.ID || !c.HasRole("member") || c.TrustID != tr.ID {
		t.Fatalf("credentials %+v", c)
	}
	id2, _, err := e.svc.AuthenticateTrust(hctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Redelegation from the trust token: one level less, no more roles.
	rctx := WithCredentials(context.Background(), t2.Credentials())
	_, err = e.svc.CreateTrust(rctx, CreateTrustOpts{TrustorUserID: alice.ID, TrusteeUserID: alice.ID, Roles: []Ref{{Name: "admin"}}})
	wantKind(t, err, errdefs.ErrForbidden)
	sub := must(e.svc.CreateTrust(rctx, CreateTrustOpts{TrustorUserID: alice.ID, TrusteeUserID: alice.ID, Roles: []Ref{{Name: "reader"}}, AllowRedelegation: true}))
	if sub.RedelegatedTrustID != tr.ID || sub.RedelegationCount != 2 || sub.ProjectID != p.ID {
		t.Fatalf("redelegated %+v", sub)
	}

	// The trustor losing the role kills the trust's tokens.
	member := e.role(t, "member")
	if err := e.svc.DeleteGrant(e.admin, Grant{UserID: alice.ID, ProjectID: p.ID, RoleID: member.ID}); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, id2, "the trustor lost the role")
	_, _, err = e.svc.AuthenticateTrust(hctx, tr.ID)
	wantKind(t, err, errdefs.ErrUnauthenticated)
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: alice.ID, ProjectID: p.ID, RoleID: member.ID}); err != nil {
		t.Fatal(err)
	}
	id3, _, err := e.svc.AuthenticateTrust(hctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Deleting the trust (by the trustor) kills them too, and its
	// redelegations; the trustee may not delete it.
	_, actx = e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	wantKind(t, e.svc.DeleteTrust(hctx, tr.ID), errdefs.ErrForbidden)
	if err := e.svc.DeleteTrust(actx, tr.ID); err != nil {
		t.Fatal(err)
	}
	e.mustReject(t, id3, "the trust was deleted")
	_, err = e.svc.GetTrust(actx, sub.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	_ = id
}

func TestTrustLimits(t *testing.T) {
	e := newEnv(t)
	p, alice := e.tenant(t, "p1", "alice", "member")
	_, bob := e.tenant(t, "p2", "bob", "member")
	_, actx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	exp := e.clock.Now().Add(30 * time.Minute)
	tr := must(e.svc.CreateTrust(actx, CreateTrustOpts{TrustorUserID: alice.ID, TrusteeUserID: bob.ID, ProjectID: p.ID,
		Roles: []Ref{{Name: "member"}}, RemainingUses: ptr(2), ExpiresAt: &exp}))
	_, bctx := e.login(t, "bob", "bob-pw", AuthScope{Unscoped: true})
	id, tok, err := e.svc.AuthenticateTrust(bctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Without impersonation the token is the trustee's.
	if tok.User.ID != bob.ID || !tok.ExpiresAt.Equal(exp) {
		t.Fatalf("token user %s expires %v", tok.User.ID, tok.ExpiresAt)
	}
	// A trust token cannot be rescoped, nor used to get another trust token.
	_, _, err = rescope(e, id, AuthScope{ProjectID: p.ID})
	wantKind(t, err, errdefs.ErrForbidden)
	if _, _, err := e.svc.AuthenticateTrust(bctx, tr.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.AuthenticateTrust(bctx, tr.ID)
	wantKind(t, err, errdefs.ErrForbidden) // no remaining uses
	if got := must(e.svc.GetTrust(actx, tr.ID)); *got.RemainingUses != 0 {
		t.Fatalf("remaining uses %d", *got.RemainingUses)
	}
	// Without redelegation, no trust from a trust token.
	_, err = e.svc.CreateTrust(WithCredentials(context.Background(), tok.Credentials()),
		CreateTrustOpts{TrustorUserID: bob.ID, TrusteeUserID: alice.ID, Roles: []Ref{{Name: "member"}}})
	wantKind(t, err, errdefs.ErrForbidden)
	e.clock.Advance(31 * time.Minute)
	e.mustReject(t, id, "the trust expired")
	_, err = e.svc.GetTrust(actx, tr.ID)
	wantKind(t, err, errdefs.ErrNotFound)
}

// Deleting a project deletes its application credentials and trusts.
func TestDeleteProjectDeletesDelegations(t *testing.T) {
	e := newEnv(t)
	p, alice := e.tenant(t, "p1", "alice", "member")
	_, bob := e.tenant(t, "p2", "bob", "member")
	_, actx := e.login(t, "alice", "alice-pw", AuthScope{ProjectID: p.ID})
	ac := must(e.svc.CreateApplicationCredential(actx, alice.ID, CreateAppCredOpts{Name: "ci"}))
	tr := must(e.svc.CreateTrust(actx, CreateTrustOpts{TrustorUserID: alice.ID, TrusteeUserID: bob.ID, ProjectID: p.ID, Roles: []Ref{{Name: "member"}}}))
	if err := e.svc.DeleteProject(e.admin, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.GetApplicationCredential(e.admin, alice.ID, ac.ID)
	wantKind(t, err, errdefs.ErrNotFound)
	_, err = e.svc.GetTrust(e.admin, tr.ID)
	wantKind(t, err, errdefs.ErrNotFound)
}
