package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Volume attach through compute over the real block storage service (fake
// hypervisor): another project's volume is not found (404) and stays
// available; attach makes the volume in-use and shows it on the server;
// detach makes it available; deleting the server deletes a volume marked
// delete_on_termination.
func TestServerVolumeAttach(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake", "-fake-hosts", "1")
	p.waitLine(t, "stratus: ready")
	rc := openrc(t, data)
	tok := login(t, rc)
	keystone := rc["OS_AUTH_URL"]
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	cinder := func(project string) string { return fmt.Sprintf("http://%s:8776/v3/%s", addr, project) }
	mustID := func(code, want int, body map[string]any, key string) string {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %d %v", key, code, body)
		}
		return body[key].(map[string]any)["id"].(string)
	}
	_, body := call(t, "GET", keystone+"/projects?name=admin", tok, nil)
	adminProject := body["projects"].([]any)[0].(map[string]any)["id"].(string)

	// Bob, a member of p2, owns a volume.
	code, body := call(t, "POST", keystone+"/projects", tok, map[string]any{"project": map[string]any{"name": "p2"}})
	p2 := mustID(code, http.StatusCreated, body, "project")
	code, body = call(t, "POST", keystone+"/users", tok, map[string]any{"user": map[string]any{"name": "bob", "password": "bob-pw", "default_project_id": p2}})
	bob := mustID(code, http.StatusCreated, body, "user")
	_, body = call(t, "GET", keystone+"/roles?name=member", tok, nil)
	member := body["roles"].([]any)[0].(map[string]any)["id"].(string)
	if code, _ := call(t, "PUT", keystone+"/projects/"+p2+"/users/"+bob+"/roles/"+member, tok, nil); code != http.StatusNoContent {
		t.Fatalf("grant: %d", code)
	}
	bobTok := loginProject(t, keystone, "bob", "bob-pw", "p2")
	code, body = call(t, "POST", cinder(p2)+"/volumes", bobTok, map[string]any{"volume": map[string]any{"size": 1}})
	bobVol := mustID(code, http.StatusAccepted, body, "volume")
	volStatus := func(project, token, id string) string {
		code, body := call(t, "GET", cinder(project)+"/volumes/"+id, token, nil)
		if code == http.StatusNotFound {
			return "gone"
		}
		return body["volume"].(map[string]any)["status"].(string)
	}
	waitVol := func(project, token, id, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for volStatus(project, token, id) != want {
			if time.Now().After(deadline) {
				t.Fatalf("volume %s is %s, want %s", id, volStatus(project, token, id), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitVol(p2, bobTok, bobVol, "available")

	code, body = call(t, "POST", nova+"/flavors", tok, map[string]any{"flavor": map[string]any{"name": "m1", "vcpus": 1, "ram": 256, "disk": 1}})
	flavor := mustID(code, http.StatusOK, body, "flavor")
	imageID := uploadImage(t, addr, tok, "tiny", make([]byte, 4<<10))
	code, body = call(t, "POST", nova+"/servers", tok, map[string]any{"server": map[string]any{"name": "s", "imageRef": imageID, "flavorRef": flavor}})
	srv := mustID(code, http.StatusAccepted, body, "server")
	waitStatus(t, nova, tok, srv, "ACTIVE")
	attach := func(vol string, dot bool) (int, map[string]any) {
		req, _ := http.NewRequest("POST", nova+"/servers/"+srv+"/os-volume_attachments",
			strings.NewReader(fmt.Sprintf(`{"volumeAttachment": {"volumeId": %q, "delete_on_termination": %v}}`, vol, dot)))
		req.Header.Set("X-Auth-Token", tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("OpenStack-API-Version", "compute 2.79")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// The admin project's server and bob's volume: not found, untouched.
	if code, _ := attach(bobVol, false); code != http.StatusNotFound {
		t.Fatalf("attach of another project's volume: %d, want 404", code)
	}
	if st := volStatus(p2, bobTok, bobVol); st != "available" {
		t.Fatalf("bob's volume is %s after a refused attach", st)
	}

	code, body = call(t, "POST", cinder(adminProject)+"/volumes", tok, map[string]any{"volume": map[string]any{"size": 1}})
	vol := mustID(code, http.StatusAccepted, body, "volume")
	waitVol(adminProject, tok, vol, "available")
	if code, _ := attach(vol, false); code != http.StatusOK {
		t.Fatalf("attach: %d", code)
	}
	waitVol(adminProject, tok, vol, "in-use")
	_, body = call(t, "GET", nova+"/servers/"+srv, tok, nil)
	if v := body["server"].(map[string]any)["os-extended-volumes:volumes_attached"].([]any); len(v) != 1 || v[0].(map[string]any)["id"] != vol {
		t.Fatalf("volumes_attached %v", v)
	}
	_, body = call(t, "GET", cinder(adminProject)+"/volumes/"+vol, tok, nil)
	if a := body["volume"].(map[string]any)["attachments"].([]any); len(a) != 1 || a[0].(map[string]any)["server_id"] != srv {
		t.Fatalf("cinder attachments %v", a)
	}
	if code, _ := call(t, "DELETE", nova+"/servers/"+srv+"/os-volume_attachments/"+vol, tok, nil); code != http.StatusAccepted {
		t.Fatalf("detach: %d", code)
	}
	waitVol(adminProject, tok, vol, "available")

	// delete_on_termination: the server's deletion deletes the volume.
	if code, _ := attach(vol, true); code != http.StatusOK {
		t.Fatalf("attach: %d", code)
	}
	waitVol(adminProject, tok, vol, "in-use")
	if code, _ := call(t, "DELETE", nova+"/servers/"+srv, tok, nil); code != http.StatusNoContent {
		t.Fatalf("server delete: %d", code)
	}
	waitStatus(t, nova, tok, srv, "")
	waitVol(adminProject, tok, vol, "gone")
	p.stop(t, syscall.SIGTERM)
}

// loginProject returns a token of user scoped to project.
func loginProject(t *testing.T, keystone, user, pw, project string) string {
	t.Helper()
	body := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%q,"domain":{"name":"Default"},"password":%q}}},"scope":{"project":{"name":%q,"domain":{"name":"Default"}}}}}`,
		user, pw, project)
	resp, err := http.Post(keystone+"/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("login of %s: %s", user, resp.Status)
	}
	return resp.Header.Get("X-Subject-Token")
}
