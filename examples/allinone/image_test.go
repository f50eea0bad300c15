package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/stratuskit/stratus/image/objblob"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

// imageClient logs in as the admin of the all-in-one in data.
func imageClient(t *testing.T, data string) *gophercloud.ServiceClient {
	t.Helper()
	rc, err := os.ReadFile(filepath.Join(data, "admin-openrc.sh"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) string {
		m := regexp.MustCompile(`(?m)^export ` + k + `='?([^'\n]*)'?$`).FindSubmatch(rc)
		if m == nil {
			t.Fatalf("no %s in admin-openrc.sh", k)
		}
		return string(m[1])
	}
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: get("OS_AUTH_URL"), Username: "admin", Password: get("OS_PASSWORD"), DomainName: "Default", TenantName: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	ic, err := openstack.NewImageV2(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return ic
}

// imageBlobs lists the image bytes kept in the object store's backend of a
// stopped all-in-one.
func imageBlobs(t *testing.T, data string) []string {
	t.Helper()
	b, err := fsobj.Open(filepath.Join(data, "objects"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	entries, err := b.List(context.Background(), objblob.DefaultAccount, objblob.DefaultContainer, objectstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestImageSurvivesKill uploads an image, kills the process with SIGKILL,
// and finds the image and its bytes after a restart; an upload cut by
// SIGKILL leaves the image queued and no bytes.
func TestImageSurvivesKill(t *testing.T) {
	ctx := context.Background()
	data, addr := t.TempDir(), loopback()
	p := start(t, "-data", data, "-listen", addr)
	p.waitLine(t, "stratus: ready")
	ic := imageClient(t, data)
	payload := bytes.Repeat([]byte("durable "), 400_000)
	imgID := glanceUpload(t, ic, "kept", payload)

	// An upload in flight when the process dies.
	cut, err := images.Create(ctx, ic, images.CreateOpts{Name: "cut", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(bytes.Repeat([]byte{1}, 3<<20))
		time.Sleep(time.Minute) // never finishes
	}()
	req, _ := http.NewRequest(http.MethodPut, ic.ResourceBaseURL()+"images/"+cut.ID+"/file", pr)
	req.Header.Set("X-Auth-Token", ic.TokenID)
	req.Header.Set("Content-Type", "application/octet-stream")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; {
		got, err := images.Get(ctx, ic, cut.ID).Extract()
		if err == nil && got.Status == images.ImageStatusSaving {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload never started: %+v %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let bytes reach the temporary file
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	pw.Close()

	p = start(t, "-data", data, "-listen", addr)
	p.waitLine(t, "stratus: ready")
	ic = imageClient(t, data)
	got, err := images.Get(ctx, ic, imgID).Extract()
	if err != nil || got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(payload)) {
		t.Fatalf("after SIGKILL and restart: %+v, %v", got, err)
	}
	rc, err := imagedata.Download(ctx, ic, imgID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(back, payload) {
		t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(back), len(payload))
	}
	got, err = images.Get(ctx, ic, cut.ID).Extract()
	if err != nil || got.Status != images.ImageStatusQueued {
		t.Fatalf("cut upload after restart: %+v, %v", got, err)
	}
	p.stop(t, syscall.SIGTERM)
	if blobs := imageBlobs(t, data); len(blobs) != 1 || !strings.HasPrefix(blobs[0], "images/"+imgID+"/") {
		t.Fatalf("image bytes in the object store: %v, want only the kept image %s", blobs, imgID)
	}
}
