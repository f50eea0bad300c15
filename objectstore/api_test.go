package objectstore_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func TestObjectLifecycle(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/c1", "", map[string]string{"X-Container-Meta-Color": "red"})
	c.expect(t, 202, u, "PUT", a+"/c1", "", nil)
	resp, _ := c.expect(t, 204, u, "HEAD", a+"/c1", "", nil)
	if resp.Header.Get("X-Container-Meta-Color") != "red" {
		t.Fatalf("container metadata lost: %v", resp.Header)
	}
	resp, _ = c.expect(t, 201, u, "PUT", a+"/c1/dir/hello%20world.txt", "hello", map[string]string{"X-Object-Meta-A": "1", "Content-Type": "text/plain"})
	if resp.Header.Get("Etag") != md5hex("hello") {
		t.Fatalf("etag %q", resp.Header.Get("Etag"))
	}
	c.expect(t, 422, u, "PUT", a+"/c1/bad", "hello", map[string]string{"Etag": md5hex("other")})
	c.expect(t, 404, u, "HEAD", a+"/c1/bad", "", nil)
	resp, body := c.expect(t, 200, u, "GET", a+"/c1/dir/hello%20world.txt", "", nil)
	if body != "hello" || resp.Header.Get("X-Object-Meta-A") != "1" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("GET: %q %v", body, resp.Header)
	}
	// Range, conditions.
	resp, body = c.expect(t, 206, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"Range": "bytes=1-3"})
	if body != "ell" || resp.Header.Get("Content-Range") != "bytes 1-3/5" {
		t.Fatalf("range: %q %v", body, resp.Header.Get("Content-Range"))
	}
	_, body = c.expect(t, 206, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"Range": "bytes=-2"})
	if body != "lo" {
		t.Fatalf("suffix range: %q", body)
	}
	resp, _ = c.expect(t, 416, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"Range": "bytes=9-"})
	if resp.Header.Get("Content-Range") != "bytes */5" {
		t.Fatalf("416 Content-Range %q", resp.Header.Get("Content-Range"))
	}
	c.expect(t, 304, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"If-None-Match": `"` + md5hex("hello") + `"`})
	c.expect(t, 412, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"If-Match": "nope"})
	c.expect(t, 200, u, "HEAD", a+"/c1/dir/hello%20world.txt", "", map[string]string{"If-Match": md5hex("hello")})
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	c.expect(t, 304, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"If-Modified-Since": future})
	c.expect(t, 412, u, "GET", a+"/c1/dir/hello%20world.txt", "", map[string]string{"If-Unmodified-Since": past})
	c.expect(t, 412, u, "PUT", a+"/c1/dir/hello%20world.txt", "x", map[string]string{"If-None-Match": "*"})
	// POST replaces metadata.
	c.expect(t, 202, u, "POST", a+"/c1/dir/hello%20world.txt", "", map[string]string{"X-Object-Meta-B": "2"})
	resp, _ = c.expect(t, 200, u, "HEAD", a+"/c1/dir/hello%20world.txt", "", nil)
	if resp.Header.Get("X-Object-Meta-A") != "" || resp.Header.Get("X-Object-Meta-B") != "2" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("after POST: %v", resp.Header)
	}
	// COPY and X-Copy-From.
	c.expect(t, 201, u, "COPY", a+"/c1/dir/hello%20world.txt", "", map[string]string{"Destination": "/c1/copy1"})
	c.expect(t, 201, u, "PUT", a+"/c1/copy2", "", map[string]string{"X-Copy-From": "/c1/dir/hello%20world.txt", "X-Object-Meta-C": "3"})
	resp, body = c.expect(t, 200, u, "GET", a+"/c1/copy2", "", nil)
	if body != "hello" || resp.Header.Get("X-Object-Meta-B") != "2" || resp.Header.Get("X-Object-Meta-C") != "3" {
		t.Fatalf("copy: %q %v", body, resp.Header)
	}
	// Listings.
	_, body = c.expect(t, 200, u, "GET", a+"/c1?format=json&delimiter=/", "", nil)
	var ents []map[string]any
	if err := json.Unmarshal([]byte(body), &ents); err != nil || len(ents) != 3 || ents[2]["subdir"] != "dir/" {
		t.Fatalf("json listing %s", body)
	}
	_, body = c.expect(t, 200, u, "GET", a+"/c1?prefix=copy&limit=1", "", nil)
	if body != "copy1\n" {
		t.Fatalf("plain listing %q", body)
	}
	_, body = c.expect(t, 200, u, "GET", a+"/c1?format=xml&prefix=dir/", "", nil)
	if !strings.Contains(body, "<name>dir/hello world.txt</name>") || !strings.HasPrefix(body, "<?xml") {
		t.Fatalf("xml listing %s", body)
	}
	_, body = c.expect(t, 200, u, "GET", a+"/c1?reverse=true&marker=copy2", "", nil)
	if body != "copy1\n" {
		t.Fatalf("reverse listing %q", body)
	}
	c.expect(t, 412, u, "GET", a+"/c1?limit=10001", "", nil)
	c.expect(t, 204, u, "GET", a+"/c1?prefix=zzz", "", nil)
	// Account.
	c.expect(t, 204, u, "POST", a, "", map[string]string{"X-Account-Meta-Owner": "alice"})
	resp, _ = c.expect(t, 204, u, "HEAD", a, "", nil)
	if resp.Header.Get("X-Account-Object-Count") != "3" || resp.Header.Get("X-Account-Container-Count") != "1" ||
		resp.Header.Get("X-Account-Bytes-Used") != "15" || resp.Header.Get("X-Account-Meta-Owner") != "alice" {
		t.Fatalf("account headers %v", resp.Header)
	}
	_, body = c.expect(t, 200, u, "GET", a+"?format=json", "", nil)
	if !strings.Contains(body, `"name":"c1","count":3,"bytes":15`) {
		t.Fatalf("account listing %s", body)
	}
	// Delete.
	c.expect(t, 409, u, "DELETE", a+"/c1", "", nil)
	_, body = c.expect(t, 200, u, "POST", a+"?bulk-delete", "/c1/copy1\n/c1/copy2\n/c1/dir/hello%20world.txt\n/c1/missing\n/c1\n", map[string]string{"Accept": "application/json", "Content-Type": "text/plain"})
	var bulk map[string]any
	_ = json.Unmarshal([]byte(body), &bulk)
	if bulk["Number Deleted"] != float64(4) || bulk["Number Not Found"] != float64(1) {
		t.Fatalf("bulk delete %s", body)
	}
	c.expect(t, 404, u, "HEAD", a+"/c1", "", nil)
	_, body = c.expect(t, 200, nil, "GET", "/info", "", nil)
	if !strings.Contains(body, `"tempurl"`) || !strings.Contains(body, `"slo"`) {
		t.Fatalf("/info %s", body)
	}
}

func TestChunkedUpload(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := c.objURL + "/v1/" + u.account
	c.expect(t, 201, u, "PUT", "/v1/"+u.account+"/c", "", nil)
	pr, pw := ioPipe()
	go func() {
		for i := range 10 {
			fmt.Fprintf(pw, "chunk %d;", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", a+"/c/streamed", pr)
	req.Header.Set("X-Auth-Token", u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || req.ContentLength != -1 && req.ContentLength != 0 {
		t.Fatalf("chunked PUT: %d", resp.StatusCode)
	}
	_, body := c.expect(t, 200, u, "GET", "/v1/"+u.account+"/c/streamed", "", nil)
	if !strings.HasPrefix(body, "chunk 0;") || !strings.HasSuffix(body, "chunk 9;") {
		t.Fatalf("streamed body %q", body)
	}
}

func TestHostileNames(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/c", "", nil)
	c.expect(t, 400, u, "PUT", a+"/c/"+strings.Repeat("x", 1025), "x", nil)
	c.expect(t, 400, u, "PUT", a+"/c/bad%FF", "x", nil)
	c.expect(t, 400, u, "PUT", a+"/c/nul%00x", "x", nil)
	c.expect(t, 400, u, "PUT", a+"/"+strings.Repeat("c", 257), "", nil)
	c.expect(t, 400, u, "PUT", a+"/..", "", nil)
	c.expect(t, 400, u, "PUT", a+"/c/x", "x", map[string]string{"X-Object-Meta-" + strings.Repeat("k", 129): "v"})
	// Dot segments are names, stored safely and not resolved.
	c.expect(t, 201, u, "PUT", a+"/c/../../etc/passwd", "x", nil)
	_, body := c.expect(t, 200, u, "GET", a+"/c?format=json", "", nil)
	if !strings.Contains(body, `"name":"../../etc/passwd"`) {
		t.Fatalf("listing %s", body)
	}
}
