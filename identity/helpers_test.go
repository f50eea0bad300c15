package identity

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// testClock is a settable clock.
type testClock struct{ t atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

type env struct {
	t     *testing.T
	svc   *Service
	st    *store.Store
	clock *testClock
	admin context.Context // cloud admin credentials
}

var cheapHashing = PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}

func newEnv(t testing.TB) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with a Config changed by edit (nil for none).
func newEnvWith(t testing.TB, edit func(*Config)) *env {
	t.Helper()
	clock := &testClock{}
	clock.t.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{Clock: clock.Now, CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, PasswordHashing: cheapHashing, Clock: clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.Bootstrap(context.Background(), BootstrapOptions{AdminPassword: "secret",
		Services: []ServiceEndpoints{{Type: "identity", Name: "keystone", PublicURL: "http://127.0.0.1:5000/v3"}}}); err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, st: st, clock: clock, admin: WithCredentials(context.Background(), SystemAdmin())}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	return e
}

// must returns v, or panics (failing the test) if err is not nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func wantKind(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
}

// login authenticates with a password and a scope and returns the token
// and a context carrying its credentials.
func (e *env) login(t testing.TB, user, password string, scope AuthScope) (string, context.Context) {
	t.Helper()
	id, tok, err := e.svc.Authenticate(context.Background(), AuthRequest{Methods: []string{"password"},
		Password: &PasswordAuth{UserName: user, DomainID: DefaultDomainID, Password: password}, Scope: scope})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return id, WithCredentials(context.Background(), tok.Credentials())
}

func (e *env) role(t testing.TB, name string) *Role {
	t.Helper()
	return must(e.svc.RoleByName(e.admin, name))
}

// tenant makes a project and a user with role on it, returning both.
func (e *env) tenant(t testing.TB, project, user, role string) (*Project, *User) {
	t.Helper()
	p := must(e.svc.CreateProject(e.admin, CreateProjectOpts{Name: project}))
	u := must(e.svc.CreateUser(e.admin, CreateUserOpts{Name: user, Password: user + "-pw", DefaultProjectID: p.ID}))
	if err := e.svc.CreateGrant(e.admin, Grant{UserID: u.ID, ProjectID: p.ID, RoleID: e.role(t, role).ID}); err != nil {
		t.Fatal(err)
	}
	return p, u
}

var _ = errdefs.ErrNotFound

func errorsIs(err, target error) bool { return errors.Is(err, target) }
