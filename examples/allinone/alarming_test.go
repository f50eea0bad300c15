package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/alarming"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/orchestration"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// TestAlarmScalingSignal is the autoscaling loop up to the scaling
// policy's signal URL: a tenant's alarm on the mean cpu rate of a group's
// servers, with trust+http actions to a scale-out and a scale-in URL (as
// orchestration's scaling policies give), goes to alarm under injected
// load and POSTs to scale-out with a token obtained through the trust —
// after the tenant's own token was revoked —; the receiver validates the
// token with identity (the tenant's user, project and trust) and adds a
// server to the group, whose cpu then counts; when the load drops the
// alarm goes back to ok and scale-in removes one.
func TestAlarmScalingSignal(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Hour)
	clk := &testClock{t: t0}
	st, err := store.Open(ctx, memstore.New(), hostTables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cloud, err := ensureCloud(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1", LogLevel: "warn", Hypervisor: hypervisorFake, FakeHosts: 1,
		Network: "fake", Metering: MeteringOptions{Interval: -1, MetricsListen: "", Clock: clk.Now},
		Alarming: AlarmingOptions{Interval: -1}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := buildCloud(cfg, st, cloud, logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.comps {
		if c.start != nil {
			if err := c.start(ctx); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
	defer closeAll(b.comps, logger)

	// A tenant: project p1, user u1 (member).
	sys := identity.WithCredentials(ctx, identity.SystemAdmin())
	ids := b.identity
	p1 := must(ids.CreateProject(sys, identity.CreateProjectOpts{Name: "p1", DomainID: identity.DefaultDomainID}))
	u1 := must(ids.CreateUser(sys, identity.CreateUserOpts{Name: "u1", Password: "pw-u1-long", DomainID: identity.DefaultDomainID}))
	role := must(ids.RoleByName(sys, identity.RoleMember))
	if err := ids.CreateGrant(sys, identity.Grant{UserID: u1.ID, ProjectID: p1.ID, RoleID: role.ID}); err != nil {
		t.Fatal(err)
	}
	tok, info, err := ids.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: "u1", DomainID: identity.DefaultDomainID, Password: "pw-u1-long"},
		Scope:    identity.AuthScope{ProjectID: p1.ID}})
	if err != nil {
		t.Fatal(err)
	}
	tenant := identity.WithCredentials(ctx, info.Credentials())

	// The scaling policies' signal URLs: the group's size changes with
	// each signal a valid trust token makes.
	var mu sync.Mutex
	group := []string{"vm-1"}
	var callers []*identity.Credentials
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tk, err := ids.ValidateToken(r.Context(), r.Header.Get("X-Auth-Token"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		callers = append(callers, tk.Credentials())
		switch r.URL.Path {
		case "/signal/scale-out":
			group = append(group, "vm-"+string(rune('1'+len(group))))
		case "/signal/scale-in":
			if len(group) > 1 {
				group = group[:len(group)-1]
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()

	al, err := b.alarms.CreateAlarm(tenant, alarming.Alarm{Name: "asg-cpu", Type: alarming.TypeAggregationByResourcesThresho,
		Enabled: true, AlarmActions: []string{"trust+" + hook.URL + "/signal/scale-out"}, OKActions: []string{"trust+" + hook.URL + "/signal/scale-in"},
		Rule: alarming.Rule{Metric: "cpu", ResourceType: "instance", Query: `{"=": {"server_group": "asg-1"}}`,
			AggregationMethod: "rate:mean", Granularity: 300, Threshold: 0.5 * 300e9, ComparisonOperator: "gt", EvaluationPeriods: 2}})
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's token no longer works: the trust does.
	if err := ids.RevokeToken(tenant, tok); err != nil {
		t.Fatal(err)
	}

	// Each server's cumulative cpu time, sampled every 5 minutes at a load
	// (fraction of a CPU).
	cpu := map[string]float64{}
	sample := func(at time.Time, load float64) {
		mu.Lock()
		vms := append([]string(nil), group...)
		mu.Unlock()
		var ss []metering.Sample
		for _, vm := range vms {
			cpu[vm] += load * 300e9
			ss = append(ss, metering.Sample{Meter: "cpu", ResourceID: vm, ProjectID: p1.ID, Time: at, Value: cpu[vm],
				Attributes: map[string]string{"server_group": "asg-1"}})
		}
		if err := b.metering.Record(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	evaluate := func(at time.Time) *alarming.Alarm {
		t.Helper()
		clk.Set(at)
		if err := b.alarms.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
		b.alarms.Wait()
		return must(b.alarms.GetAlarm(tenant, al.ID))
	}
	size := func() int { mu.Lock(); defer mu.Unlock(); return len(group) }

	at := t0
	for i := 0; i < 3; i++ { // idle
		sample(at, 0.1)
		at = at.Add(5 * time.Minute)
	}
	if a := evaluate(at); a.State != alarming.StateOK || size() != 1 {
		t.Fatalf("idle: %s (%s), group of %d", a.State, a.StateReason, size())
	}
	for i := 0; i < 3; i++ { // load: 90% of a CPU
		sample(at, 0.9)
		at = at.Add(5 * time.Minute)
	}
	if a := evaluate(at); a.State != alarming.StateAlarm || size() != 2 {
		t.Fatalf("under load: %s (%s), group of %d", a.State, a.StateReason, size())
	}
	for i := 0; i < 3; i++ { // load drops
		sample(at, 0.05)
		at = at.Add(5 * time.Minute)
	}
	if a := evaluate(at); a.State != alarming.StateOK || size() != 1 {
		t.Fatalf("load gone: %s (%s), group of %d", a.State, a.StateReason, size())
	}
	mu.Lock()
	defer mu.Unlock()
	// ok from idle (scale-in at size 1: nothing), scale-out, scale-in.
	if len(callers) != 3 {
		t.Fatalf("%d signals", len(callers))
	}
	for _, c := range callers {
		if c.UserID != u1.ID || c.ProjectID != p1.ID || c.TrustID != al.TrustID || al.TrustID == "" {
			t.Fatalf("signal credentials: user %s project %s trust %s (alarm's %s)", c.UserID, c.ProjectID, c.TrustID, al.TrustID)
		}
	}
}

// TestAutoscalingLoop is the whole loop with orchestration's
// AutoScalingGroup: a tenant's stack has a group of servers (metadata
// metering.server_group, as Ceilometer maps it to the server_group
// attribute) and two scaling policies; an alarm on the group's mean cpu
// rate calls the scale-out policy's alarm_url under injected load, and the
// group gets a second server; when the load drops the alarm goes to ok,
// calls the scale-in alarm_url, and the group is back to one server.
func TestAutoscalingLoop(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: time.Now().UTC().Truncate(time.Hour)}
	st, err := store.Open(ctx, memstore.New(), hostTables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cloud, err := ensureCloud(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1", LogLevel: "warn", Hypervisor: hypervisorFake, FakeHosts: 1,
		Network: "fake", Metering: MeteringOptions{Interval: -1, MetricsListen: "", Clock: clk.Now},
		Alarming: AlarmingOptions{Interval: -1}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := buildCloud(cfg, st, cloud, logger)
	if err != nil {
		t.Fatal(err)
	}
	var heatAPI http.Handler
	for _, c := range b.comps {
		if c.start != nil {
			if err := c.start(ctx); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if c.name == "orchestration" {
			heatAPI = c.handler
		}
	}
	defer closeAll(b.comps, logger)
	// The orchestration API on loopback, where the alarm_urls point.
	heat := httptest.NewServer(heatAPI)
	defer heat.Close()

	sys := identity.WithCredentials(ctx, identity.SystemAdmin())
	ids := b.identity
	p1 := must(ids.CreateProject(sys, identity.CreateProjectOpts{Name: "p1", DomainID: identity.DefaultDomainID}))
	u1 := must(ids.CreateUser(sys, identity.CreateUserOpts{Name: "u1", Password: "pw-u1-long", DomainID: identity.DefaultDomainID}))
	role := must(ids.RoleByName(sys, identity.RoleMember))
	if err := ids.CreateGrant(sys, identity.Grant{UserID: u1.ID, ProjectID: p1.ID, RoleID: role.ID}); err != nil {
		t.Fatal(err)
	}
	_, info, err := ids.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: "u1", DomainID: identity.DefaultDomainID, Password: "pw-u1-long"},
		Scope:    identity.AuthScope{ProjectID: p1.ID}})
	if err != nil {
		t.Fatal(err)
	}
	tenant := identity.WithCredentials(ctx, info.Credentials())
	adminCtx := identity.WithCredentials(ctx, &identity.Credentials{UserID: "tester", ProjectID: p1.ID, IsAdminProject: true,
		Roles: []string{identity.RoleAdmin, identity.RoleMember, identity.RoleReader}})
	must(b.compute.CreateFlavor(adminCtx, compute.CreateFlavorOpts{Name: "m1", VCPUs: 1, RAMMB: 256, DiskGB: 1}))
	img := must(b.images.CreateImage(adminCtx, image.CreateImageOpts{Name: "tiny", DiskFormat: "raw", ContainerFormat: "bare", Visibility: "public"}))
	if _, err := b.images.UploadData(adminCtx, img.ID, bytes.NewReader(make([]byte, 4096)), image.UploadOpts{Size: -1}); err != nil {
		t.Fatal(err)
	}

	tmpl := `heat_template_version: 2018-08-31
resources:
  asg:
    type: OS::Heat::AutoScalingGroup
    properties:
      min_size: 1
      max_size: 3
      resource:
        type: OS::Nova::Server
        properties: {image: tiny, flavor: m1, metadata: {"metering.server_group": asg-web}}
  out:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity, scaling_adjustment: 1, cooldown: 0}
  in:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity, scaling_adjustment: -1, cooldown: 0}
outputs:
  out_url: {value: {get_attr: [out, alarm_url]}}
  in_url: {value: {get_attr: [in, alarm_url]}}
`
	stack, err := b.heat.CreateStack(tenant, orchestration.CreateStackOpts{Name: "web", Template: []byte(tmpl)})
	if err != nil {
		t.Fatal(err)
	}
	waitStack := func() *orchestration.Stack {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			s := must(b.heat.GetStack(tenant, stack.ID))
			if s.Status != orchestration.StatusInProgress {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("stack still %s", s.StackStatus())
			}
		}
	}
	if s := waitStack(); s.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("stack: %s %s", s.StackStatus(), s.StatusReason)
	}
	outs := must(b.heat.Outputs(tenant, must(b.heat.GetStack(tenant, stack.ID))))
	urls := map[string]string{}
	for _, o := range outs {
		u, _ := o.Value.(string)
		// The alarm_url's path on the loopback listener.
		urls[o.Key] = heat.URL + u[strings.Index(u, "/signal/"):]
	}
	servers := func() []string {
		t.Helper()
		var out []string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			out = out[:0]
			busy := false
			for _, s := range must(b.compute.ListServers(tenant, compute.ListServersOpts{})) {
				if s.VMState == compute.VMActive && s.Metadata["metering.server_group"] == "asg-web" {
					out = append(out, s.ID)
				} else if s.VMState == compute.VMBuilding || s.TaskState != compute.TaskNone {
					busy = true
				}
			}
			if !busy {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatal("servers still busy")
			}
		}
	}
	if n := len(servers()); n != 1 {
		t.Fatalf("group starts with %d servers", n)
	}
	al, err := b.alarms.CreateAlarm(tenant, alarming.Alarm{Name: "web-cpu", Type: alarming.TypeAggregationByResourcesThresho,
		Enabled: true, AlarmActions: []string{urls["out_url"]}, OKActions: []string{urls["in_url"]},
		Rule: alarming.Rule{Metric: "cpu", ResourceType: "instance", Query: `{"=": {"server_group": "asg-web"}}`,
			AggregationMethod: "rate:mean", Granularity: 300, Threshold: 0.7 * 300e9, ComparisonOperator: "gt", EvaluationPeriods: 2}})
	if err != nil {
		t.Fatal(err)
	}
	// Each group server's cumulative cpu time every 5 minutes at a load.
	cpu := map[string]float64{}
	at := clk.Now()
	run := func(load float64, periods int) {
		for range periods {
			// The pollster reads the servers' metering.server_group into
			// their server_group attribute; the cpu counters (the fake
			// hypervisor has none) are injected.
			clk.Set(at)
			if err := b.metering.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			var ss []metering.Sample
			for _, id := range servers() {
				cpu[id] += load * 300e9
				ss = append(ss, metering.Sample{Meter: "cpu", ResourceID: id, ProjectID: p1.ID, Time: at, Value: cpu[id]})
			}
			if err := b.metering.Record(ctx, ss); err != nil {
				t.Fatal(err)
			}
			at = at.Add(5 * time.Minute)
		}
		clk.Set(at)
		if err := b.alarms.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
		b.alarms.Wait()
	}
	state := func() string { return must(b.alarms.GetAlarm(tenant, al.ID)).State }
	// The group's nested stack changes in the background: wait for it.
	size := func(want int) int {
		n := 0
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n = len(servers()); n == want {
				break
			}
		}
		return n
	}
	run(0.95, 3)
	if s, n := state(), size(2); s != alarming.StateAlarm || n != 2 {
		t.Fatalf("under load: alarm %s, %d servers", s, n)
	}
	run(0.1, 3)
	if s, n := state(), size(1); s != alarming.StateOK || n != 1 {
		t.Fatalf("load gone: alarm %s, %d servers", s, n)
	}
}
