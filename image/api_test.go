package image

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // checking Glance's checksum
	"encoding/hex"
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
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/image/memblob"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// cloud is identity and image on loopback, with two projects.
type cloud struct {
	svc     *Service
	blobs   *memblob.Store
	authURL string
	imgURL  string
	p2      string // the id of project p2, whose user is u2
}

func newCloud(t testing.TB, mod ...func(*Config)) *cloud {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, memstore.New(), slices.Concat(identity.Tables(), Tables()), &store.Options{CompactInterval: -1})
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
	blobs := memblob.New()
	cfg := Config{Store: st, Blobs: blobs, Logger: logger}
	for _, m := range mod {
		m(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	idSrv := httptest.NewServer(identity.NewHandler(ids, logger))
	t.Cleanup(idSrv.Close)
	imgSrv := httptest.NewServer(NewHandler(svc, ids, logger))
	t.Cleanup(imgSrv.Close)
	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	if err := ids.Bootstrap(ctx, identity.BootstrapOptions{AdminPassword: "secret", Services: []identity.ServiceEndpoints{
		{Type: "identity", Name: "keystone", PublicURL: idSrv.URL + "/v3"},
		{Type: "image", Name: "glance", PublicURL: imgSrv.URL},
	}}); err != nil {
		t.Fatal(err)
	}
	p2 := must(ids.CreateProject(admin, identity.CreateProjectOpts{Name: "p2", DomainID: identity.DefaultDomainID}))
	u2 := must(ids.CreateUser(admin, identity.CreateUserOpts{Name: "u2", Password: "pw2", DomainID: identity.DefaultDomainID, DefaultProjectID: p2.ID}))
	role := must(ids.RoleByName(admin, identity.RoleMember))
	if err := ids.CreateGrant(admin, identity.Grant{UserID: u2.ID, ProjectID: p2.ID, RoleID: role.ID}); err != nil {
		t.Fatal(err)
	}
	return &cloud{svc: svc, blobs: blobs, authURL: idSrv.URL + "/v3", imgURL: imgSrv.URL, p2: p2.ID}
}

// client returns a gophercloud image client for a user.
func (c *cloud) client(t testing.TB, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: c.authURL, Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	ic, err := openstack.NewImageV2(pc, gophercloud.EndpointOpts{Region: identity.DefaultRegion})
	if err != nil {
		t.Fatal(err)
	}
	return ic
}

func (c *cloud) admin(t testing.TB) *gophercloud.ServiceClient {
	return c.client(t, "admin", "secret", "admin")
}
func (c *cloud) user2(t *testing.T) *gophercloud.ServiceClient { return c.client(t, "u2", "pw2", "p2") }

func TestGophercloudImages(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	ic := c.admin(t)
	vis := images.ImageVisibilityShared
	img, err := images.Create(ctx, ic, images.CreateOpts{Name: "gc", DiskFormat: "raw", ContainerFormat: "bare",
		Visibility: &vis, Tags: []string{"a"}, Properties: map[string]string{"os_distro": "stratus"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != images.ImageStatusQueued || img.Properties["os_distro"] != "stratus" || !slices.Equal(img.Tags, []string{"a"}) {
		t.Fatalf("created: %+v", img)
	}
	data := bytes.Repeat([]byte("gophercloud "), 200_000)
	if err := imagedata.Upload(ctx, ic, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got, err := images.Get(ctx, ic, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data) //nolint:gosec
	if got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(data)) || got.Checksum != hex.EncodeToString(sum[:]) || got.VirtualSize != int64(len(data)) {
		t.Fatalf("after upload: %+v", got)
	}
	rc, err := imagedata.Download(ctx, ic, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("download: %d bytes, %v", len(back), err)
	}

	upd, err := images.Update(ctx, ic, img.ID, images.UpdateOpts{
		images.ReplaceImageName{NewName: "gc2"},
		images.ReplaceImageTags{NewTags: []string{"x", "y"}},
		images.ReplaceImageMinRam{NewMinRam: 256},
		images.UpdateImageProperty{Op: images.AddOp, Name: "hw_disk_bus", Value: "virtio"},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "gc2" || upd.MinRAMMegabytes != 256 || upd.Properties["hw_disk_bus"] != "virtio" || len(upd.Tags) != 2 {
		t.Fatalf("updated: %+v", upd)
	}

	// Members: share with p2, which accepts.
	m, err := members.Create(ctx, ic, img.ID, c.p2).Extract()
	if err != nil || m.Status != "pending" || m.MemberID != c.p2 {
		t.Fatalf("member create: %+v, %v", m, err)
	}
	u2 := c.user2(t)
	if _, err := members.Update(ctx, u2, img.ID, c.p2, members.UpdateOpts{Status: "accepted"}).Extract(); err != nil {
		t.Fatal(err)
	}
	var ms []members.Member
	err = members.List(ic, img.ID).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		l, err := members.ExtractMembers(p)
		ms = append(ms, l...)
		return true, err
	})
	if err != nil || len(ms) != 1 || ms[0].Status != "accepted" {
		t.Fatalf("members: %+v, %v", ms, err)
	}
	listed := listIDs(t, u2, images.ListOpts{})
	if !slices.Contains(listed, img.ID) {
		t.Fatalf("p2 does not list the accepted image: %v", listed)
	}
	if err := members.Delete(ctx, ic, img.ID, c.p2).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Get(ctx, u2, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("p2 after removal: %v", err)
	}

	// Paging through gophercloud's pager with a small limit.
	for i := range 5 {
		if _, err := images.Create(ctx, ic, images.CreateOpts{Name: "page" + string(rune('a'+i))}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	all := listIDs(t, ic, images.ListOpts{Limit: 2, Sort: "name:asc"})
	if len(all) != 6 {
		t.Fatalf("paged list: %d images, want 6", len(all))
	}

	// Import info and a glance-direct import.
	info, err := imageimport.Get(ctx, ic).Extract()
	if err != nil || !slices.Contains(info.ImportMethods.Value, "glance-direct") {
		t.Fatalf("import info: %+v, %v", info, err)
	}
	st, err := images.Create(ctx, ic, images.CreateOpts{Name: "staged", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Stage(ctx, ic, st.ID, bytes.NewReader(data[:1000])).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := imageimport.Create(ctx, ic, st.ID, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got, _ := images.Get(ctx, ic, st.ID).Extract(); got.Status != images.ImageStatusActive || got.SizeBytes != 1000 {
		t.Fatalf("after import: %+v", got)
	}
	if err := images.Delete(ctx, ic, img.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Get(ctx, ic, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func listIDs(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOpts) []string {
	t.Helper()
	var ids []string
	err := images.List(c, opts).EachPage(context.Background(), func(_ context.Context, p pagination.Page) (bool, error) {
		l, err := images.ExtractImages(p)
		for _, i := range l {
			ids = append(ids, i.ID)
		}
		return true, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// call sends a raw request with c's token and returns status and body.
func call(t *testing.T, c *gophercloud.ServiceClient, method, path, ctype string, body []byte, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(c.ResourceBaseURL(), "/")+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", c.TokenID)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestGlanceErrors(t *testing.T) {
	c := newCloud(t)
	ic := c.admin(t)
	ctx := context.Background()
	img, err := images.Create(ctx, ic, images.CreateOpts{Name: "e", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, path, ctype, body string
		hdr                             []string
		status                          int
		msg                             string
	}{
		{"malformed JSON patch", "PATCH", "/images/" + img.ID, PatchContentType, `{"op":"replace"}`, nil, 400, "JSON array"},
		{"patch op missing", "PATCH", "/images/" + img.ID, PatchContentType, `[{"path":"/name","value":"x"}]`, nil, 400, "`op`"},
		{"patch bad pointer", "PATCH", "/images/" + img.ID, PatchContentType, `[{"op":"add","path":"/a/b","value":"x"}]`, nil, 400, "JSON pointer"},
		{"patch as plain JSON", "PATCH", "/images/" + img.ID, "application/json", `[]`, nil, 415, "Content-Type"},
		{"unknown disk format", "POST", "/images", "application/json", `{"name":"u","disk_format":"floppy"}`, nil, 400, "disk_format"},
		{"unknown container format", "POST", "/images", "application/json", `{"name":"u","container_format":"crate"}`, nil, 400, "container_format"},
		{"non-string property", "POST", "/images", "application/json", `{"name":"u","k":1}`, nil, 400, "string"},
		{"read-only on create", "POST", "/images", "application/json", `{"name":"u","status":"active"}`, nil, 403, "read-only"},
		{"bad checksum", "PUT", "/images/" + img.ID + "/file", "application/octet-stream", "data", []string{"Content-MD5", strings.Repeat("0", 32)}, 400, "checksum"},
		{"unknown image", "GET", "/images/" + newUUID(), "", "", nil, 404, "image"},
		{"bad sort key", "GET", "/images?sort_key=checksum", "", "", nil, 400, "sort"},
		{"bad marker", "GET", "/images?marker=" + newUUID(), "", "", nil, 400, "marker"},
		{"bad range", "GET", "/images/" + img.ID + "/file", "", "", []string{"Range", "bytes=9-1"}, 204, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := call(t, ic, tc.method, tc.path, tc.ctype, []byte(tc.body), tc.hdr...)
			if status != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("%d %q, want %d containing %q", status, body, tc.status, tc.msg)
			}
			if status >= 400 && (!strings.HasPrefix(body, "") || !strings.HasPrefix(h.Get("Content-Type"), "text/plain")) {
				t.Fatalf("error body is not Glance's text: %s %q", h.Get("Content-Type"), body)
			}
		})
	}
	// The refused upload left the image queued.
	if got, _ := images.Get(ctx, ic, img.ID).Extract(); got.Status != images.ImageStatusQueued {
		t.Fatalf("after a bad checksum: %s", got.Status)
	}
	if k := must(c.blobs.Keys()); len(k) != 0 {
		t.Fatalf("bytes kept: %v", k)
	}
}

func TestDownloadRangeAndMD5(t *testing.T) {
	c := newCloud(t)
	ic := c.admin(t)
	ctx := context.Background()
	img, _ := images.Create(ctx, ic, images.CreateOpts{Name: "r", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	data := []byte("0123456789")
	if err := imagedata.Upload(ctx, ic, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data) //nolint:gosec
	for _, tc := range []struct {
		rng, want string
		status    int
	}{
		{"", "0123456789", 200}, {"bytes=2-4", "234", 206}, {"bytes=7-", "789", 206}, {"bytes=-3", "789", 206},
		{"bytes=5-100", "56789", 206}, {"bytes=10-", "", 416}, {"items=1-2", "", 416},
	} {
		var hdr []string
		if tc.rng != "" {
			hdr = []string{"Range", tc.rng}
		}
		status, body, h := call(t, ic, "GET", "/images/"+img.ID+"/file", "", nil, hdr...)
		if status != tc.status || (status < 300 && body != tc.want) {
			t.Errorf("Range %q: %d %q, want %d %q", tc.rng, status, body, tc.status, tc.want)
		}
		if status == 200 && h.Get("Content-MD5") != hex.EncodeToString(sum[:]) {
			t.Errorf("Content-MD5 = %q", h.Get("Content-MD5"))
		}
	}
}

// TestLocationsNeverExposedOrChanged is the regression test for
// OSSA-2016-006 (CVE-2016-0757), OSSN-0065 and OSSN-0090: image locations
// and direct_url are never shown to non-admins, and no request can change
// them to swap an active image's data or reset it to queued.
func TestLocationsNeverExposedOrChanged(t *testing.T) {
	c := newCloud(t, func(cfg *Config) { cfg.ShowDirectURL = true })
	ctx := context.Background()
	ic := c.admin(t)
	u2 := c.user2(t)
	img, _ := images.Create(ctx, u2, images.CreateOpts{Name: "mine", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err := imagedata.Upload(ctx, u2, img.ID, strings.NewReader("original")).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	_, body, _ := call(t, u2, "GET", "/images/"+img.ID, "", nil)
	if strings.Contains(body, "direct_url") || strings.Contains(body, "locations") || strings.Contains(body, "stratus-blob") {
		t.Fatalf("owner sees where the bytes are: %s", body)
	}
	_, body, _ = call(t, u2, "GET", "/images", "", nil)
	if strings.Contains(body, "direct_url") || strings.Contains(body, "locations") {
		t.Fatalf("list shows locations: %s", body)
	}
	_, body, _ = call(t, ic, "GET", "/images/"+img.ID, "", nil)
	if !strings.Contains(body, "direct_url") {
		t.Fatalf("admin with ShowDirectURL does not see direct_url: %s", body)
	}
	for _, patch := range []string{
		`[{"op":"replace","path":"/locations","value":[]}]`,
		`[{"op":"remove","path":"/locations/0"}]`,
		`[{"op":"add","path":"/locations/-","value":{"url":"file:///etc/passwd","metadata":{}}}]`,
		`[{"op":"replace","path":"/direct_url","value":"file:///etc/passwd"}]`,
		`[{"op":"replace","path":"/status","value":"queued"}]`,
		`[{"op":"replace","path":"/checksum","value":"00000000000000000000000000000000"}]`,
		`[{"op":"replace","path":"/size","value":1}]`,
	} {
		for name, cl := range map[string]*gophercloud.ServiceClient{"owner": u2, "admin": ic} {
			status, body, _ := call(t, cl, "PATCH", "/images/"+img.ID, PatchContentType, []byte(patch))
			if status != http.StatusForbidden {
				t.Errorf("%s %s: %d %s, want 403", name, patch, status, body)
			}
		}
	}
	for _, b := range []string{`{"name":"x","locations":[{"url":"file:///etc/passwd","metadata":{}}]}`, `{"name":"x","direct_url":"file:///etc/passwd"}`} {
		if status, body, _ := call(t, u2, "POST", "/images", "application/json", []byte(b)); status != http.StatusForbidden {
			t.Errorf("create with %s: %d %s", b, status, body)
		}
	}
	// The data was not swapped and the image was not reset to queued.
	if status, _, _ := call(t, u2, "PUT", "/images/"+img.ID+"/file", "application/octet-stream", []byte("swapped")); status != http.StatusConflict {
		t.Fatalf("re-upload to an active image: %d", status)
	}
	_, body, _ = call(t, u2, "GET", "/images/"+img.ID+"/file", "", nil)
	got, _ := images.Get(ctx, u2, img.ID).Extract()
	if body != "original" || got.Status != images.ImageStatusActive {
		t.Fatalf("data %q, status %s after the attempts", body, got.Status)
	}
}

func TestWebDownload(t *testing.T) {
	payload := bytes.Repeat([]byte("web"), 100_000)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/img":
			_, _ = w.Write(payload)
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte{1}, 5000))
		case "/redirect":
			http.Redirect(w, r, "http://other.invalid/img", http.StatusFound)
		case "/qcow":
			_, _ = w.Write(qcow2Header(3, 1<<20, 512, 0))
		}
	}))
	t.Cleanup(src.Close)
	host := strings.TrimPrefix(src.URL, "http://")
	c := newCloud(t, func(cfg *Config) {
		cfg.WebDownload = WebDownload{AllowedHosts: []string{host}, MaxBytes: 4096 * 100}
	})
	ctx := context.Background()
	ic := c.admin(t)
	importURL := func(u string) (*images.Image, error) {
		img, err := images.Create(ctx, ic, images.CreateOpts{Name: "w", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		err = imageimport.Create(ctx, ic, img.ID, imageimport.CreateOpts{Name: imageimport.WebDownloadMethod, URI: u}).ExtractErr()
		if err != nil {
			return img, err
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			got, err := images.Get(ctx, ic, img.ID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != images.ImageStatusImporting {
				return got, nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("import never finished")
		return nil, nil
	}
	got, err := importURL(src.URL + "/img")
	if err != nil || got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(payload)) {
		t.Fatalf("web-download: %+v, %v", got, err)
	}
	// Not on the allow-list: refused before any request.
	if _, err := importURL("http://127.0.0.2:1/img"); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("disallowed host: %v", err)
	}
	if _, err := importURL("file:///etc/passwd"); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("file URI: %v", err)
	}
	// A redirect off the allow-list, unsafe data and oversize data all fail
	// back to queued with the failure recorded, leaving no bytes.
	for _, p := range []string{"/redirect", "/qcow"} {
		got, err := importURL(src.URL + p)
		if err != nil || got.Status != images.ImageStatusQueued || got.Properties["os_glance_failed_import"] != "web-download" {
			t.Fatalf("%s: %+v, %v", p, got, err)
		}
	}
	if k := must(c.blobs.Keys()); len(k) != 1 {
		t.Fatalf("blobs: %v", k)
	}
}

func TestWebDownloadDisabledByDefault(t *testing.T) {
	c := newCloud(t)
	ic := c.admin(t)
	_, body, _ := call(t, ic, "GET", "/info/import", "", nil)
	var info struct {
		M struct {
			Value []string `json:"value"`
		} `json:"import-methods"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil || !slices.Equal(info.M.Value, []string{"glance-direct"}) {
		t.Fatalf("import info: %s", body)
	}
	img, _ := images.Create(context.Background(), ic, images.CreateOpts{Name: "w", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	err := imageimport.Create(context.Background(), ic, img.ID, imageimport.CreateOpts{Name: imageimport.WebDownloadMethod, URI: "http://127.0.0.1:1/x"}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("web-download when disabled: %v", err)
	}
}

func TestDiscoveryAndSchemas(t *testing.T) {
	c := newCloud(t)
	for _, p := range []string{"/", "/versions"} {
		resp, err := http.Get(c.imgURL + p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Versions []struct{ ID, Status string } `json:"versions"`
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil || len(doc.Versions) == 0 || doc.Versions[0].Status != "CURRENT" {
			t.Fatalf("%s: %+v, %v", p, doc, err)
		}
	}
	ic := c.admin(t)
	for _, s := range []string{"image", "images", "member", "members"} {
		status, body, _ := call(t, ic, "GET", "/schemas/"+s, "", nil)
		var m map[string]any
		if status != 200 || json.Unmarshal([]byte(body), &m) != nil || m["name"] != s || m["properties"] == nil {
			t.Fatalf("schema %s: %d %.200s", s, status, body)
		}
	}
	resp, err := http.Get(c.imgURL + "/v2/images")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %s", resp.Status)
	}
}

func (c *cloud) adminCtx() context.Context {
	return identity.WithCredentials(context.Background(), identity.SystemAdmin())
}
