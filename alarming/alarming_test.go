package alarming

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

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

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func member(user, project string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: user, ProjectID: project,
		Roles: []string{identity.RoleMember}})
}

// env is metering and alarming on one bolt store, on a test clock.
type env struct {
	t      testing.TB
	dir    string
	clock  *clock
	st     *store.Store
	db     *tsdb.DB
	meter  *metering.Service
	svc    *Service
	trusts *fakeTrusts
}

func newEnv(t testing.TB) *env {
	e := &env{t: t, dir: t.TempDir(), clock: &clock{t: t0}, trusts: &fakeTrusts{}}
	db, err := tsdb.Open(filepath.Join(e.dir, "tsdb"), &tsdb.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(func() { db.Close() })
	e.open()
	return e
}

// open opens the store and the services (again, after close).
func (e *env) open() {
	t := e.t
	ctx := context.Background()
	be, err := boltstore.Open(ctx, filepath.Join(e.dir, "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = store.Open(ctx, be, slices.Concat(metering.Tables(), Tables()), &store.Options{CompactInterval: -1, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.meter, err = metering.New(metering.Config{Store: e.st, DB: e.db, Clock: e.clock.Now, PollInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.meter.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc, err = New(Config{Store: e.st, Metrics: e.meter, Trusts: e.trusts, Clock: e.clock.Now, EvaluationInterval: -1,
		WebhookKey: []byte("cloud-key"), AllowedHosts: []string{"hooks.example.net"}, RetryBackoff: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
}

func (e *env) close() {
	if e.svc == nil {
		return
	}
	e.svc.Close()
	e.meter.Close()
	e.st.Close()
	e.svc = nil
}

// memory records a memory.usage sample of vm in p1 at t.
func (e *env) memory(vm string, t time.Time, v float64) {
	e.t.Helper()
	if err := e.meter.Record(context.Background(), []metering.Sample{{Meter: "memory.usage", ResourceID: vm, ProjectID: "p1",
		Time: t, Value: v, Attributes: map[string]string{"server_group": "grp"}}}); err != nil {
		e.t.Fatal(err)
	}
}

type fakeTrusts struct {
	mu       sync.Mutex
	made     []string // project of each trust made
	revoked  []string
	tokenErr error
}

func (f *fakeTrusts) Delegate(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := identity.CredentialsFrom(ctx)
	f.made = append(f.made, c.ProjectID)
	return "trust-" + c.ProjectID, nil
}

func (f *fakeTrusts) Token(_ context.Context, id string) (string, error) {
	return "token-of-" + id, f.tokenErr
}

func (f *fakeTrusts) Revoke(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, id)
	return nil
}

// hook is a webhook receiver that verifies each body's signature.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []Notification
	tokens []string
	bad    int
	secret func(alarmID string) string
	fail   int // answer 503 this many times first
}

func newHook(t *testing.T, secret func(string) string) *hook {
	h := &hook{secret: secret}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail > 0 {
			h.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var n Notification
		if err := json.Unmarshal(body, &n); err != nil || Verify(h.secret(n.AlarmID), r.Header.Get(SignatureHeader), body, time.Now(), time.Minute) != nil {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.got = append(h.got, n)
		h.tokens = append(h.tokens, r.Header.Get("X-Auth-Token"))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) notes() []Notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func memAlarm(name string, actions ...string) Alarm {
	return Alarm{Name: name, Type: TypeResourcesThreshold, Enabled: true, AlarmActions: actions, OKActions: actions,
		Rule: Rule{Metric: "memory.usage", ResourceType: "instance", ResourceID: "vm-1", AggregationMethod: "mean",
			Granularity: 300, Threshold: 100, ComparisonOperator: "gt", EvaluationPeriods: 3}}
}

func TestAlarmLifecycleAndIsolation(t *testing.T) {
	e := newEnv(t)
	u1, u2 := member("u1", "p1"), member("u2", "p2")
	admin := identity.WithCredentials(context.Background(), identity.SystemAdmin())
	a, err := e.svc.CreateAlarm(u1, memAlarm("cpu-high"))
	if err != nil {
		t.Fatal(err)
	}
	if a.State != StateInsufficientData || a.ProjectID != "p1" || a.UserID != "u1" || a.Severity != "low" {
		t.Fatalf("created: %+v", a)
	}
	if _, err := e.svc.GetAlarm(u2, a.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("another project's alarm: %v, want not found", err)
	}
	if _, err := e.svc.SetState(u2, a.ID, StateOK); !errdefs.IsNotFound(err) {
		t.Fatalf("another project sets the state: %v", err)
	}
	if err := e.svc.DeleteAlarm(u2, a.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("another project deletes: %v", err)
	}
	if _, err := e.svc.History(u2, a.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("another project's history: %v", err)
	}
	if l, _ := e.svc.ListAlarms(u2, ListAlarmsOpts{}); len(l) != 0 {
		t.Fatalf("p2 lists %d alarms", len(l))
	}
	if l, _ := e.svc.ListAlarms(admin, ListAlarmsOpts{Name: "cpu-high"}); len(l) != 1 {
		t.Fatalf("admin lists %d alarms", len(l))
	}
	other := memAlarm("x")
	other.ProjectID = "p2"
	if _, err := e.svc.CreateAlarm(u1, other); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("create in another project: %v", err)
	}
	e.clock.Set(t0.Add(time.Minute))
	if a, err = e.svc.SetState(u1, a.ID, StateAlarm); err != nil || a.State != StateAlarm || !a.StateTimestamp.Equal(t0.Add(time.Minute)) {
		t.Fatalf("set state: %+v %v", a, err)
	}
	if _, err := e.svc.SetState(u1, a.ID, "bogus"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("bogus state: %v", err)
	}
	if err := e.svc.DeleteAlarm(u1, a.ID); err != nil {
		t.Fatal(err)
	}
	hs, err := e.svc.History(u1, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, h := range hs {
		types = append(types, h.Type)
	}
	if !slices.Equal(types, []string{"deletion", "state transition", "creation"}) {
		t.Fatalf("history: %v", types)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	u1 := member("u1", "p1")
	for _, tc := range []struct {
		field string
		edit  func(*Alarm)
	}{
		{"alarm_actions", func(a *Alarm) { a.AlarmActions = []string{"http://evil.example.com/hook"} }},
		{"ok_actions", func(a *Alarm) { a.OKActions = []string{"http://10.0.0.1:9/x"} }},
		{"insufficient_data_actions", func(a *Alarm) { a.InsufficientDataActions = []string{"file:///etc/passwd"} }},
		{"alarm_actions", func(a *Alarm) { a.AlarmActions = []string{"http://user:pw@127.0.0.1/"} }},
		{"gnocchi_resources_threshold_rule.comparison_operator", func(a *Alarm) { a.Rule.ComparisonOperator = "gte" }},
		{"gnocchi_resources_threshold_rule.resource_id", func(a *Alarm) { a.Rule.ResourceID = "" }},
		{"gnocchi_resources_threshold_rule.aggregation_method", func(a *Alarm) { a.Rule.AggregationMethod = "median" }},
		{"severity", func(a *Alarm) { a.Severity = "huge" }},
		{"time_constraints", func(a *Alarm) { a.TimeConstraints = []TimeConstraint{{Name: "x", Start: "61 * * * *", Duration: 60}} }},
		{"time_constraints", func(a *Alarm) {
			a.TimeConstraints = []TimeConstraint{{Name: "x", Start: "0 9 * * *", Duration: 60, Timezone: "Mars/Olympus"}}
		}},
	} {
		a := memAlarm("v")
		tc.edit(&a)
		_, err := e.svc.CreateAlarm(u1, a)
		var ve *errdefs.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
	// The project's cap.
	e.svc.cfg.MaxAlarmsPerProject = 1
	if _, err := e.svc.CreateAlarm(u1, memAlarm("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateAlarm(u1, memAlarm("two")); !errors.Is(err, errdefs.ErrQuotaExceeded) {
		t.Fatalf("over the cap: %v", err)
	}
	e.svc.cfg.MaxAlarmsPerProject = 200
	// Allowed: loopback, the allow-listed host, trust actions.
	a := memAlarm("ok", "http://127.0.0.1:9/x", "https://hooks.example.net/h", "trust+http://[::1]:8004/signal")
	if _, err := e.svc.CreateAlarm(u1, a); err != nil {
		t.Fatal(err)
	}
}

// TestEvaluateWebhook: a gauge over its threshold for three 5-minute
// buckets turns the alarm on; the webhook gets a signed body once (no
// repeat actions), then ok when it drops. A breach of two buckets only is
// not enough.
func TestEvaluateWebhook(t *testing.T) {
	e := newEnv(t)
	u1 := member("u1", "p1")
	h := newHook(t, e.svc.Secret)
	h.fail = 1 // the first try fails: retried
	a, err := e.svc.CreateAlarm(u1, memAlarm("mem", h.srv.URL+"/hook"))
	if err != nil {
		t.Fatal(err)
	}
	step := func(min int, v float64) {
		e.memory("vm-1", t0.Add(time.Duration(min)*time.Minute), v)
	}
	eval := func(at time.Duration) *Alarm {
		t.Helper()
		e.clock.Set(t0.Add(at))
		if err := e.svc.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.svc.Wait()
		return must(e.svc.GetAlarm(u1, a.ID))
	}
	if got := eval(time.Minute); got.State != StateInsufficientData {
		t.Fatalf("no data: %s", got.State)
	}
	for m := 0; m < 15; m += 5 {
		step(m, 50)
	}
	if got := eval(15 * time.Minute); got.State != StateOK {
		t.Fatalf("below: %s (%s)", got.State, got.StateReason)
	}
	step(15, 150)
	step(20, 150)
	if got := eval(25 * time.Minute); got.State != StateOK {
		t.Fatalf("two breaching buckets of three: %s", got.State)
	}
	step(25, 180)
	got := eval(30 * time.Minute)
	if got.State != StateAlarm || !strings.Contains(got.StateReason, "180") {
		t.Fatalf("three breaching: %s %q", got.State, got.StateReason)
	}
	n := h.notes()
	// ok (from insufficient data) and alarm, each signed and verified.
	if len(n) != 2 || n[0].Current != StateOK || n[1].Current != StateAlarm || n[1].Previous != StateOK || n[1].AlarmID != a.ID || h.bad != 0 {
		t.Fatalf("notifications: %+v bad=%d", n, h.bad)
	}
	step(30, 170)
	if eval(35 * time.Minute); len(h.notes()) != 2 {
		t.Fatalf("repeat_actions false sent again: %d", len(h.notes()))
	}
	for m := 35; m < 50; m += 5 {
		step(m, 10)
	}
	if got := eval(50 * time.Minute); got.State != StateOK || len(h.notes()) != 3 {
		t.Fatalf("back to ok: %s, %d notes", got.State, len(h.notes()))
	}
	// A body signed with another alarm's secret does not verify.
	body := []byte(`{"alarm_id":"` + a.ID + `"}`)
	if Verify(e.svc.Secret("other"), Sign(e.svc.Secret(a.ID), time.Now(), body), body, time.Now(), time.Minute) == nil {
		t.Fatal("another alarm's secret verifies")
	}
	if Verify(e.svc.Secret(a.ID), Sign(e.svc.Secret(a.ID), time.Now().Add(-time.Hour), body), body, time.Now(), time.Minute) == nil {
		t.Fatal("an hour-old signature verifies")
	}
}

// TestRestartKeepsState: the state is in the store; after a restart a
// still-breaching alarm stays in alarm without notifying again.
func TestRestartKeepsState(t *testing.T) {
	e := newEnv(t)
	u1 := member("u1", "p1")
	h := newHook(t, e.svc.Secret)
	a := must(e.svc.CreateAlarm(u1, memAlarm("mem", h.srv.URL)))
	for m := 0; m < 20; m += 5 {
		e.memory("vm-1", t0.Add(time.Duration(m)*time.Minute), 500)
	}
	e.clock.Set(t0.Add(20 * time.Minute))
	if err := e.svc.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	e.close()
	e.open()
	if got := must(e.svc.GetAlarm(u1, a.ID)); got.State != StateAlarm {
		t.Fatalf("after restart: %s", got.State)
	}
	e.memory("vm-1", t0.Add(20*time.Minute), 500)
	e.clock.Set(t0.Add(25 * time.Minute))
	if err := e.svc.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	if n := h.notes(); len(n) != 1 || n[0].Current != StateAlarm {
		t.Fatalf("notifications across the restart: %+v", n)
	}
}

// TestTrustAction: a trust+http action is sent with a token of the trust
// made from the creator at create time; the trust is revoked with the
// alarm.
func TestTrustAction(t *testing.T) {
	e := newEnv(t)
	u1 := member("u1", "p1")
	h := newHook(t, e.svc.Secret)
	al := memAlarm("scale-out", "trust+"+h.srv.URL+"/v1/signal")
	al.Type = TypeAggregationByResourcesThresho
	al.Rule.ResourceID = ""
	al.Rule.Query = `{"=": {"server_group": "grp"}}`
	al.Rule.EvaluationPeriods = 1
	a := must(e.svc.CreateAlarm(u1, al))
	if a.TrustID != "trust-p1" {
		t.Fatalf("trust: %q", a.TrustID)
	}
	e.memory("vm-1", t0, 300)
	e.memory("vm-2", t0, 100) // mean 200 > 100
	e.clock.Set(t0.Add(5 * time.Minute))
	if err := e.svc.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc.Wait()
	h.mu.Lock()
	toks := slices.Clone(h.tokens)
	h.mu.Unlock()
	if len(toks) != 1 || toks[0] != "token-of-trust-p1" {
		t.Fatalf("trust tokens sent: %v", toks)
	}
	if err := e.svc.DeleteAlarm(u1, a.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.trusts.revoked, []string{"trust-p1"}) {
		t.Fatalf("revoked: %v", e.trusts.revoked)
	}
}

func TestTimeConstraints(t *testing.T) {
	e := newEnv(t)
	u1 := member("u1", "p1")
	al := memAlarm("office-hours")
	al.Rule.EvaluationPeriods = 1
	al.TimeConstraints = []TimeConstraint{{Name: "office", Start: "0 9 * * 1-5", Duration: 8 * 3600, Timezone: "Europe/Paris"}}
	a := must(e.svc.CreateAlarm(u1, al))
	e.memory("vm-1", t0, 500) // Monday 00:00 UTC = 01:00 Paris
	e.clock.Set(t0.Add(5 * time.Minute))
	_ = e.svc.Evaluate(context.Background())
	if got := must(e.svc.GetAlarm(u1, a.ID)); got.State != StateInsufficientData {
		t.Fatalf("outside its constraint it was evaluated: %s", got.State)
	}
	e.memory("vm-1", t0.Add(9*time.Hour), 500)
	e.clock.Set(t0.Add(9*time.Hour + 5*time.Minute)) // 10:05 Paris
	_ = e.svc.Evaluate(context.Background())
	if got := must(e.svc.GetAlarm(u1, a.ID)); got.State != StateAlarm {
		t.Fatalf("within its constraint: %s", got.State)
	}
}

func TestCron(t *testing.T) {
	c, err := parseCron("*/15 9-17 * * 1-5")
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	if !c.match(mon) || c.match(mon.Add(time.Minute)) || c.match(mon.AddDate(0, 0, 5)) {
		t.Fatal("match")
	}
	if !c.within(mon.Add(10*time.Minute), 15*time.Minute, time.UTC) || c.within(time.Date(2026, 11, 2, 18, 20, 0, 0, time.UTC), 15*time.Minute, time.UTC) {
		t.Fatal("within")
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "a * * * *"} {
		if _, err := parseCron(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkEvaluate evaluates 100 alarms on 10 servers' measures per op
// (no transitions after the first pass: the steady state).
func BenchmarkEvaluate(b *testing.B) {
	e := newEnv(b)
	u1 := member("u1", "p1")
	for i := range 10 {
		vm := "vm-" + string(rune('a'+i))
		for m := 0; m < 30; m += 5 {
			e.memory(vm, t0.Add(time.Duration(m)*time.Minute), float64(50+i*10))
		}
	}
	for i := range 100 {
		a := memAlarm("a")
		a.Rule.ResourceID = "vm-" + string(rune('a'+i%10))
		if _, err := e.svc.CreateAlarm(u1, a); err != nil {
			b.Fatal(err)
		}
	}
	e.clock.Set(t0.Add(30 * time.Minute))
	ctx := context.Background()
	if err := e.svc.Evaluate(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := e.svc.Evaluate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/alarm")
}

// TestLeaderFailover: two evaluators share a store; the first to campaign
// evaluates; when it stops, the second takes over from the state in the
// store.
func TestLeaderFailover(t *testing.T) {
	e := newEnv(t)
	u1 := member("u1", "p1")
	al := memAlarm("mem")
	al.Rule.EvaluationPeriods = 1
	a := must(e.svc.CreateAlarm(u1, al))
	mk := func() *Service {
		s, err := New(Config{Store: e.st, Metrics: e.meter, Clock: e.clock.Now, EvaluationInterval: 5 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first, second := mk(), mk()
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for must(e.svc.GetAlarm(u1, a.ID)).State != want {
			if time.Now().After(deadline) {
				t.Fatalf("state never became %s", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(StateInsufficientData)
	e.memory("vm-1", t0, 500)
	e.clock.Set(t0.Add(5 * time.Minute))
	waitState(StateAlarm) // the first evaluates
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	first.Close() // resigns: the second campaigns and wins
	e.memory("vm-1", t0.Add(5*time.Minute), 10)
	e.clock.Set(t0.Add(10 * time.Minute))
	waitState(StateOK) // the second evaluates
	hs := must(e.svc.History(u1, a.ID))
	if len(hs) != 3 { // creation, alarm, ok: each transition once
		t.Fatalf("history: %d entries", len(hs))
	}
}

// TestRuleSeesOwnProject: an alarm reads metering as its project; another
// project's server is unknown to it however hot it runs.
func TestRuleSeesOwnProject(t *testing.T) {
	e := newEnv(t)
	al := memAlarm("spy")
	al.Rule.EvaluationPeriods = 1
	spy := must(e.svc.CreateAlarm(member("u2", "p2"), al)) // vm-1 is p1's
	own := must(e.svc.CreateAlarm(member("u1", "p1"), al))
	e.memory("vm-1", t0, 500)
	e.clock.Set(t0.Add(5 * time.Minute))
	if err := e.svc.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := must(e.svc.GetAlarm(member("u2", "p2"), spy.ID)).State; s != StateInsufficientData {
		t.Fatalf("p2's alarm on p1's server: %s", s)
	}
	if s := must(e.svc.GetAlarm(member("u1", "p1"), own.ID)).State; s != StateAlarm {
		t.Fatalf("p1's own alarm: %s", s)
	}
}
