package linuxnet

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/stratuskit/stratus/network"
)

// requireRoot skips outside CI when not root; CI (CI=true, as root) runs
// every test.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("linuxnet tests need root, and CI runs as root")
		}
		t.Skip("linuxnet tests need root (they create network namespaces); run as root or in CI")
	}
	for _, bin := range []string{"dnsmasq", "ping", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (make deps-test installs it)", bin)
			}
			t.Skipf("%s is missing: apt-get install nftables iputils-ping dnsmasq-base busybox-static", bin)
		}
	}
}

// env is one test's world: a fresh namespace playing the host, a state
// directory, and the namespaces of its guests, all removed at the end.
// Nothing touches the real host's network.
type env struct {
	t      testing.TB
	dir    string
	host   netns.NsHandle
	nl     *netlink.Handle
	cfg    Config
	b      *Backend
	ids    atomic.Int64
	prefix string
}

func newEnv(t testing.TB, mod func(*Config)) *env {
	requireRoot(t)
	dir, err := os.MkdirTemp("", "linuxnet-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // dnsmasq reads its files as nobody
	e := &env{t: t, dir: dir, prefix: fmt.Sprintf("%08x", rand.Uint32())}
	e.host, err = createNS(filepath.Join(dir, "host"))
	if err != nil {
		t.Fatal(err)
	}
	if e.nl, err = netlink.NewHandleAt(e.host); err != nil {
		t.Fatal(err)
	}
	if lo, err := e.nl.LinkByName("lo"); err == nil {
		_ = e.nl.LinkSetUp(lo)
	}
	e.cfg = Config{StateDir: filepath.Join(dir, "state"), HostNS: filepath.Join(dir, "host"), NetnsDir: filepath.Join(dir, "netns"), VethPorts: true}
	if mod != nil {
		mod(&e.cfg)
	}
	t.Cleanup(e.close)
	e.start()
	return e
}

// start (re)opens the backend, as a restarted process would.
func (e *env) start() {
	e.t.Helper()
	if e.b != nil {
		_ = e.b.Close()
	}
	b, err := New(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.b = b
}

func (e *env) close() {
	if e.b != nil {
		_ = e.b.Cleanup(context.Background())
		_ = e.b.Close()
	}
	ents, _ := os.ReadDir(e.dir)
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "g-") || ent.Name() == "host" {
			_ = removeNS(filepath.Join(e.dir, ent.Name()))
		}
	}
	if ents, err := os.ReadDir(e.cfg.NetnsDir); err == nil {
		for _, ent := range ents {
			_ = removeNS(filepath.Join(e.cfg.NetnsDir, ent.Name()))
		}
	}
	e.nl.Close()
	e.host.Close()
	_ = os.RemoveAll(e.dir)
}

// id returns a fresh UUID-shaped id unique to this test.
func (e *env) id() string {
	// The counter leads: TapName keeps the first 11 characters.
	return fmt.Sprintf("%04x%s-4000-8000-%012x", e.ids.Add(1), e.prefix[:4]+"-"+e.prefix[4:], 0)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		_, file, line, _ := runtime.Caller(1)
		t.Fatalf("%s:%d: %v", filepath.Base(file), line, err)
	}
}

// lan is a tenant network with one DHCP-enabled subnet.
type lan struct {
	id, subnet string
	cidr       netip.Prefix
	dhcp       network.DHCPSpec
}

func (e *env) network(cidr string, metadataRoute bool) *lan {
	e.t.Helper()
	ctx := context.Background()
	l := &lan{id: e.id(), subnet: e.id(), cidr: netip.MustParsePrefix(cidr)}
	must(e.t, e.b.EnsureNetwork(ctx, network.NetworkSpec{ID: l.id, ProjectID: "p1", NetworkType: network.TypeVXLAN, MTU: 1450, AdminStateUp: true}))
	base := l.cidr.Addr()
	l.dhcp = network.DHCPSpec{NetworkID: l.id, MTU: 1450, PortID: e.id(), MAC: e.mac(), Metadata: true,
		Subnets: []network.SubnetSpec{{ID: l.subnet, CIDR: l.cidr, Gateway: base.Next(), EnableDHCP: true,
			DNSNameservers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}, DHCPServer: base.Next().Next(), MetadataRoute: metadataRoute}}}
	must(e.t, e.b.EnsureDHCP(ctx, l.dhcp))
	return l
}

func (e *env) mac() string {
	n := e.ids.Add(1)
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", byte(n>>16), byte(n>>8), byte(n))
}

// addr returns the n-th address of the lan.
func (l *lan) addr(n int) netip.Prefix {
	a := l.cidr.Addr()
	for range n {
		a = a.Next()
	}
	return netip.PrefixFrom(a, l.cidr.Bits())
}

// guest is a namespace with one interface (eth0) plugged into a port.
type guest struct {
	e    *env
	name string
	ns   netns.NsHandle
	nl   *netlink.Handle
	port network.PortSpec
	ip   netip.Prefix
}

// plug creates a port with address n on l (a DHCP reservation too) and
// a guest namespace holding its veth end.
func (e *env) plug(l *lan, n int, groups ...string) *guest {
	e.t.Helper()
	ctx := context.Background()
	id := e.id()
	spec := network.PortSpec{ID: id, NetworkID: l.id, ProjectID: "p1", Host: "h1", DevName: network.TapName(id), MAC: e.mac(), MTU: 1450,
		AdminStateUp: true, PortSecurity: true, SecurityGroups: groups, FixedIPs: []network.PortAddr{{SubnetID: l.subnet, Addr: l.addr(n)}}}
	vif, err := e.b.EnsurePort(ctx, spec)
	must(e.t, err)
	l.dhcp.Hosts = append(l.dhcp.Hosts, network.DHCPHost{PortID: id, MAC: spec.MAC, Addrs: []netip.Addr{l.addr(n).Addr()}, Hostname: fmt.Sprintf("host-%d", n)})
	must(e.t, e.b.EnsureDHCP(ctx, l.dhcp))
	g := &guest{e: e, name: "g-" + id[:4], port: spec}
	g.ns, err = createNS(filepath.Join(e.dir, g.name))
	must(e.t, err)
	e.t.Cleanup(func() { g.nl.Close(); g.ns.Close() })
	g.nl, err = netlink.NewHandleAt(g.ns)
	must(e.t, err)
	link, err := e.nl.LinkByName(vif.DevName)
	must(e.t, err)
	must(e.t, e.nl.LinkSetNsFd(link, int(g.ns)))
	link, err = g.nl.LinkByName(vif.DevName)
	must(e.t, err)
	must(e.t, g.nl.LinkSetName(link, "eth0"))
	must(e.t, g.nl.LinkSetUp(link))
	lo, err := g.nl.LinkByName("lo")
	must(e.t, err)
	must(e.t, g.nl.LinkSetUp(lo))
	return g
}

// run runs a command inside the guest.
func (g *guest) run(name string, args ...string) (string, error) {
	return runIn(g.ns, name, args...)
}

func runIn(ns netns.NsHandle, name string, args ...string) (string, error) {
	var out []byte
	err := inNS(ns, func() error {
		cmd := exec.Command(name, args...)
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	return string(out), err
}

// dhcp runs busybox udhcpc in the guest and configures what it got (the
// address, MTU and routes, option 121 included); it returns the lease's
// variables.
func (g *guest) dhcp() map[string]string {
	g.e.t.Helper()
	out := filepath.Join(g.e.dir, g.name+".lease")
	script := filepath.Join(g.e.dir, "udhcpc.sh")
	must(g.e.t, os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && env > \"$LEASE_OUT\"\nexit 0\n"), 0o755))
	var res []byte
	err := inNS(g.ns, func() error {
		cmd := exec.Command("busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "6", "-T", "1", "-s", script, "-O", "staticroutes", "-O", "mtu")
		cmd.Env = append(os.Environ(), "LEASE_OUT="+out)
		var err error
		res, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		g.e.t.Fatalf("udhcpc in %s: %v\n%s", g.name, err, res)
	}
	data, err := os.ReadFile(out)
	must(g.e.t, err)
	lease := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			lease[k] = v
		}
	}
	ip := netip.MustParseAddr(lease["ip"])
	mask := net.IPMask(net.ParseIP(lease["subnet"]).To4())
	ones, _ := mask.Size()
	g.ip = netip.PrefixFrom(ip, ones)
	link, err := g.nl.LinkByName("eth0")
	must(g.e.t, err)
	must(g.e.t, g.nl.AddrAdd(link, &netlink.Addr{IPNet: ipnet(g.ip)}))
	if m := lease["mtu"]; m != "" {
		var mtu int
		fmt.Sscan(m, &mtu)
		must(g.e.t, g.nl.LinkSetMTU(link, mtu))
	}
	if sr := strings.Fields(lease["staticroutes"]); len(sr) > 0 {
		for i := 0; i+1 < len(sr); i += 2 {
			dst := netip.MustParsePrefix(sr[i])
			must(g.e.t, g.nl.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(dst), Gw: net.ParseIP(sr[i+1])}))
		}
	} else if r := lease["router"]; r != "" {
		must(g.e.t, g.nl.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(r)}))
	}
	return lease
}

// ping reports whether one echo to dst is answered within a second.
func (g *guest) ping(dst netip.Addr) bool { return pingFrom(g.ns, dst) }

func pingFrom(ns netns.NsHandle, dst netip.Addr, extra ...string) bool {
	args := append([]string{"-c", "1", "-W", "1"}, extra...)
	_, err := runIn(ns, "ping", append(args, dst.String())...)
	return err == nil
}

// eventually retries f for up to 5 s (ARP, DAD and DHCP settle).
func eventually(f func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dial opens a TCP connection from inside ns.
func dial(ns netns.NsHandle, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	})
	return c, err
}

// listen opens a TCP listener inside ns that echoes a line back.
func listen(t testing.TB, ns netns.NsHandle, addr string) net.Listener {
	var ln net.Listener
	must(t, inNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(bytes.ToUpper(buf[:n])); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}
