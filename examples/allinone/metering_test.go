package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestMeteringSimulatedDay runs the all-in-one's services in process, on
// the fake drivers and one clock, through a day polled every 5 minutes:
//
//	02:00 server A (1 vCPU) created   06:00 server B (2 vCPUs) created
//	03:00 volume V of 1 GB            09:00 V extended to 3 GB
//	04:00 object of 1,000 B           08:00 object of 2,000 B  16:00 object of 4,000 B
//	12:00 A stopped                   18:00 B deleted
//
// and checks measures and aggregates against values worked out by hand.
func TestMeteringSimulatedDay(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clk := &testClock{t: day}
	st, err := store.Open(ctx, memstore.New(), hostTables(), &store.Options{CompactInterval: -1, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cloud, err := ensureCloud(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: t.TempDir(), Listen: "127.0.0.1", LogLevel: "warn", Hypervisor: hypervisorFake, FakeHosts: 1,
		Network: "fake", Metering: MeteringOptions{Interval: -1, MetricsListen: "", Clock: clk.Now}}
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

	sys := identity.WithCredentials(ctx, identity.SystemAdmin())
	ps, err := b.identity.ListProjects(sys, identity.ListProjectsOpts{Name: "admin"})
	if err != nil || len(ps) != 1 {
		t.Fatalf("admin project: %v %v", ps, err)
	}
	project := ps[0].ID
	admin := identity.WithCredentials(ctx, &identity.Credentials{UserID: "tester", ProjectID: project, IsAdminProject: true,
		Roles: []string{identity.RoleAdmin, identity.RoleMember, identity.RoleReader}})

	m1 := must(b.compute.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m1", VCPUs: 1, RAMMB: 256, DiskGB: 1}))
	m2 := must(b.compute.CreateFlavor(admin, compute.CreateFlavorOpts{Name: "m2", VCPUs: 2, RAMMB: 512, DiskGB: 1}))
	img := must(b.images.CreateImage(admin, image.CreateImageOpts{Name: "tiny", DiskFormat: "raw", ContainerFormat: "bare"}))
	if _, err := b.images.UploadData(admin, img.ID, bytes.NewReader(make([]byte, 4096)), image.UploadOpts{Size: -1}); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	boot := func(name, flavor string) string {
		srv := must(b.compute.CreateServer(admin, compute.CreateServerOpts{Name: name, ImageRef: img.ID, FlavorRef: flavor, NetworksMode: "none"}))
		wait(name+" active", func() bool {
			s, err := b.compute.GetServer(admin, srv.ID)
			return err == nil && s.VMState == compute.VMActive
		})
		return srv.ID
	}
	var a, srvB, vol string
	objects := 0
	putObject := func(size int) {
		acct := "AUTH_" + project
		if _, err := b.objects.PutContainer(admin, acct, "c", objectstore.ContainerOpts{}); err != nil {
			t.Fatal(err)
		}
		objects++
		if _, err := b.objects.PutObject(admin, objectstore.ObjectKey{Account: acct, Container: "c", Name: string(rune('a' + objects))},
			bytes.NewReader(make([]byte, size)), objectstore.PutObjectOpts{ContentLength: int64(size)}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range 24 * 12 {
		now := day.Add(time.Duration(k) * 5 * time.Minute)
		clk.Set(now)
		switch now.Sub(day) {
		case 2 * time.Hour:
			a = boot("a", m1.ID)
		case 3 * time.Hour:
			vol = must(b.volumes.CreateVolume(admin, blockstore.CreateVolumeOpts{Name: "v", SizeGiB: 1})).ID
			wait("volume", func() bool {
				v, err := b.volumes.GetVolume(admin, vol)
				return err == nil && v.Status == blockstore.StatusAvailable
			})
		case 4 * time.Hour:
			putObject(1000)
		case 6 * time.Hour:
			srvB = boot("b", m2.ID)
		case 8 * time.Hour:
			putObject(2000)
		case 9 * time.Hour:
			if err := b.volumes.ExtendVolume(admin, vol, 3); err != nil {
				t.Fatal(err)
			}
			wait("extend", func() bool {
				v, err := b.volumes.GetVolume(admin, vol)
				return err == nil && v.Status == blockstore.StatusAvailable && v.SizeGiB == 3
			})
		case 12 * time.Hour:
			if err := b.compute.ServerAction(admin, a, compute.ActionStop); err != nil {
				t.Fatal(err)
			}
			wait("stop", func() bool {
				s, err := b.compute.GetServer(admin, a)
				return err == nil && s.VMState == compute.VMStopped
			})
		case 16 * time.Hour:
			putObject(4000)
		case 18 * time.Hour:
			if err := b.compute.DeleteServer(admin, srvB); err != nil {
				t.Fatal(err)
			}
			wait("delete", func() bool {
				s, err := b.compute.GetServer(admin, srvB)
				return errdefs.IsNotFound(err) || err == nil && s.VMState == compute.VMDeleted
			})
		}
		if err := b.metering.Poll(ctx); err != nil {
			t.Fatalf("poll at %s: %v", now.Format("15:04"), err)
		}
	}
	if err := b.metering.DrainEvents(ctx); err != nil {
		t.Fatal(err)
	}
	m := b.metering

	hourly := func(from, to int, v float64) []float64 {
		var out []float64
		for h := from; h <= to; h++ {
			out = append(out, v)
		}
		return out
	}
	cat := func(parts ...[]float64) []float64 {
		var out []float64
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	measures := func(res, meter string, q metering.MeasuresQuery) []float64 {
		t.Helper()
		met, err := m.GetResourceMetric(admin, res, meter)
		if err != nil {
			t.Fatalf("%s %s: %v", res, meter, err)
		}
		ps, err := m.Measures(admin, met.ID, q)
		if err != nil {
			t.Fatalf("%s %s: %v", res, meter, err)
		}
		return pointValues(ps)
	}
	hour := metering.MeasuresQuery{Granularity: time.Hour}
	checks := []struct {
		name      string
		got, want []float64
	}{
		{"A's instance samples per hour", measures(a, "instance", metering.MeasuresQuery{Granularity: time.Hour, Aggregation: "count"}), hourly(2, 23, 12)},
		{"B's vcpus per hour", measures(srvB, "vcpus", hour), hourly(6, 17, 2)},
		{"V's size per hour", measures(vol, "volume.size", hour), cat(hourly(3, 8, 1), hourly(9, 23, 3))},
		{"V's size per day (sum, count, min, max)", cat(
			measures(vol, "volume.size", metering.MeasuresQuery{Granularity: 24 * time.Hour, Aggregation: "sum"}),
			measures(vol, "volume.size", metering.MeasuresQuery{Granularity: 24 * time.Hour, Aggregation: "count"}),
			measures(vol, "volume.size", metering.MeasuresQuery{Granularity: 24 * time.Hour, Aggregation: "min"}),
			measures(vol, "volume.size", metering.MeasuresQuery{Granularity: 24 * time.Hour, Aggregation: "max"})),
			[]float64{6*12*1 + 15*12*3, 21 * 12, 1, 3}},
		{"object bytes, last per hour", measures(project, "storage.objects.size", metering.MeasuresQuery{Granularity: time.Hour, Aggregation: "last"}),
			cat(hourly(4, 7, 1000), hourly(8, 15, 3000), hourly(16, 23, 7000))},
		{"objects, growth per hour", measures(project, "storage.objects", metering.MeasuresQuery{Granularity: time.Hour, Aggregation: "rate:max"}),
			cat(hourly(5, 7, 0), []float64{1}, hourly(9, 15, 0), []float64{1}, hourly(17, 23, 0))},
		{"image size", measures(img.ID, "image.size", metering.MeasuresQuery{Granularity: 24 * time.Hour, Aggregation: "max"}), []float64{4096}},
	}
	for _, c := range checks {
		if !sameValues(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// vCPUs summed over the project's servers, hour by hour.
	ops := []any{"aggregate", "sum", []any{"metric", "vcpus", "mean"}}
	gs, err := m.Aggregates(admin, metering.AggregatesQuery{Operations: ops, SearchAll: true, ResourceType: metering.TypeInstance,
		GroupBy: []string{"project_id"}, Granularity: time.Hour})
	if err != nil || len(gs) != 1 || gs[0].Group["project_id"] != project {
		t.Fatalf("aggregates: %+v %v", gs, err)
	}
	if got, want := pointValues(gs[0].Series[0].Points), cat(hourly(2, 5, 1), hourly(6, 17, 3), hourly(18, 23, 1)); !sameValues(got, want) {
		t.Errorf("vcpus summed per hour = %v, want %v", got, want)
	}
	// Instance samples over the day: A 22 hours, B 12, 12 samples an hour.
	gs, _ = m.Aggregates(admin, metering.AggregatesQuery{Operations: []any{"aggregate", "sum", []any{"metric", "instance", "count"}},
		SearchAll: true, ResourceType: metering.TypeInstance, Granularity: 24 * time.Hour})
	if got := pointValues(gs[0].Series[0].Points); !sameValues(got, []float64{(22 + 12) * 12}) {
		t.Errorf("instance samples of the day = %v, want %d", got, (22+12)*12)
	}

	// Lives from the events, to the second; A's state from the polls.
	rb, err := m.GetResource(admin, metering.TypeInstance, srvB)
	if err != nil || !rb.StartedAt.Equal(day.Add(6*time.Hour)) || rb.EndedAt == nil || !rb.EndedAt.Equal(day.Add(18*time.Hour)) {
		t.Errorf("B's life: %+v %v", rb, err)
	}
	if ra, _ := m.GetResource(admin, metering.TypeInstance, a); ra == nil || ra.Attributes["status"] != "stopped" || ra.EndedAt != nil {
		t.Errorf("A: %+v", ra)
	}
	evs, _ := m.ListEvents(admin, metering.ListEventsOpts{Type: "compute.server."})
	var types []string
	stopped := false
	for _, e := range evs {
		types = append(types, e.Type)
		if e.Type == "compute.server.action" && e.ResourceID == a && e.Traits["action"] == "stop" && e.Generated.Equal(day.Add(12*time.Hour)) {
			stopped = true
		}
	}
	if len(evs) < 4 || types[0] != "compute.server.create" || types[len(types)-1] != "compute.server.delete" || !stopped {
		t.Errorf("server events: %v (A's stop at 12:00 seen: %v)", types, stopped)
	}

	// The same through the Gnocchi API, with a token of the admin user.
	var meter component
	for _, c := range b.comps {
		if c.name == "metering" {
			meter = c
		}
	}
	srv := httptest.NewServer(meter.handler)
	defer srv.Close()
	tok, _, err := b.identity.Authenticate(ctx, identity.AuthRequest{Methods: []string{"password"},
		Password: &identity.PasswordAuth{UserName: "admin", DomainID: identity.DefaultDomainID, Password: cloud.AdminPassword},
		Scope:    identity.AuthScope{ProjectID: project}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/resource/volume/"+vol+"/metric/volume.size/measures?granularity=86400&aggregation=mean", nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var triples [][3]any
	if err := json.NewDecoder(resp.Body).Decode(&triples); err != nil || len(triples) != 1 {
		t.Fatalf("API measures: %v %v", triples, err)
	}
	if triples[0][0] != "2026-11-02T00:00:00+00:00" || triples[0][1] != 86400.0 || triples[0][2] != float64(6*12*1+15*12*3)/(21*12) {
		t.Errorf("API daily mean = %v", triples[0])
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func pointValues(ps []tsdb.Point) []float64 {
	out := []float64{}
	for _, p := range ps {
		out = append(out, p.Value)
	}
	return out
}

func sameValues(a, b []float64) bool {
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
