package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestOrchestrationResumesAfterKill creates a stack of servers on slow
// fake hosts, kills the all-in-one with SIGKILL mid-create and restarts it
// on the same data: the stack reaches CREATE_COMPLETE with exactly its
// servers (none made twice), and its delete leaves no server, port or
// network behind.
func TestOrchestrationResumesAfterKill(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	args := []string{"-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake", "-fake-hosts", "2", "-fake-spawn-delay", "2s"}
	p := start(t, args...)
	p.waitLine(t, "stratus: ready")
	rc := openrc(t, data)
	tok := login(t, rc)
	_, body := call(t, "GET", rc["OS_AUTH_URL"]+"/projects?name=admin", tok, nil)
	project := body["projects"].([]any)[0].(map[string]any)["id"].(string)
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	neutron := fmt.Sprintf("http://%s:9696/v2.0", addr)
	heat := fmt.Sprintf("http://%s:8004/v1/%s", addr, project)
	if code, body := call(t, "POST", nova+"/flavors", tok, map[string]any{"flavor": map[string]any{"name": "m1", "vcpus": 1, "ram": 256, "disk": 1}}); code != http.StatusOK {
		t.Fatalf("flavor create: %d %v", code, body)
	}
	uploadImage(t, addr, tok, "tiny", make([]byte, 64<<10))
	server := func(i int) map[string]any {
		return map[string]any{"type": "OS::Nova::Server", "properties": map[string]any{"image": "tiny", "flavor": "m1",
			"networks": []any{map[string]any{"network": map[string]any{"get_resource": "net"}}}}}
	}
	tmpl := map[string]any{"heat_template_version": "2018-08-31", "resources": map[string]any{
		"net":    map[string]any{"type": "OS::Neutron::Net"},
		"subnet": map[string]any{"type": "OS::Neutron::Subnet", "properties": map[string]any{"network": map[string]any{"get_resource": "net"}, "cidr": "10.9.0.0/24"}},
		"s0":     server(0), "s1": server(1), "s2": server(2),
		"after": map[string]any{"type": "OS::Heat::TestResource", "depends_on": []any{"s0", "s1", "s2"}, "properties": map[string]any{"wait_secs": 0.5}},
	}}
	code, body := call(t, "POST", heat+"/stacks", tok, map[string]any{"stack_name": "crash", "template": tmpl, "disable_rollback": false})
	if code != http.StatusCreated {
		t.Fatalf("stack create: %d %v", code, body)
	}
	id := body["stack"].(map[string]any)["id"].(string)
	stackURL := heat + "/stacks/crash/" + id
	// Kill once the servers are building.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := call(t, "GET", nova+"/servers", tok, nil)
		if len(body["servers"].([]any)) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers not building: %v", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, body := call(t, "GET", stackURL, tok, nil); body["stack"].(map[string]any)["stack_status"] != "CREATE_IN_PROGRESS" {
		t.Fatalf("stack before the kill: %v", body["stack"].(map[string]any)["stack_status"])
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p = start(t, args...)
	p.waitLine(t, "stratus: ready")
	tok = login(t, rc)
	waitStack := func(want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, body := call(t, "GET", stackURL, tok, nil)
			st, _ := body["stack"].(map[string]any)
			if code == http.StatusOK && st["stack_status"] == want {
				return
			}
			if code != http.StatusOK || st["stack_status"] != "CREATE_IN_PROGRESS" && st["stack_status"] != "DELETE_IN_PROGRESS" || time.Now().After(deadline) {
				t.Fatalf("stack after restart: %d %v", code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStack("CREATE_COMPLETE")
	_, body = call(t, "GET", nova+"/servers/detail", tok, nil)
	if n := len(body["servers"].([]any)); n != 3 {
		t.Fatalf("%d servers after the resumed create, want 3", n)
	}
	for _, s := range body["servers"].([]any) {
		if st := s.(map[string]any)["status"]; st != "ACTIVE" {
			t.Fatalf("server %v", s)
		}
	}
	if code, _ := call(t, "DELETE", stackURL, tok, nil); code != http.StatusNoContent {
		t.Fatalf("stack delete: %d", code)
	}
	waitStack("DELETE_COMPLETE")
	_, servers := call(t, "GET", nova+"/servers", tok, nil)
	_, ports := call(t, "GET", neutron+"/ports", tok, nil)
	_, nets := call(t, "GET", neutron+"/networks", tok, nil)
	if len(servers["servers"].([]any)) != 0 || len(ports["ports"].([]any)) != 0 || len(nets["networks"].([]any)) != 0 {
		t.Fatalf("left after delete: %v %v %v", servers, ports, nets)
	}
}
