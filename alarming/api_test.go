package alarming

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/identity"
)

// apiServer serves the routes with credentials chosen by the token.
func apiServer(t *testing.T, svc *Service) func(method, token, path, body string) (int, map[string]any, string) {
	creds := map[string]*identity.Credentials{"t1": {UserID: "u1", ProjectID: "p1", Roles: []string{"member"}},
		"t2": {UserID: "u2", ProjectID: "p2", Roles: []string{"member"}}}
	h := routes(svc)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(identity.WithCredentials(r.Context(), creds[r.Header.Get("X-Auth-Token")])))
	}))
	t.Cleanup(srv.Close)
	return func(method, token, path, body string) (int, map[string]any, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m, string(b)
	}
}

// TestAPI: aodhclient's shapes (granularity and durations as strings),
// the field named in a 400 for a host not allowed, isolation (404), the
// query endpoint, state and history.
func TestAPI(t *testing.T) {
	e := newEnv(t)
	do := apiServer(t, e.svc)
	body := `{"name": "cpu", "type": "gnocchi_resources_threshold", "severity": "critical",
		"time_constraints": [{"name": "tc", "start": "0 9 * * *", "duration": "3600"}],
		"gnocchi_resources_threshold_rule": {"granularity": "300", "comparison_operator": "gt", "threshold": 2.0,
		"aggregation_method": "mean", "evaluation_periods": 1, "metric": "vcpus", "resource_id": "vm-1", "resource_type": "instance"}}`
	code, a, raw := do("POST", "t1", "/v2/alarms", body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, raw)
	}
	rule, _ := a["gnocchi_resources_threshold_rule"].(map[string]any)
	if a["state"] != "insufficient data" || rule["granularity"] != 300.0 || !strings.Contains(raw, `"threshold":2.0`) ||
		a["time_constraints"].([]any)[0].(map[string]any)["duration"] != 3600.0 || len(a["webhook_secret"].(string)) != 64 {
		t.Fatalf("created: %s", raw)
	}
	id := a["alarm_id"].(string)
	bad := strings.Replace(body, `"severity"`, `"alarm_actions": ["http://203.0.113.9/hook"], "severity"`, 1)
	code, _, raw = do("POST", "t1", "/v2/alarms", bad)
	if code != http.StatusBadRequest || !strings.Contains(raw, "alarm_actions") || !strings.Contains(raw, "faultstring") {
		t.Fatalf("a host not allowed: %d %s", code, raw)
	}
	for _, hostile := range []string{`{"name": "x", "type": "threshold"}`, `{"name": "x", "type": "gnocchi_resources_threshold"}`,
		`[1,2]`, `{"name": "x", "type": "gnocchi_resources_threshold", "gnocchi_resources_threshold_rule": {"granularity": "1e99"}}`} {
		if code, _, raw := do("POST", "t1", "/v2/alarms", hostile); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", hostile, code, raw)
		}
	}
	if code, _, _ := do("GET", "t2", "/v2/alarms/"+id, ""); code != http.StatusNotFound {
		t.Fatalf("another project's alarm: %d", code)
	}
	if code, _, raw := do("PUT", "t1", "/v2/alarms/"+id+"/state", `"alarm"`); code != http.StatusOK || raw != `"alarm"`+"\n" && raw != `"alarm"` {
		t.Fatalf("state set: %d %q", code, raw)
	}
	code, _, raw = do("POST", "t1", "/v2/query/alarms", `{"filter": "{\"and\": [{\"=\": {\"name\": \"cpu\"}}, {\"=\": {\"state\": \"alarm\"}}]}"}`)
	if code != http.StatusOK || !strings.Contains(raw, id) {
		t.Fatalf("query: %d %s", code, raw)
	}
	if code, _, raw := do("POST", "t2", "/v2/query/alarms", `{"filter": "{\"=\": {\"name\": \"cpu\"}}"}`); code != http.StatusOK || strings.Contains(raw, id) {
		t.Fatalf("p2's query: %d %s", code, raw)
	}
	if code, _, raw := do("GET", "t1", "/v2/alarms?q.field=name&q.op=eq&q.value=cpu", ""); code != http.StatusOK || !strings.Contains(raw, id) {
		t.Fatalf("list: %d %s", code, raw)
	}
	code, _, raw = do("GET", "t1", "/v2/alarms/"+id+"/history", "")
	if code != http.StatusOK || !strings.Contains(raw, `"type":"state transition"`) || !strings.Contains(raw, `"type":"creation"`) {
		t.Fatalf("history: %d %s", code, raw)
	}
	if code, _, _ := do("DELETE", "t2", "/v2/alarms/"+id, ""); code != http.StatusNotFound {
		t.Fatalf("another project deletes: %d", code)
	}
	if code, _, _ := do("DELETE", "t1", "/v2/alarms/"+id, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
}
