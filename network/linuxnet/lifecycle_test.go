package linuxnet

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/stratuskit/stratus/network"
)

// A restarted backend (same host, same state directory) keeps existing
// guests connected: an open TCP connection survives the resync, DHCP
// keeps its dnsmasq, and the metadata service comes back.
func TestRestartKeepsConnectivity(t *testing.T) {
	md := &fakeMetadata{}
	e := newEnv(t, func(c *Config) { c.Metadata = md })
	sg := e.id()
	must(t, e.b.EnsureSecurityGroup(context.Background(), network.SecurityGroupSpec{ID: sg, Stateful: true, Rules: []network.RuleSpec{
		{ID: "e", Direction: "egress", Ethertype: "IPv4", Protocol: -1},
		{ID: "t", Direction: "ingress", Ethertype: "IPv4", Protocol: 6, PortMin: 7000, PortMax: 7000}}}))
	a := e.network("10.70.0.0/24", true)
	g1, g2 := e.plug(a, 10, sg), e.plug(a, 11, sg)
	g1.dhcp()
	g2.dhcp()
	md.add(a.id, g1.ip.Addr(), "s1")
	listen(t, g2.ns, g2.ip.Addr().String()+":7000")
	var c interface {
		Write([]byte) (int, error)
		Read([]byte) (int, error)
		Close() error
		SetDeadline(time.Time) error
	}
	if !eventually(func() bool {
		conn, err := dial(g1.ns, g2.ip.Addr().String()+":7000")
		if err == nil {
			c = conn
		}
		return err == nil
	}) {
		t.Fatal("no TCP to start with")
	}
	defer c.Close()
	echo := func() bool {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return false
		}
		buf := make([]byte, 4)
		n, err := c.Read(buf)
		return err == nil && string(buf[:n]) == "PING"
	}
	if !echo() {
		t.Fatal("no echo before the restart")
	}
	pid := dnsmasqPID(filepath.Join(e.b.cfg.DHCPDir, a.id))

	// A new process: it knows only the state directory.
	e.start()
	if !echo() {
		t.Fatal("the open connection broke across the restart")
	}
	if got := dnsmasqPID(filepath.Join(e.b.cfg.DHCPDir, a.id)); got != pid || pid == 0 {
		log, _ := os.ReadFile(filepath.Join(e.b.cfg.DHCPDir, a.id, "log"))
		t.Fatalf("dnsmasq pid %d → %d: restarted\n%s", pid, got, log)
	}
	if got, _ := metaGet(g1, netip.Addr{}, nil); got != "s1" {
		t.Fatalf("metadata after the restart: %q", got)
	}
	// A new guest gets its lease from the same dnsmasq, which already
	// holds leases (dnsmasq 2.90 crashed reloading its hosts then).
	g3 := e.plug(a, 12, sg)
	if g3.dhcp(); g3.ip != a.addr(12) || dnsmasqPID(filepath.Join(e.b.cfg.DHCPDir, a.id)) != pid {
		t.Fatalf("a guest plugged after the restart got %s (dnsmasq pid %d)", g3.ip, pid)
	}
	// A new connection is still filtered by the same rules.
	if _, err := dial(g1.ns, g2.ip.Addr().String()+":7001"); err == nil {
		t.Fatal("port 7001 opened by the restart")
	}
	// The service re-ensures everything after a restart: nothing changes.
	_, err := e.b.EnsurePort(context.Background(), g2.port)
	must(t, err)
	if !echo() {
		t.Fatal("re-ensuring a port broke its connection")
	}
}

// leftovers lists what of stratus remains in the test's host: links with
// a stratus alias or a stratus device name, namespaces, nftables tables,
// dnsmasq processes of this test.
func (e *env) leftovers() []string {
	var out []string
	links, err := e.nl.LinkList()
	must(e.t, err)
	for _, l := range links {
		n := l.Attrs().Name
		if strings.HasPrefix(l.Attrs().Alias, aliasPrefix) || strings.HasPrefix(n, "brq") || strings.HasPrefix(n, "tap") || strings.HasPrefix(n, "tq") || n == "br-ex" {
			out = append(out, "link "+n)
		}
	}
	ents, _ := os.ReadDir(e.cfg.NetnsDir)
	for _, ent := range ents {
		out = append(out, "netns "+ent.Name())
	}
	c, err := nftConn(int(e.host))
	must(e.t, err)
	tables, err := c.ListTables()
	must(e.t, err)
	for _, t := range tables {
		out = append(out, "table "+t.Name)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), e.cfg.StateDir) {
			out = append(out, "process "+p)
		}
	}
	return out
}

func (e *env) everything() (a, ext string, rtr network.RouterSpec, sg string) {
	ctx := context.Background()
	sg = e.openGroup()
	ext = e.externalNetwork()
	l := e.network("10.80.0.0/24", false)
	g := e.plug(l, 10, sg)
	g.dhcp()
	rtr = network.RouterSpec{ID: e.id(), ProjectID: "p1", AdminStateUp: true, Metadata: true,
		Gateway: &network.RouterGatewaySpec{NetworkID: ext, PortID: e.id(), MAC: e.mac(), Addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.30/24")},
			NextHops: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, EnableSNAT: true},
		Interfaces:  []network.RouterInterfaceSpec{{PortID: e.id(), NetworkID: l.id, SubnetID: l.subnet, MAC: e.mac(), Addr: l.addr(1)}},
		FloatingIPs: []network.FloatingIPSpec{{ID: "f", Floating: netip.MustParseAddr("203.0.113.31"), Fixed: g.ip.Addr(), PortID: g.port.ID}}}
	must(e.t, e.b.EnsureRouter(ctx, rtr))
	if !eventually(func() bool { return pingFrom(e.host, netip.MustParseAddr("203.0.113.31")) }) {
		e.t.Fatal("the floating IP does not answer")
	}
	inv, err := e.b.Inventory(ctx)
	must(e.t, err)
	if len(inv.Networks) != 2 || len(inv.Ports) != 1 || len(inv.Routers) != 1 || len(inv.DHCP) != 1 || len(inv.SecurityGroups) != 1 {
		e.t.Fatalf("inventory %+v", inv)
	}
	return l.id, ext, rtr, sg
}

// Deleting every object through the Backend leaves nothing behind.
func TestNoLeaks(t *testing.T) {
	e := newEnv(t, func(c *Config) { external(c); c.Metadata = &fakeMetadata{} })
	ctx := context.Background()
	a, ext, rtr, sg := e.everything()
	inv, err := e.b.Inventory(ctx)
	must(t, err)
	must(t, e.b.DeleteRouter(ctx, rtr.ID))
	for _, p := range inv.Ports {
		must(t, e.b.DeletePort(ctx, p))
	}
	must(t, e.b.DeleteDHCP(ctx, a))
	must(t, e.b.DeleteSecurityGroup(ctx, sg))
	must(t, e.b.DeleteNetwork(ctx, a))
	must(t, e.b.DeleteNetwork(ctx, ext))
	if left := e.leftovers(); len(left) > 0 {
		t.Fatalf("left after deleting everything: %v", left)
	}
	specs, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, "specs"))
	if len(specs) != 0 {
		t.Fatalf("specs left: %v", specs)
	}
}

// Cleanup removes what stratus made and nothing else: a bridge, a
// namespace and an nftables table of someone else's survive.
func TestCleanup(t *testing.T) {
	e := newEnv(t, func(c *Config) { external(c); c.Metadata = &fakeMetadata{} })
	must(t, e.nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "virbr0"}}))
	foreignNS := filepath.Join(e.cfg.NetnsDir, "someone-else")
	ns, err := createNS(foreignNS)
	must(t, err)
	ns.Close()
	c, err := nftConn(int(e.host))
	must(t, err)
	c.AddTable(&nftables.Table{Name: "filter", Family: nftables.TableFamilyIPv4})
	must(t, c.Flush())
	e.everything()
	must(t, e.b.Cleanup(context.Background()))
	left := e.leftovers()
	want := []string{"netns someone-else", "table filter"}
	if strings.Join(left, ",") != strings.Join(want, ",") {
		t.Fatalf("after cleanup: %v, want %v", left, want)
	}
	if _, err := e.nl.LinkByName("virbr0"); err != nil {
		t.Fatal("cleanup removed a foreign bridge")
	}
}
