package network_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/common/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/stratuskit/stratus/identity"
	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// cloud is identity and network on loopback, as the all-in-one runs them.
type cloud struct {
	ident    *identity.Service
	net      *Service
	authURL  string
	adminCtx context.Context
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, memstore.New(), append(identity.Tables(), Tables()...), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ident := must(identity.New(identity.Config{Store: st, PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}}))
	if err := ident.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ident.Close() })
	svc := must(New(Config{Store: st, Backend: fakenet.New()}))
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	netSrv := httptest.NewServer(NewHandler(svc, ident, log))
	t.Cleanup(netSrv.Close)
	idSrv := httptest.NewServer(identity.NewHandler(ident, log))
	t.Cleanup(idSrv.Close)
	if err := ident.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: idSrv.URL + "/v3"},
		{Type: "network", Name: "neutron", PublicURL: netSrv.URL},
	}}); err != nil {
		t.Fatal(err)
	}
	return &cloud{ident: ident, net: svc, authURL: idSrv.URL + "/v3", adminCtx: identity.WithCredentials(ctx, identity.SystemAdmin())}
}

// user creates a project with a member user and returns the project id.
func (c *cloud) user(t *testing.T, project, user string) string {
	t.Helper()
	p := must(c.ident.CreateProject(c.adminCtx, identity.CreateProjectOpts{Name: project}))
	u := must(c.ident.CreateUser(c.adminCtx, identity.CreateUserOpts{Name: user, Password: user + "-pw"}))
	role := must(c.ident.ListRoles(c.adminCtx, identity.ListRolesOpts{Name: identity.RoleMember}))[0]
	if err := c.ident.CreateGrant(c.adminCtx, identity.Grant{UserID: u.ID, ProjectID: p.ID, RoleID: role.ID}); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func (c *cloud) client(t *testing.T, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: c.authURL,
		Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := openstack.NewNetworkV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func allPages[T any](t *testing.T, p pagination.Pager, extract func(pagination.Page) ([]T, error)) []T {
	t.Helper()
	page, err := p.AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return must(extract(page))
}

func TestGophercloudNetworking(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	admin := c.client(t, "admin", "secret", "admin")
	c.user(t, "p1", "alice")
	nc := c.client(t, "alice", "alice-pw", "p1")

	// Extensions the clients check.
	ext := must(extensions.Get(ctx, nc, "router").Extract())
	if ext.Alias != "router" {
		t.Fatalf("extension %+v", ext)
	}
	if _, err := extensions.Get(ctx, nc, "no-such-extension").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("unknown extension: %v", err)
	}

	// Networks, with a revision-checked update.
	n := must(networks.Create(ctx, nc, networks.CreateOpts{Name: "n1", Description: "first"}).Extract())
	if n.Status != "ACTIVE" || !n.AdminStateUp || n.ProjectID == "" || n.TenantID != n.ProjectID {
		t.Fatalf("network %+v", n)
	}
	stale := n.RevisionNumber
	n = must(networks.Update(ctx, nc, n.ID, networks.UpdateOpts{Name: new("n1b"), RevisionNumber: &stale}).Extract())
	if n.Name != "n1b" || n.RevisionNumber != stale+1 {
		t.Fatalf("updated network %+v", n)
	}
	_, err := networks.Update(ctx, nc, n.ID, networks.UpdateOpts{Name: new("n1c"), RevisionNumber: &stale}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusPreconditionFailed) || !strings.Contains(err.Error(), "RevisionNumberConstraintFailed") {
		t.Fatalf("stale update: %v", err)
	}
	list := allPages(t, networks.List(nc, networks.ListOpts{Name: "n1b"}), networks.ExtractNetworks)
	if len(list) != 1 || list[0].ID != n.ID {
		t.Fatalf("list by name: %+v", list)
	}

	// Tags.
	if err := attributestags.Add(ctx, nc, "networks", n.ID, "blue").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	tags := must(attributestags.ReplaceAll(ctx, nc, "networks", n.ID, attributestags.ReplaceAllOpts{Tags: []string{"red", "blue"}}).Extract())
	if !slices.Equal(tags, []string{"red", "blue"}) {
		t.Fatalf("tags %v", tags)
	}
	if ok := must(attributestags.Confirm(ctx, nc, "networks", n.ID, "red").Extract()); !ok {
		t.Fatal("tag red not confirmed")
	}
	if got := allPages(t, networks.List(nc, networks.ListOpts{Tags: "red,blue"}), networks.ExtractNetworks); len(got) != 1 {
		t.Fatalf("tags filter: %d", len(got))
	}
	if got := allPages(t, networks.List(nc, networks.ListOpts{NotTagsAny: "red"}), networks.ExtractNetworks); slices.ContainsFunc(got, func(x networks.Network) bool { return x.ID == n.ID }) {
		t.Fatal("not-tags-any filter kept the network")
	}

	// Subnets.
	dhcp := true
	sub := must(subnets.Create(ctx, nc, subnets.CreateOpts{NetworkID: n.ID, Name: "s1", CIDR: "10.2.0.0/24", IPVersion: 4,
		EnableDHCP: &dhcp, DNSNameservers: []string{"192.0.2.53"}}).Extract())
	if sub.GatewayIP != "10.2.0.1" || len(sub.AllocationPools) != 1 || sub.AllocationPools[0].Start != "10.2.0.2" {
		t.Fatalf("subnet %+v", sub)
	}
	sub = must(subnets.Update(ctx, nc, sub.ID, subnets.UpdateOpts{Name: new("s1b")}).Extract())
	if sub.Name != "s1b" {
		t.Fatalf("subnet update %+v", sub)
	}
	if _, err := subnets.Create(ctx, nc, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.2.0.5/24", IPVersion: 4}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("host bits in cidr: %v", err)
	}

	// Ports: listing by fixed IP subnet, paging, sorting, fields.
	p := must(ports.Create(ctx, nc, ports.CreateOpts{NetworkID: n.ID, Name: "p1",
		FixedIPs: []ports.IP{{SubnetID: sub.ID, IPAddress: "10.2.0.10"}}}).Extract())
	if len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != "10.2.0.10" || len(p.SecurityGroups) != 1 || !strings.HasPrefix(p.MACAddress, "fa:16:3e:") {
		t.Fatalf("port %+v", p)
	}
	for i := range 4 {
		must(ports.Create(ctx, nc, ports.CreateOpts{NetworkID: n.ID, Name: "extra" + string(rune('a'+i))}).Extract())
	}
	var seen []string
	err = ports.List(nc, ports.ListOpts{NetworkID: n.ID, Limit: 2, SortKey: "name", SortDir: "asc"}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		ps, err := ports.ExtractPorts(page)
		for _, x := range ps {
			seen = append(seen, x.Name)
		}
		return true, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"", "extraa", "extrab", "extrac", "extrad", "p1"}; !slices.Equal(seen, want) {
		t.Fatalf("paged sorted names %q, want %q", seen, want)
	}
	byIP := allPages(t, ports.List(nc, ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.2.0.10"}}}), ports.ExtractPorts)
	if len(byIP) != 1 || byIP[0].ID != p.ID {
		t.Fatalf("list by fixed ip: %d", len(byIP))
	}
	p = must(ports.Update(ctx, nc, p.ID, ports.UpdateOpts{Name: new("p1b"), FixedIPs: []ports.IP{{SubnetID: sub.ID, IPAddress: "10.2.0.11"}}}).Extract())
	if p.Name != "p1b" || p.FixedIPs[0].IPAddress != "10.2.0.11" {
		t.Fatalf("port update %+v", p)
	}

	// Security groups and rules.
	sg := must(groups.Create(ctx, nc, groups.CreateOpts{Name: "web", Description: "web"}).Extract())
	if len(sg.Rules) != 2 {
		t.Fatalf("new group has %d rules, want the 2 egress rules", len(sg.Rules))
	}
	rule := must(rules.Create(ctx, nc, rules.CreateOpts{SecGroupID: sg.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 80, PortRangeMax: 81, RemoteIPPrefix: "0.0.0.0/0"}).Extract())
	if rule.PortRangeMin != 80 || rule.PortRangeMax != 81 || rule.SecGroupID != sg.ID {
		t.Fatalf("rule %+v", rule)
	}
	if _, err := rules.Create(ctx, nc, rules.CreateOpts{SecGroupID: sg.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 90, PortRangeMax: 80}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("bad range: %v", err)
	}
	sg = must(groups.Get(ctx, nc, sg.ID).Extract())
	if len(sg.Rules) != 3 {
		t.Fatalf("group has %d rules", len(sg.Rules))
	}
	if err := rules.Delete(ctx, nc, rule.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// External network, router, interface, floating IP.
	iTrue := true
	extNet := must(networks.Create(ctx, admin, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: &iTrue}).Extract())
	must(subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: extNet.ID, CIDR: "203.0.113.0/24", IPVersion: 4}).Extract())
	r := must(routers.Create(ctx, nc, routers.CreateOpts{Name: "r1", GatewayInfo: &routers.GatewayInfo{NetworkID: extNet.ID}}).Extract())
	if r.GatewayInfo.NetworkID != extNet.ID || len(r.GatewayInfo.ExternalFixedIPs) != 1 {
		t.Fatalf("router %+v", r)
	}
	iface := must(routers.AddInterface(ctx, nc, r.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract())
	if iface.SubnetID != sub.ID || iface.PortID == "" {
		t.Fatalf("interface %+v", iface)
	}
	routes := []routers.Route{{DestinationCIDR: "198.51.100.0/24", NextHop: "10.2.0.254"}}
	r = must(routers.Update(ctx, nc, r.ID, routers.UpdateOpts{Routes: &routes}).Extract())
	if len(r.Routes) != 1 {
		t.Fatalf("routes %+v", r.Routes)
	}
	fip := must(floatingips.Create(ctx, nc, floatingips.CreateOpts{FloatingNetworkID: extNet.ID, PortID: p.ID}).Extract())
	if fip.PortID != p.ID || fip.FixedIP != "10.2.0.11" || fip.RouterID != r.ID || !strings.HasPrefix(fip.FloatingIP, "203.0.113.") {
		t.Fatalf("floating ip %+v", fip)
	}
	fip = must(floatingips.Update(ctx, nc, fip.ID, floatingips.UpdateOpts{PortID: new("")}).Extract())
	if fip.PortID != "" || fip.RouterID != "" {
		t.Fatalf("disassociated %+v", fip)
	}
	if err := routers.Delete(ctx, nc, r.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("delete router with interface: %v", err)
	}
	must(routers.RemoveInterface(ctx, nc, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract())

	// Quotas: the admin sets one; exceeding it is OverQuota (409).
	projectID := n.ProjectID
	q := must(quotas.Update(ctx, admin, projectID, quotas.UpdateOpts{Router: new(1)}).Extract())
	if q.Router != 1 {
		t.Fatalf("quota %+v", q)
	}
	_, err = routers.Create(ctx, nc, routers.CreateOpts{Name: "r2"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) || !strings.Contains(err.Error(), "OverQuota") {
		t.Fatalf("over quota: %v", err)
	}
	got := must(quotas.Get(ctx, nc, projectID).Extract())
	if got.Router != 1 || got.Port != 500 {
		t.Fatalf("member's view of its quota %+v", got)
	}

	// Deletes, in an order Neutron accepts.
	for _, del := range []func() error{
		func() error { return floatingips.Delete(ctx, nc, fip.ID).ExtractErr() },
		func() error { return routers.Delete(ctx, nc, r.ID).ExtractErr() },
		func() error { return ports.Delete(ctx, nc, p.ID).ExtractErr() },
		func() error { return groups.Delete(ctx, nc, sg.ID).ExtractErr() },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	if err := subnets.Delete(ctx, nc, sub.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("subnet with ports: %v", err)
	}
	for _, x := range allPages(t, ports.List(nc, ports.ListOpts{NetworkID: n.ID, DeviceOwner: ""}), ports.ExtractPorts) {
		if x.DeviceOwner == "" {
			if err := ports.Delete(ctx, nc, x.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := networks.Delete(ctx, nc, n.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := networks.Get(ctx, nc, n.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) || !strings.Contains(err.Error(), "NetworkNotFound") {
		t.Fatalf("deleted network: %v", err)
	}
}

// TestHTTPErrors checks Neutron's error bodies and statuses for what the
// Service refuses.
func TestHTTPErrors(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	c.user(t, "p1", "alice")
	nc := c.client(t, "alice", "alice-pw", "p1")
	n := must(networks.Create(ctx, nc, networks.CreateOpts{Name: "n"}).Extract())
	must(subnets.Create(ctx, nc, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.3.0.0/30", IPVersion: 4}).Extract())
	// A /30 has two hosts: the gateway and one pool address, which the
	// DHCP port takes.
	_, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: n.ID}).Extract()
	var ue gophercloud.ErrUnexpectedResponseCode
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) || !errorsAs(err, &ue) ||
		!strings.Contains(string(ue.Body), `"type":"IpAddressGenerationFailure"`) || !strings.Contains(string(ue.Body), `"detail":""`) {
		t.Fatalf("exhausted pool: %v", err)
	}
	// An unknown path and a bad body.
	resp, err := nc.Request(ctx, "GET", nc.ServiceURL("nothing"), &gophercloud.RequestOpts{OkCodes: []int{404}})
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("unknown path: %v", err)
	}
	resp.Body.Close()
	resp, err = nc.Post(ctx, nc.ServiceURL("networks"), map[string]any{"network": map[string]any{"mtu": "huge"}}, nil, nil)
	if resp != nil {
		resp.Body.Close()
	}
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("bad mtu: %v", err)
	}
}

// TestGophercloudIsolation: over HTTP, another project's resources are
// 404 (not 403) and absent from lists; a shared network is listed.
func TestGophercloudIsolation(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	admin := c.client(t, "admin", "secret", "admin")
	c.user(t, "p1", "alice")
	c.user(t, "p2", "bob")
	alice := c.client(t, "alice", "alice-pw", "p1")
	bob := c.client(t, "bob", "bob-pw", "p2")
	n := must(networks.Create(ctx, alice, networks.CreateOpts{Name: "private"}).Extract())
	sg := must(groups.Create(ctx, alice, groups.CreateOpts{Name: "sg"}).Extract())
	shared := true
	sh := must(networks.Create(ctx, admin, networks.CreateOpts{Name: "shared", Shared: &shared}).Extract())
	if _, err := networks.Get(ctx, bob, n.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("bob gets alice's network: %v", err)
	}
	if _, err := networks.Update(ctx, bob, n.ID, networks.UpdateOpts{Name: new("x")}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("bob updates alice's network: %v", err)
	}
	if err := attributestags.Add(ctx, bob, "networks", n.ID, "x").ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("bob tags alice's network: %v", err)
	}
	if err := attributestags.Add(ctx, bob, "networks", sh.ID, "x").ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("bob tags the shared network: %v", err)
	}
	if _, err := groups.Get(ctx, bob, sg.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("bob gets alice's group: %v", err)
	}
	if _, err := ports.Create(ctx, bob, ports.CreateOpts{NetworkID: n.ID}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("bob plugs into alice's network: %v", err)
	}
	seen := allPages(t, networks.List(bob, networks.ListOpts{}), networks.ExtractNetworks)
	if slices.ContainsFunc(seen, func(x networks.Network) bool { return x.ID == n.ID }) ||
		!slices.ContainsFunc(seen, func(x networks.Network) bool { return x.ID == sh.ID }) {
		t.Fatalf("bob's network list %+v", seen)
	}
	// Even filtering by alice's project shows bob nothing of hers.
	if got := allPages(t, networks.List(bob, networks.ListOpts{ProjectID: n.ProjectID}), networks.ExtractNetworks); len(got) != 0 {
		t.Fatalf("bob lists %d networks of alice's project", len(got))
	}
}
