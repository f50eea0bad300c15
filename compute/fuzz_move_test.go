package compute_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzServerActionBody posts hostile bodies to a server's action
// endpoint (the compute II actions among them): every answer is a
// 2xx, 4xx or 501 with an OpenStack-shaped error, never a 500 or a panic.
func FuzzServerActionBody(f *testing.F) {
	for _, s := range []string{`{"resize":{"flavorRef":"1"}}`, `{"resize":null}`, `{"rebuild":{"imageRef":"x","metadata":{"a":"b"}}}`,
		`{"rebuild":{"imageRef":"11111111-2222-4333-8444-555555555555","key_name":7}}`, `{"migrate":{"host":"host9"}}`,
		`{"os-migrateLive":{"host":null,"block_migration":"auto"}}`, `{"evacuate":{"host":1}}`, `{"createImage":{"name":"","metadata":[]}}`,
		`{"rescue":{"rescue_image_ref":"../../etc"}}`, `{"unshelve":{"availability_zone":{}}}`, `{"shelve":null}`, `{"confirmResize":null}`,
		`{"revertResize":1}`, `{"unrescue":null}`, `{"shelveOffload":null}`} {
		f.Add(s)
	}
	c := newCloudTB(f)
	tok := c.clientTB(f, "admin", "secret", "admin", "2.90")
	srv := c.create(c.env.admin, "fuzz", nil)
	c.settle(c.env.admin, srv.ID)
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", tok.Endpoint+"servers/"+srv.ID+"/action", strings.NewReader(body))
		req.Header.Set("X-Auth-Token", tok.TokenID)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-OpenStack-Nova-API-Version", "2.90")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("%q: %d %s", body, resp.StatusCode, b)
		}
	})
}
