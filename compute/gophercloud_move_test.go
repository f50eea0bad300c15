package compute_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/migrations"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/stratuskit/stratus/compute"
)

// TestGophercloudMoves drives compute II's actions through gophercloud v2:
// resize with confirm and revert, cold and live migration, os-migrations,
// rebuild (and its OSSA-2017-005 refusal), evacuate after force-down,
// createImage, rescue, shelve/unshelve and os-interface.
func TestGophercloudMoves(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	al := c.alice(t, "2.90")
	adm := c.admin(t, "2.90")
	big, err := c.svc.CreateFlavor(c.env.admin, compute.CreateFlavorOpts{Name: "m1.big", VCPUs: 2, RAMMB: 1024, DiskGB: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := servers.Create(ctx, al, servers.CreateOpts{Name: "mv", ImageRef: imageID, FlavorRef: c.flavor.ID,
		Networks: []servers.Network{{UUID: netID}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s = waitStatus(t, al, s.ID, "ACTIVE")
	mustOK := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Resize, confirm.
	mustOK("resize", servers.Resize(ctx, al, s.ID, servers.ResizeOpts{FlavorRef: big.ID}).ExtractErr())
	v := waitStatus(t, al, s.ID, "VERIFY_RESIZE")
	if v.Flavor["original_name"] != "m1.big" {
		t.Fatalf("flavor after resize: %v", v.Flavor)
	}
	mustOK("confirm", servers.ConfirmResize(ctx, al, s.ID).ExtractErr())
	waitStatus(t, al, s.ID, "ACTIVE")

	// Cold migrate (admin), revert: back on the first host.
	before, _ := servers.Get(ctx, adm, s.ID).Extract()
	mustOK("migrate", servers.Migrate(ctx, adm, s.ID).ExtractErr())
	mv := waitStatus(t, adm, s.ID, "VERIFY_RESIZE")
	if mv.Host == before.Host {
		t.Fatalf("migrate stayed on %s", mv.Host)
	}
	mustOK("revert", servers.RevertResize(ctx, al, s.ID).ExtractErr())
	if v := waitStatus(t, adm, s.ID, "ACTIVE"); v.Host != before.Host {
		t.Fatalf("revert: on %s, want %s", v.Host, before.Host)
	}

	// Live migrate; os-migrations lists all three moves.
	host := "host1"
	if before.Host == host {
		host = "host2"
	}
	mustOK("live migrate", servers.LiveMigrate(ctx, adm, s.ID, servers.LiveMigrateOpts{Host: &host, BlockMigration: new(bool)}).ExtractErr())
	waitStatus(t, adm, s.ID, "ACTIVE")
	if v, _ := servers.Get(ctx, adm, s.ID).Extract(); v.Host != host {
		t.Fatalf("live migration to %s: on %s", host, v.Host)
	}
	pages, err := migrations.List(adm, migrations.ListOpts{InstanceID: &s.ID}).AllPages(ctx)
	mustOK("os-migrations", err)
	ms, err := migrations.ExtractMigrations(pages)
	mustOK("extract migrations", err)
	var kinds []string
	for _, m := range ms {
		kinds = append(kinds, m.MigrationType+":"+m.Status)
	}
	if strings.Join(kinds, ",") != "live-migration:completed,migration:reverted,resize:confirmed" || ms[0].DestCompute != host || ms[0].UUID == "" {
		t.Fatalf("migrations %v %+v", kinds, ms[0])
	}
	if _, err := migrations.List(al, migrations.ListOpts{}).AllPages(ctx); err == nil {
		t.Fatal("a member listed os-migrations")
	}

	// Rebuild with a new name and metadata, then with an image the host
	// fails: ERROR with "No valid host".
	const qemuOnly = "22222222-2222-4333-8444-555555555555"
	c.images.Add(compute.ImageInfo{ID: qemuOnly, Name: "qemu-only", DiskFormat: "raw", Properties: map[string]string{"hypervisor_type": "qemu"}}, []byte("q"), "")
	rb, err := servers.Rebuild(ctx, al, s.ID, servers.RebuildOpts{ImageRef: imageID, Name: "rebuilt", Metadata: map[string]string{"a": "b"}}).Extract()
	mustOK("rebuild", err)
	if rb.Name != "rebuilt" || rb.AdminPass == "" {
		t.Fatalf("rebuild answer %+v", rb)
	}
	if v := waitStatus(t, al, s.ID, "ACTIVE"); v.Metadata["a"] != "b" {
		t.Fatalf("metadata after rebuild %v", v.Metadata)
	}
	mustOK("rebuild qemu-only", servers.Rebuild(ctx, al, s.ID, servers.RebuildOpts{ImageRef: qemuOnly}).Err)
	if v := waitStatus(t, al, s.ID, "ERROR"); !strings.Contains(v.Fault.Message, "No valid host") {
		t.Fatalf("fault %+v", v.Fault)
	}
	mustOK("rebuild back", servers.Rebuild(ctx, al, s.ID, servers.RebuildOpts{ImageRef: imageID}).Err)
	waitStatus(t, al, s.ID, "ACTIVE")

	// createImage: the id from the body at 2.45+.
	res := servers.CreateImage(ctx, al, s.ID, servers.CreateImageOpts{Name: "snap", Metadata: map[string]string{"k": "v"}})
	img, err := res.ExtractImageID()
	mustOK("createImage", err)
	waitStatus(t, al, s.ID, "ACTIVE")
	if info, err := c.images.GetImage(ctx, c.p1, img); err != nil || info.Properties["k"] != "v" {
		t.Fatalf("snapshot %s: %+v %v", img, info, err)
	}

	// Rescue, unrescue; shelve, unshelve.
	pw, err := servers.Rescue(ctx, al, s.ID, servers.RescueOpts{}).Extract()
	mustOK("rescue", err)
	if pw == "" {
		t.Fatal("rescue gave no adminPass")
	}
	waitStatus(t, al, s.ID, "RESCUE")
	mustOK("unrescue", servers.Unrescue(ctx, al, s.ID).ExtractErr())
	waitStatus(t, al, s.ID, "ACTIVE")
	mustOK("shelve", servers.Shelve(ctx, al, s.ID).ExtractErr())
	waitStatus(t, al, s.ID, "SHELVED")
	mustOK("shelve offload", servers.ShelveOffload(ctx, adm, s.ID).ExtractErr())
	waitStatus(t, al, s.ID, "SHELVED_OFFLOADED")
	mustOK("unshelve", servers.Unshelve(ctx, al, s.ID, servers.UnshelveOpts{}).ExtractErr())
	waitStatus(t, al, s.ID, "ACTIVE")

	// os-interface: attach a network, list, detach.
	ia, err := attachinterfaces.Create(ctx, al, s.ID, attachinterfaces.CreateOpts{NetworkID: netID}).Extract()
	mustOK("attach interface", err)
	pages, err = attachinterfaces.List(al, s.ID).AllPages(ctx)
	mustOK("list interfaces", err)
	ifs, _ := attachinterfaces.ExtractInterfaces(pages)
	if len(ifs) != 2 || ia.PortID == "" || len(ia.FixedIPs) != 1 {
		t.Fatalf("interfaces %+v (attached %+v)", ifs, ia)
	}
	got, err := attachinterfaces.Get(ctx, al, s.ID, ia.PortID).Extract()
	mustOK("get interface", err)
	if got.NetID != netID {
		t.Fatalf("interface %+v", got)
	}
	mustOK("detach interface", attachinterfaces.Delete(ctx, al, s.ID, ia.PortID).ExtractErr())

	// Evacuate: refused while the host is up, done after force-down.
	v, _ = servers.Get(ctx, adm, s.ID).Extract()
	if err := servers.Evacuate(ctx, adm, s.ID, servers.EvacuateOpts{}).Err; err == nil {
		t.Fatal("evacuate from a host that is up was accepted")
	}
	pages, err = services.List(adm, services.ListOpts{Host: v.Host}).AllPages(ctx)
	mustOK("services", err)
	svcs, _ := services.ExtractServices(pages)
	down := true
	_, err = services.Update(ctx, adm, svcs[0].ID, services.UpdateOpts{ForcedDown: down}).Extract()
	mustOK("force down", err)
	mustOK("evacuate", servers.Evacuate(ctx, adm, s.ID, servers.EvacuateOpts{}).Err)
	if w := waitStatus(t, adm, s.ID, "ACTIVE"); w.Host == v.Host {
		t.Fatalf("evacuated server still on %s", w.Host)
	}
	// The flavor reference survived every move; the hostname can change
	// (2.90).
	if w, _ := servers.Get(ctx, al, s.ID).Extract(); w.Flavor["original_name"] != "m1.big" {
		t.Fatalf("flavor %v", w.Flavor)
	}
	hn := "moved-host"
	u, err := servers.Update(ctx, al, s.ID, servers.UpdateOpts{Hostname: &hn}).Extract()
	mustOK("hostname update", err)
	if u.Hostname == nil || *u.Hostname != hn {
		t.Fatalf("hostname after update: %v", u.Hostname)
	}
}
