package compute_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/errdefs"
)

func TestBootFromVolumeAndGivenPort(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	vol := e.volumes.AddVolume("p1", 10)
	port, err := e.ports.AddPort(context.Background(), "p1", netID)
	if err != nil {
		t.Fatal(err)
	}
	srv := e.settle(ctx, e.create(ctx, "bfv", func(o *compute.CreateServerOpts) {
		o.ImageRef = ""
		o.BlockDevices = []compute.BlockDevice{{BootIndex: 0, UUID: vol, SourceType: "volume", DestinationType: "volume"}}
		o.Networks = []compute.NetworkRequest{{Port: port.ID}, {UUID: netID}}
	}).ID)
	if srv.Status() != "ACTIVE" || !srv.BootFromVolume || srv.ImageID != "" {
		t.Fatalf("bfv server %s bfv=%v image=%q fault=%v", srv.Status(), srv.BootFromVolume, srv.ImageID, srv.Fault)
	}
	bd := srv.BlockDevices[0]
	if bd.AttachmentID == "" || bd.Connection == nil || bd.Connection.DriverVolumeType != "file" || bd.Connection.File == nil {
		t.Fatalf("block device %+v", bd)
	}
	if e.volumes.Status(vol) != "in-use" || e.volumes.Attachments() != 1 {
		t.Fatalf("volume %s, %d attachments", e.volumes.Status(vol), e.volumes.Attachments())
	}
	if len(srv.Ports) != 2 || srv.Ports[0].ID != port.ID {
		t.Fatalf("ports %+v", srv.Ports)
	}
	// Boot from volume takes no local disk on the host.
	hosts, _ := e.svc.ListHosts(e.admin)
	for _, h := range hosts {
		if h.Usage.DiskGB != 0 {
			t.Fatalf("host %s uses %d GB of disk for a volume-backed server", h.ID, h.Usage.DiskGB)
		}
	}
	if err := e.svc.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, srv.ID)
	if e.volumes.Status(vol) != "available" || e.volumes.Attachments() != 0 {
		t.Fatalf("after delete: volume %s, %d attachments", e.volumes.Status(vol), e.volumes.Attachments())
	}
	// The port the user gave survives, freed; the one compute made is gone.
	if total, owned := e.ports.Count(); total != 1 || owned != 0 {
		t.Fatalf("ports after delete: %d (%d owned)", total, owned)
	}
}

func TestSpawnFailingEverywhereEndsInError(t *testing.T) {
	e := newEnv(t, envOpts{cfg: compute.Config{MaxAttempts: 3}})
	for _, d := range e.drivers {
		d.SetFail(func(op fakevm.Op, _ string) error {
			if op == fakevm.OpSpawn {
				return fmt.Errorf("disk full: %w", errdefs.ErrUnavailable)
			}
			return nil
		})
	}
	ctx := user("p1")
	vol := e.volumes.AddVolume("p1", 1)
	srv := e.settle(ctx, e.create(ctx, "doomed", func(o *compute.CreateServerOpts) {
		o.Networks = []compute.NetworkRequest{{UUID: netID}}
		o.BlockDevices = []compute.BlockDevice{{BootIndex: -1, UUID: vol, SourceType: "volume", DestinationType: "volume"}}
	}).ID)
	if srv.Status() != "ERROR" || srv.Fault == nil || !strings.Contains(srv.Fault.Message, "No valid host was found") ||
		!strings.Contains(srv.Fault.Message, "disk full") || srv.Attempts != 2 || len(srv.TriedHosts) != 2 {
		t.Fatalf("server %s attempts %d tried %v fault %+v", srv.Status(), srv.Attempts, srv.TriedHosts, srv.Fault)
	}
	spawns := 0
	for _, d := range e.drivers {
		spawns += d.Calls(fakevm.OpSpawn)
	}
	if spawns != 3 {
		t.Fatalf("%d spawns, want one per attempt (3)", spawns)
	}
	if total, _ := e.ports.Count(); total != 0 || e.volumes.Attachments() != 0 || len(allDomains(e)) != 0 {
		t.Fatalf("leaked: ports %d attachments %d domains %v", total, e.volumes.Attachments(), allDomains(e))
	}
	checkInvariants(t, e, []string{"p1"})
	acts, _ := e.svc.ListInstanceActions(ctx, srv.ID)
	var errs int
	for _, ev := range acts[0].Events {
		if ev.Result == "Error" {
			errs++
		}
	}
	if errs != 3 {
		t.Fatalf("%d error events, want 3: %+v", errs, acts[0].Events)
	}
	// An ERROR server still counts against quota until it is deleted.
	if q, _ := e.svc.GetQuota(ctx, "p1"); q.Usage.Instances != 1 {
		t.Fatalf("quota usage %+v", q.Usage)
	}
	if err := e.svc.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, srv.ID)
	if q, _ := e.svc.GetQuota(ctx, "p1"); q.Usage.Instances != 0 {
		t.Fatalf("quota usage after delete %+v", q.Usage)
	}
}

func TestQuotasAndCounts(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	three, two, one := 3, 2, 1
	if _, err := e.svc.UpdateQuota(e.admin, "p1", compute.UpdateQuotaOpts{Instances: &three, KeyPairs: &one, ServerGroups: &one, ServerGroupMembers: &two}); err != nil {
		t.Fatal(err)
	}
	// max_count beyond the quota creates as many as fit (at least min).
	first, err := e.svc.CreateServer(ctx, compute.CreateServerOpts{Name: "many", ImageRef: imageID, FlavorRef: e.flavor.ID, MinCount: 2, MaxCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := e.svc.ListServers(ctx, compute.ListServersOpts{Name: "^many-"})
	if len(list) != 3 || first.Name != "many-1" {
		t.Fatalf("%d servers from max_count 5 with 3 allowed (first %s)", len(list), first.Name)
	}
	_, err = e.svc.CreateServer(ctx, compute.CreateServerOpts{Name: "x", ImageRef: imageID, FlavorRef: e.flavor.ID})
	if !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "instances") {
		t.Fatalf("over instances: %v", err)
	}
	if _, err := e.svc.CreateKeypair(ctx, compute.CreateKeypairOpts{Name: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateKeypair(ctx, compute.CreateKeypairOpts{Name: "k2"}); !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "key_pairs") {
		t.Fatalf("over key_pairs: %v", err)
	}
	g, err := e.svc.CreateServerGroup(ctx, compute.CreateServerGroupOpts{Name: "g", Policy: "soft-anti-affinity"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateServerGroup(ctx, compute.CreateServerGroupOpts{Name: "g2", Policy: "affinity"}); !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "server_groups") {
		t.Fatalf("over server_groups: %v", err)
	}
	for _, s := range list {
		if err := e.svc.DeleteServer(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		e.gone(ctx, s.ID)
	}
	_, err = e.svc.CreateServer(ctx, compute.CreateServerOpts{Name: "grp", ImageRef: imageID, FlavorRef: e.flavor.ID, MaxCount: 3,
		MinCount: 3, Hints: compute.SchedulerHints{Group: g.ID}})
	if !errors.Is(err, errdefs.ErrQuotaExceeded) || !strings.Contains(err.Error(), "server_group_members") {
		t.Fatalf("over server_group_members: %v", err)
	}
	// The failed create released what it reserved.
	if q, _ := e.svc.GetQuota(ctx, "p1"); q.Usage.Instances != 0 || q.Usage.ServerGroups != 1 {
		t.Fatalf("usage after a refused create %+v", q.Usage)
	}
}

func TestAggregateExtraSpecsAndAZ(t *testing.T) {
	e := newEnv(t, envOpts{})
	agg, err := e.svc.CreateAggregate(e.admin, compute.CreateAggregateOpts{Name: "ssd", AZ: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	yes := "true"
	if _, err := e.svc.UpdateAggregate(e.admin, agg.ID, "host2", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateAggregate(e.admin, agg.ID, "", "", map[string]*string{"ssd": &yes}); err != nil {
		t.Fatal(err)
	}
	f, err := e.svc.CreateFlavor(e.admin, compute.CreateFlavorOpts{Name: "ssd", VCPUs: 1, RAMMB: 256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetFlavorExtraSpecs(e.admin, f.ID, map[string]string{"aggregate_instance_extra_specs:ssd": "true"}); err != nil {
		t.Fatal(err)
	}
	ctx := user("p1")
	for i := range 3 {
		v := e.settle(ctx, e.create(ctx, fmt.Sprint("s", i), func(o *compute.CreateServerOpts) { o.FlavorRef = f.ID }).ID)
		if v.HostID != "host2" || v.AZ != "fast" {
			t.Fatalf("ssd server on %s in %s", v.HostID, v.AZ)
		}
	}
	v := e.settle(ctx, e.create(ctx, "az", func(o *compute.CreateServerOpts) { o.AZ = "nova" }).ID)
	if v.HostID == "host2" || v.AZ != "nova" {
		t.Fatalf("AZ nova server on %s in %s", v.HostID, v.AZ)
	}
	// A disabled host takes nothing.
	for _, h := range []string{"host1", "host3"} {
		if _, err := e.svc.SetHostEnabled(e.admin, h, false, "maintenance"); err != nil {
			t.Fatal(err)
		}
	}
	v = e.settle(ctx, e.create(ctx, "nowhere", func(o *compute.CreateServerOpts) { o.AZ = "nova" }).ID)
	if v.Status() != "ERROR" || !strings.Contains(v.Fault.Message, "ComputeFilter (disabled) rejected 2 of 3 hosts") {
		t.Fatalf("with nova's hosts disabled: %s %+v", v.Status(), v.Fault)
	}
}
