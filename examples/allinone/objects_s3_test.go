package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"

	"github.com/stratuskit/stratus/image/objblob"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/s3obj"
	"github.com/stratuskit/stratus/objectstore/s3obj/s3test"
)

// TestObjectsOnS3 runs the all-in-one with -objects s3://… on a real S3
// server: Swift objects and image data land in the bucket, not in
// DATA/objects, and survive a restart; the credentials may come from the
// environment instead of the URL.
func TestObjectsOnS3(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	data, addr := t.TempDir(), loopback()
	t.Setenv(envS3AccessKey, srv.AccessKey)
	t.Setenv(envS3SecretKey, srv.SecretKey)
	objectsURL := "s3://" + srv.Endpoint + "/stratus"
	p := start(t, "-data", data, "-listen", addr, "-objects", objectsURL)
	p.waitLine(t, "stratus: ready")

	sc := swiftClient(t, data, addr)
	body := strings.Repeat("s3 ", 10_000)
	putObject(t, sc, "on-s3", body)
	ic := imageClient(t, data)
	payload := bytes.Repeat([]byte("image "), 100_000)
	imgID := glanceUpload(t, ic, "s3img", payload)
	p.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(data, "objects")); !os.IsNotExist(err) {
		t.Fatalf("DATA/objects exists with -objects s3: %v", err)
	}

	// The bytes are in the bucket, where another client finds them.
	b, err := s3obj.Open(ctx, s3obj.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "stratus"})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := b.List(ctx, objblob.DefaultAccount, objblob.DefaultContainer, objectstore.ListOptions{})
	if err != nil || len(ents) != 1 || ents[0].Object.Size != int64(len(payload)) {
		t.Fatalf("image blobs in the bucket: %+v, %v", ents, err)
	}

	p = start(t, "-data", data, "-listen", addr, "-objects", objectsURL)
	p.waitLine(t, "stratus: ready")
	sc = swiftClient(t, data, addr)
	dl := objects.Download(ctx, sc, "on-s3", "o", nil)
	got, err := dl.ExtractContent()
	if err != nil || string(got) != body {
		t.Fatalf("after restart: %d bytes, %v", len(got), err)
	}
	ic = imageClient(t, data)
	rc, err := imagedata.Download(ctx, ic, imgID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	rc.Close()
	if err != nil || !bytes.Equal(buf.Bytes(), payload) {
		t.Fatalf("image data after restart: %d bytes, %v", buf.Len(), err)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestObjectsBadS3 refuses an unknown or malformed -objects and an
// unreachable server at start.
func TestObjectsBadS3(t *testing.T) {
	for _, objs := range []string{"s4://127.0.0.1:1/bucket", "s3://127.0.0.1/bucket", "s3://127.0.0.1:1/Bad_Bucket", "s3://127.0.0.1:1/bucket"} {
		p := start(t, "-data", t.TempDir(), "-listen", loopback(), "-objects", objs)
		err := p.cmd.Wait()
		if err == nil || !strings.Contains(p.stderr.String(), "-objects") {
			t.Errorf("-objects %s: exit %v, stderr %q", objs, err, p.stderr.String())
		}
	}
}
