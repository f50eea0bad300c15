package rating

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type flavors map[string]Flavor

func (f flavors) Flavor(_ context.Context, id string) (Flavor, error) {
	if fl, ok := f[id]; ok {
		return fl, nil
	}
	return Flavor{}, fmt.Errorf("flavor %s: %w", id, errdefs.ErrNotFound)
}

func nov(day, h, m, s int) time.Time { return time.Date(2026, 11, day, h, m, s, 0, time.UTC) }

var book = PriceBook{Currency: "EUR", Entries: []Prices{
	{Effective: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), FlavorHour: map[string]Rate{"m1": "2"}, VCPUHour: "1.5",
		RAMGiBHour: "0.5", VolumeGiBMonth: "10", ObjectGiBMonth: "230", ImageGiBMonth: "50", FloatingIPHour: "0.6"},
	// Mid-month, vCPUs cost more.
	{Effective: nov(16, 0, 0, 0), FlavorHour: map[string]Rate{"m1": "2"}, VCPUHour: "2",
		RAMGiBHour: "0.5", VolumeGiBMonth: "10", ObjectGiBMonth: "230", ImageGiBMonth: "50", FloatingIPHour: "0.6"},
}}

// simulateMonth simulates November 2026 through metering: events at their times
// (servers created, stopped, started, resized, deleted; a volume created,
// extended, deleted; a floating IP) and an account's bytes, and returns
// metering and a rating service on it.
func simulateMonth(t *testing.T, noBillStopped bool) (*Service, *metering.Service) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)}
	st, err := store.Open(ctx, memstore.New(), metering.Tables(), &store.Options{CompactInterval: -1, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := tsdb.Open(filepath.Join(t.TempDir(), "tsdb"), &tsdb.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := metering.New(metering.Config{Store: st, DB: db, Clock: clk.Now, PollInterval: -1, EventRetention: 90 * 24 * time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	emit := func(at time.Time, typ, id, project string, payload any) {
		clk.Set(at)
		if err := st.Update(ctx, func(tx *store.Txn) error { return tx.Emit(typ, id, project, payload) }); err != nil {
			t.Fatal(err)
		}
		if err := m.DrainEvents(ctx); err != nil {
			t.Fatal(err)
		}
	}
	objects := func(at time.Time, gib float64) {
		clk.Set(at)
		if err := m.Record(ctx, []metering.Sample{{Meter: "storage.objects.size", ResourceID: "p1", ProjectID: "p1",
			Time: at, Value: gib * (1 << 30)}}); err != nil {
			t.Fatal(err)
		}
	}
	emit(time.Date(2026, 10, 20, 9, 0, 0, 0, time.UTC), "compute.server.create", "srv-a", "p1", map[string]any{"flavor": "f1"})
	objects(nov(1, 0, 0, 0), 1)
	emit(nov(1, 23, 58, 0), "compute.server.create", "srv-b", "p2", map[string]any{"flavor": "f1"})
	emit(nov(2, 0, 0, 0), "compute.server.active", "srv-b", "p2", map[string]any{"host": "h1"}) // billed from here
	emit(nov(3, 2, 0, 0), "compute.server.delete", "srv-b", "p2", nil)
	// srv-e never builds: free.
	emit(nov(4, 0, 0, 0), "compute.server.create", "srv-e", "p2", map[string]any{"flavor": "f1"})
	emit(nov(4, 0, 1, 0), "compute.server.error", "srv-e", "p2", map[string]any{"fault": "no host"})
	emit(nov(4, 1, 0, 0), "compute.server.delete", "srv-e", "p2", nil)
	emit(nov(3, 8, 0, 0), "volume.create.start", "vol-v", "p1", map[string]int{"size": 10})
	emit(nov(5, 0, 0, 0), "network.floatingip.create", "fip-f", "p1", nil)
	emit(nov(10, 12, 0, 0), "compute.server.action", "srv-a", "p1", map[string]string{"action": "stop"})
	emit(nov(12, 12, 0, 0), "compute.server.action", "srv-a", "p1", map[string]string{"action": "start"})
	objects(nov(15, 0, 0, 0), 3)
	clk.Set(nov(10, 0, 0, 0))
	if err := m.Record(ctx, []metering.Sample{{Meter: "image.size", ResourceID: "img-i", ProjectID: "p1", Time: nov(10, 0, 0, 0),
		Value: 2 << 30}}); err != nil {
		t.Fatal(err)
	}
	emit(nov(20, 0, 0, 0), "image.image.delete", "img-i", "p1", nil)
	emit(nov(18, 0, 0, 0), "volume.resize.start", "vol-v", "p1", map[string]int{"size": 20})
	emit(nov(20, 6, 30, 15), "compute.server.resize", "srv-a", "p1", map[string]string{"flavor": "f2"})
	emit(nov(25, 18, 0, 0), "compute.server.delete", "srv-a", "p1", nil)
	emit(nov(28, 0, 0, 0), "volume.delete.end", "vol-v", "p1", nil)
	clk.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	svc, err := New(Config{Usage: m, Prices: book, NoBillStopped: noBillStopped, Clock: clk.Now,
		Flavors: flavors{"f1": {ID: "f1", Name: "m1", VCPUs: 2, RAMMB: 2048}, "f2": {ID: "f2", Name: "m2", VCPUs: 4, RAMMB: 4096}}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, m
}

var admin = identity.WithCredentials(context.Background(), identity.SystemAdmin())

func member(project string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "u-" + project, ProjectID: project, Roles: []string{"member"}})
}

func totals(rep *Report) map[string]int64 {
	out := map[string]int64{"total": rep.Total}
	for _, p := range rep.Projects {
		out["project:"+p.ProjectID] = p.Amount
		for _, r := range p.Resources {
			out[r.ResourceID] = r.Amount
		}
	}
	return out
}

// TestMonth checks November 2026 against amounts computed by hand, in
// euro cents. vCPU-hours cost 1.5 until the 16th and 2 after.
//
// srv-a (m1: 2 vCPUs, 2 GiB; created in October, stopped the 10th at noon,
// started the 12th at noon — billed anyway —, resized to m2 (4 vCPUs,
// 4 GiB, no flavor rate) the 20th at 06:30:15, deleted the 25th at 18:00):
//
//	Nov 1 → 10 12:00 (228 h): flavor 2×228 = 456, vCPU 1.5×2×228 = 684, RAM 0.5×2×228 = 228
//	Nov 10 12:00 → 12 12:00 (48 h): 96, 144, 48
//	Nov 12 12:00 → 16 (84 h): 168, 252, 84
//	Nov 16 → 20 06:30:15 (369015 s): flavor 2×369015/3600 = 205.008 → 205,
//	  vCPU 2×2×369015/3600 = 410.017 → 410, RAM 0.5×2×369015/3600 = 102.504 → 103
//	Nov 20 06:30:15 → 25 18:00 (473385 s, m2): vCPU 2×4×473385/3600 = 1051.97 → 1052,
//	  RAM 0.5×4×473385/3600 = 262.99 → 263
//	total 4193 (3905 when stopped time is free: less 96+144+48)
//
// vol-v (10 GiB from the 3rd 08:00, 20 GiB from the 18th, deleted the 28th;
// 10 per GiB-month of 2592000 s): 10×10×1094400/2592000 = 42.2 → 42,
// 10×10×172800/2592000 = 6.67 → 7, 10×20×864000/2592000 = 66.7 → 67: 116.
//
// fip-f (from the 5th, 0.6 an hour): 0.6×264 = 158.4 → 158, 0.6×360 = 216: 374.
//
// p1's objects (1 GiB from the 1st, 3 GiB from the 15th, 230 per GiB-month):
// 230×1209600/2592000 = 107.3 → 107, 230×3×86400/2592000 = 23,
// 230×3×1296000/2592000 = 345: 475.
//
// img-i (2 GiB from the 10th, deleted the 20th; 50 per GiB-month):
// 50×2×518400/2592000 = 20, 50×2×345600/2592000 = 13.3 → 13: 33.
//
// srv-b (p2, m1, 26 hours from becoming active): 52 + 78 + 26 = 156.
// srv-e (p2) failed to build: nothing.
func TestMonth(t *testing.T) {
	svc, _ := simulateMonth(t, false)
	start, end := nov(1, 0, 0, 0), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rep, err := svc.Report(admin, ReportOpts{Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"srv-a": 4193, "vol-v": 116, "fip-f": 374, "img-i": 33, "project:p1": 4193 + 116 + 374 + 475 + 33,
		"srv-b": 156, "srv-e": 0, "project:p2": 156, "total": 4193 + 116 + 374 + 475 + 33 + 156}
	got := totals(rep)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d, want %d", k, got[k], v)
		}
	}
	// p1's account is the resource "p1" too: its amount is its objects.
	var objects int64
	for _, p := range rep.Projects {
		for _, r := range p.Resources {
			if r.ResourceType == metering.TypeAccount {
				objects = r.Amount
			}
		}
	}
	if objects != 475 || rep.Currency != "EUR" {
		t.Errorf("objects %d %s, want 475 EUR", objects, rep.Currency)
	}
	// Stopped time free.
	free, _ := simulateMonth(t, true)
	rep2, err := free.Report(admin, ReportOpts{ProjectID: "p1", Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	if g := totals(rep2); g["srv-a"] != 3905 || g["total"] != 3905+116+374+475+33 || len(rep2.Projects) != 1 {
		t.Errorf("stopped time free: %v", g)
	}
	// A period inside the month: the 20th to the 21st, the resize cuts it.
	rep3, _ := svc.Report(admin, ReportOpts{ProjectID: "p1", Start: nov(20, 0, 0, 0), End: nov(21, 0, 0, 0)})
	// m1 6:30:15 (23415 s): flavor 2×23415/3600 = 13.0 → 13, vCPU 26.0 → 26, RAM 6.5 → 7;
	// m2 17:29:45 (62985 s): vCPU 8×62985/3600 = 139.97 → 140, RAM 2×62985/3600 = 34.99 → 35.
	if g := totals(rep3); g["srv-a"] != 13+26+7+140+35 {
		t.Errorf("one day: srv-a %d, want %d", g["srv-a"], 13+26+7+140+35)
	}
}

func TestIsolationAndAPI(t *testing.T) {
	svc, _ := simulateMonth(t, false)
	start, end := nov(1, 0, 0, 0), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	rep, err := svc.Report(member("p2"), ReportOpts{Start: start, End: end})
	if err != nil || len(rep.Projects) != 1 || rep.Projects[0].ProjectID != "p2" || rep.Total != 156 {
		t.Fatalf("p2's own report: %+v %v", rep, err)
	}
	if _, err := svc.Report(member("p2"), ReportOpts{ProjectID: "p1", Start: start, End: end}); !errdefs.IsNotFound(err) {
		t.Fatalf("p2 reads p1's report: %v", err)
	}
	if err := svc.SetPrices(member("p2"), book); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("tenant sets prices: %v", err)
	}
	if _, err := svc.Report(admin, ReportOpts{Start: end, End: start}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("end before start: %v", err)
	}
	// The API, with a validator that maps tokens to credentials.
	tks := map[string]*identity.Credentials{"adm": identity.SystemAdmin(), "t2": {UserID: "u2", ProjectID: "p2", Roles: []string{"member"}}}
	h := routes(svc)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := tks[r.Header.Get("X-Auth-Token")]
		if c == nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r.WithContext(identity.WithCredentials(r.Context(), c)))
	}))
	defer srv.Close()
	get := func(tok, q string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/rating/report?"+q, nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	period := "start=2026-11-01T00:00:00Z&end=2026-12-01T00:00:00Z"
	code, body := get("adm", period+"&project_id=p1&format=csv")
	if code != http.StatusOK {
		t.Fatalf("csv: %d %s", code, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	if last[3] != "grand total" || last[10] != "5191" || last[11] != "EUR" {
		t.Fatalf("csv total row: %v", last)
	}
	code, body = get("t2", period)
	var rep2 Report
	if code != http.StatusOK || json.Unmarshal(body, &rep2) != nil || rep2.Total != 156 {
		t.Fatalf("tenant json: %d %s", code, body)
	}
	if code, _ := get("t2", period+"&project_id=p1"); code != http.StatusNotFound {
		t.Fatalf("tenant reads another project: %d", code)
	}
	if code, body := get("adm", "start=yesterday"); code != http.StatusBadRequest || !strings.Contains(string(body), "start") {
		t.Fatalf("bad start: %d %s", code, body)
	}
	if code, _ := get("nobody", period); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
}

func TestRounding(t *testing.T) {
	for _, c := range []struct {
		num, den int64
		want     int64
	}{{1, 2, 1}, {149, 100, 1}, {150, 100, 2}, {0, 1, 0}, {7, 3, 2}, {5, 2, 3}} {
		if got := roundHalfUp(bigRat(c.num, c.den)); got != c.want {
			t.Errorf("%d/%d → %d, want %d", c.num, c.den, got, c.want)
		}
	}
	b := PriceBook{Currency: "EUR", Entries: []Prices{{VCPUHour: "1/3"}}}
	if err := b.Validate(); err == nil {
		t.Error("a fraction rate validates")
	}
	if err := (&PriceBook{Currency: "euro", Entries: []Prices{{}}}).Validate(); err == nil {
		t.Error("currency euro validates")
	}
}

func bigRat(a, b int64) *big.Rat { return big.NewRat(a, b) }
