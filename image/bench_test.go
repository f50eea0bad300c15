package image

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the checksum clients verify
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/stratuskit/stratus/image/fileblob"
)

// benchImageBytes is the image size of the throughput benchmarks:
// STRATUS_BENCH_IMAGE_MB MiB (make bench: 1024), 64 MiB by default.
func benchImageBytes() int64 {
	if v, err := strconv.Atoi(os.Getenv("STRATUS_BENCH_IMAGE_MB")); err == nil && v > 0 {
		return int64(v) << 20
	}
	return 64 << 20
}

// source yields n pseudo-random bytes from a repeated 1 MiB block, so that
// generating them costs nothing next to what is measured.
type source struct {
	block []byte
	left  int64
	off   int
}

func newSource(n int64) *source {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return &source{block: b, left: n}
}

func (s *source) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p, s.block[s.off:])
	n = int(min(int64(n), s.left))
	s.off = (s.off + n) % len(s.block)
	s.left -= int64(n)
	return n, nil
}

// throughput is a cloud on a file-backed blob store in dir, with an admin
// client, for the data-path measurements.
type throughput struct {
	c   *cloud
	ic  *gophercloud.ServiceClient
	dir string
}

func newThroughput(tb testing.TB) *throughput {
	dir := tb.TempDir()
	blobs, err := fileblob.Open(filepath.Join(dir, "images"))
	if err != nil {
		tb.Fatal(err)
	}
	c := newCloud(tb, func(cfg *Config) { cfg.Blobs = blobs })
	return &throughput{c: c, ic: c.admin(tb), dir: dir}
}

var benchClient = &http.Client{Transport: &http.Transport{DisableCompression: true, WriteBufferSize: 256 << 10, ReadBufferSize: 256 << 10}}

// upload creates an image and PUTs n bytes to it through the API.
func (tp *throughput) upload(tb testing.TB, n int64) string {
	img, err := images.Create(context.Background(), tp.ic, images.CreateOpts{Name: "bench", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, tp.ic.ResourceBaseURL()+"images/"+img.ID+"/file", newSource(n))
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", tp.ic.TokenID)
	resp, err := benchClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		tb.Fatalf("upload: %s", resp.Status)
	}
	return img.ID
}

// download GETs an image through the API, checking its MD5 as clients do.
func (tp *throughput) download(tb testing.TB, id string) {
	req, _ := http.NewRequest(http.MethodGet, tp.ic.ResourceBaseURL()+"images/"+id+"/file", nil)
	req.Header.Set("X-Auth-Token", tp.ic.TokenID)
	resp, err := benchClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	h := md5.New() //nolint:gosec
	if _, err := io.CopyBuffer(h, resp.Body, make([]byte, 1<<20)); err != nil {
		tb.Fatal(err)
	}
	if fmt.Sprintf("%x", h.Sum(nil)) != resp.Header.Get("Content-MD5") {
		tb.Fatal("download: MD5 mismatch")
	}
}

// copyFile is the upload baseline: write n bytes to a file on the same
// disk computing MD5 and SHA-512, then fsync.
func (tp *throughput) copyFile(tb testing.TB, n int64) string {
	p := filepath.Join(tp.dir, "baseline-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	m, s := md5.New(), sha512.New() //nolint:gosec
	if _, err := io.CopyBuffer(io.MultiWriter(f, m, s), newSource(n), make([]byte, 1<<20)); err != nil {
		tb.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	_, _ = m.Sum(nil), s.Sum(nil)
	return p
}

// readFile is the download baseline: read the file computing MD5.
func readFile(tb testing.TB, p string) {
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := md5.New() //nolint:gosec
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkImageData measures upload and download through the Glance API
// side by side with the same bytes copied to and read from a file on the
// same disk (with MD5 and SHA-512 on upload, fsync, and MD5 on download).
// Compare the MB/s of api-* with file-*: the target is at least 0.8.
func BenchmarkImageData(b *testing.B) {
	n := benchImageBytes()
	tp := newThroughput(b)
	b.Run("api-upload", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			id := tp.upload(b, n)
			b.StopTimer()
			if err := tp.c.svc.DeleteImage(tp.c.adminCtx(), id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("file-upload", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			p := tp.copyFile(b, n)
			b.StopTimer()
			os.Remove(p)
			b.StartTimer()
		}
	})
	id := tp.upload(b, n)
	b.Run("api-download", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			tp.download(b, id)
		}
	})
	p := tp.copyFile(b, n)
	b.Run("file-download", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			readFile(b, p)
		}
	})
}

// BenchmarkInspect measures the format inspector on a 1 MiB head.
func BenchmarkInspect(b *testing.B) {
	head := append(vmdkSparse(desc("monolithicSparse", `RW 2048 SPARSE "a.vmdk"`)), bytes.Repeat([]byte{0}, InspectBytes-64<<10)...)
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		if _, err := Inspect(head); err != nil {
			b.Fatal(err)
		}
	}
}
