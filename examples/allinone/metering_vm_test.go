package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVMMeteringCounters boots the tiny guest on libvirt and the Linux
// dataplane with metering polling every 2 seconds: its cpu counter and its
// NIC's counters (DHCP and the metadata fetch move packets) are sampled,
// grow between polls, and are served by the Gnocchi API and Prometheus.
func TestVMMeteringCounters(t *testing.T) {
	guest := needVMHost(t)
	subnet := guestSubnet(t)
	data := vmDataDir(t)
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-guest", guest, "-hypervisor", "libvirt", "-virt-type", "qemu", "-network", "linux",
		"-metering-interval", "2s")
	var ids []string
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		destroyDomains(t, ids)
		cleanupDataplane(t, data)
	})
	p.waitLine(t, "stratus: ready")
	tok := login(t, openrc(t, data))
	nova := fmt.Sprintf("http://%s:8774/v2.1", addr)
	gnocchi := fmt.Sprintf("http://%s:8777/v1", addr)

	code, body := call(t, "GET", fmt.Sprintf("http://%s:9292/v2/images?name=stratus-tiny", addr), tok, nil)
	imgs, _ := body["images"].([]any)
	if code != http.StatusOK || len(imgs) != 1 {
		t.Fatalf("image stratus-tiny: %d %v", code, body)
	}
	code, body = call(t, "POST", nova+"/flavors", tok, map[string]any{"flavor": map[string]any{"name": "tiny", "vcpus": 1, "ram": 256, "disk": 1}})
	if code != http.StatusOK {
		t.Fatalf("flavor create: %d %v", code, body)
	}
	flavor := body["flavor"].(map[string]any)["id"].(string)
	networkID := createNetwork(t, addr, tok, "guests", subnet.String())
	code, body = call(t, "POST", nova+"/servers", tok, map[string]any{"server": map[string]any{
		"name": "metered", "imageRef": imgs[0].(map[string]any)["id"], "flavorRef": flavor, "networks": []map[string]string{{"uuid": networkID}}}})
	if code != http.StatusAccepted {
		t.Fatalf("server create: %d %v", code, body)
	}
	id := body["server"].(map[string]any)["id"].(string)
	ids = append(ids, id)
	waitStatus(t, nova, tok, id, "ACTIVE")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		out := consoleOutput(t, nova, tok, id)
		if strings.Contains(out, "stratus-guest: metadata ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest did not fetch its metadata; console:\n%s", out)
		}
	}

	get := func(url string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, v) != nil {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
		}
	}
	// The newest values, from Prometheus.
	latest := func(family, resource string) float64 {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://%s:9180/metrics", addr))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, family+`{resource_id="`+resource+`"`) {
				v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				return v
			}
		}
		return -1
	}
	var nic string
	var cpu0, rx0 float64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var nics []map[string]any
		get(gnocchi+"/search/resource/instance_network_interface?filter=instance_id%3D"+id, &nics)
		if len(nics) == 1 {
			nic = nics[0]["id"].(string)
			cpu0, rx0 = latest("stratus_cpu", id), latest("stratus_network_outgoing_packets", nic)
			if cpu0 > 0 && rx0 > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cpu or NIC samples: nics %v, cpu %v, packets %v", nics, cpu0, rx0)
		}
	}
	// The guest keeps running: its cpu counter grows by the next poll.
	for deadline := time.Now().Add(20 * time.Second); latest("stratus_cpu", id) <= cpu0; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cpu stayed at %v ns", cpu0)
		}
	}
	var ms [][3]any
	get(gnocchi+"/resource/generic/"+id+"/metric/cpu/measures?granularity=300&aggregation=count", &ms)
	if len(ms) == 0 || ms[len(ms)-1][2].(float64) < 2 {
		t.Errorf("cpu samples: %v", ms)
	}
	get(gnocchi+"/resource/generic/"+nic+"/metric/network.incoming.bytes/measures?granularity=300&aggregation=max", &ms)
	if len(ms) == 0 || ms[len(ms)-1][2].(float64) <= 0 {
		t.Errorf("incoming bytes: %v", ms)
	}
	t.Logf("guest %s: cpu %.0f ns, NIC %s: %.0f packets out", id, latest("stratus_cpu", id), nic, latest("stratus_network_outgoing_packets", nic))
	if code, body := call(t, "DELETE", nova+"/servers/"+id, tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, body)
	}
	waitStatus(t, nova, tok, id, "")
	if code, body := call(t, "DELETE", fmt.Sprintf("http://%s:9696/v2.0/networks/%s", addr, networkID), tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete network: %d %v", code, body)
	}
}
