package objectstore_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// FuzzSLOManifest PUTs arbitrary manifests: the server never fails with
// a 5xx, and a manifest it accepts names only the segment that exists.
func FuzzSLOManifest(f *testing.F) {
	f.Add(`[{"path":"/c/seg","etag":null,"size_bytes":null}]`)
	f.Add(`[{"path":"/c/seg","etag":"x","size_bytes":3}]`)
	f.Add(`[{"path":"c/seg"},{"path":"/../x"}]`)
	f.Add(`{}`)
	c := newCloud(f, nil)
	u := c.tenant(f, "p", "fuzzer", "member")
	a := "/v1/" + u.account
	c.expect(f, 201, u, "PUT", a+"/c", "", nil)
	c.expect(f, 201, u, "PUT", a+"/c/seg", "abc", nil)
	f.Fuzz(func(t *testing.T, manifest string) {
		resp, body := c.do(t, u, "PUT", a+"/c/m?multipart-manifest=put", manifest, nil)
		if resp.StatusCode >= 500 {
			t.Fatalf("manifest %q: %d %s", manifest, resp.StatusCode, body)
		}
		if resp.StatusCode != http.StatusCreated {
			return
		}
		_, raw := c.expect(t, 200, u, "GET", a+"/c/m?multipart-manifest=get", "", nil)
		var stored []map[string]any
		if err := json.Unmarshal([]byte(raw), &stored); err != nil {
			t.Fatal(err)
		}
		for _, e := range stored {
			if e["name"] != "/c/seg" {
				t.Fatalf("stored segment %v", e["name"])
			}
		}
	})
}

// FuzzTempURLQuery sends arbitrary temp URL queries without a token: none
// reads or changes the object, and none makes the server fail.
func FuzzTempURLQuery(f *testing.F) {
	f.Add("GET", "temp_url_sig=abc&temp_url_expires=1")
	f.Add("PUT", "temp_url_sig=sha512:AAAA&temp_url_expires=2030-01-01T00:00:00Z&temp_url_prefix=")
	f.Add("GET", "temp_url_expires=99999999999&multipart-manifest=get")
	c := newCloud(f, nil)
	u := c.tenant(f, "p", "fuzzer", "member")
	a := "/v1/" + u.account
	c.expect(f, 201, u, "PUT", a+"/c", "", nil)
	c.expect(f, 201, u, "PUT", a+"/c/o", "abc", nil)
	c.expect(f, 204, u, "POST", a, "", map[string]string{"X-Account-Meta-Temp-URL-Key": "k"})
	f.Fuzz(func(t *testing.T, method, q string) {
		switch method {
		case "GET", "HEAD", "PUT", "POST", "DELETE", "COPY":
		default:
			return
		}
		if _, err := url.ParseQuery(q); err != nil {
			return
		}
		if _, err := url.Parse("http://h/?" + q); err != nil {
			return // the client cannot send it
		}
		resp, body := c.do(t, nil, method, a+"/c/o?"+q, "x", map[string]string{"Destination": "/c/copy"})
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("%s ?%s: %d %s", method, q, resp.StatusCode, body)
		}
		_, got := c.expect(t, 200, u, "GET", a+"/c/o", "", nil)
		if got != "abc" {
			t.Fatalf("%s ?%s changed the object", method, q)
		}
	})
}
