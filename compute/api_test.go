package compute_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/compute"
)

// raw sends a request to the compute API with alice's token.
func (c *cloud) raw(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	sc := c.alice(t, "")
	req, _ := http.NewRequest(method, sc.Endpoint+strings.TrimPrefix(path, "/"), strings.NewReader(body))
	req.Header.Set("X-Auth-Token", sc.TokenID)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

func TestAPIMicroversions(t *testing.T) {
	c := newCloud(t, envOpts{})
	for _, tc := range []struct {
		hdr  map[string]string
		code int
		want string
	}{
		{nil, 200, "2.1"},
		{map[string]string{"X-OpenStack-Nova-API-Version": "2.53"}, 200, "2.53"},
		{map[string]string{"OpenStack-API-Version": "compute 2.90"}, 200, "2.90"},
		{map[string]string{"OpenStack-API-Version": "compute latest"}, 200, "2.90"},
		{map[string]string{"X-OpenStack-Nova-API-Version": "2.91"}, 406, ""},
		{map[string]string{"X-OpenStack-Nova-API-Version": "two"}, 400, ""},
	} {
		code, h, _ := c.raw(t, "GET", "/flavors", "", tc.hdr)
		if code != tc.code {
			t.Errorf("%v: %d, want %d", tc.hdr, code, tc.code)
			continue
		}
		if tc.want != "" && (h.Get("X-OpenStack-Nova-API-Version") != tc.want || h.Get("OpenStack-API-Version") != "compute "+tc.want) {
			t.Errorf("%v: headers %q %q", tc.hdr, h.Get("X-OpenStack-Nova-API-Version"), h.Get("OpenStack-API-Version"))
		}
	}
}

// TestAPIHostileBodies: bad input is a 400 whose message names the field,
// and nothing is created.
func TestAPIHostileBodies(t *testing.T) {
	c := newCloud(t, envOpts{})
	fl := c.flavor.ID
	srv := func(extra string) string {
		return `{"server":{"name":"x","imageRef":"` + imageID + `","flavorRef":"` + fl + `"` + extra + `}}`
	}
	for _, tc := range []struct {
		body, field string
		code        int
	}{
		{`{"server":{}}`, "name", 400},
		{`{"server":{"name":"x","flavorRef":"` + fl + `"}}`, "imageRef", 400},
		{`{"server":{"name":"x","imageRef":"` + imageID + `"}}`, "flavorRef", 400},
		{srv(`,"user_data":"%%%"`), "user_data", 400},
		{srv(`,"user_data":"` + strings.Repeat("QUJD", 17000) + `"`), "user_data", 400},
		{srv(`,"metadata":{"a/b":"c"}`), "metadata", 400},
		{srv(`,"metadata":{"k":"` + strings.Repeat("v", 256) + `"}`), "metadata", 400},
		{srv(`,"min_count":0`), "min_count", 400},
		{srv(`,"min_count":5,"max_count":2`), "min_count", 400},
		{srv(`,"networks":[{"uuid":"not-a-uuid"}]`), "networks[0]", 400},
		{srv(`,"networks":"everything"`), "networks", 400},
		{srv(`,"availability_zone":"mars"`), "availability_zone", 400},
		{srv(`,"key_name":"nope"`), "key_name", 400},
		{srv(`,"tags":["a/b"]`), "tags", 400},
		{srv(`,"accessIPv4":"999.1.1.1"`), "accessIPv4", 400},
		{srv(`,"block_device_mapping_v2":[{"source_type":"floppy"}]`), "block_device_mapping_v2[0].source_type", 400},
		{srv(`}, "os:scheduler_hints":{"group":"x"`), "os:scheduler_hints.group", 400},
		{srv(`}, "os:scheduler_hints":{"same_host":[1]`), "os:scheduler_hints.same_host", 400},
		{`{"server":{"name":"` + strings.Repeat("n", 300) + `","imageRef":"` + imageID + `","flavorRef":"` + fl + `"}}`, "name", 400},
		{`{"server":` + strings.Repeat("[", 100000) + `}`, "", 400},
	} {
		code, _, out := c.raw(t, "POST", "/servers", tc.body, nil)
		msg := ""
		if f, ok := out["badRequest"].(map[string]any); ok {
			msg, _ = f["message"].(string)
		}
		if code != tc.code || !strings.Contains(msg, tc.field) {
			t.Errorf("%.80s: %d %v, want %d naming %q", tc.body, code, out, tc.code, tc.field)
		}
	}
	if l, _ := c.svc.ListServers(c.env.admin, computeAll()); len(l) != 0 {
		t.Fatalf("%d servers created by bad requests", len(l))
	}
	// Actions: unknown, malformed, a missing flavor, and not implemented.
	v := c.create(user(c.p1), "ok", nil)
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"explode":null}`, 400},
		{`{"reboot":{"type":"GENTLE"}}`, 400},
		{`{"reboot":null,"os-stop":null}`, 400},
		{`{"resize":{"flavorRef":"1"}}`, 400},
		{`{"resize":"big"}`, 400},
		{`{"createBackup":{"name":"b"}}`, 501},
	} {
		if code, _, out := c.raw(t, "POST", "/servers/"+v.ID+"/action", tc.body, nil); code != tc.code {
			t.Errorf("%s: %d %v, want %d", tc.body, code, out, tc.code)
		}
	}
}

func computeAll() compute.ListServersOpts { return compute.ListServersOpts{AllProjects: true} }
