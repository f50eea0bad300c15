package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/alarming"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
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
