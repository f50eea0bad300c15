package identity_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// newIdentity opens a store with the identity tables and bootstraps a
// cloud whose admin password is "secret".
func newIdentity() (*identity.Service, func()) {
	ctx := context.Background()
	st, err := store.Open(ctx, memstore.New(), identity.Tables(), nil)
	if err != nil {
		panic(err)
	}
	svc, err := identity.New(identity.Config{Store: st, PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64}})
	if err != nil {
		panic(err)
	}
	if err := svc.Start(ctx); err != nil {
		panic(err)
	}
	if err := svc.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: "secret"}); err != nil {
		panic(err)
	}
	return svc, func() { svc.Close(); st.Close() }
}

// Library callers act with Credentials in the context; here the system
// admin creates a project and a user, grants a role, and the user logs in.
func Example() {
	svc, done := newIdentity()
	defer done()
	admin := identity.WithCredentials(context.Background(), identity.SystemAdmin())

	p, _ := svc.CreateProject(admin, identity.CreateProjectOpts{Name: "p1"})
	u, _ := svc.CreateUser(admin, identity.CreateUserOpts{Name: "alice", Password: "pw"})
	member, _ := svc.RoleByName(admin, "member")
	_ = svc.CreateGrant(admin, identity.Grant{UserID: u.ID, ProjectID: p.ID, RoleID: member.ID})

	id, tok, err := svc.Authenticate(context.Background(), identity.AuthRequest{
		Methods:  []string{"password"},
		Password: &identity.PasswordAuth{UserName: "alice", DomainName: "Default", Password: "pw"},
		Scope:    identity.AuthScope{ProjectName: "p1", ProjectDomainName: "Default"},
	})
	if err != nil {
		panic(err)
	}
	c := tok.Credentials()
	fmt.Println(c.UserName, c.ProjectName, c.HasRole("member"), c.HasRole("reader"), c.IsCloudAdmin())

	// Revoking the token rejects it at once.
	_ = svc.RevokeToken(identity.WithCredentials(context.Background(), c), id)
	_, err = svc.ValidateToken(context.Background(), id)
	fmt.Println(err != nil)
	// Output:
	// alice p1 true true false
	// true
}

// Other services put Middleware in front of their API and decide with a
// Policy of their own on the Credentials it leaves in the context.
func ExampleMiddleware() {
	svc, done := newIdentity()
	defer done()
	policy := identity.ProjectDefaults("compute:server:")
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := identity.CredentialsFrom(r.Context())
		if err := policy.Enforce(r.Context(), "compute:server:create", identity.Target{ProjectID: c.ProjectID}); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "created in %s", c.ProjectName)
	})
	srv := httptest.NewServer(identity.Middleware(svc, api, nil))
	defer srv.Close()

	id, _, _ := svc.Authenticate(context.Background(), identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: "admin", DomainID: "default", Password: "secret"},
		Scope:    identity.AuthScope{ProjectName: "admin", ProjectDomainID: "default"}})
	for _, tok := range []string{id, "forged"} {
		req, _ := http.NewRequest("POST", srv.URL, nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.Contains(resp.Header.Get("WWW-Authenticate"), "Keystone"), strings.TrimSpace(string(b))[:min(len(b), 16)])
	}
	// Output:
	// 200 false created in admin
	// 401 true {"error":{"code"
}

// NewHandler serves the Keystone v3 API; version discovery needs no token.
func ExampleNewHandler() {
	svc, done := newIdentity()
	defer done()
	srv := httptest.NewServer(identity.NewHandler(svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v3")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	resp, err = http.Post(srv.URL+"/v3/auth/tokens", "application/json", strings.NewReader(
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"secret"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Subject-Token") != "")
	// Output:
	// 200
	// 201 true
}

// A service such as orchestration acts for a user long after the user's
// token expired: at stack creation the user delegates a role to the
// service's own user (made by Bootstrap's ServiceUsers) with a trust; later
// the service logs in as itself and gets a trust-scoped token carrying the
// user's role on the user's project.
func ExampleService_AuthenticateTrust() {
	svc, done := newIdentity()
	defer done()
	ctx := context.Background()
	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	_ = svc.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: "secret",
		ServiceUsers: []identity.ServiceUser{{Name: "heat", Password: "heat-pw"}}})
	p, _ := svc.CreateProject(admin, identity.CreateProjectOpts{Name: "p1"})
	alice, _ := svc.CreateUser(admin, identity.CreateUserOpts{Name: "alice", Password: "pw"})
	member, _ := svc.RoleByName(admin, "member")
	_ = svc.CreateGrant(admin, identity.Grant{UserID: alice.ID, ProjectID: p.ID, RoleID: member.ID})
	heat, _ := svc.ListUsers(admin, identity.ListUsersOpts{Name: "heat"})

	// The user, with its own token, trusts the service.
	_, userTok, _ := svc.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserID: alice.ID, Password: "pw"}, Scope: identity.AuthScope{ProjectID: p.ID}})
	trust, err := svc.CreateTrust(identity.WithCredentials(ctx, userTok.Credentials()), identity.CreateTrustOpts{
		TrustorUserID: alice.ID, TrusteeUserID: heat[0].ID, ProjectID: p.ID,
		Roles: []identity.Ref{{Name: "member"}}, Impersonation: true,
	})
	if err != nil {
		panic(err)
	}

	// Later: the service authenticates as itself, then through the trust.
	_, svcTok, _ := svc.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: "heat", DomainName: "Default", Password: "heat-pw"}})
	_, tok, err := svc.AuthenticateTrust(identity.WithCredentials(ctx, svcTok.Credentials()), trust.ID)
	if err != nil {
		panic(err)
	}
	c := tok.Credentials() // put these in the context of calls to other services
	fmt.Println(c.UserName, c.ProjectName, c.HasRole("member"), c.TrustID == trust.ID)
	// Output:
	// alice p1 true true
}
