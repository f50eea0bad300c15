package metering

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// env is identity and metering with two projects, p1 (user u1) and p2 (user
// u2), and the Gnocchi API on loopback.
type env struct {
	st      *store.Store
	ids     *identity.Service
	svc     *Service
	db      *tsdb.DB
	dbDir   string
	clock   *clock
	url     string
	p1, p2  string
	admin   context.Context
	u1, u2  context.Context
	tokens  map[string]string // admin, u1, u2
	sources *fakeSources
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := &clock{t: t0}
	// Identity keeps its own store on the real clock, so that tokens do
	// not expire while the test's clock runs ahead.
	st, err := store.Open(ctx, memstore.New(), Tables(), &store.Options{CompactInterval: -1, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	idst, err := store.Open(ctx, memstore.New(), identity.Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idst.Close() })
	ids, err := identity.New(identity.Config{Store: idst, Logger: logger, PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })
	dbDir := t.TempDir()
	db, err := tsdb.Open(dbDir, &tsdb.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := New(Config{Store: st, DB: db, Clock: clk.Now, PollInterval: -1, DefaultPolicy: "stratus", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSources{}
	svc.Use(Sources{Instances: src, Volumes: src, Accounts: src, FloatingIPs: src, Images: src})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	srv := httptest.NewServer(NewHandler(svc, ids, logger))
	t.Cleanup(srv.Close)
	if err := ids.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "metric", Name: "gnocchi", PublicURL: srv.URL}}}); err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, ids: ids, svc: svc, db: db, dbDir: dbDir, clock: clk, url: srv.URL, tokens: map[string]string{}, sources: src}
	sys := identity.WithCredentials(ctx, identity.SystemAdmin())
	role := must(ids.RoleByName(sys, identity.RoleMember))
	for i, name := range []string{"p1", "p2"} {
		p := must(ids.CreateProject(sys, identity.CreateProjectOpts{Name: name, DomainID: identity.DefaultDomainID}))
		u := must(ids.CreateUser(sys, identity.CreateUserOpts{Name: "u" + name[1:], Password: "pw", DomainID: identity.DefaultDomainID, DefaultProjectID: p.ID}))
		if err := ids.CreateGrant(sys, identity.Grant{UserID: u.ID, ProjectID: p.ID, RoleID: role.ID}); err != nil {
			t.Fatal(err)
		}
		tok, c := e.login(t, u.Name, "pw", p.ID)
		e.tokens[u.Name] = tok
		if i == 0 {
			e.p1, e.u1 = p.ID, c
		} else {
			e.p2, e.u2 = p.ID, c
		}
	}
	tok, c := e.login(t, "admin", "secret", "")
	e.tokens["admin"], e.admin = tok, c
	return e
}

func (e *env) login(t testing.TB, user, pw, project string) (string, context.Context) {
	t.Helper()
	scope := identity.AuthScope{ProjectID: project}
	if project == "" {
		scope = identity.AuthScope{ProjectName: "admin", ProjectDomainID: identity.DefaultDomainID}
	}
	tok, info, err := e.ids.Authenticate(context.Background(), identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: user, DomainID: identity.DefaultDomainID, Password: pw}, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return tok, identity.WithCredentials(context.Background(), info.Credentials())
}

// get does an API request as user and returns the status and body.
func (e *env) do(t testing.TB, method, user, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, body)
	req.Header.Set("X-Auth-Token", e.tokens[user])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// fakeSources is what the pollsters see, set by the test.
type fakeSources struct {
	mu        sync.Mutex
	instances []InstanceUsage
	volumes   []VolumeUsage
	images    []ImageUsage
	accounts  []AccountUsage
	fips      []FloatingIPUsage
}

func (f *fakeSources) Instances(context.Context) ([]InstanceUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.instances), nil
}

func (f *fakeSources) Volumes(context.Context) ([]VolumeUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.volumes), nil
}

func (f *fakeSources) Images(context.Context) ([]ImageUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.images), nil
}

func (f *fakeSources) Accounts(context.Context) ([]AccountUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accounts), nil
}

func (f *fakeSources) FloatingIPs(context.Context) ([]FloatingIPUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fips), nil
}
