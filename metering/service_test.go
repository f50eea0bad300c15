package metering

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
)

// pollHour polls 13 times, every 5 minutes from t0: vm-a (p1, 2 vCPUs)
// burns 60 s of CPU per poll and restarts before the 8th poll (its counter
// starts again at 10 s); vm-b (p2, 4 vCPUs) burns 30 s per poll; vol-1
// (p1) grows from 1 to 2 GB at the 7th; p1's account holds k objects of
// 1,000 bytes each.
func pollHour(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	var cpuA float64
	for k := range 13 {
		e.clock.Set(t0.Add(time.Duration(k) * 5 * time.Minute))
		switch {
		case k == 7:
			cpuA = 10e9
		case k > 0:
			cpuA += 60e9
		}
		size := 1
		if k >= 6 {
			size = 2
		}
		e.sources.mu.Lock()
		e.sources.instances = []InstanceUsage{
			{ID: "vm-a", ProjectID: e.p1, Name: "a", FlavorName: "m1.small", VCPUs: 2, MemoryMB: 512,
				Counters: &InstanceCounters{CPUTime: time.Duration(cpuA), Disks: []DiskCounters{{Device: "vda", ReadBytes: int64(k) * 4096}},
					NICs: []NICCounters{{Device: "tap1", RxBytes: int64(k) * 100, TxPackets: int64(k)}}}},
			{ID: "vm-b", ProjectID: e.p2, Name: "b", FlavorName: "m1.large", VCPUs: 4, MemoryMB: 2048,
				Counters: &InstanceCounters{CPUTime: time.Duration(k) * 30 * time.Second}},
		}
		e.sources.volumes = []VolumeUsage{{ID: "vol-1", ProjectID: e.p1, SizeGB: size}}
		e.sources.accounts = []AccountUsage{{ProjectID: e.p1, Objects: int64(k), Bytes: int64(k) * 1000}}
		e.sources.fips = []FloatingIPUsage{{ID: "fip-1", ProjectID: e.p2, Address: "203.0.113.5"}}
		e.sources.mu.Unlock()
		if err := e.svc.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func values(ps []tsdb.Point) []float64 {
	out := []float64{}
	for _, p := range ps {
		out = append(out, p.Value)
	}
	return out
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPollMeasuresAndRates(t *testing.T) {
	e := newEnv(t)
	pollHour(t, e)
	metric := func(ctx context.Context, res, name string) string {
		m, err := e.svc.GetResourceMetric(ctx, res, name)
		if err != nil {
			t.Fatalf("%s/%s: %v", res, name, err)
		}
		return m.ID
	}
	cases := []struct {
		res, meter string
		q          MeasuresQuery
		want       []float64
	}{
		{"vm-a", "cpu", MeasuresQuery{Aggregation: "rate:last", Granularity: 5 * time.Minute},
			[]float64{60e9, 60e9, 60e9, 60e9, 60e9, 60e9, 10e9, 60e9, 60e9, 60e9, 60e9, 60e9}},
		{"vm-b", "cpu", MeasuresQuery{Aggregation: "rate:last", Granularity: time.Hour}, []float64{30e9}},
		{"vol-1", "volume.size", MeasuresQuery{Granularity: time.Hour}, []float64{1.5, 2}},
		{"vol-1", "volume.size", MeasuresQuery{Aggregation: "max", Granularity: time.Hour, Start: t0, Stop: t0.Add(time.Hour)}, []float64{2}},
		{"vm-a", "vcpus", MeasuresQuery{Aggregation: "count", Granularity: time.Hour}, []float64{12, 1}},
		{e.p1, "storage.objects.size", MeasuresQuery{Aggregation: "last", Granularity: time.Hour}, []float64{11000, 12000}},
		{"vm-a-vda", "disk.device.read.bytes", MeasuresQuery{Aggregation: "last", Granularity: time.Hour}, []float64{11 * 4096, 12 * 4096}},
		{"vm-a-tap1", "network.outgoing.packets", MeasuresQuery{Aggregation: "rate:last", Granularity: time.Hour}, []float64{1}},
		{"fip-1", "ip.floating", MeasuresQuery{Aggregation: "sum", Granularity: time.Hour}, []float64{12, 1}},
	}
	for _, c := range cases {
		ps, err := e.svc.Measures(e.admin, metric(e.admin, c.res, c.meter), c.q)
		if err != nil {
			t.Fatalf("%s %s: %v", c.res, c.meter, err)
		}
		if got := values(ps); !equal(got, c.want) {
			t.Errorf("%s %s %+v = %v, want %v", c.res, c.meter, c.q, got, c.want)
		}
	}
	// Every granularity, coarsest first.
	ps, _ := e.svc.Measures(e.admin, metric(e.admin, "vm-a", "vcpus"), MeasuresQuery{})
	if len(ps) != 1+2+13 || ps[0].Granularity != 24*time.Hour || ps[len(ps)-1].Granularity != 5*time.Minute {
		t.Errorf("all granularities: %d points, %v first", len(ps), ps[0].Granularity)
	}
	if _, err := e.svc.Measures(e.admin, metric(e.admin, "vm-a", "vcpus"), MeasuresQuery{Aggregation: "median"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown aggregation: %v", err)
	}
	if _, err := e.svc.Measures(e.admin, metric(e.admin, "vm-a", "vcpus"), MeasuresQuery{Granularity: time.Minute}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("missing granularity: %v", err)
	}
	r, _ := e.svc.GetResource(e.admin, TypeInstance, "vm-a")
	if r.Attributes["flavor_name"] != "m1.small" || !r.StartedAt.Equal(t0) || r.ProjectID != e.p1 {
		t.Errorf("vm-a resource = %+v", r)
	}
}

func TestAggregatesGroupBy(t *testing.T) {
	e := newEnv(t)
	pollHour(t, e)
	ops, _ := parseSexpr("(aggregate sum (metric vcpus mean))")
	q := AggregatesQuery{Operations: ops, SearchAll: true, ResourceType: TypeInstance, GroupBy: []string{"project_id"}, Granularity: time.Hour}
	gs, err := e.svc.Aggregates(e.admin, q)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{e.p1: 2, e.p2: 4}
	if len(gs) != 2 {
		t.Fatalf("%d groups, want 2", len(gs))
	}
	for _, g := range gs {
		if got := values(g.Series[0].Points); !equal(got, []float64{want[g.Group["project_id"]], want[g.Group["project_id"]]}) {
			t.Errorf("group %v = %v", g.Group, got)
		}
	}
	// A tenant's groups are its own.
	gs, err = e.svc.Aggregates(e.u1, q)
	if err != nil || len(gs) != 1 || gs[0].Group["project_id"] != e.p1 {
		t.Fatalf("u1's groups: %+v %v", gs, err)
	}
	// No group-by: the sum over every instance the caller sees.
	q.GroupBy = nil
	gs, _ = e.svc.Aggregates(e.admin, q)
	if got := values(gs[0].Series[0].Points); !equal(got, []float64{6, 6}) {
		t.Errorf("admin sum = %v, want 6 6", got)
	}
	gs, _ = e.svc.Aggregates(e.u2, q)
	if got := values(gs[0].Series[0].Points); !equal(got, []float64{4, 4}) {
		t.Errorf("u2 sum = %v, want 4 4", got)
	}
	// Metric references by id, and a search filter.
	f, _ := ParseFilter(`display_name="a"`)
	ops, _ = parseSexpr("(metric cpu rate:last)")
	gs, err = e.svc.Aggregates(e.admin, AggregatesQuery{Operations: ops, Search: f, ResourceType: TypeInstance, Granularity: time.Hour})
	if err != nil || len(gs[0].Series) != 1 || gs[0].Series[0].Keys[0] != "vm-a" {
		t.Fatalf("search by name: %+v %v", gs, err)
	}
	if _, err := e.svc.Aggregates(e.u2, AggregatesQuery{Operations: []any{"metric", must(e.svc.GetResourceMetric(e.admin, "vm-a", "cpu")).ID, "mean"}}); !errdefs.IsNotFound(err) {
		t.Errorf("u2 aggregating p1's metric by id: %v", err)
	}
}

func TestIsolation(t *testing.T) {
	e := newEnv(t)
	pollHour(t, e)
	cpuA := must(e.svc.GetResourceMetric(e.admin, "vm-a", "cpu")).ID
	rs, err := e.svc.ListResources(e.u1, ListResourcesOpts{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ProjectID != e.p1 {
			t.Errorf("u1 sees %s of project %s", r.ID, r.ProjectID)
		}
	}
	if len(rs) != 5 { // vm-a, its disk and NIC, vol-1, the account
		t.Errorf("u1 sees %d resources, want 5", len(rs))
	}
	if all, _ := e.svc.ListResources(e.admin, ListResourcesOpts{}); len(all) != 7 {
		t.Errorf("admin sees %d resources, want 7", len(all))
	}
	checks := map[string]error{}
	_, checks["GetResource"] = e.svc.GetResource(e.u2, "", "vm-a")
	_, checks["GetMetric"] = e.svc.GetMetric(e.u2, cpuA)
	_, checks["GetResourceMetric"] = e.svc.GetResourceMetric(e.u2, "vm-a", "cpu")
	_, checks["Measures"] = e.svc.Measures(e.u2, cpuA, MeasuresQuery{})
	for name, err := range checks {
		if !errdefs.IsNotFound(err) {
			t.Errorf("%s across projects: %v, want not found", name, err)
		}
	}
	if ms, _ := e.svc.ListMetrics(e.u2); len(ms) != 4+1 { // vm-b's instance, vcpus, memory, cpu; fip-1
		t.Errorf("u2 sees %d metrics, want 5", len(ms))
	}
	if err := e.svc.AddMeasures(e.u1, cpuA, []Measure{{t0, 1}}); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("a tenant adding measures: %v", err)
	}
	if err := e.svc.AddMeasures(e.admin, cpuA, []Measure{{t0.Add(2 * time.Hour), 1e12}}); err != nil {
		t.Errorf("admin adding measures: %v", err)
	}
	if _, err := e.svc.ListResources(context.Background(), ListResourcesOpts{}); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Errorf("no credentials: %v", err)
	}
	if _, err := e.svc.CreateArchivePolicy(e.u1, ArchivePolicy{Name: "x", Definition: []tsdb.Archive{{Granularity: time.Minute, Timespan: time.Hour}}}); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("a tenant creating a policy: %v", err)
	}
}

func TestEventsStoredAndQueryable(t *testing.T) {
	e := newEnv(t)
	// Without the background consumer, whose acknowledgements could share
	// a commit (and its time) with the test's events, DrainEvents does the
	// work.
	_ = e.svc.Close()
	ctx := context.Background()
	emit := func(typ, id, project string, payload any) {
		t.Helper()
		if err := e.st.Update(ctx, func(tx *store.Txn) error { return tx.Emit(typ, id, project, payload) }); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Set(t0.Add(10 * time.Minute))
	emit("compute.server.create", "vm-c", e.p2, map[string]any{"name": "c", "flavor": map[string]any{"name": "m1.tiny", "vcpus": 1}})
	emit("volume.create.start", "vol-9", e.p1, nil)
	e.clock.Set(t0.Add(70 * time.Minute))
	emit("compute.server.delete", "vm-c", e.p2, nil)
	if err := e.svc.DrainEvents(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := e.svc.ListEvents(e.u2, ListEventsOpts{Type: "compute.server."})
	if err != nil || len(evs) != 2 {
		t.Fatalf("u2's server events: %d, %v", len(evs), err)
	}
	if evs[0].Traits["flavor.name"] != "m1.tiny" || evs[0].Traits["name"] != "c" || !evs[0].Generated.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("create event = %+v", evs[0])
	}
	if evs, _ := e.svc.ListEvents(e.u1, ListEventsOpts{Type: "volume."}); len(evs) != 1 || evs[0].Type != "volume.create.start" {
		t.Errorf("u1's events: %+v", evs)
	}
	if evs, _ := e.svc.ListEvents(e.u2, ListEventsOpts{Since: t0.Add(time.Hour)}); len(evs) != 1 {
		t.Errorf("events since 1:00: %d", len(evs))
	}
	r, err := e.svc.GetResource(e.u2, TypeInstance, "vm-c")
	if err != nil || !r.StartedAt.Equal(t0.Add(10*time.Minute)) || r.EndedAt == nil || !r.EndedAt.Equal(t0.Add(70*time.Minute)) {
		t.Fatalf("vm-c's life from events: %+v %v", r, err)
	}
	// Delivered again (a crash before the ack): nothing changes.
	all, _ := e.svc.ListEvents(e.admin, ListEventsOpts{})
	if err := e.st.Update(ctx, func(tx *store.Txn) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DrainEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.svc.ListEvents(e.admin, ListEventsOpts{}); len(again) != len(all) {
		t.Errorf("events after a second drain: %d, want %d", len(again), len(all))
	}
	// Past the retention (30 days), old events make room for new ones.
	e.clock.Set(t0.Add(31 * 24 * time.Hour))
	emit("volume.delete.end", "vol-9", e.p1, nil)
	if err := e.svc.DrainEvents(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := e.svc.ListEvents(e.admin, ListEventsOpts{}); len(left) != 1 || left[0].Type != "volume.delete.end" {
		t.Errorf("after the retention: %d events, want only the new one", len(left))
	}
}

// TestRestart closes the DB and the service and opens them again on the
// same files and store: measures, metrics and rates carry on.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	pollHour(t, e)
	id := must(e.svc.GetResourceMetric(e.admin, "vm-b", "cpu")).ID
	q := MeasuresQuery{Aggregation: "rate:last", Granularity: 5 * time.Minute}
	before, _ := e.svc.Measures(e.admin, id, q)
	_ = e.svc.Close()
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := tsdb.Open(e.dbDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := New(Config{Store: e.st, DB: db, Clock: e.clock.Now, PollInterval: -1, DefaultPolicy: "stratus"})
	if err != nil {
		t.Fatal(err)
	}
	svc.Use(Sources{Instances: e.sources})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	after, _ := svc.Measures(e.admin, id, q)
	if !equal(values(before), values(after)) || len(before) != 12 {
		t.Fatalf("rates changed across a restart: %v / %v", values(before), values(after))
	}
	e.clock.Set(t0.Add(65 * time.Minute))
	e.sources.instances[1].Counters.CPUTime = 13 * 30 * time.Second
	if err := svc.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ = svc.Measures(e.admin, id, q)
	if got := values(after); len(got) != 13 || got[12] != 30e9 {
		t.Fatalf("rate after the restart: %v", got)
	}
}
