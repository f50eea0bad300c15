package compute_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

func TestServerLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := user("p1")
	srv := e.create(ctx, "web", func(o *compute.CreateServerOpts) {
		o.Networks = []compute.NetworkRequest{{UUID: netID}}
		o.Metadata = map[string]string{"role": "web"}
		o.UserData = "aGVsbG8="
	})
	if srv.Status() != "BUILD" || srv.AdminPass == "" {
		t.Fatalf("created %s %q", srv.Status(), srv.AdminPass)
	}
	srv = e.settle(ctx, srv.ID)
	if srv.Status() != "ACTIVE" || srv.PowerState != compute.PowerRunning || srv.HostID == "" {
		t.Fatalf("after boot: %s power %v host %q fault %+v", srv.Status(), srv.PowerState, srv.HostID, srv.Fault)
	}
	if len(srv.Ports) != 1 || srv.Ports[0].Host != srv.HostID || len(srv.Ports[0].FixedIPs) != 1 {
		t.Fatalf("ports %+v", srv.Ports)
	}
	for _, step := range []struct {
		a      compute.Action
		status string
		power  compute.PowerState
	}{
		{compute.ActionReboot, "ACTIVE", compute.PowerRunning},
		{compute.ActionStop, "SHUTOFF", compute.PowerShutdown},
		{compute.ActionStart, "ACTIVE", compute.PowerRunning},
		{compute.ActionPause, "PAUSED", compute.PowerPaused},
		{compute.ActionUnpause, "ACTIVE", compute.PowerRunning},
		{compute.ActionSuspend, "SUSPENDED", compute.PowerSuspended},
		{compute.ActionResume, "ACTIVE", compute.PowerRunning},
		{compute.ActionRebootHard, "ACTIVE", compute.PowerRunning},
	} {
		if err := e.svc.ServerAction(ctx, srv.ID, step.a); err != nil {
			t.Fatalf("%s: %v", step.a, err)
		}
		got := e.settle(ctx, srv.ID)
		if got.Status() != step.status || got.PowerState != step.power {
			t.Fatalf("after %s: %s power %v", step.a, got.Status(), got.PowerState)
		}
	}
	// A wrong state is a conflict naming the state.
	err := e.svc.ServerAction(ctx, srv.ID, compute.ActionStart)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "vm_state active") {
		t.Fatalf("start of an active server: %v", err)
	}
	out, err := e.svc.ConsoleOutput(ctx, srv.ID, 0)
	if err != nil || !strings.Contains(out, "stratus-guest: up") {
		t.Fatalf("console %q %v", out, err)
	}
	acts, err := e.svc.ListInstanceActions(ctx, srv.ID)
	if err != nil || len(acts) != 9 || acts[len(acts)-1].Action != "create" {
		t.Fatalf("actions %d %v", len(acts), err)
	}
	create := acts[len(acts)-1]
	var events []string
	for _, ev := range create.Events {
		events = append(events, ev.Event+":"+ev.Result)
	}
	if got := strings.Join(events, ","); got != "compute_schedule:Success,compute_allocate_networks:Success,compute_block_device_mapping:Success,compute_spawn:Success" {
		t.Fatalf("create events %s", got)
	}

	// Lock: the member cannot act, the admin can.
	if err := e.svc.LockServer(ctx, srv.ID, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteServer(ctx, srv.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("delete of a locked server: %v", err)
	}
	if err := e.svc.UnlockServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}

	if err := e.svc.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	e.gone(ctx, srv.ID)
	if total, _ := e.ports.Count(); total != 0 {
		t.Fatalf("%d ports left after delete", total)
	}
	if doms := allDomains(e); len(doms) != 0 {
		t.Fatalf("domains left: %v", doms)
	}
	q, err := e.svc.GetQuota(ctx, "p1")
	if err != nil || q.Usage.Instances != 0 || q.Usage.Cores != 0 || q.Usage.RAMMB != 0 {
		t.Fatalf("quota after delete %+v %v", q, err)
	}
	// changes-since shows the deleted server.
	since := srv.Created.Add(-1)
	list, err := e.svc.ListServers(ctx, compute.ListServersOpts{ChangesSince: &since})
	if err != nil || len(list) != 1 || list[0].Status() != "DELETED" {
		t.Fatalf("changes-since: %v %v", list, err)
	}
	if list, _ := e.svc.ListServers(ctx, compute.ListServersOpts{}); len(list) != 0 {
		t.Fatalf("plain list shows deleted servers: %d", len(list))
	}
}

func allDomains(e *env) []string {
	var out []string
	for _, d := range e.drivers {
		out = append(out, d.Domains()...)
	}
	slices.Sort(out)
	return out
}
