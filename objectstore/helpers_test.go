package objectstore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/memobj"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// cloud is identity and the object store, each on its own loopback
// server, as the all-in-one runs them.
type cloud struct {
	ident    *identity.Service
	svc      *objectstore.Service
	backend  objectstore.Backend
	identURL string // .../v3
	objURL   string // http://host:port
	admin    context.Context
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newCloud(t testing.TB, backend objectstore.Backend) *cloud {
	t.Helper()
	if backend == nil {
		backend = memobj.New()
	}
	ctx := context.Background()
	st, err := store.Open(ctx, memstore.New(), slices.Concat(identity.Tables(), objectstore.Tables()), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ident, err := identity.New(identity.Config{Store: st, PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ident.Close() })
	svc, err := objectstore.New(objectstore.Config{Store: st, Backend: backend, Logger: quietLogger(), ReapInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); backend.Close() })
	identSrv := httptest.NewServer(identity.NewHandler(ident, quietLogger()))
	t.Cleanup(identSrv.Close)
	objSrv := httptest.NewServer(objectstore.NewHandler(svc, ident, quietLogger()))
	t.Cleanup(objSrv.Close)
	if err := ident.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: identSrv.URL + "/v3"},
		{Type: "object-store", Name: "swift", PublicURL: objSrv.URL + "/v1/AUTH_%(project_id)s"},
	}}); err != nil {
		t.Fatal(err)
	}
	return &cloud{ident: ident, svc: svc, backend: backend, identURL: identSrv.URL + "/v3", objURL: objSrv.URL,
		admin: identity.WithCredentials(ctx, identity.SystemAdmin())}
}

// user is a project member with a token.
type user struct {
	project string // id
	name    string
	token   string
	account string // AUTH_<project>
}

// tenant creates a project and a user with role on it, and logs in.
func (c *cloud) tenant(t testing.TB, project, name, role string) *user {
	t.Helper()
	p, err := c.ident.CreateProject(c.admin, identity.CreateProjectOpts{Name: project})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.ident.CreateUser(c.admin, identity.CreateUserOpts{Name: name, Password: name + "-pw", DefaultProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.ident.RoleByName(c.admin, role)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ident.CreateGrant(c.admin, identity.Grant{UserID: u.ID, ProjectID: p.ID, RoleID: r.ID}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := c.ident.Authenticate(context.Background(), identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: name, DomainID: identity.DefaultDomainID, Password: name + "-pw"},
		Scope:    identity.AuthScope{ProjectID: p.ID}})
	if err != nil {
		t.Fatal(err)
	}
	return &user{project: p.ID, name: name, token: tok, account: objectstore.AccountPrefix + p.ID}
}

// reply is a response whose body was read and closed.
type reply struct {
	StatusCode int
	Header     http.Header
}

// do sends a request with u's token (nil u: none) to path under the
// object server and returns the response with its body read.
func (c *cloud) do(t testing.TB, u *user, method, path string, body string, hdr map[string]string) (*reply, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.objURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if u != nil {
		req.Header.Set("X-Auth-Token", u.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &reply{StatusCode: resp.StatusCode, Header: resp.Header}, string(data)
}

// expect checks the status of a request.
func (c *cloud) expect(t testing.TB, want int, u *user, method, path, body string, hdr map[string]string) (*reply, string) {
	t.Helper()
	resp, data := c.do(t, u, method, path, body, hdr)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	return resp, data
}

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
