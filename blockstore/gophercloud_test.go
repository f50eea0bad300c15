package blockstore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/backups"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/transfers"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"

	"github.com/stratuskit/stratus/blockstore"
	"github.com/stratuskit/stratus/blockstore/fakevol"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/objectstore/memobj"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// cloud is identity and block storage on loopback, with a second project
// p2 whose member is u2.
type cloud struct {
	svc     *blockstore.Service
	authURL string
	p2      string
	url     string
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, memstore.New(), slices.Concat(identity.Tables(), blockstore.Tables()), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ids, err := identity.New(identity.Config{Store: st, Logger: logger, PasswordHashing: identity.PasswordHashing{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })
	svc, err := blockstore.New(blockstore.Config{Store: st, Logger: logger, BackupChunkSize: 1 << 20,
		Backends: []blockstore.BackendConfig{{Name: "fake", Backend: fakevol.New(nil)}}})
	if err != nil {
		t.Fatal(err)
	}
	svc.UseBackups(memobj.New())
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	idSrv := httptest.NewServer(identity.NewHandler(ids, logger))
	t.Cleanup(idSrv.Close)
	bsSrv := httptest.NewServer(blockstore.NewHandler(svc, ids, logger))
	t.Cleanup(bsSrv.Close)
	if err := ids.Bootstrap(admin, identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: idSrv.URL + "/v3"},
		{Type: "block-storage", Name: "cinder", PublicURL: bsSrv.URL + "/v3/%(project_id)s"},
	}}); err != nil {
		t.Fatal(err)
	}
	p2 := must(ids.CreateProject(admin, identity.CreateProjectOpts{Name: "p2", DomainID: identity.DefaultDomainID}))
	u2 := must(ids.CreateUser(admin, identity.CreateUserOpts{Name: "u2", Password: "pw2", DomainID: identity.DefaultDomainID, DefaultProjectID: p2.ID}))
	role := must(ids.RoleByName(admin, identity.RoleMember))
	if err := ids.CreateGrant(admin, identity.Grant{UserID: u2.ID, ProjectID: p2.ID, RoleID: role.ID}); err != nil {
		t.Fatal(err)
	}
	return &cloud{svc: svc, authURL: idSrv.URL + "/v3", p2: p2.ID, url: bsSrv.URL}
}

func (c *cloud) client(t *testing.T, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: c.authURL, Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := openstack.NewBlockStorageV3(pc, gophercloud.EndpointOpts{Region: identity.DefaultRegion})
	if err != nil {
		t.Fatal(err)
	}
	return bc
}

func waitVolume(t *testing.T, c *gophercloud.ServiceClient, id, want string) *volumes.Volume {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		v, err := volumes.Get(context.Background(), c, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if v.Status == want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s: status %s, want %s", id, v.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGophercloudBlockStorage(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	adm := c.client(t, "admin", "secret", "admin")
	u2 := c.client(t, "u2", "pw2", "p2")

	// Volumes: create (202), get, list with filters, update, extend.
	v := must(volumes.Create(ctx, adm, volumes.CreateOpts{Size: 1, Name: "gv", Metadata: map[string]string{"k": "v"}}, nil).Extract())
	if v.Status != "creating" || v.Size != 1 {
		t.Fatalf("created: %+v", v)
	}
	v = waitVolume(t, adm, v.ID, "available")
	if v.Bootable != "false" || v.VolumeType != blockstore.DefaultTypeName || v.CreatedAt.IsZero() || v.AvailabilityZone != "nova" {
		t.Fatalf("volume: %+v", v)
	}
	pages := must(volumes.List(adm, volumes.ListOpts{Name: "gv", Metadata: map[string]string{"k": "v"}}).AllPages(ctx))
	if vs := must(volumes.ExtractVolumes(pages)); len(vs) != 1 || vs[0].ID != v.ID {
		t.Fatalf("list by name and metadata: %+v", vs)
	}
	name := "gv2"
	if got := must(volumes.Update(ctx, adm, v.ID, volumes.UpdateOpts{Name: &name}).Extract()); got.Name != "gv2" {
		t.Fatalf("update: %+v", got)
	}
	if err := volumes.ExtendSize(ctx, adm, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got := waitVolume(t, adm, v.ID, "available"); got.Size != 2 {
		t.Fatalf("extended size %d", got.Size)
	}

	// Snapshots and a volume from one.
	sn := must(snapshots.Create(ctx, adm, snapshots.CreateOpts{VolumeID: v.ID, Name: "gs"}).Extract())
	c.svc.Wait()
	sn = must(snapshots.Get(ctx, adm, sn.ID).Extract())
	if sn.Status != "available" || sn.Size != 2 {
		t.Fatalf("snapshot: %+v", sn)
	}
	fromSnap := must(volumes.Create(ctx, adm, volumes.CreateOpts{SnapshotID: sn.ID, Name: "from-snap"}, nil).Extract())
	waitVolume(t, adm, fromSnap.ID, "available")

	// Another project sees none of it: 404 in Cinder's shape.
	_, err := volumes.Get(ctx, u2, v.ID).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("cross-project get: %v", err)
	}
	_, err = attachments.Create(ctx, microversion(u2, "3.27"), attachments.CreateOpts{VolumeUUID: v.ID, InstanceUUID: "x"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("cross-project attach: %v", err)
	}
	_, err = backups.Create(ctx, u2, backups.CreateOpts{VolumeID: v.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("cross-project backup: %v", err)
	}

	// Attachments at 3.44: create with a connector, complete, delete.
	mv := microversion(adm, "3.44")
	at := must(attachments.Create(ctx, mv, attachments.CreateOpts{VolumeUUID: v.ID, InstanceUUID: "srv-1",
		Connector: map[string]any{"host": "h1", "ip": "127.0.0.1"}}).Extract())
	if at.ConnectionInfo["driver_volume_type"] != "file" {
		t.Fatalf("connection info: %+v", at.ConnectionInfo)
	}
	if err := attachments.Complete(ctx, mv, at.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	inUse := waitVolume(t, adm, v.ID, "in-use")
	if len(inUse.Attachments) != 1 || inUse.Attachments[0].ServerID != "srv-1" || inUse.Attachments[0].AttachedAt.IsZero() {
		t.Fatalf("attachments: %+v", inUse.Attachments)
	}
	err = volumes.Delete(ctx, adm, v.ID, volumes.DeleteOpts{}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "Volume status must be available") {
		t.Fatalf("deleting an in-use volume: %v", err)
	}
	if err := attachments.Delete(ctx, mv, at.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, adm, v.ID, "available")

	// Backups: create, restore to a new volume, delete.
	bk := must(backups.Create(ctx, adm, backups.CreateOpts{VolumeID: v.ID, Name: "gb"}).Extract())
	c.svc.Wait()
	if got := must(backups.Get(ctx, adm, bk.ID).Extract()); got.Status != "available" || got.Size != 2 {
		t.Fatalf("backup: %+v", got)
	}
	rs := must(backups.RestoreFromBackup(ctx, adm, bk.ID, backups.RestoreOpts{Name: "restored"}).Extract())
	waitVolume(t, adm, rs.VolumeID, "available")
	if err := backups.Delete(ctx, adm, bk.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Transfers: u2 accepts the volume restored above.
	tr := must(transfers.Create(ctx, adm, transfers.CreateOpts{VolumeID: rs.VolumeID, Name: "gift"}).Extract())
	if tr.AuthKey == "" {
		t.Fatal("no auth key")
	}
	if _, err := transfers.Accept(ctx, u2, tr.ID, transfers.AcceptOpts{AuthKey: "nope"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("accept with a wrong key: %v", err)
	}
	must(transfers.Accept(ctx, u2, tr.ID, transfers.AcceptOpts{AuthKey: tr.AuthKey}).Extract())
	if got := waitVolume(t, u2, rs.VolumeID, "available"); got.TenantID != c.p2 {
		t.Fatalf("owner after transfer: %s", got.TenantID)
	}

	// Quotas and limits.
	three := 3
	qs := must(quotasets.Update(ctx, adm, c.p2, quotasets.UpdateOpts{Volumes: &three}).Extract())
	if qs.Volumes != 3 {
		t.Fatalf("quota update: %+v", qs)
	}
	usage := must(quotasets.GetUsage(ctx, adm, c.p2).Extract())
	if usage.Volumes.Limit != 3 || usage.Volumes.InUse != 1 || usage.Gigabytes.InUse != 2 {
		t.Fatalf("usage: %+v", usage)
	}
	lim := must(limits.Get(ctx, u2).Extract())
	if lim.Absolute.MaxTotalVolumes != 3 || lim.Absolute.TotalVolumesUsed != 1 {
		t.Fatalf("limits: %+v", lim.Absolute)
	}
	for range 2 {
		must(volumes.Create(ctx, u2, volumes.CreateOpts{Size: 1}, nil).Extract())
	}
	_, err = volumes.Create(ctx, u2, volumes.CreateOpts{Size: 1}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) || !strings.Contains(err.Error(), "'volumes'") {
		t.Fatalf("over quota: %v", err)
	}
	if err := quotasets.Delete(ctx, adm, c.p2).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// Cleanup by cascade.
	if err := volumes.Delete(ctx, adm, fromSnap.ID, volumes.DeleteOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := volumes.Delete(ctx, adm, v.ID, volumes.DeleteOpts{Cascade: true}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	c.svc.Wait()
	if _, err := volumes.Get(ctx, adm, v.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("after cascade delete: %v", err)
	}
}

func microversion(c *gophercloud.ServiceClient, v string) *gophercloud.ServiceClient {
	cc := *c
	cc.Microversion = v
	return &cc
}

// Errors have Cinder's shape; the version is echoed; attachments need 3.27.
func TestCinderWire(t *testing.T) {
	c := newCloud(t)
	adm := c.client(t, "admin", "secret", "admin")
	call := func(method, path, version, body string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequest(method, adm.Endpoint+path, strings.NewReader(body))
		req.Header.Set("X-Auth-Token", adm.Token())
		req.Header.Set("Content-Type", "application/json")
		if version != "" {
			req.Header.Set("OpenStack-API-Version", "volume "+version)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, resp.Header
	}
	code, body, _ := call("GET", "volumes/nope", "", "")
	if nf, ok := body["itemNotFound"].(map[string]any); code != 404 || !ok || nf["code"] != float64(404) {
		t.Fatalf("not found: %d %v", code, body)
	}
	code, body, _ = call("POST", "volumes", "", `{"volume":{"size":"big"}}`)
	if br, ok := body["badRequest"].(map[string]any); code != 400 || !ok || !strings.Contains(br["message"].(string), "size") {
		t.Fatalf("bad size: %d %v", code, body)
	}
	code, _, _ = call("GET", "attachments", "3.26", "")
	if code != 404 {
		t.Fatalf("attachments at 3.26: %d", code)
	}
	code, _, h := call("GET", "attachments", "3.27", "")
	if code != 200 || h.Get("OpenStack-API-Version") != "volume 3.27" {
		t.Fatalf("attachments at 3.27: %d %q", code, h.Get("OpenStack-API-Version"))
	}
	code, _, _ = call("GET", "volumes", "3.99", "")
	if code != 406 {
		t.Fatalf("version 3.99: %d", code)
	}
	code, body, _ = call("POST", "volumes/x/action", "", `{"os-extend":{"new_size":2},"os-reset_status":{}}`)
	if code != 400 {
		t.Fatalf("two actions: %d %v", code, body)
	}
	// The URL's project must be the token's.
	req, _ := http.NewRequest("GET", c.url+"/v3/"+c.p2+"x/volumes", nil)
	req.Header.Set("X-Auth-Token", c.client(t, "u2", "pw2", "p2").Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("foreign project in the URL: %d", resp.StatusCode)
	}
	// Discovery.
	resp, err = http.Get(c.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	var vs struct {
		Versions []struct{ ID, Version, MinVersion string } `json:"versions"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&vs)
	resp.Body.Close()
	if resp.StatusCode != 300 || len(vs.Versions) != 1 || vs.Versions[0].ID != "v3.0" {
		t.Fatalf("discovery: %d %+v", resp.StatusCode, vs)
	}
}

// Types with extra specs and access, availability zones, and the legacy
// os-attach/os-detach actions.
func TestGophercloudTypesZonesLegacyAttach(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	adm := c.client(t, "admin", "secret", "admin")
	u2 := c.client(t, "u2", "pw2", "p2")
	priv := false
	vt := must(volumetypes.Create(ctx, adm, volumetypes.CreateOpts{Name: "gold", IsPublic: &priv,
		ExtraSpecs: map[string]string{"volume_backend_name": "fake"}}).Extract())
	specs := must(volumetypes.CreateExtraSpecs(ctx, adm, vt.ID, volumetypes.ExtraSpecsOpts{"capabilities:tier": "<in> a b"}).Extract())
	if specs["capabilities:tier"] != "<in> a b" {
		t.Fatalf("extra specs: %v", specs)
	}
	if got := must(volumetypes.ListExtraSpecs(ctx, adm, vt.ID).Extract()); len(got) != 2 {
		t.Fatalf("list extra specs: %v", got)
	}
	if err := volumetypes.DeleteExtraSpec(ctx, adm, vt.ID, "capabilities:tier").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := volumetypes.Get(ctx, u2, vt.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("private type seen by another project: %v", err)
	}
	if err := volumetypes.AddAccess(ctx, adm, vt.ID, volumetypes.AddAccessOpts{Project: c.p2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	acc := must(volumetypes.ExtractAccesses(must(volumetypes.ListAccesses(adm, vt.ID).AllPages(ctx))))
	if len(acc) != 1 || acc[0].ProjectID != c.p2 {
		t.Fatalf("accesses: %+v", acc)
	}
	v := must(volumes.Create(ctx, u2, volumes.CreateOpts{Size: 1, VolumeType: "gold"}, nil).Extract())
	v = waitVolume(t, u2, v.ID, "available")
	if v.VolumeType != "gold" {
		t.Fatalf("volume type: %s", v.VolumeType)
	}
	zones := must(availabilityzones.ExtractAvailabilityZones(must(availabilityzones.List(u2).AllPages(ctx))))
	if len(zones) != 1 || zones[0].ZoneName != "nova" || !zones[0].ZoneState.Available {
		t.Fatalf("zones: %+v", zones)
	}
	if err := volumes.Attach(ctx, u2, v.ID, volumes.AttachOpts{InstanceUUID: "srv", MountPoint: "/dev/vdb", Mode: volumes.ReadWrite}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	inUse := waitVolume(t, u2, v.ID, "in-use")
	if len(inUse.Attachments) != 1 || inUse.Attachments[0].Device != "/dev/vdb" {
		t.Fatalf("legacy attach: %+v", inUse.Attachments)
	}
	if err := volumes.Detach(ctx, u2, v.ID, volumes.DetachOpts{AttachmentID: inUse.Attachments[0].AttachmentID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, u2, v.ID, "available")
	if err := volumetypes.Delete(ctx, adm, vt.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("deleting a type in use: %v", err)
	}
}
