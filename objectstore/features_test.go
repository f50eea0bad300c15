package objectstore_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

func TestLargeObjects(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/c", "", nil)
	c.expect(t, 201, u, "PUT", a+"/segs", "", nil)
	parts := []string{"aaaa", "bbbbbb", "cc"}
	var manifest []map[string]any
	etags := ""
	for i, p := range parts {
		name := fmt.Sprintf("/segs/part%d", i)
		c.expect(t, 201, u, "PUT", a+name, p, nil)
		manifest = append(manifest, map[string]any{"path": name, "etag": md5hex(p), "size_bytes": len(p)})
		etags += md5hex(p)
	}
	// DLO.
	c.expect(t, 201, u, "PUT", a+"/c/dlo", "", map[string]string{"X-Object-Manifest": "segs/part"})
	resp, body := c.expect(t, 200, u, "GET", a+"/c/dlo", "", nil)
	if body != "aaaabbbbbbcc" || resp.Header.Get("Etag") != `"`+md5hex(etags)+`"` {
		t.Fatalf("DLO %q %v", body, resp.Header.Get("Etag"))
	}
	_, body = c.expect(t, 206, u, "GET", a+"/c/dlo", "", map[string]string{"Range": "bytes=3-8"})
	if body != "abbbbb" {
		t.Fatalf("DLO range %q", body)
	}
	// SLO with validation.
	bad := append([]map[string]any{}, manifest...)
	bad[1] = map[string]any{"path": "/segs/part1", "etag": md5hex("nope"), "size_bytes": 6}
	mj, _ := json.Marshal(bad)
	_, body = c.expect(t, 400, u, "PUT", a+"/c/slo?multipart-manifest=put", string(mj), nil)
	if !strings.Contains(body, "Etag Mismatch") {
		t.Fatalf("bad manifest answer %q", body)
	}
	bad[1] = map[string]any{"path": "/segs/missing"}
	mj, _ = json.Marshal(bad)
	c.expect(t, 400, u, "PUT", a+"/c/slo?multipart-manifest=put", string(mj), nil)
	mj, _ = json.Marshal(manifest)
	c.expect(t, 201, u, "PUT", a+"/c/slo?multipart-manifest=put", string(mj), nil)
	resp, body = c.expect(t, 200, u, "GET", a+"/c/slo", "", nil)
	if body != "aaaabbbbbbcc" || resp.Header.Get("X-Static-Large-Object") != "True" || resp.Header.Get("Content-Length") != "12" {
		t.Fatalf("SLO %q %v", body, resp.Header)
	}
	_, body = c.expect(t, 206, u, "GET", a+"/c/slo", "", map[string]string{"Range": "bytes=-3"})
	if body != "bcc" {
		t.Fatalf("SLO range %q", body)
	}
	_, body = c.expect(t, 200, u, "GET", a+"/c?format=json", "", nil)
	if !strings.Contains(body, `"name":"slo","hash":"`+md5hex(etags)+`","bytes":12`) {
		t.Fatalf("SLO listing %s", body)
	}
	_, body = c.expect(t, 200, u, "GET", a+"/c/slo?multipart-manifest=get", "", nil)
	if !strings.Contains(body, `"name":"/segs/part0"`) {
		t.Fatalf("manifest get %s", body)
	}
	_, body = c.expect(t, 200, u, "GET", a+"/c/slo?multipart-manifest=get&format=raw", "", nil)
	if !strings.Contains(body, `"path":"/segs/part0"`) {
		t.Fatalf("manifest get raw %s", body)
	}
	// A changed segment fails the GET instead of serving other bytes.
	c.expect(t, 201, u, "PUT", a+"/segs/part2", "XX", nil)
	req, _ := http.NewRequest("GET", c.objURL+a+"/c/slo", nil)
	req.Header.Set("X-Auth-Token", u.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		data, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && resp.StatusCode == 200 && string(data) == "aaaabbbbbbXX" {
			t.Fatal("SLO served a changed segment")
		}
	}
	c.expect(t, 201, u, "PUT", a+"/segs/part2", "cc", nil)
	// Delete with its segments.
	_, body = c.expect(t, 200, u, "DELETE", a+"/c/slo?multipart-manifest=delete", "", map[string]string{"Accept": "application/json"})
	if !strings.Contains(body, `"Number Deleted":4`) {
		t.Fatalf("manifest delete %s", body)
	}
	_, body = c.expect(t, 204, u, "GET", a+"/segs", "", nil)
	_ = body
}

func TestVersioning(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/archive", "", nil)
	c.expect(t, 201, u, "PUT", a+"/c", "", map[string]string{"X-Versions-Location": "archive"})
	for _, v := range []string{"v1", "v2", "v3"} {
		c.expect(t, 201, u, "PUT", a+"/c/o", v, nil)
		time.Sleep(2 * time.Millisecond)
	}
	_, body := c.expect(t, 200, u, "GET", a+"/archive", "", nil)
	if n := strings.Count(body, "\n"); n != 2 || !strings.HasPrefix(body, "001o/") {
		t.Fatalf("archive listing %q", body)
	}
	c.expect(t, 204, u, "DELETE", a+"/c/o", "", nil)
	_, body = c.expect(t, 200, u, "GET", a+"/c/o", "", nil)
	if body != "v2" {
		t.Fatalf("after delete %q, want v2", body)
	}
	c.expect(t, 204, u, "DELETE", a+"/c/o", "", nil)
	c.expect(t, 204, u, "DELETE", a+"/c/o", "", nil)
	c.expect(t, 404, u, "GET", a+"/c/o", "", nil)
	c.expect(t, 404, u, "DELETE", a+"/c/o", "", nil)
	// History mode keeps every version and a delete marker.
	c.expect(t, 201, u, "PUT", a+"/h", "", map[string]string{"X-History-Location": "archive"})
	c.expect(t, 400, u, "POST", a+"/h", "", map[string]string{"X-Versions-Location": "archive"})
	c.expect(t, 201, u, "PUT", a+"/h/x", "one", nil)
	c.expect(t, 201, u, "PUT", a+"/h/x", "two", nil)
	c.expect(t, 204, u, "DELETE", a+"/h/x", "", nil)
	c.expect(t, 404, u, "GET", a+"/h/x", "", nil)
	_, body = c.expect(t, 200, u, "GET", a+"/archive?prefix=001x/&format=json", "", nil)
	if strings.Count(body, `"name"`) != 3 || !strings.Contains(body, objectstore.DeleteMarkerType) {
		t.Fatalf("history %s", body)
	}
}

func TestExpiry(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/c", "", nil)
	c.expect(t, 400, u, "PUT", a+"/c/o", "x", map[string]string{"X-Delete-At": "1000"})
	c.expect(t, 201, u, "PUT", a+"/c/o", "x", map[string]string{"X-Delete-After": "1"})
	resp, _ := c.expect(t, 200, u, "HEAD", a+"/c/o", "", nil)
	at, _ := strconv.ParseInt(resp.Header.Get("X-Delete-At"), 10, 64)
	if at < time.Now().Unix() {
		t.Fatalf("X-Delete-At %d", at)
	}
	c.expect(t, 201, u, "PUT", a+"/c/keep", "x", nil)
	time.Sleep(time.Until(time.Unix(at+1, 0)))
	c.expect(t, 404, u, "GET", a+"/c/o", "", nil)
	n, err := c.svc.ReapExpired(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("reaped %d, %v", n, err)
	}
	resp, _ = c.expect(t, 204, u, "HEAD", a+"/c", "", nil)
	if resp.Header.Get("X-Container-Object-Count") != "1" {
		t.Fatalf("count after reaping %s", resp.Header.Get("X-Container-Object-Count"))
	}
	// POST can set and clear the expiry.
	c.expect(t, 202, u, "POST", a+"/c/keep", "", map[string]string{"X-Delete-After": "3600"})
	resp, _ = c.expect(t, 200, u, "HEAD", a+"/c/keep", "", nil)
	if resp.Header.Get("X-Delete-At") == "" {
		t.Fatal("POST did not set X-Delete-At")
	}
}

func TestQuotas(t *testing.T) {
	c := newCloud(t, nil)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/c", "", map[string]string{"X-Container-Meta-Quota-Bytes": "10", "X-Container-Meta-Quota-Count": "2"})
	c.expect(t, 201, u, "PUT", a+"/c/a", "12345", nil)
	c.expect(t, 413, u, "PUT", a+"/c/b", "123456", nil)
	c.expect(t, 201, u, "PUT", a+"/c/b", "12345", nil)
	c.expect(t, 413, u, "PUT", a+"/c/c", "", nil)
	c.expect(t, 400, u, "POST", a+"/c", "", map[string]string{"X-Container-Meta-Quota-Bytes": "lots"})
	// Chunked uploads are cut off at the quota and leave nothing.
	c.expect(t, 204, u, "POST", a+"/c", "", map[string]string{"X-Container-Meta-Quota-Count": "10", "X-Container-Meta-Quota-Bytes": "12"})
	req, _ := http.NewRequest("PUT", c.objURL+a+"/c/chunked", io.MultiReader(strings.NewReader("0123"), strings.NewReader("456789")))
	req.Header.Set("X-Auth-Token", u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked over quota: %d", resp.StatusCode)
	}
	c.expect(t, 404, u, "HEAD", a+"/c/chunked", "", nil)
}

// TestCorruptGET flips a byte of an object stored by fsobj: the GET fails
// (an error status, or an aborted body) and never completes with wrong
// bytes.
func TestCorruptGET(t *testing.T) {
	b, err := fsobj.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCloud(t, b)
	u := c.tenant(t, "p1", "alice", "member")
	a := "/v1/" + u.account
	c.expect(t, 201, u, "PUT", a+"/c", "", nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640,000 bytes, 10 chunks
	for _, off := range []int64{10, int64(len(data)) - 100} {
		name := fmt.Sprintf("o%d", off)
		c.expect(t, 201, u, "PUT", a+"/c/"+name, string(data), nil)
		path, err := b.DataPath(objectstore.ObjectKey{Account: u.account, Container: "c", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{'Z'}, off); err != nil {
			t.Fatal(err)
		}
		f.Close()
		req, _ := http.NewRequest("GET", c.objURL+a+"/c/"+name, nil)
		req.Header.Set("X-Auth-Token", u.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == 200 && rerr == nil:
			t.Fatalf("corruption at %d: GET completed with %d bytes", off, len(got))
		case resp.StatusCode == 200 && !errors.Is(rerr, io.ErrUnexpectedEOF):
			t.Fatalf("corruption at %d: body error %v", off, rerr)
		case resp.StatusCode != 200 && resp.StatusCode != 503:
			t.Fatalf("corruption at %d: status %d", off, resp.StatusCode)
		}
		if resp.StatusCode == 200 && !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("corruption at %d: wrong bytes sent before the abort", off)
		}
		h := md5.Sum(got)
		if hex.EncodeToString(h[:]) == md5hex(string(data)) {
			t.Fatal("impossible: corrupt read matched")
		}
	}
}
