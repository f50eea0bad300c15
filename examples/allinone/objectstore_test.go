package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"

	"github.com/stratuskit/stratus/image/objblob"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

// swiftClient logs in as the admin of the all-in-one in data at addr and
// returns an object-store client found through the catalog.
func swiftClient(t *testing.T, data, addr string) *gophercloud.ServiceClient {
	t.Helper()
	rc, err := os.ReadFile(filepath.Join(data, "admin-openrc.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`OS_PASSWORD='([^']*)'`).FindSubmatch(rc)
	if m == nil {
		t.Fatalf("no password in admin-openrc.sh")
	}
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: "http://" + addr + ":5000/v3", Username: "admin", Password: string(m[1]),
		DomainName: "Default", TenantName: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewObjectStorageV1(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sc.Endpoint, "http://"+addr+":8080/v1/AUTH_") {
		t.Fatalf("object-store endpoint %q", sc.Endpoint)
	}
	return sc
}

// putObject creates container and writes body as its object "o" through
// Swift.
func putObject(t *testing.T, sc *gophercloud.ServiceClient, container, body string) {
	t.Helper()
	ctx := context.Background()
	if _, err := containers.Create(ctx, sc, container, nil).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := objects.Create(ctx, sc, container, "o", objects.CreateOpts{Content: strings.NewReader(body)}).Extract(); err != nil {
		t.Fatal(err)
	}
}

// glanceUpload creates a raw image called name, uploads payload as its
// data and returns its id.
func glanceUpload(t *testing.T, ic *gophercloud.ServiceClient, name string, payload []byte) string {
	t.Helper()
	ctx := context.Background()
	img, err := images.Create(ctx, ic, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, ic, img.ID, bytes.NewReader(payload)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// TestObjectsSurviveRestart stores an object, kills the all-in-one with
// SIGKILL, and reads the object back after a restart.
func TestObjectsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr)
	p.waitLine(t, "stratus: ready")
	sc := swiftClient(t, data, addr)
	body := strings.Repeat("durable ", 10_000)
	putObject(t, sc, "keep", body)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()

	p = start(t, "-data", data, "-listen", addr)
	p.waitLine(t, "stratus: ready")
	sc = swiftClient(t, data, addr)
	dl := objects.Download(ctx, sc, "keep", "o", nil)
	got, err := dl.ExtractContent()
	if err != nil || string(got) != body {
		t.Fatalf("after SIGKILL and restart: %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(data, "objects", "index.db")); err != nil {
		t.Fatalf("objects not under DATA/objects: %v", err)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestObjectsReplicated runs the object store on three device directories
// (-objects fs:A,B,C): an object written through Swift is on all three.
func TestObjectsReplicated(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	devs := []string{filepath.Join(data, "d1"), filepath.Join(data, "d2"), filepath.Join(data, "d3")}
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-objects", "fs:"+strings.Join(devs, ","))
	p.waitLine(t, "stratus: ready")
	sc := swiftClient(t, data, addr)
	body := strings.Repeat("replicated ", 10_000)
	putObject(t, sc, "rep", body)
	// Image data follows -objects.
	ic := imageClient(t, data)
	glanceUpload(t, ic, "rep", []byte(body))
	p.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(data, "objects")); err == nil {
		t.Fatal("DATA/objects exists although -objects chose other directories")
	}
	for _, d := range devs {
		b, err := fsobj.Open(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := b.List(ctx, accountOf(sc.Endpoint), "rep", objectstore.ListOptions{})
		blobs, berr := b.List(ctx, objblob.DefaultAccount, objblob.DefaultContainer, objectstore.ListOptions{})
		b.Close()
		if err != nil || len(ents) != 1 || ents[0].Object.Size != int64(len(body)) {
			t.Fatalf("device %s lists %v, %v", d, ents, err)
		}
		found := false
		for _, e := range blobs {
			found = found || (e.Object != nil && e.Object.Size == int64(len(body)))
		}
		if berr != nil || !found {
			t.Fatalf("device %s holds no image data: %d blobs, %v", d, len(blobs), berr)
		}
	}
}

// accountOf returns the AUTH_ account at the end of a storage URL.
func accountOf(url string) string {
	url = strings.TrimSuffix(url, "/")
	return url[strings.LastIndex(url, "/")+1:]
}

func TestParseObjects(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string
		dirs int
		ok   bool
	}{
		{"", "fs", 1, true},
		{"fs:/a", "fs", 1, true},
		{"fs:/a,/b,/c", "fs", 3, true},
		{"s3://host:9000/bucket", "s3", 0, true},
		{"s3+https://host/bucket", "s3", 0, true},
		{"gs://bucket", "", 0, false},
		{"fs:", "", 0, false},
		{"fs:/a,,/b", "", 0, false},
		{"fs:/a,/a/", "", 0, false},
		{"/a", "", 0, false},
	} {
		spec, err := parseObjects(tc.in, "/data")
		if (err == nil) != tc.ok || (tc.ok && (spec.Kind != tc.kind || len(spec.Dirs) != tc.dirs)) {
			t.Errorf("parseObjects(%q) = %+v, %v", tc.in, spec, err)
		}
	}
	if spec, _ := parseObjects("", "/data"); spec.Dirs[0] != "/data/objects" {
		t.Errorf("default dir %q", spec.Dirs[0])
	}
}
