package compute_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/errdefs"
)

// checkInvariants verifies that every host's usage is the sum of the
// flavors of the servers placed on it and within capacity, that each
// project's quota usage counts exactly its live servers, that the only
// ports and domains are those of placed servers, and returns the servers.
func checkInvariants(t *testing.T, e *env, projects []string) []*compute.Server {
	t.Helper()
	all, err := e.svc.ListServers(e.admin, compute.ListServersOpts{AllProjects: true})
	if err != nil {
		t.Fatal(err)
	}
	perHost := map[string][3]int{}
	perProject := map[string][3]int{}
	var placed []string
	wantPorts := 0
	for _, v := range all {
		if v.TaskState != compute.TaskNone {
			t.Fatalf("server %s still in task %s", v.ID, v.TaskState)
		}
		if v.VMState == compute.VMBuilding {
			t.Fatalf("server %s ended %s", v.ID, v.Status())
		}
		p := perProject[v.ProjectID]
		perProject[v.ProjectID] = [3]int{p[0] + 1, p[1] + v.Flavor.VCPUs, p[2] + v.Flavor.RAMMB}
		if v.VMState == compute.VMError {
			if v.HostID != "" || len(v.Ports) != 0 || v.Fault == nil {
				t.Fatalf("ERROR server %s holds host %q ports %d fault %v", v.ID, v.HostID, len(v.Ports), v.Fault)
			}
			continue
		}
		h := perHost[v.HostID]
		perHost[v.HostID] = [3]int{h[0] + v.Flavor.VCPUs, h[1] + v.Flavor.RAMMB, h[2] + v.Flavor.DiskGB}
		placed = append(placed, v.ID)
		wantPorts += len(v.Ports)
	}
	hosts, err := e.svc.ListHosts(e.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		want := perHost[h.ID]
		if h.Usage.VCPUs != want[0] || h.Usage.RAMMB != want[1] || h.Usage.DiskGB != want[2] {
			t.Errorf("host %s usage %+v, servers add up to %v", h.ID, h.Usage, want)
		}
		if float64(h.Usage.VCPUs) > float64(h.VCPUs)*h.CPURatio || float64(h.Usage.RAMMB) > float64(h.RAMMB)*h.RAMRatio {
			t.Errorf("host %s overcommitted: %+v of %d vcpus %d MB", h.ID, h.Usage, h.VCPUs, h.RAMMB)
		}
	}
	for _, p := range projects {
		q, err := e.svc.GetQuota(e.admin, p)
		if err != nil {
			t.Fatal(err)
		}
		want := perProject[p]
		if q.Usage.Instances != want[0] || q.Usage.Cores != want[1] || q.Usage.RAMMB != want[2] {
			t.Errorf("project %s quota usage %+v, live servers add up to %v", p, q.Usage, want)
		}
	}
	if total, owned := e.ports.Count(); total != wantPorts || owned != wantPorts {
		t.Errorf("%d ports (%d owned), placed servers hold %d", total, owned, wantPorts)
	}
	slices.Sort(placed)
	if doms := allDomains(e); !slices.Equal(doms, placed) {
		t.Errorf("%d domains, %d placed servers", len(doms), len(placed))
	}
	return all
}

func TestConcurrentCreatesLimitedCapacityWithFailures(t *testing.T) {
	var injected sync.Map
	e := newEnv(t, envOpts{hosts: 4, vcpus: 8, ramMB: 8 * 512, diskGB: 100,
		fake: &fakevm.Options{PerOp: map[fakevm.Op]time.Duration{fakevm.OpSpawn: time.Millisecond}},
		cfg:  compute.Config{Workers: 32, MaxAttempts: 3}})
	// Every 5th spawn fails; the server is rescheduled.
	var n sync.Mutex
	count := 0
	for _, d := range e.drivers {
		d.SetFail(func(op fakevm.Op, id string) error {
			if op != fakevm.OpSpawn {
				return nil
			}
			n.Lock()
			defer n.Unlock()
			count++
			if count%5 == 0 {
				injected.Store(id, true)
				return fmt.Errorf("injected: %w", errdefs.ErrUnavailable)
			}
			return nil
		})
	}
	projects := []string{"c1", "c2", "c3", "c4"}
	unlimited := -1
	for _, p := range projects {
		if _, err := e.svc.UpdateQuota(e.admin, p, compute.UpdateQuotaOpts{Instances: &unlimited, Cores: &unlimited, RAMMB: &unlimited}); err != nil {
			t.Fatal(err)
		}
	}
	const total = 200
	var wg sync.WaitGroup
	ids := make([]string, total)
	errs := make([]error, total)
	for i := range total {
		wg.Go(func() {
			ctx := user(projects[i%len(projects)])
			srv, err := e.svc.CreateServer(ctx, compute.CreateServerOpts{Name: fmt.Sprintf("c%d", i), ImageRef: imageID,
				FlavorRef: e.flavor.ID, Networks: []compute.NetworkRequest{{UUID: netID}}})
			if err == nil {
				ids[i] = srv.ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	for _, id := range ids {
		e.settle(e.admin, id)
	}
	all := checkInvariants(t, e, projects)
	active := 0
	for _, v := range all {
		if v.VMState == compute.VMActive {
			active++
		}
	}
	// 4 hosts x 8 vCPUs of 1-vCPU servers: exactly 32 fit.
	if active != 32 {
		t.Errorf("%d servers ACTIVE, want 32 (the capacity)", active)
	}
	injectedN := 0
	injected.Range(func(any, any) bool { injectedN++; return true })
	if injectedN == 0 {
		t.Fatal("no failure was injected")
	}
	t.Logf("%d active, %d error, %d injected spawn failures", active, len(all)-active, injectedN)

	// Delete everything: nothing is left anywhere.
	for _, id := range ids {
		if err := e.svc.DeleteServer(e.admin, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		e.gone(e.admin, id)
	}
	checkInvariants(t, e, projects)
}

func TestRestartResumesTransitionalServers(t *testing.T) {
	e := newEnv(t, envOpts{fake: &fakevm.Options{PerOp: map[fakevm.Op]time.Duration{fakevm.OpSpawn: 300 * time.Millisecond,
		fakevm.OpPowerOff: 300 * time.Millisecond}}})
	ctx := user("p1")
	stopping := e.settle(ctx, e.create(ctx, "stopping", nil).ID)
	deleting := e.settle(ctx, e.create(ctx, "deleting", nil).ID)
	var ids []string
	for i := range 6 {
		ids = append(ids, e.create(ctx, fmt.Sprintf("r%d", i), func(o *compute.CreateServerOpts) {
			o.Networks = []compute.NetworkRequest{{UUID: netID}}
		}).ID)
	}
	if err := e.svc.ServerAction(ctx, stopping.ID, compute.ActionStop); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteServer(ctx, deleting.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	// Stop the service while spawns and the stop are under way.
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	busy := 0
	for _, id := range append(ids, stopping.ID) {
		if v, err := e.svc.GetServer(ctx, id); err == nil && v.TaskState != compute.TaskNone {
			busy++
		}
	}
	if busy == 0 {
		t.Fatal("no server was transitional when the service stopped: the test proves nothing")
	}
	// A new service on the same store and hosts resumes every one.
	e.start(envOpts{})
	for _, id := range ids {
		if v := e.settle(ctx, id); v.Status() != "ACTIVE" {
			t.Errorf("server %s after restart: %s %+v", id, v.Status(), v.Fault)
		}
	}
	if v := e.settle(ctx, stopping.ID); v.Status() != "SHUTOFF" {
		t.Errorf("stopping server after restart: %s", v.Status())
	}
	e.gone(ctx, deleting.ID)
	checkInvariants(t, e, []string{"p1"})
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, envOpts{})
	p1, p2 := user("p1"), user("p2")
	srv := e.settle(p1, e.create(p1, "mine", nil).ID)
	notFound := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s of p1's server by p2: %v, want not found", what, err)
		}
	}
	_, err := e.svc.GetServer(p2, srv.ID)
	notFound("get", err)
	notFound("reboot", e.svc.ServerAction(p2, srv.ID, compute.ActionReboot))
	notFound("stop", e.svc.ServerAction(p2, srv.ID, compute.ActionStop))
	notFound("delete", e.svc.DeleteServer(p2, srv.ID))
	notFound("lock", e.svc.LockServer(p2, srv.ID, ""))
	_, err = e.svc.ConsoleOutput(p2, srv.ID, 10)
	notFound("console", err)
	_, err = e.svc.SetServerMetadata(p2, srv.ID, map[string]string{"a": "b"}, false)
	notFound("metadata", err)
	_, err = e.svc.UpdateServer(p2, srv.ID, compute.UpdateServerOpts{Name: new("x")})
	notFound("update", err)
	_, err = e.svc.ListInstanceActions(p2, srv.ID)
	notFound("actions", err)
	if l, _ := e.svc.ListServers(p2, compute.ListServersOpts{}); len(l) != 0 {
		t.Errorf("p2 lists %d servers", len(l))
	}
	// A scheduler hint naming another project's server is refused.
	_, err = e.svc.CreateServer(p2, compute.CreateServerOpts{Name: "x", ImageRef: imageID, FlavorRef: e.flavor.ID,
		Hints: compute.SchedulerHints{SameHost: []string{srv.ID}}})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("same_host of another project's server: %v", err)
	}
	// The server is untouched.
	if v := e.settle(p1, srv.ID); v.Status() != "ACTIVE" || v.Name != "mine" {
		t.Fatalf("p1's server changed: %s %s", v.Status(), v.Name)
	}
}

func TestMemberRefusedAdminOnly(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := user("p1")
	forbidden := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errdefs.ErrForbidden) {
			t.Errorf("%s by a member: %v, want forbidden", what, err)
		}
	}
	_, err := e.svc.ListServers(m, compute.ListServersOpts{AllProjects: true})
	forbidden("all_tenants list", err)
	_, err = e.svc.ListServers(m, compute.ListServersOpts{Host: "host1"})
	forbidden("host filter", err)
	_, err = e.svc.CreateFlavor(m, compute.CreateFlavorOpts{Name: "x", VCPUs: 1, RAMMB: 1})
	forbidden("flavor create", err)
	n := 100
	_, err = e.svc.UpdateQuota(m, "p1", compute.UpdateQuotaOpts{Instances: &n})
	forbidden("quota update", err)
	_, err = e.svc.ListHosts(m)
	forbidden("host list", err)
	_, err = e.svc.SetHostEnabled(m, "host1", false, "")
	forbidden("host disable", err)
	_, err = e.svc.CreateKeypair(m, compute.CreateKeypairOpts{Name: "k", UserID: "someone-else"})
	forbidden("keypair for another user", err)
	_, err = e.svc.GetQuota(m, "p2")
	forbidden("another project's quota", err)
	// An admin's lock on a member's server cannot be undone by the member.
	srv := e.settle(m, e.create(m, "s", nil).ID)
	if err := e.svc.LockServer(e.admin, srv.ID, "admin says"); err != nil {
		t.Fatal(err)
	}
	forbidden("unlock of an admin lock", e.svc.UnlockServer(m, srv.ID))
	if err := e.svc.ServerAction(m, srv.ID, compute.ActionStop); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("stop of a locked server: %v", err)
	}
	if err := e.svc.UnlockServer(e.admin, srv.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSweepRemovesOnlyOrphanStratusDomains(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 1})
	ctx := user("p1")
	keep := e.settle(ctx, e.create(ctx, "keep", nil).ID)
	d := e.drivers[0]
	d.AddForeignDomain("someone-elses-vm")
	orphan := "0e0e0e0e-0000-4000-8000-000000000001"
	if err := d.Spawn(context.Background(), &compute.DomainSpec{ServerID: orphan, Name: "orphan", VCPUs: 1, MemoryMB: 64}); err != nil {
		t.Fatal(err)
	}
	removed, err := e.svc.Sweep(context.Background(), "host1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{orphan}) {
		t.Fatalf("swept %v, want only the orphan", removed)
	}
	if doms := d.Domains(); !slices.Equal(doms, []string{keep.ID}) {
		t.Fatalf("domains after sweep %v", doms)
	}
	// The foreign domain is still there: a second sweep touches nothing.
	if removed, _ := e.svc.Sweep(context.Background(), "host1"); len(removed) != 0 {
		t.Fatalf("second sweep removed %v", removed)
	}
}

func TestPowerSyncFollowsGuestShutdown(t *testing.T) {
	e := newEnv(t, envOpts{hosts: 1})
	ctx := user("p1")
	srv := e.settle(ctx, e.create(ctx, "s", nil).ID)
	e.drivers[0].Crash(srv.ID)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := e.svc.WaitServer(wctx, srv.ID, func(s *compute.Server) bool { return s.Status() == "SHUTOFF" })
	if err != nil {
		t.Fatalf("guest shutdown not seen: %v %s", err, v.Status())
	}
	if v.PowerState != compute.PowerShutdown {
		t.Fatalf("power %v", v.PowerState)
	}
}
