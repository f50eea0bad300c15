package compute_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/errdefs"
)

// driverOf returns the fake driver of host "hostN".
func (e *env) driverOf(host string) *fakevm.Driver {
	for i, d := range e.drivers {
		if "host"+string(rune('1'+i)) == host {
			return d
		}
	}
	e.t.Fatalf("no driver for host %q", host)
	return nil
}

func (e *env) bigFlavor(name string, vcpus, ram, disk int) *compute.Flavor {
	e.t.Helper()
	f, err := e.svc.CreateFlavor(e.admin, compute.CreateFlavorOpts{Name: name, VCPUs: vcpus, RAMMB: ram, DiskGB: disk})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// hostsOf returns the hosts whose driver has a domain for server id.
func hostsOf(e *env, id string) []string {
	var out []string
	for i, d := range e.drivers {
		if slices.Contains(d.Domains(), id) {
			out = append(out, "host"+string(rune('1'+i)))
		}
	}
	return out
}

func listMigs(t *testing.T, e *env, id string) []*compute.Migration {
	t.Helper()
	ms, err := e.svc.ListMigrations(e.admin, compute.ListMigrationsOpts{ServerID: id})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestResizeConfirmAndRevert(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	big := e.bigFlavor("m1.big", 2, 1024, 2)
	srv := e.settle(ctx, e.create(ctx, "r1", func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)
	port := srv.Ports[0].ID

	if err := e.svc.ResizeServer(ctx, srv.ID, big.ID); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "VERIFY_RESIZE" || v.Flavor.ID != big.ID || v.Ports[0].ID != port || v.Ports[0].Host != v.HostID {
		t.Fatalf("after resize: %s flavor %s ports %+v fault %+v", v.Status(), v.Flavor.ID, v.Ports, v.Fault)
	}
	q, _ := e.svc.GetQuota(e.admin, "p1")
	if q.Usage.Cores != 2 || q.Usage.RAMMB != 1024 {
		t.Fatalf("quota after resize %+v, want the new flavor's", q.Usage)
	}
	ms := listMigs(t, e, srv.ID)
	if len(ms) != 1 || ms[0].Type != compute.MigrationResize || ms[0].Status != "finished" || ms[0].DestHost != v.HostID {
		t.Fatalf("migrations %+v", ms[0])
	}
	if err := e.svc.ConfirmResize(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	v = e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || !slices.Equal(hostsOf(e, srv.ID), []string{v.HostID}) {
		t.Fatalf("after confirm: %s on %v (host %s)", v.Status(), hostsOf(e, srv.ID), v.HostID)
	}
	checkInvariants(t, e, []string{"p1"})

	// Resize again, then revert: old flavor, old host, quota back.
	bigger := e.bigFlavor("m1.bigger", 4, 2048, 4)
	before := v
	if err := e.svc.ResizeServer(ctx, srv.ID, bigger.ID); err != nil {
		t.Fatal(err)
	}
	v = e.settle(ctx, srv.ID)
	if v.Status() != "VERIFY_RESIZE" {
		t.Fatalf("second resize: %s %+v", v.Status(), v.Fault)
	}
	if err := e.svc.RevertResize(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	v = e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.Flavor.ID != big.ID || v.HostID != before.HostID || v.Ports[0].Host != before.HostID {
		t.Fatalf("after revert: %s flavor %s host %s (was %s)", v.Status(), v.Flavor.ID, v.HostID, before.HostID)
	}
	if ms := listMigs(t, e, srv.ID); ms[0].Status != "reverted" {
		t.Fatalf("newest migration %+v", ms[0])
	}
	checkInvariants(t, e, []string{"p1"})
	acts, _ := e.svc.ListInstanceActions(ctx, srv.ID)
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
	}
	if !slices.Equal(names, []string{"revertResize", "resize", "confirmResize", "resize", "create"}) {
		t.Fatalf("actions %v", names)
	}
	if a := acts[0]; len(a.Events) == 0 || a.Events[len(a.Events)-1].Event != "compute_revert_resize" || a.Events[len(a.Events)-1].Result != "Success" {
		t.Fatalf("revert events %+v", a.Events)
	}

	// Metering and rating learn each flavor change from the outbox.
	evs, err := e.st.Consumer("test-resize").Next(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var resizes []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Type, "compute.server.resize") && ev.ResourceID == srv.ID {
			var p struct{ Flavor string }
			_ = json.Unmarshal(ev.Payload, &p)
			resizes = append(resizes, ev.Type+" "+p.Flavor)
		}
	}
	if want := []string{"compute.server.resize " + big.ID, "compute.server.resize " + bigger.ID,
		"compute.server.resize.revert " + big.ID}; !slices.Equal(resizes, want) {
		t.Fatalf("resize events %v, want %v", resizes, want)
	}

	// Wrong states and bad flavors are refused before anything is written.
	if err := e.svc.ConfirmResize(ctx, srv.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("confirm of an ACTIVE server: %v", err)
	}
	if err := e.svc.ResizeServer(ctx, srv.ID, e.flavor.ID); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("resize to a smaller disk: %v", err)
	}
	if err := e.svc.ResizeServer(ctx, srv.ID, "nope"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("resize to a missing flavor: %v", err)
	}
	if err := e.svc.ResizeServer(user("p2"), srv.ID, bigger.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("resize of another project's server: %v", err)
	}
}

func TestResizeQuotaAndNoValidHost(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 2, vcpus: 4, ramMB: 4096, diskGB: 100})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "q1", nil).ID)
	huge := e.bigFlavor("huge", 8, 1024, 1)
	if err := e.svc.ResizeServer(ctx, srv.ID, huge.ID); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.Flavor.ID != e.flavor.ID || v.Fault == nil || !strings.Contains(v.Fault.Message, "No valid host") {
		t.Fatalf("resize beyond every host: %s flavor %s fault %+v", v.Status(), v.Flavor.ID, v.Fault)
	}
	if ms := listMigs(t, e, srv.ID); ms[0].Status != "error" {
		t.Fatalf("migration %+v", ms[0])
	}
	checkInvariants(t, e, []string{"p1"})
	if _, err := e.svc.UpdateQuota(e.admin, "p1", compute.UpdateQuotaOpts{Cores: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	three := e.bigFlavor("three", 3, 512, 1)
	if err := e.svc.ResizeServer(ctx, srv.ID, three.ID); !errors.Is(err, errdefs.ErrQuotaExceeded) {
		t.Fatalf("resize over the cores quota: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestColdMigrateAndAutoConfirm(t *testing.T) {
	e := newEnv(t, envOpts{cfg: compute.Config{ResizeConfirmWindow: 50 * time.Millisecond}})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "m1", func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)
	if err := e.svc.MigrateServer(ctx, srv.ID, ""); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("migrate by a member: %v", err)
	}
	target := "host1"
	if srv.HostID == target {
		target = "host2"
	}
	if err := e.svc.MigrateServer(e.admin, srv.ID, target); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := e.svc.WaitServer(wctx, srv.ID, func(v *compute.Server) bool {
		return v.TaskState == compute.TaskNone && v.VMState != compute.VMResized
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status() != "ACTIVE" || v.HostID != target || v.Ports[0].Host != target || !slices.Equal(hostsOf(e, srv.ID), []string{target}) {
		t.Fatalf("after auto-confirmed migration: %s on %s (domains %v) fault %+v", v.Status(), v.HostID, hostsOf(e, srv.ID), v.Fault)
	}
	ms := listMigs(t, e, srv.ID)
	if ms[0].Type != compute.MigrationCold || ms[0].Status != "confirmed" || ms[0].SourceHost != srv.HostID {
		t.Fatalf("migration %+v", ms[0])
	}
	checkInvariants(t, e, []string{"p1"})
}

func TestLiveMigrate(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 2})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "l1", func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)
	if err := e.svc.LiveMigrateServer(e.admin, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.HostID == srv.HostID || v.Ports[0].Host != v.HostID || !slices.Equal(hostsOf(e, srv.ID), []string{v.HostID}) {
		t.Fatalf("after live migration: %s on %s from %s (domains %v) fault %+v", v.Status(), v.HostID, srv.HostID, hostsOf(e, srv.ID), v.Fault)
	}
	if ms := listMigs(t, e, srv.ID); ms[0].Type != compute.MigrationLive || ms[0].Status != "completed" {
		t.Fatalf("migration %+v", ms[0])
	}
	checkInvariants(t, e, []string{"p1"})
	// A migration the driver fails leaves the server where it was.
	e.driverOf(v.HostID).SetFail(func(op fakevm.Op, _ string) error {
		if op == fakevm.OpMigrate {
			return errdefs.Invalid("cpu", "incompatible")
		}
		return nil
	})
	if err := e.svc.LiveMigrateServer(e.admin, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	w := e.settle(ctx, srv.ID)
	if w.Status() != "ACTIVE" || w.HostID != v.HostID || w.Ports[0].Host != v.HostID {
		t.Fatalf("after a failed live migration: %s on %s, port on %s", w.Status(), w.HostID, w.Ports[0].Host)
	}
	if ms := listMigs(t, e, srv.ID); ms[0].Status != "error" {
		t.Fatalf("failed migration %+v", ms[0])
	}
	checkInvariants(t, e, []string{"p1"})
}

func TestEvacuateFromDownHost(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	vol := e.volumes.AddVolume("p1", 1)
	srv := e.settle(ctx, e.create(ctx, "e1", func(o *compute.CreateServerOpts) {
		o.Networks = []compute.NetworkRequest{{UUID: netID}}
		o.BlockDevices = []compute.BlockDevice{{BootIndex: -1, UUID: vol, SourceType: "volume", DestinationType: "volume"}}
	}).ID)
	if err := e.svc.EvacuateServer(e.admin, srv.ID, ""); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("evacuate while the host is up: %v", err)
	}
	if _, err := e.svc.SetHostForcedDown(e.admin, srv.HostID, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.EvacuateServer(e.admin, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.HostID == srv.HostID || v.Ports[0].ID != srv.Ports[0].ID || v.Ports[0].Host != v.HostID {
		t.Fatalf("after evacuate: %s on %s ports %+v fault %+v", v.Status(), v.HostID, v.Ports, v.Fault)
	}
	if v.BlockDevices[0].AttachmentID != srv.BlockDevices[0].AttachmentID || e.volumes.Status(vol) != "in-use" {
		t.Fatalf("volume after evacuate: %+v %s", v.BlockDevices[0], e.volumes.Status(vol))
	}
	if ms := listMigs(t, e, srv.ID); ms[0].Type != compute.MigrationEvacuate || ms[0].Status != "done" {
		t.Fatalf("migration %+v", ms[0])
	}
	// The dead host's domain is still there (it could not be asked); when
	// the host comes back its sweep removes it.
	old := e.driverOf(srv.HostID)
	if !slices.Contains(old.Domains(), srv.ID) {
		t.Fatal("the down host's domain vanished")
	}
	if _, err := e.svc.SetHostForcedDown(e.admin, srv.HostID, false); err != nil {
		t.Fatal(err)
	}
	if removed, err := e.svc.Sweep(context.Background(), srv.HostID); err != nil || !slices.Equal(removed, []string{srv.ID}) {
		t.Fatalf("sweep of the returned host: %v %v", removed, err)
	}
	checkInvariants(t, e, []string{"p1"})
}

func TestRebuildRechecksImageFilters(t *testing.T) {
	// OSSA-2017-005: a rebuild with a new image must go through the
	// scheduler's image filters again on the server's host.
	e := newEnv(t, envOpts{hosts: 1})
	ctx := user("p1")
	const qemuOnly = "22222222-2222-4333-8444-555555555555"
	const other = "33333333-2222-4333-8444-555555555555"
	e.images.Add(compute.ImageInfo{ID: qemuOnly, Name: "qemu-only", DiskFormat: "raw", Properties: map[string]string{"hypervisor_type": "qemu"}}, []byte("q"), "")
	e.images.Add(compute.ImageInfo{ID: other, Name: "other", DiskFormat: "raw"}, []byte("other-bytes"), "")
	srv := e.settle(ctx, e.create(ctx, "rb", func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)

	name := "renamed"
	if _, err := e.svc.RebuildServer(ctx, srv.ID, compute.RebuildOpts{ImageRef: other, Name: &name, Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.ImageID != other || v.Name != name || v.Metadata["k"] != "v" || v.Ports[0].ID != srv.Ports[0].ID || v.HostID != srv.HostID {
		t.Fatalf("after rebuild: %s image %s name %s ports %+v fault %+v", v.Status(), v.ImageID, v.Name, v.Ports, v.Fault)
	}
	if out, _ := e.svc.ConsoleOutput(ctx, srv.ID, 0); !strings.Contains(out, "booting renamed") {
		t.Fatalf("console after rebuild: %q", out)
	}
	checkInvariants(t, e, []string{"p1"})

	if _, err := e.svc.RebuildServer(ctx, srv.ID, compute.RebuildOpts{ImageRef: qemuOnly}); err != nil {
		t.Fatal(err)
	}
	v = e.settle(ctx, srv.ID)
	if v.Status() != "ERROR" || v.Fault == nil || !strings.Contains(v.Fault.Message, "No valid host") ||
		!strings.Contains(v.Fault.Message, "ImagePropertiesFilter") || v.ImageID != other {
		t.Fatalf("rebuild with an image the host fails: %s image %s fault %+v", v.Status(), v.ImageID, v.Fault)
	}
	acts, _ := e.svc.ListInstanceActions(ctx, srv.ID)
	if acts[0].Action != "rebuild" || acts[0].Message != "Error" {
		t.Fatalf("action %+v", acts[0])
	}
	// The domain was not touched by the refused rebuild.
	if !slices.Equal(hostsOf(e, srv.ID), []string{srv.HostID}) {
		t.Fatalf("domains %v", hostsOf(e, srv.ID))
	}
	if _, err := e.svc.RebuildServer(ctx, srv.ID, compute.RebuildOpts{ImageRef: "44444444-2222-4333-8444-555555555555"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("rebuild with a missing image: %v", err)
	}
	// An ERROR server can be rebuilt with an image that fits.
	if _, err := e.svc.RebuildServer(ctx, srv.ID, compute.RebuildOpts{ImageRef: imageID}); err != nil {
		t.Fatal(err)
	}
	if v = e.settle(ctx, srv.ID); v.Status() != "ACTIVE" || v.ImageID != imageID {
		t.Fatalf("rebuild out of ERROR: %s %s", v.Status(), v.ImageID)
	}
	checkInvariants(t, e, []string{"p1"})
}

func TestShelveOffloadUnshelve(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "sh", func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)
	if err := e.svc.ShelveServer(ctx, srv.ID, false); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "SHELVED" || v.HostID != srv.HostID {
		t.Fatalf("shelved: %s on %s", v.Status(), v.HostID)
	}
	if err := e.svc.ShelveOffloadServer(ctx, srv.ID); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("offload by a member: %v", err)
	}
	if err := e.svc.ShelveOffloadServer(e.admin, srv.ID); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "SHELVED_OFFLOADED" || v.HostID != "" || v.Move.ShelvedImageID == "" || len(hostsOf(e, srv.ID)) != 0 {
		t.Fatalf("offloaded: %s on %q snapshot %q domains %v", v.Status(), v.HostID, v.Move.ShelvedImageID, hostsOf(e, srv.ID))
	}
	hosts, _ := e.svc.ListHosts(e.admin)
	for _, h := range hosts {
		if h.Usage.Instances != 0 {
			t.Fatalf("host %s still holds %+v after offload", h.ID, h.Usage)
		}
	}
	if img, err := e.images.GetImage(ctx, "p1", v.Move.ShelvedImageID); err != nil || img.Size != int64(len("image-bytes")) {
		t.Fatalf("shelve snapshot %+v %v", img, err)
	}
	if err := e.svc.UnshelveServer(ctx, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	v = e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.HostID == "" || v.Ports[0].ID != srv.Ports[0].ID || v.ImageID != imageID {
		t.Fatalf("unshelved: %s on %q ports %+v fault %+v", v.Status(), v.HostID, v.Ports, v.Fault)
	}
	// The janitor deletes the shelve snapshot once the server runs.
	deadline := time.Now().Add(5 * time.Second)
	for len(e.images.IDs()) != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if ids := e.images.IDs(); len(ids) != 1 {
		t.Fatalf("images after unshelve: %v", ids)
	}
	checkInvariants(t, e, []string{"p1"})
	// shelve with offload in one go, then delete: nothing stays behind.
	if err := e.svc.ShelveServer(ctx, srv.ID, true); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "SHELVED_OFFLOADED" {
		t.Fatalf("shelve+offload: %s", v.Status())
	}
	if err := e.svc.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, srv.ID)
	if ids := e.images.IDs(); len(ids) != 1 {
		t.Fatalf("images after deleting a shelved server: %v", ids)
	}
	checkInvariants(t, e, []string{"p1"})
}

func TestRescueAndCreateImage(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 1})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "rs", nil).ID)
	if err := e.svc.RescueServer(ctx, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "RESCUE" {
		t.Fatalf("rescue: %s %+v", v.Status(), v.Fault)
	}
	if out, _ := e.svc.ConsoleOutput(ctx, srv.ID, 0); !strings.Contains(out, "rescue image="+imageID) {
		t.Fatalf("console %q", out)
	}
	if err := e.svc.UnrescueServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "ACTIVE" {
		t.Fatalf("unrescue: %s", v.Status())
	}
	id, err := e.svc.CreateServerImage(ctx, srv.ID, "snap", map[string]string{"purpose": "backup"})
	if err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "ACTIVE" || v.Move.SnapshotImageID != "" {
		t.Fatalf("after snapshot: %s %+v", v.Status(), v.Move)
	}
	img, err := e.images.GetImage(ctx, "p1", id)
	if err != nil || img.Size != int64(len("image-bytes")) || img.Properties["purpose"] != "backup" || img.Properties["instance_uuid"] != srv.ID {
		t.Fatalf("snapshot image %+v %v", img, err)
	}
	// The snapshot boots.
	booted := e.settle(ctx, e.create(ctx, "from-snap", func(o *compute.CreateServerOpts) { o.ImageRef = id }).ID)
	if booted.Status() != "ACTIVE" {
		t.Fatalf("server from the snapshot: %s %+v", booted.Status(), booted.Fault)
	}
	// A failing snapshot leaves no image behind.
	e.drivers[0].SetFail(func(op fakevm.Op, _ string) error {
		if op == fakevm.OpSnapshot {
			return errdefs.Invalid("disk", "unreadable")
		}
		return nil
	})
	if _, err := e.svc.CreateServerImage(ctx, srv.ID, "snap2", nil); err != nil {
		t.Fatal(err)
	}
	e.settle(ctx, srv.ID)
	if ids := e.images.IDs(); len(ids) != 2 {
		t.Fatalf("images after a failed snapshot: %v", ids)
	}
}

func TestCreateImageOfVolumeBackedServer(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 1})
	ctx := user("p1")
	vol := e.volumes.AddVolume("p1", 3)
	srv := e.settle(ctx, e.create(ctx, "bfv", func(o *compute.CreateServerOpts) {
		o.ImageRef = ""
		o.BlockDevices = []compute.BlockDevice{{BootIndex: 0, UUID: vol, SourceType: "volume", DestinationType: "volume", VolumeSizeGB: 3}}
	}).ID)
	id, err := e.svc.CreateServerImage(ctx, srv.ID, "vsnap", nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.images.GetImage(ctx, "p1", id)
	if err != nil || !strings.Contains(img.Properties["block_device_mapping"], `"source_type": "snapshot"`) || img.Properties["bdm_v2"] != "True" {
		t.Fatalf("volume-backed snapshot image %+v %v", img, err)
	}
}

func TestInterfaceAttachDetach(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 1})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "if", nil).ID)
	given, err := e.ports.AddPort(context.Background(), "p1", netID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.AttachInterface(ctx, srv.ID, compute.AttachInterfaceOpts{PortID: given.ID})
	if err != nil || p.ID != given.ID || p.Host != srv.HostID {
		t.Fatalf("attach port: %+v %v", p, err)
	}
	made, err := e.svc.AttachInterface(ctx, srv.ID, compute.AttachInterfaceOpts{NetworkID: netID})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := e.svc.GetServer(ctx, srv.ID)
	if len(v.Ports) != 2 {
		t.Fatalf("ports %+v", v.Ports)
	}
	if _, err := e.svc.AttachInterface(ctx, srv.ID, compute.AttachInterfaceOpts{PortID: given.ID}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("attach twice: %v", err)
	}
	if err := e.svc.DetachInterface(ctx, srv.ID, made.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DetachInterface(ctx, srv.ID, given.ID); err != nil {
		t.Fatal(err)
	}
	if total, owned := e.ports.Count(); total != 1 || owned != 0 {
		t.Fatalf("ports after detach: %d (%d owned): the given one stays, freed", total, owned)
	}
	if err := e.svc.DetachInterface(ctx, srv.ID, given.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("detach twice: %v", err)
	}
	acts, _ := e.svc.ListInstanceActions(ctx, srv.ID)
	if acts[0].Action != "detach_interface" || acts[0].Events[0].Event != "compute_detach_interface" {
		t.Fatalf("actions %+v", acts[0])
	}
}

func TestDeleteDuringVerifyResizeLeaksNothing(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	big := e.bigFlavor("m1.big", 2, 1024, 2)
	srv := e.settle(ctx, e.create(ctx, "d1", func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)
	if err := e.svc.MigrateServer(e.admin, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "VERIFY_RESIZE" || len(hostsOf(e, srv.ID)) != 2 {
		t.Fatalf("migrated: %s, domains %v", v.Status(), hostsOf(e, srv.ID))
	}
	if err := e.svc.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, srv.ID)
	// A resize deleted before it finished gives back its quota too.
	s2 := e.settle(ctx, e.create(ctx, "d2", nil).ID)
	e.driverOf(s2.HostID).SetFail(func(op fakevm.Op, _ string) error {
		if op == fakevm.OpResize {
			return errdefs.ErrUnavailable // retried until the delete supersedes it
		}
		return nil
	})
	for _, d := range e.drivers {
		d.SetFail(func(op fakevm.Op, _ string) error {
			if op == fakevm.OpResize {
				return errdefs.ErrUnavailable
			}
			return nil
		})
	}
	if err := e.svc.ResizeServer(ctx, s2.ID, big.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := e.svc.DeleteServer(ctx, s2.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, s2.ID)
	checkInvariants(t, e, []string{"p1"})
}

func TestMovesResumeAfterRestart(t *testing.T) {
	slow := map[fakevm.Op]time.Duration{fakevm.OpMigrate: 300 * time.Millisecond, fakevm.OpResize: 300 * time.Millisecond,
		fakevm.OpSnapshot: 300 * time.Millisecond, fakevm.OpSpawn: 300 * time.Millisecond}
	e := newEnv(t, envOpts{fake: &fakevm.Options{PerOp: slow}})
	ctx := user("p1")
	big := e.bigFlavor("m1.big", 2, 1024, 2)
	var ids []string
	for _, n := range []string{"resize", "migrate", "live", "rebuild", "shelve", "snapshot"} {
		ids = append(ids, e.create(ctx, n, func(o *compute.CreateServerOpts) { o.Networks = []compute.NetworkRequest{{UUID: netID}} }).ID)
	}
	for _, id := range ids {
		e.settle(ctx, id)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.svc.ResizeServer(ctx, ids[0], big.ID))
	must(e.svc.MigrateServer(e.admin, ids[1], ""))
	must(e.svc.LiveMigrateServer(e.admin, ids[2], ""))
	_, err := e.svc.RebuildServer(ctx, ids[3], compute.RebuildOpts{ImageRef: imageID})
	must(err)
	must(e.svc.ShelveServer(ctx, ids[4], true))
	snap, err := e.svc.CreateServerImage(ctx, ids[5], "snap", nil)
	must(err)
	time.Sleep(150 * time.Millisecond)
	must(e.svc.Close())
	busy := 0
	for _, id := range ids {
		if v, _ := e.svc.GetServer(ctx, id); v.TaskState != compute.TaskNone {
			busy++
		}
	}
	if busy < 4 {
		t.Fatalf("only %d servers were mid-action at the stop: the test proves little", busy)
	}
	e.start(envOpts{})
	want := []string{"VERIFY_RESIZE", "VERIFY_RESIZE", "ACTIVE", "ACTIVE", "SHELVED_OFFLOADED", "ACTIVE"}
	for i, id := range ids {
		if v := e.settle(ctx, id); v.Status() != want[i] {
			t.Errorf("server %d after restart: %s, want %s (fault %+v)", i, v.Status(), want[i], v.Fault)
		}
	}
	if _, err := e.images.GetImage(ctx, "p1", snap); err != nil {
		t.Errorf("snapshot after restart: %v", err)
	}
	must(e.svc.ConfirmResize(ctx, ids[0]))
	must(e.svc.RevertResize(ctx, ids[1]))
	must(e.svc.UnshelveServer(ctx, ids[4], ""))
	for _, id := range ids {
		if v := e.settle(ctx, id); v.Status() != "ACTIVE" {
			t.Errorf("server %s: %s", v.Name, v.Status())
		}
	}
	checkInvariants(t, e, []string{"p1"})
}

// A disabled compute service takes no moves: the scheduler skips it for
// a migration, and a migration named to it is refused by the filters.
func TestMigrateSkipsDisabledHost(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "d1", nil).ID)
	var others []string
	for _, h := range []string{"host1", "host2", "host3"} {
		if h != srv.HostID {
			others = append(others, h)
		}
	}
	if _, err := e.svc.SetHostEnabled(e.admin, others[0], false, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.MigrateServer(e.admin, srv.ID, ""); err != nil {
		t.Fatal(err)
	}
	if v := e.settle(ctx, srv.ID); v.Status() != "VERIFY_RESIZE" || v.HostID != others[1] {
		t.Fatalf("migration with %s disabled: %s on %s", others[0], v.Status(), v.HostID)
	}
	if err := e.svc.RevertResize(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.settle(ctx, srv.ID)
	if err := e.svc.MigrateServer(e.admin, srv.ID, others[0]); err != nil {
		t.Fatal(err)
	}
	v := e.settle(ctx, srv.ID)
	if v.Status() != "ACTIVE" || v.HostID != srv.HostID || v.Fault == nil || !strings.Contains(v.Fault.Message, "ComputeFilter (disabled)") {
		t.Fatalf("migration to a disabled host: %s on %s fault %+v", v.Status(), v.HostID, v.Fault)
	}
	checkInvariants(t, e, []string{"p1"})
}
