package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

// needLibvirt is needVMHost for a test that can do without the Linux
// dataplane: it reports whether the dataplane may be used (the host has
// none of another Stratus; under CI=true it must be clean).
func needLibvirt(t *testing.T) (guest string, linux bool) {
	t.Helper()
	if os.Getenv("STRATUS_VMTEST") != "1" {
		t.Skip("real-VM test: set STRATUS_VMTEST=1 (make vmtest runs these with -p 1)")
	}
	if left := stratusOnHost(t); len(left) > 0 && os.Getenv("CI") != "true" {
		t.Logf("another Stratus dataplane is on this host (%s): the guest runs without a NIC (-network fake)", strings.Join(left, ", "))
		skip := t.Skipf
		if os.Geteuid() != 0 {
			skip("needs root for libvirt's qemu:///system")
		}
		c, err := libvirt.NewConnect("qemu:///system")
		if err != nil {
			skip("libvirtd is not reachable at qemu:///system (start it with scripts/libvirtd.sh): %v", err)
		}
		_, _ = c.Close()
		guest, _ := filepath.Abs(filepath.Join("..", "..", ".cache", "guest"))
		if _, err := os.Stat(filepath.Join(guest, "root.img")); err != nil {
			skip("the tiny guest is not built (make guest): %v", err)
		}
		return guest, false
	}
	return needVMHost(t), true
}

// TestVMMeteringCounters boots the tiny guest on libvirt, on the Linux
// dataplane when the host has no other, with metering polling every 2
// seconds: its cpu counter, its root disk's read counters and its NIC's
// packet counters (DHCP and the metadata fetch move packets) are sampled,
// grow, and are served by the Gnocchi API and Prometheus.
func TestVMMeteringCounters(t *testing.T) {
	guest, linux := needLibvirt(t)
	network := "fake"
	cidr := "10.99.0.0/24"
	if linux {
		network, cidr = "linux", guestSubnet(t).String()
	}
	data := vmDataDir(t)
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-guest", guest, "-hypervisor", "libvirt", "-virt-type", "qemu", "-network", network,
		"-metering-interval", "2s")
	var ids []string
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		destroyDomains(t, ids)
		if linux {
			cleanupDataplane(t, data)
		}
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
	networkID := createNetwork(t, addr, tok, "guests", cidr)
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
		// Without a NIC the guest gives up on DHCP and lists its disks.
		if strings.Contains(out, "stratus-guest: metadata ok") || !linux && strings.Contains(out, "stratus-guest: disks=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest did not come up; console:\n%s", out)
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
	cpu0 := -1.0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if cpu0 = latest("stratus_cpu", id); cpu0 > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cpu sample of %s", id)
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
	var disks []map[string]any
	get(gnocchi+"/resource/instance_disk?filter=instance_id%3D"+id, &disks)
	if len(disks) == 0 {
		t.Fatalf("no disk resource of %s", id)
	}
	disk := disks[0]["id"].(string)
	if v := latest("stratus_disk_device_read_bytes", disk); v <= 0 {
		t.Errorf("disk %s read bytes: %v", disk, v)
	}
	nic, packets := "", 0.0
	if linux {
		var nics []map[string]any
		get(gnocchi+"/resource/instance_network_interface?filter=instance_id%3D"+id, &nics)
		if len(nics) != 1 {
			t.Fatalf("NIC resources of %s: %v", id, nics)
		}
		nic = nics[0]["id"].(string)
		get(gnocchi+"/resource/generic/"+nic+"/metric/network.incoming.bytes/measures?granularity=300&aggregation=max", &ms)
		if len(ms) == 0 || ms[len(ms)-1][2].(float64) <= 0 {
			t.Errorf("incoming bytes: %v", ms)
		}
		if packets = latest("stratus_network_outgoing_packets", nic); packets <= 0 {
			t.Errorf("outgoing packets: %v", packets)
		}
	}
	t.Logf("guest %s: cpu %.0f ns; disk %s: %.0f bytes read; NIC %q: %.0f packets out", id, latest("stratus_cpu", id),
		disk, latest("stratus_disk_device_read_bytes", disk), nic, packets)
	if code, body := call(t, "DELETE", nova+"/servers/"+id, tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %v", code, body)
	}
	waitStatus(t, nova, tok, id, "")
	if code, body := call(t, "DELETE", fmt.Sprintf("http://%s:9696/v2.0/networks/%s", addr, networkID), tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete network: %d %v", code, body)
	}
}
