package network_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stratuskit/stratus/identity"
	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

type env struct {
	svc  *Service
	st   *store.Store
	mem  *memstore.Backend
	fake *fakenet.Backend
	// admin is a cloud admin on the admin project.
	admin context.Context
}

func adminCtx() context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "admin", ProjectID: "admin-project",
		IsAdminProject: true, Roles: []string{identity.RoleAdmin, identity.RoleMember, identity.RoleReader}})
}

// member returns a context of a member of project.
func member(project string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "u-" + project, ProjectID: project,
		Roles: []string{identity.RoleMember, identity.RoleReader}})
}

// reader returns a context of a reader of project.
func reader(project string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "r-" + project, ProjectID: project,
		Roles: []string{identity.RoleReader}})
}

func newEnv(t testing.TB) *env {
	t.Helper()
	mem := memstore.New()
	st, err := store.Open(context.Background(), mem, Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fake := fakenet.New()
	svc, err := New(Config{Store: st, Backend: fake})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &env{svc: svc, st: st, mem: mem, fake: fake, admin: adminCtx()}
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

func wantFault(t testing.TB, err error, typ string) {
	t.Helper()
	f, ok := errors.AsType[*Fault](err)
	if !ok || f.Type != typ {
		t.Fatalf("error %v, want a %s fault", err, typ)
	}
}

// net creates a network with one IPv4 subnet in ctx's project.
func (e *env) net(t testing.TB, ctx context.Context, name, cidr string) (*Network, *Subnet) {
	t.Helper()
	n := must(e.svc.CreateNetwork(ctx, CreateNetworkOpts{Name: name}))
	s := must(e.svc.CreateSubnet(ctx, CreateSubnetOpts{NetworkID: n.ID, CIDR: cidr}))
	return must(e.svc.GetNetwork(ctx, n.ID)), s
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
