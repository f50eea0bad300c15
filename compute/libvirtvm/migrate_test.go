//go:build cgo

package libvirtvm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Live migration between two hosts on libvirt's test driver goes through
// libvirt's migration API, which the test driver does not have: the
// driver says ErrUnsupported, and compute rolls the migration back (the
// server stays ACTIVE on its host, the migration is in error, the
// destination's claim is gone).
func TestLiveMigrationOnTestDriver(t *testing.T) {
	d1, _ := newTestDriver(t, nil)
	d2, _ := newTestDriver(t, nil)
	imgs := newImages()
	root := imgs.add(compute.ImageInfo{Name: "root", DiskFormat: "raw"}, make([]byte, 1<<20))
	ctx := context.Background()

	id := newID()
	if err := d1.Spawn(ctx, imgs.specFor(id, root)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d1.Destroy(ctx, id) })
	if err := d1.Migrate(ctx, id, d2, true); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Fatalf("live migration on the test driver: %v, want ErrUnsupported", err)
	}
	if err := d1.Migrate(ctx, id, d1, true); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("migration to the same host: %v, want ErrInvalid", err)
	}
	if _, err := d2.State(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("the destination has the domain after a failed migration: %v", err)
	}

	e := newSvcEnv(t, d1, imgs, compute.Config{})
	if _, err := e.svc.AddHost(ctx, compute.HostOpts{Name: "host2", VCPUs: 64, RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, d2); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := e.svc.CreateServer(e.user, compute.CreateServerOpts{Name: "lm", ImageRef: root.ID, FlavorRef: e.flavor.ID, NetworksMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	v := e.settle(wctx, t, srv.ID)
	if err := e.svc.LiveMigrateServer(e.admin, v.ID, ""); err != nil {
		t.Fatal(err)
	}
	w := e.settle(wctx, t, v.ID)
	if w.Status() != "ACTIVE" || w.HostID != v.HostID {
		t.Fatalf("after a refused live migration: %s on %s (was %s)", w.Status(), w.HostID, v.HostID)
	}
	ms, err := e.svc.ListMigrations(e.admin, compute.ListMigrationsOpts{ServerID: v.ID})
	if err != nil || len(ms) != 1 || ms[0].Status != "error" || ms[0].Type != compute.MigrationLive {
		t.Fatalf("migrations %+v %v", ms, err)
	}
	hosts, _ := e.svc.ListHosts(e.admin)
	for _, h := range hosts {
		want := 0
		if h.ID == v.HostID {
			want = 1
		}
		if h.Usage.Instances != want {
			t.Fatalf("host %s holds %d claims, want %d", h.ID, h.Usage.Instances, want)
		}
	}
	e.deleteAndWait(wctx, t, v.ID)
}
