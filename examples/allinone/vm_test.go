//go:build cgo

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"libvirt.org/go/libvirt"

	"github.com/stratuskit/stratus/network/linuxnet"
)

// Real guests on a real network: the all-in-one with -hypervisor libvirt
// and -network linux. These tests run when STRATUS_VMTEST=1 (make vmtest,
// one package at a time): under CI=true a missing prerequisite fails them;
// elsewhere they skip with the reason.
//
// QEMU runs where libvirtd runs, in the host's network namespace, and
// opens the port's tap there: so, unlike network/linuxnet's own tests, the
// dataplane's "host" is the real host. The test refuses to run beside
// another Stratus dataplane on the host (they would share the nftables
// tables), uses only the devices and namespaces its cloud creates (named
// after its own ids), no external network, no uplink, and removes
// everything at the end (linuxnet's Cleanup, then a leak check).
func needVMHost(t *testing.T) string {
	t.Helper()
	if os.Getenv("STRATUS_VMTEST") != "1" {
		t.Skip("real-VM test: set STRATUS_VMTEST=1 (make vmtest runs these with -p 1)")
	}
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root: the Linux dataplane creates bridges, taps and namespaces")
	}
	c, err := libvirt.NewConnect("qemu:///system")
	if err != nil {
		skip("libvirtd is not reachable at qemu:///system (start it with scripts/libvirtd.sh): %v", err)
	}
	if c != nil {
		_, _ = c.Close()
	}
	guest, err := filepath.Abs(filepath.Join("..", "..", ".cache", "guest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(guest, "root.img")); err != nil {
		skip("the tiny guest is not built (make guest): %v", err)
	}
	if left := stratusOnHost(t); len(left) > 0 {
		skip("another Stratus dataplane is on this host (%s): the test would share its nftables tables", strings.Join(left, ", "))
	}
	return guest
}

// stratusOnHost lists what a Stratus dataplane has on the host: nftables
// tables, links marked "stratus:", router and DHCP namespaces.
func stratusOnHost(t *testing.T) []string {
	t.Helper()
	var found []string
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == "stratus" || strings.HasPrefix(tb.Name, "stratus-") {
			found = append(found, "nftables table "+tb.Name)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Alias, "stratus:") {
			found = append(found, "link "+l.Attrs().Name)
		}
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "qdhcp-") || strings.HasPrefix(e.Name(), "qrouter-") {
			found = append(found, "namespace "+e.Name())
		}
	}
	return found
}

// guestSubnet returns a documentation range that no host address or route
// overlaps: the host answers ARP for its own addresses on any interface,
// the guests' bridge included, so a guest network on the host's own subnet
// would not reach its DHCP namespace.
func guestSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var used []netip.Prefix
	for _, r := range routes {
		if r.Dst != nil {
			if p, ok := netipx(r.Dst); ok && p.Bits() > 0 {
				used = append(used, p)
			}
		}
	}
	for _, a := range addrs {
		if p, ok := netipx(a.IPNet); ok {
			used = append(used, p)
		}
	}
candidates:
	for _, c := range []string{"198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"} {
		p := netip.MustParsePrefix(c)
		for _, u := range used {
			if u.Overlaps(p) {
				continue candidates
			}
		}
		return p
	}
	t.Fatalf("every documentation range is on the host: %v", used)
	return netip.Prefix{}
}

func netipx(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits).Masked(), true
}

// vmDataDir is a data directory QEMU's user can reach, removed at the end.
func vmDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "stratus-allinone-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// TestVMMetadataOnLinuxNetwork boots two tiny guests through the compute
// API on one network of the Linux dataplane, without config drives: each
// gets its port's fixed IP by DHCP and reads its own server's name from
// the metadata service, first in the network's DHCP namespace (reached by
// the option 121 route, as the network has no router), then, rebooted
// after a router joined the subnet, in the router's namespace.
func TestVMMetadataOnLinuxNetwork(t *testing.T) {
	guest := needVMHost(t)
	subnet := guestSubnet(t)
	began := time.Now()
	data := vmDataDir(t)
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-guest", guest, "-hypervisor", "libvirt", "-virt-type", "qemu", "-network", "linux")
	// Whatever happens, the host is left as it was.
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
	neutron := fmt.Sprintf("http://%s:9696/v2.0", addr)

	code, body := call(t, "GET", fmt.Sprintf("http://%s:9292/v2/images?name=stratus-tiny", addr), tok, nil)
	imgs, _ := body["images"].([]any)
	if code != http.StatusOK || len(imgs) != 1 {
		t.Fatalf("image stratus-tiny: %d %v", code, body)
	}
	imageID := imgs[0].(map[string]any)["id"].(string)
	code, body = call(t, "POST", nova+"/flavors", tok, map[string]any{"flavor": map[string]any{"name": "tiny", "vcpus": 1, "ram": 256, "disk": 1}})
	if code != http.StatusOK {
		t.Fatalf("flavor create: %d %v", code, body)
	}
	flavor := body["flavor"].(map[string]any)["id"].(string)
	networkID := createNetwork(t, addr, tok, "guests", subnet.String())

	names := []string{"guest-a", "guest-b"}
	byName := map[string]string{}
	for _, name := range names {
		code, body := call(t, "POST", nova+"/servers", tok, map[string]any{"server": map[string]any{
			"name": name, "imageRef": imageID, "flavorRef": flavor, "networks": []map[string]string{{"uuid": networkID}}}})
		if code != http.StatusAccepted {
			t.Fatalf("server create %s: %d %v", name, code, body)
		}
		byName[name] = body["server"].(map[string]any)["id"].(string)
		ids = append(ids, byName[name])
	}
	fixedIP := map[string]string{}
	for _, name := range names {
		srv := waitStatus(t, nova, tok, byName[name], "ACTIVE")
		if cd := srv["config_drive"]; cd != "" {
			t.Fatalf("%s has config_drive=%v: the metadata service would not be exercised", name, cd)
		}
		addrs, _ := srv["addresses"].(map[string]any)["guests"].([]any)
		if len(addrs) != 1 {
			t.Fatalf("%s addresses: %v", name, srv["addresses"])
		}
		fixedIP[name] = addrs[0].(map[string]any)["addr"].(string)
	}
	if fixedIP[names[0]] == fixedIP[names[1]] {
		t.Fatalf("both guests have %s", fixedIP[names[0]])
	}
	deadline := time.Now().Add(45 * time.Second)
	for _, name := range names {
		want := []string{"stratus-guest: ip=" + fixedIP[name] + "\n", "stratus-guest: metadata ok name=" + name + "\n"}
		for {
			out := consoleOutput(t, nova, tok, byName[name])
			if strings.Contains(out, want[0]) && strings.Contains(out, want[1]) {
				break
			}
			if time.Now().After(deadline) || strings.Contains(out, "stratus-guest: disks=") {
				t.Fatalf("%s (%s): console lacks %q; console:\n%s\nstderr:\n%s", name, fixedIP[name], want, out, p.stderr)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("two guests up with their addresses and metadata %v after the start", time.Since(began).Round(time.Millisecond))

	// A router on the subnet: DHCP stops handing out the metadata route,
	// and the guests, rebooted, reach the metadata service in the router's
	// namespace through their default gateway.
	_, body = call(t, "GET", neutron+"/networks/"+networkID, tok, nil)
	subnetID := body["network"].(map[string]any)["subnets"].([]any)[0].(string)
	code, body = call(t, "POST", neutron+"/routers", tok, map[string]any{"router": map[string]any{"name": "r"}})
	if code != http.StatusCreated {
		t.Fatalf("router create: %d %v", code, body)
	}
	routerID := body["router"].(map[string]any)["id"].(string)
	if code, body := call(t, "PUT", neutron+"/routers/"+routerID+"/add_router_interface", tok, map[string]any{"subnet_id": subnetID}); code != http.StatusOK {
		t.Fatalf("add router interface: %d %v", code, body)
	}
	run, err := runDir(data)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		opts, err := os.ReadFile(filepath.Join(run, "dhcp", networkID, "opts.d", "stratus"))
		if err == nil && !strings.Contains(string(opts), linuxnet.MetadataAddr.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DHCP still routes the metadata service past the router: %s %v", opts, err)
		}
	}
	for _, name := range names {
		if code, body := call(t, "POST", nova+"/servers/"+byName[name]+"/action", tok, map[string]any{"reboot": map[string]any{"type": "HARD"}}); code != http.StatusAccepted {
			t.Fatalf("reboot %s: %d %v", name, code, body)
		}
	}
	deadline = time.Now().Add(45 * time.Second)
	for _, name := range names {
		want := "stratus-guest: metadata ok name=" + name + "\n"
		for {
			out := consoleOutput(t, nova, tok, byName[name])
			if strings.Count(out, want) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after its reboot behind the router: console lacks a second %q; console:\n%s\nstderr:\n%s", name, want, out, p.stderr)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("both guests read their metadata through the router %v after the start", time.Since(began).Round(time.Millisecond))

	// Deleting everything through the APIs removes the guests' devices
	// and the network's namespace.
	for _, name := range names {
		if code, body := call(t, "DELETE", nova+"/servers/"+byName[name], tok, nil); code != http.StatusNoContent {
			t.Fatalf("delete %s: %d %v", name, code, body)
		}
	}
	for _, name := range names {
		waitStatus(t, nova, tok, byName[name], "")
	}
	if code, body := call(t, "PUT", neutron+"/routers/"+routerID+"/remove_router_interface", tok, map[string]any{"subnet_id": subnetID}); code != http.StatusOK {
		t.Fatalf("remove router interface: %d %v", code, body)
	}
	if code, body := call(t, "DELETE", neutron+"/routers/"+routerID, tok, nil); code != http.StatusNoContent {
		t.Fatalf("delete router: %d %v", code, body)
	}
	// The servers took their ports with them.
	if code, body := call(t, "DELETE", neutron+"/networks/"+networkID, tok, nil); code != http.StatusNoContent {
		_, ports := call(t, "GET", neutron+"/ports?network_id="+networkID, tok, nil)
		t.Fatalf("delete network: %d %v; its ports: %v", code, body, ports)
	}
	// The dataplane converges on its own (its reconciler).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, nsErr := os.Stat("/run/netns/qdhcp-" + networkID)
		_, rtrErr := os.Stat("/run/netns/qrouter-" + routerID)
		_, brErr := netlink.LinkByName(linuxnet.BridgeName(networkID))
		if os.IsNotExist(nsErr) && os.IsNotExist(rtrErr) && brErr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the deletions: namespace qdhcp-%s: %v; namespace qrouter-%s: %v; bridge %s: %v",
				networkID, nsErr, routerID, rtrErr, linuxnet.BridgeName(networkID), brErr)
		}
	}
}

func consoleOutput(t *testing.T, nova, tok, id string) string {
	t.Helper()
	code, body := call(t, "POST", nova+"/servers/"+id+"/action", tok, map[string]any{"os-getConsoleOutput": map[string]any{}})
	if code != http.StatusOK {
		t.Fatalf("console output of %s: %d %v", id, code, body)
	}
	out, _ := body["output"].(string)
	return out
}

// destroyDomains removes the domains of servers a failed test left (a
// passing one deleted them through the API).
func destroyDomains(t *testing.T, ids []string) {
	t.Helper()
	c, err := libvirt.NewConnect("qemu:///system")
	if err != nil {
		t.Errorf("libvirt: %v", err)
		return
	}
	defer c.Close()
	for _, id := range ids {
		dom, err := c.LookupDomainByName("stratus-" + id)
		if err != nil {
			continue
		}
		_ = dom.Destroy()
		_ = dom.UndefineFlags(libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_NVRAM)
		_ = dom.Free()
		t.Logf("destroyed the domain of server %s", id)
	}
}

// cleanupDataplane removes everything the all-in-one's dataplane made
// (its processes, namespaces, links and tables), and checks that nothing
// of Stratus is left on the host.
func cleanupDataplane(t *testing.T, data string) {
	t.Helper()
	b, err := linuxBackend(Config{DataDir: data}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Errorf("reopen the dataplane for cleanup: %v", err)
		return
	}
	lb := b.(*linuxnet.Backend)
	if err := lb.Cleanup(context.Background()); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	_ = lb.Close()
	if run, err := runDir(data); err == nil {
		_ = os.RemoveAll(run)
		_ = os.Remove(filepath.Dir(run)) // only when empty
	}
	if left := stratusOnHost(t); len(left) > 0 {
		t.Errorf("left on the host after cleanup: %s", strings.Join(left, ", "))
	}
}
