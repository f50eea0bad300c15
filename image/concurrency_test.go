package image

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

// TestConcurrentUploads races uploads: to one image only one wins, and
// uploads to many images never take a project over its byte quota.
func TestConcurrentUploads(t *testing.T) {
	t.Run("one image", func(t *testing.T) {
		e := newEnv(t)
		p1 := project("p1")
		img := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = e.svc.UploadData(p1, img.ID, bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 100_000)), UploadOpts{Size: -1})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, errdefs.ErrConflict):
				t.Fatalf("loser failed with %v, want ErrConflict", err)
			}
		}
		got := must(e.svc.GetImage(p1, img.ID))
		if won != 1 || got.Status != StatusActive {
			t.Fatalf("%d uploads won; image %s", won, got.Status)
		}
		if k := e.keys(t); len(k) != 1 {
			t.Fatalf("blobs: %v", k)
		}
		b := e.read(t, p1, img.ID, 0, -1)
		if len(b) != 100_000 || !bytes.Equal(b, bytes.Repeat(b[:1], 100_000)) {
			t.Fatal("stored data is a mix of uploads")
		}
	})
	t.Run("quota", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Quota = Quota{Bytes: 350_000} })
		p1 := project("p1")
		var wg sync.WaitGroup
		for range 8 {
			img := must(e.svc.CreateImage(p1, CreateImageOpts{DiskFormat: DiskRaw, ContainerFormat: "bare"}))
			wg.Go(func() {
				_, err := e.svc.UploadData(p1, img.ID, bytes.NewReader(make([]byte, 100_000)), UploadOpts{Size: -1})
				if err != nil && !errors.Is(err, errdefs.ErrQuotaExceeded) {
					t.Errorf("upload: %v", err)
				}
			})
		}
		wg.Wait()
		u := must(usage(e.st.Snapshot(), "p1"))
		if u.Bytes > 350_000 || u.Bytes < 300_000 {
			t.Fatalf("usage %d bytes with a quota of 350000", u.Bytes)
		}
		if k := e.keys(t); int64(len(k)) != u.Bytes/100_000 {
			t.Fatalf("%d blobs for %d bytes", len(k), u.Bytes)
		}
	})
}
