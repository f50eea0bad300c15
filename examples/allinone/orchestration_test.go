package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestOrchestrationResourceTypes creates, through the Heat API, one of each
// type the three-tier e2e does not use (key pair, flavor, server group,
// security group rule, floating IP association, Swift container), checks
// each in its own service, and checks that the stack's delete removes them.
func TestOrchestrationResourceTypes(t *testing.T) {
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake")
	p.waitLine(t, "stratus: ready")
	rc := openrc(t, data)
	tok := login(t, rc)
	_, body := call(t, "GET", rc["OS_AUTH_URL"]+"/projects?name=admin", tok, nil)
	project := body["projects"].([]any)[0].(map[string]any)["id"].(string)
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	neutron := fmt.Sprintf("http://%s:9696/v2.0", addr)
	swift := fmt.Sprintf("http://%s:8080/v1/AUTH_%s", addr, project)
	heat := fmt.Sprintf("http://%s:8004/v1/%s", addr, project)
	if code, body := call(t, "POST", neutron+"/networks", tok, map[string]any{"network": map[string]any{"name": "ext", "router:external": true}}); code != http.StatusCreated {
		t.Fatalf("external network: %d %v", code, body)
	} else {
		ext := body["network"].(map[string]any)["id"].(string)
		call(t, "POST", neutron+"/subnets", tok, map[string]any{"subnet": map[string]any{"network_id": ext, "ip_version": 4, "cidr": "172.30.0.0/24"}})
	}
	r := func(typ string, props map[string]any) map[string]any {
		return map[string]any{"type": typ, "properties": props}
	}
	get := func(name string) map[string]any { return map[string]any{"get_resource": name} }
	tmpl := map[string]any{"heat_template_version": "2018-08-31", "resources": map[string]any{
		"key":    r("OS::Nova::KeyPair", map[string]any{"name": "heat-key", "save_private_key": true}),
		"flavor": r("OS::Nova::Flavor", map[string]any{"ram": 128, "vcpus": 1, "disk": 1, "extra_specs": map[string]any{"hw:cpu_policy": "shared"}}),
		"group":  r("OS::Nova::ServerGroup", map[string]any{"policies": []any{"affinity"}}),
		"sg":     r("OS::Neutron::SecurityGroup", map[string]any{"description": "web"}),
		"rule":   r("OS::Neutron::SecurityGroupRule", map[string]any{"security_group": get("sg"), "protocol": "tcp", "port_range_min": 443, "port_range_max": 443}),
		"net":    r("OS::Neutron::Net", map[string]any{}),
		"subnet": r("OS::Neutron::Subnet", map[string]any{"network": get("net"), "cidr": "10.7.0.0/24"}),
		"router": r("OS::Neutron::Router", map[string]any{"external_gateway_info": map[string]any{"network": "ext"}}),
		"rif":    r("OS::Neutron::RouterInterface", map[string]any{"router": get("router"), "subnet": get("subnet")}),
		"port":   r("OS::Neutron::Port", map[string]any{"network": get("net"), "fixed_ips": []any{map[string]any{"subnet": get("subnet"), "ip_address": "10.7.0.50"}}}),
		"fip":    map[string]any{"type": "OS::Neutron::FloatingIP", "depends_on": "rif", "properties": map[string]any{"floating_network": "ext"}},
		"assoc":  r("OS::Neutron::FloatingIPAssociation", map[string]any{"floatingip_id": get("fip"), "port_id": get("port")}),
		"bucket": r("OS::Swift::Container", map[string]any{"X-Container-Meta": map[string]any{"tier": "web"}, "PurgeOnDelete": true}),
	}, "outputs": map[string]any{
		"url":     map[string]any{"value": map[string]any{"get_attr": []any{"bucket", "RootURL"}}},
		"pub":     map[string]any{"value": map[string]any{"get_attr": []any{"key", "public_key"}}},
		"fixed":   map[string]any{"value": map[string]any{"get_attr": []any{"port", "fixed_ips", 0, "ip_address"}}},
		"fipaddr": map[string]any{"value": map[string]any{"get_attr": []any{"fip", "floating_ip_address"}}},
	}}
	code, body := call(t, "POST", heat+"/stacks", tok, map[string]any{"stack_name": "types", "template": tmpl})
	if code != http.StatusCreated {
		t.Fatalf("stack create: %d %v", code, body)
	}
	id := body["stack"].(map[string]any)["id"].(string)
	stackURL := heat + "/stacks/types/" + id
	var stack map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := call(t, "GET", stackURL, tok, nil)
		stack = body["stack"].(map[string]any)
		if stack["stack_status"] != "CREATE_IN_PROGRESS" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stack still in progress")
		}
	}
	if stack["stack_status"] != "CREATE_COMPLETE" {
		_, evs := call(t, "GET", stackURL+"/events", tok, nil)
		t.Fatalf("stack: %v %v; events %v", stack["stack_status"], stack["stack_status_reason"], evs)
	}
	outs := map[string]any{}
	for _, o := range stack["outputs"].([]any) {
		outs[o.(map[string]any)["output_key"].(string)] = o.(map[string]any)["output_value"]
	}
	_, res := call(t, "GET", stackURL+"/resources", tok, nil)
	phys := map[string]string{}
	for _, x := range res["resources"].([]any) {
		m := x.(map[string]any)
		phys[m["resource_name"].(string)] = m["physical_resource_id"].(string)
	}
	// Each in its own service.
	if _, kp := call(t, "GET", nova+"/os-keypairs/heat-key", tok, nil); kp["keypair"].(map[string]any)["public_key"] != outs["pub"] {
		t.Fatalf("keypair %v vs output %v", kp, outs["pub"])
	}
	if code, fl := call(t, "GET", nova+"/flavors/"+phys["flavor"]+"/os-extra_specs", tok, nil); code != http.StatusOK || fl["extra_specs"].(map[string]any)["hw:cpu_policy"] != "shared" {
		t.Fatalf("flavor: %d %v", code, fl)
	}
	if code, g := call(t, "GET", nova+"/os-server-groups/"+phys["group"], tok, nil); code != http.StatusOK {
		t.Fatalf("server group: %d %v", code, g)
	}
	if _, rule := call(t, "GET", neutron+"/security-group-rules/"+phys["rule"], tok, nil); rule["security_group_rule"].(map[string]any)["port_range_min"] != float64(443) ||
		rule["security_group_rule"].(map[string]any)["security_group_id"] != phys["sg"] {
		t.Fatalf("rule %v", rule)
	}
	if _, fip := call(t, "GET", neutron+"/floatingips/"+phys["fip"], tok, nil); fip["floatingip"].(map[string]any)["port_id"] != phys["port"] ||
		fip["floatingip"].(map[string]any)["fixed_ip_address"] != "10.7.0.50" || fip["floatingip"].(map[string]any)["floating_ip_address"] != outs["fipaddr"] {
		t.Fatalf("floating ip %v", fip)
	}
	if outs["fixed"] != "10.7.0.50" || outs["url"] != swift+"/"+phys["bucket"] {
		t.Fatalf("outputs %v", outs)
	}
	req, _ := http.NewRequest("HEAD", swift+"/"+phys["bucket"], nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Container-Meta-Tier") != "web" {
		t.Fatalf("container: %v %v %v", resp.Status, resp.Header, err)
	}
	resp.Body.Close()
	// An object in the container: PurgeOnDelete removes it with the stack.
	req, _ = http.NewRequest("PUT", swift+"/"+phys["bucket"]+"/obj", strings.NewReader("x"))
	req.Header.Set("X-Auth-Token", tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("object put: %v %v", resp, err)
	}
	resp.Body.Close()

	if code, _ := call(t, "DELETE", stackURL, tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := call(t, "GET", stackURL, tok, nil)
		if st := body["stack"].(map[string]any)["stack_status"]; st == "DELETE_COMPLETE" {
			break
		} else if st != "DELETE_IN_PROGRESS" || time.Now().After(deadline) {
			t.Fatalf("delete: %v %v", st, body["stack"].(map[string]any)["stack_status_reason"])
		}
	}
	for what, url := range map[string]string{"keypair": nova + "/os-keypairs/heat-key", "flavor": nova + "/flavors/" + phys["flavor"],
		"group": nova + "/os-server-groups/" + phys["group"], "sg": neutron + "/security-groups/" + phys["sg"],
		"fip": neutron + "/floatingips/" + phys["fip"], "net": neutron + "/networks/" + phys["net"], "router": neutron + "/routers/" + phys["router"]} {
		if code, body := call(t, "GET", url, tok, nil); code != http.StatusNotFound {
			t.Errorf("%s left after delete: %d %v", what, code, body)
		}
	}
	req, _ = http.NewRequest("HEAD", swift+"/"+phys["bucket"], nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("container left after delete: %v", resp.Status)
	}
}

// TestOrchestrationWebImage makes an OS::Glance::WebImage from an allowed
// host (the image ends active with the data) and refuses one from a host
// the image service's web-download allow-list does not name.
func TestOrchestrationWebImage(t *testing.T) {
	payload := bytes.Repeat([]byte("stratus"), 4096)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(payload) }))
	defer web.Close()
	host := strings.TrimPrefix(web.URL, "http://")
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-log-level", "warn", "-hypervisor", "fake", "-image-web-download-hosts", host)
	p.waitLine(t, "stratus: ready")
	rc := openrc(t, data)
	tok := login(t, rc)
	_, body := call(t, "GET", rc["OS_AUTH_URL"]+"/projects?name=admin", tok, nil)
	project := body["projects"].([]any)[0].(map[string]any)["id"].(string)
	heat := fmt.Sprintf("http://%s:8004/v1/%s", addr, project)
	glance := fmt.Sprintf("http://%s:9292/v2", addr)
	mk := func(name, location string) string {
		tmpl := map[string]any{"heat_template_version": "2018-08-31", "resources": map[string]any{
			"img": map[string]any{"type": "OS::Glance::WebImage", "properties": map[string]any{"location": location, "disk_format": "raw", "name": name}}},
			"outputs": map[string]any{"status": map[string]any{"value": map[string]any{"get_attr": []any{"img", "status"}}}}}
		code, body := call(t, "POST", heat+"/stacks", tok, map[string]any{"stack_name": name, "template": tmpl, "disable_rollback": true})
		if code != http.StatusCreated {
			t.Fatalf("stack create: %d %v", code, body)
		}
		url := heat + "/stacks/" + name + "/" + body["stack"].(map[string]any)["id"].(string)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_, body := call(t, "GET", url, tok, nil)
			st := body["stack"].(map[string]any)
			if s := st["stack_status"].(string); !strings.HasSuffix(s, "IN_PROGRESS") {
				return s + " " + fmt.Sprint(st["stack_status_reason"]) + " " + fmt.Sprint(st["outputs"])
			}
			if time.Now().After(deadline) {
				t.Fatalf("stack %s: %v", name, st)
			}
		}
	}
	if got := mk("good", web.URL+"/disk.raw"); !strings.HasPrefix(got, "CREATE_COMPLETE") || !strings.Contains(got, "active") {
		t.Fatalf("allowed host: %s", got)
	}
	_, imgs := call(t, "GET", glance+"/images?name=good", tok, nil)
	if l := imgs["images"].([]any); len(l) != 1 || l[0].(map[string]any)["size"] != float64(len(payload)) {
		t.Fatalf("images %v", imgs)
	}
	if got := mk("bad", "http://198.51.100.7/disk.raw"); !strings.HasPrefix(got, "CREATE_FAILED") || !strings.Contains(got, "not allowed for web-download") {
		t.Fatalf("host not allowed: %s", got)
	}
	if _, imgs := call(t, "GET", glance+"/images?name=bad", tok, nil); len(imgs["images"].([]any)) != 0 {
		t.Fatalf("refused import left an image: %v", imgs)
	}
}
