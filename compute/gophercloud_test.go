package compute_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/tags"
	"golang.org/x/crypto/ssh"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/identity"
)

// cloud is identity and compute over HTTP on loopback.
type cloud struct {
	*env
	ident   *identity.Service
	authURL string
	p1      string // project id of p1, whose member is alice
}

func newCloud(t *testing.T, o envOpts) *cloud { return newCloudOpts(t, o) }

func newCloudTB(tb testing.TB) *cloud { return newCloudOpts(tb, envOpts{}) }

func newCloudOpts(t testing.TB, o envOpts) *cloud {
	e := newEnv(t, o)
	ident, err := identity.New(identity.Config{Store: e.st, Logger: quiet(), PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ident.Close() })
	idSrv := httptest.NewServer(identity.NewHandler(ident, quiet()))
	t.Cleanup(idSrv.Close)
	novaSrv := httptest.NewServer(compute.NewHandler(e.svc, ident, quiet()))
	t.Cleanup(novaSrv.Close)
	if err := ident.Bootstrap(context.Background(), identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: idSrv.URL + "/v3"},
		{Type: "compute", Name: "nova", PublicURL: novaSrv.URL + "/v2.1"},
	}}); err != nil {
		t.Fatal(err)
	}
	adm := identity.WithCredentials(context.Background(), identity.SystemAdmin())
	p, err := ident.CreateProject(adm, identity.CreateProjectOpts{Name: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := ident.CreateUser(adm, identity.CreateUserOpts{Name: "alice", Password: "alice-pw", DefaultProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ident.RoleByName(adm, "member")
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.CreateGrant(adm, identity.Grant{UserID: u.ID, ProjectID: p.ID, RoleID: r.ID}); err != nil {
		t.Fatal(err)
	}
	return &cloud{env: e, ident: ident, authURL: idSrv.URL + "/v3", p1: p.ID}
}

func (c *cloud) client(t *testing.T, user, pw, project, microversion string) *gophercloud.ServiceClient {
	return c.clientTB(t, user, pw, project, microversion)
}

func (c *cloud) clientTB(t testing.TB, user, pw, project, microversion string) *gophercloud.ServiceClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: c.authURL,
		Username: user, Password: pw, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	sc.Microversion = microversion
	return sc
}

func (c *cloud) admin(t *testing.T, mv string) *gophercloud.ServiceClient {
	return c.client(t, "admin", "secret", "admin", mv)
}
func (c *cloud) alice(t *testing.T, mv string) *gophercloud.ServiceClient {
	return c.client(t, "alice", "alice-pw", "p1", mv)
}

func computeUnlimited(n *int) compute.UpdateQuotaOpts {
	return compute.UpdateQuotaOpts{Instances: n, Cores: n, RAMMB: n}
}

func waitStatus(t *testing.T, c *gophercloud.ServiceClient, id, status string) *servers.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := servers.WaitForStatus(ctx, c, id, status); err != nil {
		s, _ := servers.Get(context.Background(), c, id).Extract()
		t.Fatalf("server %s did not reach %s: %v (%+v)", id, status, err, s)
	}
	s, err := servers.Get(context.Background(), c, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGophercloudFlavors(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	adm := c.admin(t, "2.61")
	pub := false
	f, err := flavors.Create(ctx, adm, flavors.CreateOpts{Name: "gc.private", RAM: 1024, VCPUs: 2, Disk: gophercloud.IntToPointer(10),
		Swap: gophercloud.IntToPointer(512), Ephemeral: gophercloud.IntToPointer(1), IsPublic: &pub, Description: "private one"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if f.RAM != 1024 || f.VCPUs != 2 || f.Disk != 10 || f.Swap != 512 || f.Ephemeral != 1 || f.IsPublic {
		t.Fatalf("created %+v", f)
	}
	specs, err := flavors.CreateExtraSpecs(ctx, adm, f.ID, flavors.ExtraSpecsOpts{"hw:cpu_policy": "dedicated"}).Extract()
	if err != nil || specs["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("extra specs %v %v", specs, err)
	}
	if got, err := flavors.GetExtraSpec(ctx, adm, f.ID, "hw:cpu_policy").Extract(); err != nil || got["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("get extra spec %v %v", got, err)
	}
	if err := flavors.DeleteExtraSpec(ctx, adm, f.ID, "hw:cpu_policy").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	// alice cannot see the private flavor until her project gets access.
	al := c.alice(t, "2.61")
	if _, err := flavors.Get(ctx, al, f.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("private flavor visible without access: %v", err)
	}
	acc, err := flavors.AddAccess(ctx, adm, f.ID, flavors.AddAccessOpts{Tenant: c.p1}).Extract()
	if err != nil || len(acc) != 1 || acc[0].TenantID != c.p1 {
		t.Fatalf("add access %v %v", acc, err)
	}
	if got, err := flavors.Get(ctx, al, f.ID).Extract(); err != nil || got.Name != "gc.private" {
		t.Fatalf("flavor with access: %v %v", got, err)
	}
	pages, err := flavors.ListDetail(adm, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := flavors.ExtractFlavors(pages)
	if len(all) != 2 {
		t.Fatalf("admin lists %d flavors, want 2", len(all))
	}
	if _, err := flavors.Create(ctx, al, flavors.CreateOpts{Name: "nope", RAM: 1, VCPUs: 1, Disk: gophercloud.IntToPointer(1)}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member flavor create: %v", err)
	}
	if err := flavors.Delete(ctx, adm, f.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

func TestGophercloudKeypairs(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	al := c.alice(t, "2.10")
	kp, err := keypairs.Create(ctx, al, keypairs.CreateOpts{Name: "gen"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.ParsePrivateKey([]byte(kp.PrivateKey)); err != nil {
		t.Fatalf("generated private key does not parse: %v", err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.PublicKey))
	if err != nil || ssh.FingerprintLegacyMD5(pk) != kp.Fingerprint {
		t.Fatalf("public key %v fingerprint %q", err, kp.Fingerprint)
	}
	imported, err := keypairs.Create(ctx, al, keypairs.CreateOpts{Name: "imp", PublicKey: kp.PublicKey}).Extract()
	if err != nil || imported.Fingerprint != kp.Fingerprint || imported.PrivateKey != "" {
		t.Fatalf("import %+v %v", imported, err)
	}
	if _, err := keypairs.Create(ctx, al, keypairs.CreateOpts{Name: "bad", PublicKey: "ssh-rsa nope"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("bad public key: %v", err)
	}
	if _, err := keypairs.Create(ctx, al, keypairs.CreateOpts{Name: "imp"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("duplicate keypair: %v", err)
	}
	pages, err := keypairs.List(al, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := keypairs.ExtractKeyPairs(pages)
	if len(list) != 2 {
		t.Fatalf("%d keypairs", len(list))
	}
	got, err := keypairs.Get(ctx, al, "gen", nil).Extract()
	if err != nil || got.Name != "gen" || got.UserID == "" {
		t.Fatalf("get %+v %v", got, err)
	}
	// Keypairs are per user: the admin does not see alice's.
	adm := c.admin(t, "2.10")
	if _, err := keypairs.Get(ctx, adm, "gen", nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("admin sees alice's keypair by default: %v", err)
	}
	if _, err := keypairs.Get(ctx, adm, "gen", keypairs.GetOpts{UserID: got.UserID}).Extract(); err != nil {
		t.Fatalf("admin with user_id: %v", err)
	}
	if err := keypairs.Delete(ctx, al, "gen", nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

func TestGophercloudServers(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	al := c.alice(t, "2.73")
	s, err := servers.Create(ctx, al, servers.CreateOpts{Name: "gc1", ImageRef: imageID, FlavorRef: c.flavor.ID,
		Networks: []servers.Network{{UUID: netID}}, Metadata: map[string]string{"a": "b"}, UserData: []byte("#!/bin/sh\necho hi\n"),
		Tags: []string{"t1"}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if s.AdminPass == "" {
		t.Fatal("no adminPass")
	}
	got := waitStatus(t, al, s.ID, "ACTIVE")
	if got.Name != "gc1" || got.Metadata["a"] != "b" || got.TenantID != c.p1 || got.PowerState != servers.RUNNING ||
		got.AvailabilityZone != "nova" || got.HostID == "" || got.LaunchedAt.IsZero() || len(got.Addresses["private"].([]any)) != 1 {
		t.Fatalf("server %+v", got)
	}
	if got.Host != "" {
		t.Fatalf("a member sees OS-EXT-SRV-ATTR:host %q", got.Host)
	}
	adm := c.admin(t, "2.73")
	if a, err := servers.Get(ctx, adm, s.ID).Extract(); err != nil || !strings.HasPrefix(a.Host, "host") {
		t.Fatalf("admin host %q %v", a.Host, err)
	}
	for _, step := range []struct {
		do     func() error
		status string
	}{
		{func() error {
			return servers.Reboot(ctx, al, s.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
		}, "ACTIVE"},
		{func() error { return servers.Stop(ctx, al, s.ID).ExtractErr() }, "SHUTOFF"},
		{func() error { return servers.Start(ctx, al, s.ID).ExtractErr() }, "ACTIVE"},
		{func() error { return servers.Pause(ctx, al, s.ID).ExtractErr() }, "PAUSED"},
		{func() error { return servers.Unpause(ctx, al, s.ID).ExtractErr() }, "ACTIVE"},
		{func() error { return servers.Suspend(ctx, al, s.ID).ExtractErr() }, "SUSPENDED"},
		{func() error { return servers.Resume(ctx, al, s.ID).ExtractErr() }, "ACTIVE"},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("action to %s: %v", step.status, err)
		}
		waitStatus(t, al, s.ID, step.status)
		// Wait for the task to end (status changes with vm_state).
		c.settle(user(c.p1), s.ID)
	}
	out, err := servers.ShowConsoleOutput(ctx, al, s.ID, servers.ShowConsoleOutputOpts{Length: 50}).Extract()
	if err != nil || !strings.Contains(out, "stratus-guest: up") {
		t.Fatalf("console %q %v", out, err)
	}
	up, err := servers.Update(ctx, al, s.ID, servers.UpdateOpts{Name: "gc1-renamed"}).Extract()
	if err != nil || up.Name != "gc1-renamed" {
		t.Fatalf("update %v %v", up, err)
	}
	md, err := servers.UpdateMetadata(ctx, al, s.ID, servers.MetadataOpts{"c": "d"}).Extract()
	if err != nil || md["a"] != "b" || md["c"] != "d" {
		t.Fatalf("metadata %v %v", md, err)
	}
	if err := servers.DeleteMetadatum(ctx, al, s.ID, "a").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.Lock(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.Delete(ctx, al, s.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("delete of a locked server: %v", err)
	}
	if err := servers.Unlock(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	acts, err := instanceactions.List(al, s.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	al2, err := instanceactions.ExtractInstanceActions(acts)
	if err != nil || len(al2) < 9 {
		t.Fatalf("instance actions %d %v", len(al2), err)
	}
	one, err := instanceactions.Get(ctx, al, s.ID, al2[len(al2)-1].RequestID).Extract()
	if err != nil || one.Action != "create" || one.Events == nil || len(*one.Events) != 4 {
		t.Fatalf("create action %+v %v", one, err)
	}
	// Lists: name regex, status; another project sees nothing (404 on get).
	pages, err := servers.List(al, servers.ListOpts{Name: "^gc1-", Status: "ACTIVE"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := servers.ExtractServers(pages)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %d %v", len(list), err)
	}
	if _, err := servers.Get(ctx, adm, "00000000-0000-4000-8000-000000000000").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("missing server: %v", err)
	}
	if _, err := servers.List(al, servers.ListOpts{AllTenants: true}).AllPages(ctx); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member all_tenants: %v", err)
	}
	if err := servers.Delete(ctx, al, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := servers.WaitForStatus(wctx, al, s.ID, "DELETED"); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("wait deleted: %v", err)
	}
	// Admin views of hosts.
	hp, err := hypervisors.List(adm, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := hypervisors.ExtractHypervisors(hp)
	if err != nil || len(hs) != 3 || hs[0].State != "up" {
		t.Fatalf("hypervisors %+v %v", hs, err)
	}
	sp, err := services.List(adm, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := services.ExtractServices(sp); err != nil || len(ss) != 3 {
		t.Fatalf("services %+v %v", ss, err)
	}
}

func TestGophercloudServerGroupsAndQuotas(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	al := c.alice(t, "2.64")
	g, err := servergroups.Create(ctx, al, servergroups.CreateOpts{Name: "aa", Policy: "anti-affinity"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if g.Policy == nil || *g.Policy != "anti-affinity" {
		t.Fatalf("group %+v", g)
	}
	var ids []string
	for range 4 {
		s, err := servers.Create(ctx, al, servers.CreateOpts{Name: "m", ImageRef: imageID, FlavorRef: c.flavor.ID},
			servers.SchedulerHintOpts{Group: g.ID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	hosts := map[string]bool{}
	errors := 0
	adm := c.admin(t, "2.64")
	for _, id := range ids {
		v := c.settle(user(c.p1), id)
		if v.Status() == "ERROR" {
			errors++
			if !strings.Contains(v.Fault.Message, "No valid host was found") {
				t.Fatalf("fault %q", v.Fault.Message)
			}
			gs, err := servers.Get(ctx, adm, id).Extract()
			if err != nil || gs.Fault.Code != 500 || !strings.Contains(gs.Fault.Message, "ServerGroupAntiAffinityFilter") {
				t.Fatalf("fault over HTTP %+v %v", gs.Fault, err)
			}
			continue
		}
		hosts[v.HostID] = true
	}
	if len(hosts) != 3 || errors != 1 {
		t.Fatalf("anti-affinity: %d hosts, %d errors", len(hosts), errors)
	}
	got, err := servergroups.Get(ctx, al, g.ID).Extract()
	if err != nil || len(got.Members) != 4 {
		t.Fatalf("members %+v %v", got, err)
	}

	// Quotas: the admin sets p1's instances to the 4 it has; a 5th fails
	// with 403 naming the resource.
	qs, err := quotasets.Update(ctx, adm, c.p1, quotasets.UpdateOpts{Instances: gophercloud.IntToPointer(4)}).Extract()
	if err != nil || qs.Instances != 4 {
		t.Fatalf("quota update %+v %v", qs, err)
	}
	_, err = servers.Create(ctx, al, servers.CreateOpts{Name: "over", ImageRef: imageID, FlavorRef: c.flavor.ID}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) || !strings.Contains(err.Error(), "instances") {
		t.Fatalf("over quota: %v", err)
	}
	det, err := quotasets.GetDetail(ctx, al, c.p1).Extract()
	if err != nil || det.Instances.InUse != 4 || det.Instances.Limit != 4 || det.Cores.InUse != 4 {
		t.Fatalf("quota detail %+v %v", det, err)
	}
	if q, err := quotasets.Get(ctx, c.alice(t, ""), c.p1).Extract(); err != nil || q.FixedIPs != -1 || q.KeyPairs != 100 {
		t.Fatalf("quota get %+v %v", q, err)
	}
	if _, err := quotasets.Update(ctx, al, c.p1, quotasets.UpdateOpts{Instances: gophercloud.IntToPointer(100)}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member quota update: %v", err)
	}
	lim, err := limits.Get(ctx, al, nil).Extract()
	if err != nil || lim.Absolute.TotalInstancesUsed != 4 || lim.Absolute.MaxTotalInstances != 4 || lim.Absolute.MaxPersonalitySize != 10240 {
		t.Fatalf("limits %+v %v", lim, err)
	}
	for _, id := range ids {
		if err := servers.Delete(ctx, al, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		c.gone(user(c.p1), id)
	}
	if det, err := quotasets.GetDetail(ctx, al, c.p1).Extract(); err != nil || det.Instances.InUse != 0 || det.Cores.InUse != 0 {
		t.Fatalf("quota after deletes %+v %v", det, err)
	}
	if err := servergroups.Delete(ctx, al, g.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := quotasets.Delete(ctx, adm, c.p1).Err; err != nil {
		t.Fatal(err)
	}
}

func TestGophercloudTagsAggregatesZones(t *testing.T) {
	c := newCloud(t, envOpts{})
	ctx := context.Background()
	al := c.alice(t, "2.26")
	v := c.settle(user(c.p1), c.create(user(c.p1), "tagged", nil).ID)
	if err := tags.Add(ctx, al, v.ID, "blue").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if ok, err := tags.Check(ctx, al, v.ID, "blue").Extract(); err != nil || !ok {
		t.Fatalf("check %v %v", ok, err)
	}
	got, err := tags.ReplaceAll(ctx, al, v.ID, tags.ReplaceAllOpts{Tags: []string{"x", "y"}}).Extract()
	if err != nil || len(got) != 2 {
		t.Fatalf("replace %v %v", got, err)
	}
	if err := tags.Delete(ctx, al, v.ID, "x").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if l, err := tags.List(ctx, al, v.ID).Extract(); err != nil || len(l) != 1 || l[0] != "y" {
		t.Fatalf("list %v %v", l, err)
	}
	adm := c.admin(t, "2.1")
	agg, err := aggregates.Create(ctx, adm, aggregates.CreateOpts{Name: "rack1", AvailabilityZone: "zone1"}).Extract()
	if err != nil || agg.ID != 1 {
		t.Fatalf("aggregate %+v %v", agg, err)
	}
	if _, err := aggregates.AddHost(ctx, adm, agg.ID, aggregates.AddHostOpts{Host: "host3"}).Extract(); err != nil {
		t.Fatal(err)
	}
	if got, err := aggregates.SetMetadata(ctx, adm, agg.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"ssd": "true"}}).Extract(); err != nil || got.Metadata["ssd"] != "true" {
		t.Fatalf("metadata %+v %v", got, err)
	}
	pages, err := availabilityzones.ListDetail(adm).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil || len(zones) != 2 || zones[1].ZoneName != "zone1" || len(zones[1].Hosts) != 1 {
		t.Fatalf("zones %+v %v", zones, err)
	}
	if _, err := aggregates.Create(ctx, c.alice(t, ""), aggregates.CreateOpts{Name: "nope"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member aggregate create: %v", err)
	}
}
