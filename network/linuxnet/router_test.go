package linuxnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// external maps physical network "ext" to br-ex, where the (test's) host
// has 203.0.113.1/24, as in the all-in-one.
func external(c *Config) {
	c.BridgeMappings = map[string]string{"ext": "br-ex"}
	c.BridgeAddrs = map[string]netip.Prefix{"br-ex": netip.MustParsePrefix("203.0.113.1/24")}
}

func (e *env) externalNetwork() string {
	e.t.Helper()
	id := e.id()
	must(e.t, e.b.EnsureNetwork(context.Background(), network.NetworkSpec{ID: id, ProjectID: "admin", NetworkType: network.TypeFlat,
		PhysicalNetwork: "ext", MTU: 1500, External: true, AdminStateUp: true}))
	return id
}

// acceptFrom listens on addr in the test's host namespace and reports
// the source address of each connection.
func acceptFrom(t *testing.T, e *env, addr string) <-chan netip.Addr {
	var l net.Listener
	must(t, inNS(e.host, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}))
	t.Cleanup(func() { l.Close() })
	ch := make(chan netip.Addr, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- netip.MustParseAddrPort(c.RemoteAddr().String()).Addr()
			c.Close()
		}
	}()
	return ch
}

// A router SNATs its subnets to the external network; a floating IP
// makes a guest reachable from outside, and disassociating it stops
// that; nothing is routed from br-ex to the host's other interfaces.
func TestRouterSNATAndFloatingIP(t *testing.T) {
	e := newEnv(t, external)
	ctx := context.Background()
	sg := e.openGroup()
	ext := e.externalNetwork()
	a := e.network("10.50.0.0/24", false)
	g := e.plug(a, 10, sg)
	g.dhcp()
	gw := netip.MustParsePrefix("203.0.113.10/24")
	rtr := network.RouterSpec{ID: e.id(), ProjectID: "p1", AdminStateUp: true,
		Gateway: &network.RouterGatewaySpec{NetworkID: ext, PortID: e.id(), MAC: e.mac(), Addrs: []netip.Prefix{gw},
			NextHops: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, EnableSNAT: true},
		Interfaces: []network.RouterInterfaceSpec{{PortID: e.id(), NetworkID: a.id, SubnetID: a.subnet, MAC: e.mac(), Addr: a.addr(1)}}}
	must(t, e.b.EnsureRouter(ctx, rtr))

	seen := acceptFrom(t, e, "203.0.113.1:9000")
	connect := func() netip.Addr {
		t.Helper()
		var c net.Conn
		if !eventually(func() bool {
			var err error
			c, err = dial(g.ns, "203.0.113.1:9000")
			return err == nil
		}) {
			t.Fatal("the guest does not reach the external network")
		}
		c.Close()
		return <-seen
	}
	if src := connect(); src != gw.Addr() {
		t.Fatalf("the external side saw %s, want the router's SNAT address %s", src, gw.Addr())
	}

	fip := netip.MustParseAddr("203.0.113.20")
	hostPing := func() bool { return pingFrom(e.host, fip) }
	if hostPing() {
		t.Fatal("the floating IP answers before it is associated")
	}
	rtr.FloatingIPs = []network.FloatingIPSpec{{ID: "f1", Floating: fip, Fixed: g.ip.Addr(), PortID: g.port.ID}}
	must(t, e.b.EnsureRouter(ctx, rtr))
	if !eventually(hostPing) {
		t.Fatal("the floating IP is not reachable from the external network")
	}
	if src := connect(); src != fip {
		t.Fatalf("with a floating IP the external side saw %s, want %s", src, fip)
	}
	rtr.FloatingIPs = nil
	must(t, e.b.EnsureRouter(ctx, rtr))
	if hostPing() {
		t.Fatal("the floating IP still answers after disassociation")
	}

	// The host forwards (as many do), yet nothing from br-ex is routed to
	// its uplink without Config.Masquerade.
	inet, err := createNS(e.dir + "/g-inet")
	must(t, err)
	defer inet.Close()
	must(t, e.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(inet))}))
	up, err := e.nl.LinkByName("uplink")
	must(t, err)
	must(t, e.nl.AddrAdd(up, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("198.51.100.2/24"))}))
	must(t, e.nl.LinkSetUp(up))
	inl, err := netlink.NewHandleAt(inet)
	must(t, err)
	defer inl.Close()
	peer, err := inl.LinkByName("eth0")
	must(t, err)
	must(t, inl.AddrAdd(peer, &netlink.Addr{IPNet: ipnet(netip.MustParsePrefix("198.51.100.1/24"))}))
	must(t, inl.LinkSetUp(peer))
	must(t, inl.RouteReplace(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.ParseIP("198.51.100.2")}))
	must(t, writeSysctl(e.host, "net/ipv4/ip_forward", "1"))
	if !eventually(func() bool { return pingFrom(e.host, netip.MustParseAddr("198.51.100.1")) }) {
		t.Fatal("control: the host does not reach its uplink")
	}
	if g.ping(netip.MustParseAddr("198.51.100.1")) {
		t.Fatal("a guest reached beyond the host without Masquerade")
	}
}

// fakeMetadata serves {"uuid": server} for the servers it knows, by
// (network, address), as compute's handler would.
type fakeMetadata struct {
	mu      sync.Mutex
	servers map[string]string
}

func (m *fakeMetadata) add(networkID string, a netip.Addr, server string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.servers == nil {
		m.servers = map[string]string{}
	}
	m.servers[networkID+"/"+a.String()] = server
}

func (m *fakeMetadata) MetadataHandler(_ context.Context, networkID string, a netip.Addr) (http.Handler, error) {
	m.mu.Lock()
	srv, ok := m.servers[networkID+"/"+a.String()]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no server at %s on %s: %w", a, networkID, errdefs.ErrNotFound)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openstack/latest/meta_data.json" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"uuid": srv})
	}), nil
}

// metaGet asks the metadata service from inside g, from source src (any
// when invalid), with extra headers; it returns the uuid served, or "".
func metaGet(g *guest, src netip.Addr, hdr map[string]string) (string, int) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNS(g.ns, func() error {
				d := net.Dialer{Timeout: 2 * time.Second}
				if src.IsValid() {
					d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
				}
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}}
	req, _ := http.NewRequest("GET", "http://169.254.169.254/openstack/latest/meta_data.json", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var md map[string]string
	_ = json.Unmarshal(body, &md)
	return md["uuid"], resp.StatusCode
}

// The metadata service answers a guest with its own server's metadata
// only, found by network and source address: through the DHCP namespace
// (option 121) on a network without a router and through the router on
// one with; a guest of another project forging its source address or
// headers gets nothing of another's (the class of OSSA-2013-033).
func TestMetadata(t *testing.T) {
	md := &fakeMetadata{}
	e := newEnv(t, func(c *Config) { c.Metadata = md })
	ctx := context.Background()
	sg := e.openGroup()

	isolated := e.network("10.60.0.0/24", true)
	victim, attacker := e.plug(isolated, 10, sg), e.plug(isolated, 11, sg)
	victim.dhcp()
	attacker.dhcp()
	md.add(isolated.id, victim.ip.Addr(), "victim-server")
	md.add(isolated.id, attacker.ip.Addr(), "attacker-server")
	var got string
	if !eventually(func() bool { got, _ = metaGet(victim, netip.Addr{}, nil); return got == "victim-server" }) {
		t.Fatalf("the victim got %q from the DHCP namespace's metadata service", got)
	}
	forged := map[string]string{"X-Forwarded-For": victim.ip.Addr().String(), "X-Instance-ID": "victim-server",
		"X-Tenant-ID": "p1", "X-Instance-ID-Signature": "0000"}
	if got, _ := metaGet(attacker, netip.Addr{}, forged); got != "attacker-server" {
		t.Fatalf("with forged headers the attacker got %q, want its own server's", got)
	}
	eth0, err := attacker.nl.LinkByName("eth0")
	must(t, err)
	must(t, attacker.nl.AddrAdd(eth0, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(victim.ip.Addr(), 32))}))
	if got, _ := metaGet(attacker, victim.ip.Addr(), forged); got != "" {
		t.Fatalf("with the victim's source address the attacker got %q", got)
	}

	// Through a router: the guest's default route.
	routed := e.network("10.61.0.0/24", false)
	g := e.plug(routed, 10, sg)
	g.dhcp()
	md.add(routed.id, g.ip.Addr(), "routed-server")
	rtr := network.RouterSpec{ID: e.id(), ProjectID: "p1", AdminStateUp: true,
		Interfaces: []network.RouterInterfaceSpec{{PortID: e.id(), NetworkID: routed.id, SubnetID: routed.subnet, MAC: e.mac(), Addr: routed.addr(1)}}}
	must(t, e.b.EnsureRouter(ctx, rtr))
	if got, code := metaGet(g, netip.Addr{}, nil); code != 0 || got != "" {
		t.Fatalf("a router not asked for metadata served %d %q", code, got)
	}
	rtr.Metadata = true
	must(t, e.b.EnsureRouter(ctx, rtr))
	if !eventually(func() bool { got, _ = metaGet(g, netip.Addr{}, nil); return got == "routed-server" }) {
		t.Fatalf("the guest behind a router got %q", got)
	}
	// An unknown guest gets a 404.
	if _, code := metaGet(attacker, attacker.ip.Addr(), nil); code != http.StatusOK {
		t.Fatalf("control: the attacker's own request failed (%d)", code)
	}
	md.mu.Lock()
	delete(md.servers, isolated.id+"/"+attacker.ip.Addr().String())
	md.mu.Unlock()
	if got, code := metaGet(attacker, attacker.ip.Addr(), nil); code != http.StatusNotFound || got != "" {
		t.Fatalf("a guest with no server got %d %q", code, got)
	}
}
