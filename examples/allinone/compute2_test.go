package main

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestComputeMovesAfterKill resizes one server and cold-migrates another
// on slow fake hosts, kills the all-in-one with SIGKILL in the middle of
// both, restarts it on the same data: both moves finish (VERIFY_RESIZE),
// confirm and revert work, and the hosts' usage, the quota and the ports'
// bindings add up exactly, with nothing left of the other claims.
func TestComputeMovesAfterKill(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	args := []string{"-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake", "-fake-hosts", "3", "-fake-move-delay", "3s"}
	p := start(t, args...)
	p.waitLine(t, "stratus: ready")
	rc := openrc(t, data)
	tok := login(t, rc)
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	neutron := fmt.Sprintf("http://%s:9696/v2.0", addr)
	small, big := createFlavor(t, nova, tok, "m1", 1), createFlavor(t, nova, tok, "m2", 2)
	imageID := uploadImage(t, addr, tok, "tiny", make([]byte, 64<<10))
	networkID := createNetwork(t, addr, tok, "private", "10.0.0.0/24")
	var ids []string
	for _, n := range []string{"resized", "migrated"} {
		ids = append(ids, createServer(t, nova, tok, n, imageID, small, networkID))
	}
	before := map[string]any{}
	for _, id := range ids {
		before[id] = waitStatus(t, nova, tok, id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
	}
	action := func(id string, body map[string]any, want int) {
		t.Helper()
		if code, out := call(t, "POST", nova+"/servers/"+id+"/action", tok, body); code != want {
			t.Fatalf("action %v on %s: %d %v", body, id, code, out)
		}
	}
	action(ids[0], map[string]any{"resize": map[string]any{"flavorRef": big}}, http.StatusAccepted)
	action(ids[1], map[string]any{"migrate": nil}, http.StatusAccepted)
	time.Sleep(700 * time.Millisecond)
	for _, id := range ids {
		if _, body := call(t, "GET", nova+"/servers/"+id, tok, nil); body["server"].(map[string]any)["status"] != "RESIZE" {
			t.Fatalf("server %s not moving before the kill: %v", id, body["server"].(map[string]any)["status"])
		}
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p = start(t, args...)
	p.waitLine(t, "stratus: ready")
	tok = login(t, rc)
	for _, id := range ids {
		waitStatus(t, nova, tok, id, "VERIFY_RESIZE")
	}
	action(ids[0], map[string]any{"confirmResize": nil}, http.StatusNoContent)
	action(ids[1], map[string]any{"revertResize": nil}, http.StatusAccepted)
	after := map[string]any{}
	for _, id := range ids {
		after[id] = waitStatus(t, nova, tok, id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
	}
	if after[ids[1]] != before[ids[1]] {
		t.Errorf("reverted migration: on %v, was on %v", after[ids[1]], before[ids[1]])
	}
	// Usage: 2 + 1 vCPUs on the hosts the servers are on, nothing elsewhere.
	_, body := call(t, "GET", nova+"/os-hypervisors/detail", tok, nil)
	used := map[string]float64{}
	for _, h := range body["hypervisors"].([]any) {
		hm := h.(map[string]any)
		used[hm["hypervisor_hostname"].(string)] = hm["vcpus_used"].(float64)
	}
	want := map[string]float64{"host1": 0, "host2": 0, "host3": 0}
	want[after[ids[0]].(string)] += 2
	want[after[ids[1]].(string)]++
	for h, n := range want {
		if used[h] != n {
			t.Errorf("host %s uses %v vCPUs, want %v (all: %v)", h, used[h], n, used)
		}
	}
	_, body = call(t, "GET", nova+"/limits", tok, nil)
	if abs := body["limits"].(map[string]any)["absolute"].(map[string]any); abs["totalCoresUsed"] != float64(3) || abs["totalInstancesUsed"] != float64(2) {
		t.Errorf("limits after the moves: %v", abs)
	}
	for _, id := range ids {
		_, ports := call(t, "GET", neutron+"/ports?device_id="+id, tok, nil)
		pl := ports["ports"].([]any)
		if len(pl) != 1 || pl[0].(map[string]any)["binding:host_id"] != after[id] {
			t.Errorf("ports of %s: %v, want one bound to %v", id, pl, after[id])
		}
	}
	_, body = call(t, "GET", nova+"/os-migrations", tok, nil)
	status := map[string]string{}
	for _, m := range body["migrations"].([]any) {
		mm := m.(map[string]any)
		status[mm["instance_uuid"].(string)] = mm["status"].(string)
	}
	if status[ids[0]] != "confirmed" || status[ids[1]] != "reverted" {
		t.Errorf("migrations %v", status)
	}
	p.stop(t, syscall.SIGTERM)
}
