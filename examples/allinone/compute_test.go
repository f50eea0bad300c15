package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestComputeResumesAfterKill boots servers on slow fake hosts, kills the
// all-in-one with SIGKILL while they build, restarts it on the same data:
// every server settles ACTIVE, and the quota counts them exactly.
func TestComputeResumesAfterKill(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	args := []string{"-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake", "-fake-hosts", "3", "-fake-spawn-delay", "3s"}
	p := start(t, args...)
	ready := p.waitLine(t, "stratus: ready")
	if !strings.Contains(ready, fmt.Sprintf("compute=http://%s:8774", addr)) {
		t.Fatalf("compute not on 8774: %s", ready)
	}
	rc := openrc(t, data)
	tok := login(t, rc)
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	flavor := createFlavor(t, nova, tok, "m1", 1)
	imageID := uploadImage(t, addr, tok, "tiny", make([]byte, 64<<10))
	networkID := createNetwork(t, addr, tok, "private", "10.0.0.0/24")
	var ids []string
	for i := range 5 {
		ids = append(ids, createServer(t, nova, tok, fmt.Sprintf("k%d", i), imageID, flavor, networkID))
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range ids {
		if _, body := call(t, "GET", nova+"/servers/"+id, tok, nil); body["server"].(map[string]any)["status"] != "BUILD" {
			t.Fatalf("server %s not building before the kill: %v", id, body["server"].(map[string]any)["status"])
		}
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p = start(t, args...)
	p.waitLine(t, "stratus: ready")
	tok = login(t, rc)
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			code, body := call(t, "GET", nova+"/servers/"+id, tok, nil)
			if code != http.StatusOK {
				t.Fatalf("server %s after restart: %d %v", id, code, body)
			}
			st := body["server"].(map[string]any)["status"]
			if st == "ACTIVE" {
				break
			}
			if st == "ERROR" || time.Now().After(deadline) {
				t.Fatalf("server %s after restart: %v %v", id, st, body["server"].(map[string]any)["fault"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	code, body := call(t, "GET", nova+"/limits", tok, nil)
	abs := body["limits"].(map[string]any)["absolute"].(map[string]any)
	if code != http.StatusOK || abs["totalInstancesUsed"] != float64(5) || abs["totalCoresUsed"] != float64(5) {
		t.Fatalf("limits after restart: %d %v", code, abs)
	}
	p.stop(t, syscall.SIGTERM)
}

// uploadImage makes an active raw image of data in the all-in-one at addr.
func uploadImage(t *testing.T, addr, tok, name string, data []byte) string {
	t.Helper()
	glance := fmt.Sprintf("http://%s:9292/v2/images", addr)
	code, body := call(t, "POST", glance, tok, map[string]any{"name": name, "disk_format": "raw", "container_format": "bare"})
	if code != http.StatusCreated {
		t.Fatalf("image create: %d %v", code, body)
	}
	id := body["id"].(string)
	req, _ := http.NewRequest("PUT", glance+"/"+id+"/file", bytes.NewReader(data))
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("image upload: %s", resp.Status)
	}
	return id
}

// createFlavor makes a flavor of vcpus CPUs with 256 MB of RAM each and
// a 1 GB disk through nova and returns its id.
func createFlavor(t *testing.T, nova, tok, name string, vcpus int) string {
	t.Helper()
	code, body := call(t, "POST", nova+"/flavors", tok, map[string]any{"flavor": map[string]any{"name": name, "vcpus": vcpus, "ram": 256 * vcpus, "disk": 1}})
	if code != http.StatusOK {
		t.Fatalf("flavor create: %d %v", code, body)
	}
	return body["flavor"].(map[string]any)["id"].(string)
}

// createServer boots a server called name from imageID with flavorID on
// networkID through nova and returns its id.
func createServer(t *testing.T, nova, tok, name, imageID, flavorID, networkID string) string {
	t.Helper()
	code, body := call(t, "POST", nova+"/servers", tok, map[string]any{"server": map[string]any{
		"name": name, "imageRef": imageID, "flavorRef": flavorID, "networks": []map[string]string{{"uuid": networkID}}}})
	if code != http.StatusAccepted {
		t.Fatalf("server create %s: %d %v", name, code, body)
	}
	return body["server"].(map[string]any)["id"].(string)
}

// createNetwork makes a network with one subnet in the all-in-one at addr.
func createNetwork(t *testing.T, addr, tok, name, cidr string) string {
	t.Helper()
	neutron := fmt.Sprintf("http://%s:9696/v2.0", addr)
	code, body := call(t, "POST", neutron+"/networks", tok, map[string]any{"network": map[string]any{"name": name}})
	if code != http.StatusCreated {
		t.Fatalf("network create: %d %v", code, body)
	}
	id := body["network"].(map[string]any)["id"].(string)
	code, body = call(t, "POST", neutron+"/subnets", tok, map[string]any{"subnet": map[string]any{"network_id": id, "ip_version": 4, "cidr": cidr}})
	if code != http.StatusCreated {
		t.Fatalf("subnet create: %d %v", code, body)
	}
	return id
}

// Deleting a server deletes the ports compute made for it (their
// addresses return to the subnet): the network can then be deleted.
func TestServerDeleteFreesPorts(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake", "-fake-hosts", "1")
	p.waitLine(t, "stratus: ready")
	tok := login(t, openrc(t, data))
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	neutron := fmt.Sprintf("http://%s:9696/v2.0", addr)
	flavor := createFlavor(t, nova, tok, "m1", 1)
	imageID := uploadImage(t, addr, tok, "tiny", make([]byte, 4<<10))
	networkID := createNetwork(t, addr, tok, "private", "10.0.0.0/24")
	id := createServer(t, nova, tok, "s", imageID, flavor, networkID)
	waitStatus(t, nova, tok, id, "ACTIVE")
	if code, body := call(t, "DELETE", nova+"/servers/"+id, tok, nil); code != http.StatusNoContent {
		t.Fatalf("server delete: %d %v", code, body)
	}
	waitStatus(t, nova, tok, id, "")
	_, all := call(t, "GET", neutron+"/ports?network_id="+networkID, tok, nil)
	for _, p := range all["ports"].([]any) {
		if owner := p.(map[string]any)["device_owner"]; owner != "network:dhcp" {
			t.Errorf("port left after its server's deletion: %v", p)
		}
	}
	if code, body := call(t, "DELETE", neutron+"/networks/"+networkID, tok, nil); code != http.StatusNoContent {
		t.Fatalf("network delete: %d %v", code, body)
	}
}

// waitStatus waits for a server's status; "" waits for it to be gone.
func waitStatus(t *testing.T, nova, tok, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		code, body := call(t, "GET", nova+"/servers/"+id, tok, nil)
		if want == "" && code == http.StatusNotFound {
			return nil
		}
		srv, _ := body["server"].(map[string]any)
		if want != "" && srv != nil && srv["status"] == want {
			return srv
		}
		if srv != nil && srv["status"] == "ERROR" || time.Now().After(deadline) {
			t.Fatalf("server %s: %d %v, want status %q", id, code, body, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
