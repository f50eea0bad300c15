package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratuskit/stratus/internal/etcdtest"
)

func TestPortInUse(t *testing.T) {
	addr := loopback()
	ln, err := net.Listen("tcp", addr+":5000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := exec.Command(binary, "-network", "fake", "-data", t.TempDir(), "-listen", addr).CombinedOutput()
	if err == nil {
		t.Fatalf("started with port 5000 taken:\n%s", out)
	}
	want := fmt.Sprintf("identity API: httpapi: listen %s:5000: address already in use", addr)
	if !strings.Contains(string(out), want) {
		t.Fatalf("output:\n%s\nwant it to contain %q", out, want)
	}
}

// openrc reads the variables of DIR/admin-openrc.sh.
func openrc(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin-openrc.sh"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "="); ok {
			vars[k] = strings.Trim(v, "'")
		}
	}
	return vars
}

// login returns a project-scoped token for the admin of openrc.
func login(t *testing.T, rc map[string]string) string {
	t.Helper()
	body := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%q,"domain":{"name":"Default"},"password":%q}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}`,
		rc["OS_USERNAME"], rc["OS_PASSWORD"])
	resp, err := http.Post(rc["OS_AUTH_URL"]+"/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("login at %s: %s", rc["OS_AUTH_URL"], resp.Status)
	}
	return resp.Header.Get("X-Subject-Token")
}

func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestTwoControllersOneCloud runs two all-in-one processes on one etcd
// cluster, on different ports: they serve the same cloud.
func TestTwoControllersOneCloud(t *testing.T) {
	cluster, err := etcdtest.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	ep := strings.Join(cluster.Endpoints(), ",")
	addr := loopback()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := start(t, "-data", dirA, "-listen", addr, "-etcd", ep)
	readyA := a.waitLine(t, "stratus: ready")
	b := start(t, "-data", dirB, "-listen", addr, "-etcd", ep, "-port-offset", "100")
	readyB := b.waitLine(t, "stratus: ready")
	if field(readyA, "cloud") != field(readyB, "cloud") {
		t.Fatalf("two clouds: %q and %q", readyA, readyB)
	}
	rcA, rcB := openrc(t, dirA), openrc(t, dirB)
	if rcA["OS_PASSWORD"] != rcB["OS_PASSWORD"] || rcB["OS_AUTH_URL"] != fmt.Sprintf("http://%s:5100/v3", addr) {
		t.Fatalf("openrc A %v, B %v", rcA, rcB)
	}

	// A token from A works on B; a project made through A is seen by B.
	tok := login(t, rcA)
	code, out := call(t, "POST", rcA["OS_AUTH_URL"]+"/projects", tok, map[string]any{"project": map[string]any{"name": "shared", "domain_id": "default"}})
	if code != http.StatusCreated {
		t.Fatalf("create project through A: %d %v", code, out)
	}
	id := out["project"].(map[string]any)["id"].(string)
	// B's replica follows etcd's watch: the write reaches it within
	// moments, not necessarily before A answers.
	for deadline := time.Now().Add(5 * time.Second); ; {
		code, out = call(t, "GET", rcB["OS_AUTH_URL"]+"/projects/"+id, tok, nil)
		if code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != http.StatusOK || out["project"].(map[string]any)["name"] != "shared" {
		t.Fatalf("project through B: %d %v", code, out)
	}
	// Revoking the token through B rejects it on A.
	req, _ := http.NewRequest("DELETE", rcB["OS_AUTH_URL"]+"/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("X-Subject-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke through B: %v %v", resp, err)
	}
	resp.Body.Close()
	for range 100 {
		if code, _ = call(t, "GET", rcA["OS_AUTH_URL"]+"/projects/"+id, tok, nil); code == http.StatusUnauthorized {
			break
		}
	}
	if code != http.StatusUnauthorized {
		t.Fatalf("token revoked through B still works on A: %d", code)
	}
	a.stop(t, syscall.SIGTERM)
	b.stop(t, syscall.SIGTERM)
}
