package s3obj

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/drivertest"
	"github.com/stratuskit/stratus/objectstore/memobj"
	"github.com/stratuskit/stratus/objectstore/s3obj/s3test"
)

// open returns a backend on a fresh bucket of srv, with parts small
// enough that the suite's larger objects are multipart uploads.
func open(t *testing.T, srv *s3test.Server, bucket string) *Backend {
	t.Helper()
	b, err := Open(context.Background(), Config{
		Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Bucket: bucket, PartSize: 5 << 20, PartConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	var n atomic.Int64
	drivertest.Run(t, func(t *testing.T) objectstore.Backend {
		return open(t, srv, fmt.Sprintf("conformance-%d", n.Add(1)))
	})
}

// sized is a body of declared length, as the Swift API hands Put.
type sized struct {
	io.Reader
	n int64
}

func (s sized) ContentLength() int64 { return s.n }

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

var ctx = context.Background()

func key(name string) objectstore.ObjectKey {
	return objectstore.ObjectKey{Account: "AUTH_t", Container: "c", Name: name}
}

func readAll(t *testing.T, b objectstore.Backend, k objectstore.ObjectKey) []byte {
	t.Helper()
	rc, _, err := b.Get(ctx, k, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestUploads covers the three ways up: a declared length streams in one
// request, a chunked body in one request when it fits a part, in a
// multipart upload when not; all keep the old version when they fail.
func TestUploads(t *testing.T) {
	srv := s3test.Start(t)
	b := open(t, srv, "uploads")
	defer b.Close()
	if err := b.CreateContainer(ctx, "AUTH_t", "c"); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16+3) // two parts and a bit
	old := []byte("old")
	for _, tc := range []struct {
		name string
		body func([]byte) io.Reader
	}{
		{"stream", func(d []byte) io.Reader { return sized{bytes.NewReader(d), int64(len(d))} }},
		{"chunked", func(d []byte) io.Reader { return io.MultiReader(bytes.NewReader(d)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := key(tc.name)
			if _, err := b.Put(ctx, k, bytes.NewReader(old), objectstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			// A wrong ETag stores nothing.
			if _, err := b.Put(ctx, k, tc.body(big), objectstore.PutOptions{ETag: md5hex(old)}); !errors.Is(err, objectstore.ErrETagMismatch) || !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("wrong etag: %v", err)
			}
			// A body that fails midway stores nothing and answers its error.
			boom := errdefs.Invalid("Content-Length", "short body")
			failing := io.MultiReader(bytes.NewReader(big[:7<<20]), iotest.ErrReader(boom))
			r := failing
			if tc.name == "stream" {
				r = sized{failing, int64(len(big))}
			}
			if _, err := b.Put(ctx, k, r, objectstore.PutOptions{}); !errors.Is(err, boom) {
				t.Fatalf("failing body: %v, want its error", err)
			}
			if got := readAll(t, b, k); !bytes.Equal(got, old) {
				t.Fatalf("after failed puts read %d bytes, want the old version", len(got))
			}
			// Without an ETag and with the right one.
			for _, etag := range []string{"", md5hex(big)} {
				info, err := b.Put(ctx, k, tc.body(big), objectstore.PutOptions{ETag: etag, ContentType: "application/x-big"})
				if err != nil {
					t.Fatal(err)
				}
				if info.ETag != md5hex(big) || info.Size != int64(len(big)) {
					t.Fatalf("put info %+v", info)
				}
				h, err := b.Head(ctx, k)
				if err != nil || h.ETag != md5hex(big) || h.Size != int64(len(big)) || h.ContentType != "application/x-big" {
					t.Fatalf("head %+v %v", h, err)
				}
				if got := readAll(t, b, k); !bytes.Equal(got, big) {
					t.Fatal("read back differs")
				}
			}
		})
	}
	// A multipart object whose MD5 tag was lost (a crash between the
	// upload and the tag) gets its MD5 from its bytes, and the tag back.
	k := key("chunked")
	s3key, _ := objectKey(k.Account, k.Container, k.Name)
	if _, err := b.Put(ctx, k, io.MultiReader(bytes.NewReader(big)), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Client().RemoveObjectTagging(ctx, "uploads", s3key, minio.RemoveObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	if h, err := b.Head(ctx, k); err != nil || h.ETag != md5hex(big) {
		t.Fatalf("head without the tag: %+v %v", h, err)
	}
	tg, err := b.Client().GetObjectTagging(ctx, "uploads", s3key, minio.GetObjectTaggingOptions{})
	if err != nil || tg.ToMap()[md5Tag] != md5hex(big) {
		t.Fatalf("tag not restored: %v %v", tg, err)
	}
}

// TestMetadataBothWays: Swift metadata is S3 user metadata an S3 client
// reads, and S3 user metadata an S3 client writes is Swift metadata;
// values that S3 headers cannot carry survive.
func TestMetadataBothWays(t *testing.T) {
	srv := s3test.Start(t)
	b := open(t, srv, "meta")
	defer b.Close()
	if err := b.CreateContainer(ctx, "AUTH_t", "c"); err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{
		"X-Object-Meta-Color":        "blue",
		"X-Object-Meta-Unicode":      "café ☕",
		"X-Object-Meta-Encodedlike":  "=?UTF-8?B?eA==?=",
		"X-Object-Meta-Spaces":       " padded ",
		"X-Object-Meta-Long":         strings.Repeat("é", 100),
		"X-Object-Meta-Stratus-Md5":  "not ours",
		"Content-Disposition":        "attachment; filename=\"a b.txt\"",
		"Content-Encoding":           "gzip",
		"X-Object-Manifest":          "segs/prefix",
		"X-Object-Sysmeta-Something": "x",
	}
	if _, err := b.Put(ctx, key("o"), strings.NewReader("data"), objectstore.PutOptions{ContentType: "text/plain", Headers: headers, DeleteAt: 4102444800}); err != nil {
		t.Fatal(err)
	}
	h, err := b.Head(ctx, key("o"))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(h.Headers, headers) || h.DeleteAt != 4102444800 || h.ContentType != "text/plain" || h.ETag != md5hex([]byte("data")) {
		t.Fatalf("head %+v\nwant headers %v", h, headers)
	}
	s3key, _ := objectKey("AUTH_t", "c", "o")
	oi, err := b.Client().StatObject(ctx, "meta", s3key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if oi.UserMetadata["Color"] != "blue" || oi.ContentType != "text/plain" || oi.Metadata.Get("Content-Encoding") != "gzip" {
		t.Fatalf("S3 sees %v %q %v", oi.UserMetadata, oi.ContentType, oi.Metadata)
	}

	// An S3 client's object, in the container's namespace.
	s3key, _ = objectKey("AUTH_t", "c", "from-s3")
	if _, err := b.Client().PutObject(ctx, "meta", s3key, strings.NewReader("s3"), 2, minio.PutObjectOptions{ContentType: "image/png", UserMetadata: map[string]string{"Owner": "s3-user"}}); err != nil {
		t.Fatal(err)
	}
	h, err = b.Head(ctx, key("from-s3"))
	if err != nil || h.Headers["X-Object-Meta-Owner"] != "s3-user" || h.ContentType != "image/png" || h.ETag != md5hex([]byte("s3")) {
		t.Fatalf("S3 object seen as %+v %v", h, err)
	}
	ents, err := b.List(ctx, "AUTH_t", "c", objectstore.ListOptions{})
	if err != nil || len(ents) != 2 || ents[0].Name() != "from-s3" || ents[1].Object.Headers["X-Object-Meta-Color"] != "blue" {
		t.Fatalf("listing %+v %v", ents, err)
	}
}

// TestLongNames lists names past what S3 keys hold, sharing long
// prefixes with each other and with short names, against memobj.
func TestLongNames(t *testing.T) {
	srv := s3test.Start(t)
	b := open(t, srv, "long")
	defer b.Close()
	ref := memobj.New()
	r := rand.New(rand.NewPCG(5, 6))
	base := strings.Repeat("p/", 480)
	var names []string
	for i := range 40 {
		n := base[:r.IntN(len(base))] + fmt.Sprintf("%c%d", 'a'+r.IntN(3), i)
		if i%4 == 0 {
			n = base + strings.Repeat("q", r.IntN(60)) + fmt.Sprint(i)
		}
		if len(n) > 1024 {
			n = n[:1024]
		}
		names = append(names, n)
	}
	for _, be := range []objectstore.Backend{b, ref} {
		if err := be.CreateContainer(ctx, "AUTH_t", "c"); err != nil {
			t.Fatal(err)
		}
		for i, n := range names {
			if _, err := be.Put(ctx, key(n), strings.NewReader(fmt.Sprint(i)), objectstore.PutOptions{DeleteAt: int64(1000 + i%2)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	list := func(be objectstore.Backend, o objectstore.ListOptions) []string {
		ents, err := be.List(ctx, "AUTH_t", "c", o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	for i := range 60 {
		o := objectstore.ListOptions{Reverse: i%3 == 0, Limit: r.IntN(12)}
		if i%2 == 0 {
			o.Marker = names[r.IntN(len(names))]
		}
		if i%5 == 0 {
			o.Prefix = base[:2*r.IntN(len(base)/2)]
		}
		if i%4 == 0 {
			o.Delimiter = "q"
		}
		if got, want := list(b, o), list(ref, o); !slices.Equal(got, want) {
			t.Fatalf("List(%+v)\n got %q\nwant %q", o, got, want)
		}
	}
	for i, n := range names {
		if got := string(readAll(t, b, key(n))); got != fmt.Sprint(i) {
			t.Fatalf("%d: read %q", i, got)
		}
	}
	// Their expiry entries carry their names.
	reaped, err := b.ReapExpired(ctx, time.Unix(1000, 0), 1000)
	if err != nil || len(reaped) != (len(names)+1)/2 {
		t.Fatalf("reaped %d, %v; want %d", len(reaped), err, (len(names)+1)/2)
	}
}

// TestErrors classifies what S3 answers into errdefs kinds.
func TestErrors(t *testing.T) {
	srv := s3test.Start(t)
	b := open(t, srv, "errors")
	if _, err := b.Head(ctx, key("none")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
	_, err := Open(ctx, Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: "wrong-secret", Bucket: "errors"})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("wrong credentials: %v, want Unavailable", err)
	}
	if _, err := Open(ctx, Config{Endpoint: srv.Endpoint, Bucket: "x", PartSize: 1 << 20}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("tiny parts: %v, want Invalid", err)
	}
	if _, _, err := b.Get(ctx, key("none"), 5, -1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("range of a missing object: %v", err)
	}
	// A server gone away: Unavailable, quickly.
	dead, err := Open(ctx, Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "errors"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dead2, err := Open(ctx, Config{Endpoint: addr, Bucket: "errors"})
	if err == nil || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("no server: %v, %v, want Unavailable", dead2, err)
	}
	_ = dead.Close()
}
