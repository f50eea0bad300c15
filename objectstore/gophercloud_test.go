package objectstore_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/accounts"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
)

func swiftClient(t *testing.T, c *cloud, user, project string) *gophercloud.ServiceClient {
	t.Helper()
	ctx := context.Background()
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: c.identURL,
		Username: user, Password: user + "-pw", DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewObjectStorageV1(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestGophercloud(t *testing.T) {
	c := newCloud(t, nil)
	c.tenant(t, "p1", "alice", "member")
	c.tenant(t, "p2", "bob", "member")
	sc := swiftClient(t, c, "alice", "p1")
	ctx := context.Background()

	if _, err := accounts.Update(ctx, sc, accounts.UpdateOpts{Metadata: map[string]string{"Temp-Url-Key": "k"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gc 🌩 one", "gc-two"} {
		if _, err := containers.Create(ctx, sc, name, containers.CreateOpts{Metadata: map[string]string{"Foo": "bar"}}).Extract(); err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
	}
	for _, o := range []string{"a.txt", "dir/b.txt", "dir/c.txt"} {
		res := objects.Create(ctx, sc, "gc 🌩 one", o, objects.CreateOpts{Content: strings.NewReader("content of " + o), Metadata: map[string]string{"Kind": "test"}})
		if _, err := res.Extract(); err != nil {
			t.Fatalf("create %s: %v", o, err)
		}
	}
	pages, err := objects.List(sc, "gc 🌩 one", objects.ListOpts{Prefix: "dir/"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names, err := objects.ExtractNames(pages)
	if err != nil || !slices.Equal(names, []string{"dir/b.txt", "dir/c.txt"}) {
		t.Fatalf("list: %v %v", names, err)
	}
	pages, err = objects.List(sc, "gc 🌩 one", objects.ListOpts{Delimiter: "/"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := objects.ExtractInfo(pages)
	if err != nil || len(infos) != 2 || infos[1].Subdir != "dir/" {
		t.Fatalf("list with delimiter: %+v %v", infos, err)
	}
	dl := objects.Download(ctx, sc, "gc 🌩 one", "dir/b.txt", nil)
	data, err := dl.ExtractContent()
	if err != nil || string(data) != "content of dir/b.txt" {
		t.Fatalf("download: %q %v", data, err)
	}
	got, err := objects.Get(ctx, sc, "gc 🌩 one", "a.txt", nil).ExtractMetadata()
	if err != nil || got["Kind"] != "test" {
		t.Fatalf("metadata %v %v", got, err)
	}
	if _, err := objects.Update(ctx, sc, "gc 🌩 one", "a.txt", objects.UpdateOpts{Metadata: map[string]string{"New": "1"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := objects.Copy(ctx, sc, "gc 🌩 one", "a.txt", objects.CopyOpts{Destination: "/gc-two/a-copy.txt"}).Extract(); err != nil {
		t.Fatal(err)
	}
	cinfo, err := containers.Get(ctx, sc, "gc-two", nil).Extract()
	if err != nil || cinfo.ObjectCount != 1 {
		t.Fatalf("container get %+v %v", cinfo, err)
	}
	ainfo, err := accounts.Get(ctx, sc, nil).Extract()
	if err != nil || ainfo.ContainerCount != 2 || ainfo.ObjectCount != 4 {
		t.Fatalf("account %+v %v", ainfo, err)
	}
	// Temp URL, as gophercloud's acceptance test downloads through one.
	for _, digest := range []string{"", "sha256", "sha512"} {
		u, err := objects.CreateTempURL(ctx, sc, "gc 🌩 one", "a.txt", objects.CreateTempURLOpts{Method: http.MethodGet, TTL: 60, Digest: digest})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "content of a.txt" {
			t.Fatalf("temp URL (%q): %d %q", digest, resp.StatusCode, body)
		}
	}
	// Bob's client cannot read alice's container.
	bob := swiftClient(t, c, "bob", "p2")
	aliceObj := sc.ServiceURL("gc-two", "a-copy.txt")
	resp, err := bob.Request(ctx, "GET", aliceObj, &gophercloud.RequestOpts{OkCodes: []int{200}, KeepResponseBody: true})
	if err == nil {
		resp.Body.Close()
		t.Fatal("bob read alice's object")
	}
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("bob: %v, want 403", err)
	}
	// Bulk delete, then delete the containers.
	res, err := objects.BulkDelete(ctx, sc, "gc 🌩 one", []string{"a.txt", "dir/b.txt", "dir/c.txt"}).Extract()
	if err != nil || res.NumberDeleted != 3 {
		t.Fatalf("bulk delete %+v %v", res, err)
	}
	if _, err := objects.Delete(ctx, sc, "gc-two", "a-copy.txt", nil).Extract(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gc 🌩 one", "gc-two"} {
		if _, err := containers.Delete(ctx, sc, name).Extract(); err != nil {
			t.Fatalf("delete %q: %v", name, err)
		}
	}
}
