package compute_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/standin"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

const (
	imageID = "11111111-2222-4333-8444-555555555555"
	netID   = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
)

type env struct {
	t       testing.TB
	st      *store.Store
	backend *memstore.Backend
	svc     *compute.Service
	drivers []*fakevm.Driver
	images  *standin.Images
	ports   *standin.Ports
	volumes *standin.Volumes
	admin   context.Context
	flavor  *compute.Flavor
	cfg     compute.Config
}

type envOpts struct {
	hosts   int
	vcpus   int
	ramMB   int
	diskGB  int
	cfg     compute.Config
	fake    *fakevm.Options
	noStart bool
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.hosts == 0 {
		o.hosts = 3
	}
	b := memstore.New()
	st, err := store.Open(context.Background(), b, slices.Concat(identity.Tables(), compute.Tables()), &store.Options{Logger: quiet(), CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, backend: b, images: standin.NewImages(), ports: standin.NewPorts(), volumes: standin.NewVolumes()}
	e.images.Add(compute.ImageInfo{ID: imageID, Name: "cirros", DiskFormat: "qcow2", MinDiskGB: 0}, []byte("image-bytes"), "")
	if err := e.ports.AddNetwork(standin.Network{ID: netID, Name: "private", CIDR: "10.0.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	e.cfg = o.cfg
	e.cfg.Store = st
	e.cfg.Logger = quiet()
	if e.cfg.SweepInterval == 0 {
		e.cfg.SweepInterval = -1
	}
	e.admin = identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "admin", ProjectID: "admin", IsAdminProject: true,
		Roles: []string{"admin", "member", "reader"}})
	e.start(o)
	return e
}

func (e *env) start(o envOpts) {
	t := e.t
	svc, err := compute.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.Use(compute.Deps{Images: e.images, Ports: e.ports, Volumes: e.volumes})
	e.svc = svc
	if len(e.drivers) == 0 {
		for i := range o.hosts {
			fo := fakevm.Options{Name: fmt.Sprintf("host%d", i+1)}
			if o.fake != nil {
				fo = *o.fake
				fo.Name = fmt.Sprintf("host%d", i+1)
			}
			e.drivers = append(e.drivers, fakevm.New(&fo))
		}
	}
	for i, d := range e.drivers {
		if _, err := svc.AddHost(context.Background(), compute.HostOpts{Name: fmt.Sprintf("host%d", i+1),
			VCPUs: o.vcpus, RAMMB: o.ramMB, DiskGB: o.diskGB, CPURatio: 1, RAMRatio: 1}, d); err != nil {
			t.Fatal(err)
		}
	}
	if !o.noStart {
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = svc.Close() })
	if e.flavor == nil {
		f, err := svc.CreateFlavor(e.admin, compute.CreateFlavorOpts{Name: "m1.small", VCPUs: 1, RAMMB: 512, DiskGB: 1})
		if err != nil {
			t.Fatal(err)
		}
		e.flavor = f
	}
}

// user returns the context of a member of project.
func user(project string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "u-" + project, ProjectID: project,
		Roles: []string{"member", "reader"}})
}

func (e *env) create(ctx context.Context, name string, mod func(*compute.CreateServerOpts)) *compute.Server {
	e.t.Helper()
	o := compute.CreateServerOpts{Name: name, ImageRef: imageID, FlavorRef: e.flavor.ID}
	if mod != nil {
		mod(&o)
	}
	srv, err := e.svc.CreateServer(ctx, o)
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return srv
}

// settle waits until the server has no task, and returns it.
func (e *env) settle(ctx context.Context, id string) *compute.Server {
	e.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	srv, err := e.svc.WaitServer(wctx, id, func(s *compute.Server) bool { return s.TaskState == compute.TaskNone })
	if err != nil {
		e.t.Fatalf("server %s did not settle: %v (last %+v)", id, err, srv)
	}
	return srv
}

// gone waits until the server is deleted.
func (e *env) gone(ctx context.Context, id string) {
	e.t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := e.svc.WaitServer(wctx, id, func(*compute.Server) bool { return false })
	if err == nil || wctx.Err() != nil {
		e.t.Fatalf("server %s not deleted: %v", id, err)
	}
}
