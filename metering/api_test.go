package metering

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
)

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	pollHour(t, e)

	// Resources: a tenant lists its own; another's is 404.
	code, b := e.do(t, "GET", "u1", "/v1/resource/generic", nil)
	rs := decode[[]map[string]any](t, b)
	if code != 200 || len(rs) != 5 {
		t.Fatalf("u1 resource list: %d, %d resources", code, len(rs))
	}
	for _, r := range rs {
		if r["project_id"] != e.p1 || r["metrics"] == nil || r["original_resource_id"] == nil {
			t.Errorf("u1 lists %v", r)
		}
	}
	if code, _ := e.do(t, "GET", "u2", "/v1/resource/generic/vm-a", nil); code != 404 {
		t.Errorf("u2 showing p1's server: %d", code)
	}
	code, b = e.do(t, "GET", "u1", "/v1/resource/instance/vm-a", nil)
	r := decode[map[string]any](t, b)
	if code != 200 || r["flavor_name"] != "m1.small" || r["started_at"] != "2026-11-02T00:00:00.000000+00:00" || r["type"] != "instance" {
		t.Errorf("resource show: %d %v", code, r)
	}
	code, b = e.do(t, "POST", "u2", "/v1/search/resource/instance", strings.NewReader(`{"=": {"display_name": "a"}}`))
	if code != 200 || len(decode[[]any](t, b)) != 0 {
		t.Errorf("u2 searching for p1's server: %d %s", code, b)
	}

	// Measures by resource and name, Gnocchi's triples.
	code, b = e.do(t, "GET", "u1", "/v1/resource/generic/vm-a/metric/cpu/measures?aggregation=rate:last&granularity=3600", nil)
	ms := decode[[][3]any](t, b)
	if code != 200 || len(ms) != 1 || ms[0][0] != "2026-11-02T01:00:00+00:00" || ms[0][1] != 3600.0 || ms[0][2] != 60e9 {
		t.Errorf("measures: %d %s", code, b)
	}
	code, b = e.do(t, "GET", "u1", "/v1/resource/generic/vm-a/metric/cpu/measures?start=2026-11-02T00:30:00&stop=2026-11-02T00:40:00&granularity=300&aggregation=last", nil)
	if ms := decode[[][3]any](t, b); code != 200 || len(ms) != 2 || ms[0][2] != 360e9 || ms[1][2] != 10e9 {
		t.Errorf("measures in a window: %d %s", code, b)
	}
	for _, bad := range []string{"?granularity=abc", "?aggregation=median", "?start=yesterday", "?granularity=7"} {
		if code, b := e.do(t, "GET", "u1", "/v1/resource/generic/vm-a/metric/cpu/measures"+bad, nil); code != 400 {
			t.Errorf("%s: %d %s", bad, code, b)
		}
	}

	// Writing measures is for admins.
	m := decode[map[string]any](t, must2(e.do(t, "GET", "u1", "/v1/resource/generic/vol-1/metric/volume.size", nil)))
	id, _ := m["id"].(string)
	if m["unit"] != "GB" || m["archive_policy_name"] != "stratus" {
		t.Errorf("metric show: %v", m)
	}
	body := `[{"timestamp": "2026-11-02T02:00:00", "value": 7}]`
	if code, _ := e.do(t, "POST", "u1", "/v1/metric/"+id+"/measures", strings.NewReader(body)); code != 403 {
		t.Errorf("u1 posting measures: %d", code)
	}
	if code, b := e.do(t, "POST", "admin", "/v1/batch/resources/metrics/measures", strings.NewReader(`{"vol-1": {"volume.size": `+body+`}}`)); code != 202 {
		t.Errorf("admin batch: %d %s", code, b)
	}
	code, b = e.do(t, "GET", "u1", "/v1/metric/"+id+"/measures?granularity=3600&aggregation=max", nil)
	if ms := decode[[][3]any](t, b); code != 200 || len(ms) != 3 || ms[2][2] != 7.0 {
		t.Errorf("after the batch: %s", b)
	}
	if code, _ := e.do(t, "POST", "admin", "/v1/metric/"+id+"/measures", strings.NewReader(`[{"timestamp": "x", "value": 1}]`)); code != 400 {
		t.Errorf("bad timestamp: %d", code)
	}

	// Aggregates with group-by, as the client shapes them.
	agg := `{"operations": "(aggregate sum (metric vcpus mean))", "search": "", "resource_type": "instance"}`
	code, b = e.do(t, "POST", "admin", "/v1/aggregates?groupby=project_id&granularity=3600", strings.NewReader(agg))
	groups := decode[[]struct {
		Group    map[string]string `json:"group"`
		Measures struct {
			Measures map[string][][3]any `json:"measures"`
		} `json:"measures"`
	}](t, b)
	if code != 200 || len(groups) != 2 {
		t.Fatalf("aggregates: %d %s", code, b)
	}
	for _, g := range groups {
		want := map[string]float64{e.p1: 2, e.p2: 4}[g.Group["project_id"]]
		if a := g.Measures.Measures["aggregated"]; len(a) != 2 || a[0][2] != want {
			t.Errorf("group %v: %v", g.Group, a)
		}
	}
	code, b = e.do(t, "POST", "u2", "/v1/aggregates?granularity=3600", strings.NewReader(`{"operations": "(metric cpu rate:last)", "search": "id=vm-b", "resource_type": "generic"}`))
	nested := decode[map[string]map[string]map[string]map[string][][3]any](t, b)
	if got := nested["measures"]["vm-b"]["cpu"]["rate:last"]; code != 200 || len(got) != 1 || got[0][2] != 30e9 {
		t.Errorf("aggregates of one metric: %d %s", code, b)
	}
	if code, _ := e.do(t, "POST", "u1", "/v1/aggregates", strings.NewReader(`{"operations": "(aggregate sum (metric vcpus mean)"}`)); code != 400 {
		t.Errorf("unbalanced operations: %d", code)
	}

	// Archive policies, as `metric archive-policy list` reads them.
	code, b = e.do(t, "GET", "u1", "/v1/archive_policy", nil)
	ps := decode[[]map[string]any](t, b)
	found := false
	for _, p := range ps {
		if p["name"] == "ceilometer-low" {
			d := p["definition"].([]any)[0].(map[string]any)
			found = d["granularity"] == "0:05:00" && d["timespan"] == "30 days, 0:00:00" && d["points"] == 8640.0
		}
	}
	if code != 200 || !found {
		t.Errorf("archive policies: %s", b)
	}
	if code, _ := e.do(t, "GET", "", "/v1/resource/generic", nil); code != 401 {
		t.Errorf("no token: %d", code)
	}
}

func must2(_ int, b []byte) []byte { return b }

func TestPrometheus(t *testing.T) {
	e := newEnv(t)
	pollHour(t, e)
	srv := httptest.NewServer(NewPrometheusHandler(e.svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	cpu := fams["stratus_cpu"]
	if cpu == nil || cpu.GetType().String() != "COUNTER" || len(cpu.Metric) != 2 {
		t.Fatalf("stratus_cpu = %v", cpu)
	}
	for _, m := range cpu.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		want := map[string]float64{"vm-a": 310e9, "vm-b": 360e9}[labels["resource_id"]]
		proj := map[string]string{"vm-a": e.p1, "vm-b": e.p2}[labels["resource_id"]]
		if m.GetCounter().GetValue() != want || labels["project_id"] != proj || m.GetTimestampMs() != t0.Add(time.Hour).UnixMilli() {
			t.Errorf("cpu sample %v = %v", labels, m)
		}
	}
	if v := fams["stratus_volume_size"]; v == nil || v.Metric[0].GetGauge().GetValue() != 2 {
		t.Errorf("volume size = %v", v)
	}
}
