// Package blobtest is the conformance suite every image.BlobStore passes.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/image"
)

// Lister is implemented by stores that can list their keys; the suite uses
// it to check that failed puts leave nothing behind.
type Lister interface {
	Keys() ([]string, error)
}

// Run runs the suite on stores made by newStore, one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) image.BlobStore) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB

	t.Run("PutGet", func(t *testing.T) {
		s := newStore(t)
		n, err := s.Put(ctx, "images/a/1", bytes.NewReader(data))
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Put = %d, %v", n, err)
		}
		if got := read(t, s, "images/a/1", 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(data))
		}
	})
	t.Run("Range", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Put(ctx, "k", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		cases := []struct{ off, n int64 }{{0, 10}, {5, 100}, {int64(len(data)) - 3, 10}, {int64(len(data)) + 5, 10}, {100, -1}}
		for _, c := range cases {
			lo := min(c.off, int64(len(data)))
			hi := int64(len(data))
			if c.n >= 0 {
				hi = min(lo+c.n, hi)
			}
			if got := read(t, s, "k", c.off, c.n); !bytes.Equal(got, data[lo:hi]) {
				t.Errorf("Get(%d, %d) = %d bytes, want %d", c.off, c.n, len(got), hi-lo)
			}
		}
	})
	t.Run("Replace", func(t *testing.T) {
		s := newStore(t)
		for _, v := range []string{"first", "second"} {
			if _, err := s.Put(ctx, "k", bytes.NewReader([]byte(v))); err != nil {
				t.Fatal(err)
			}
		}
		if got := read(t, s, "k", 0, -1); string(got) != "second" {
			t.Fatalf("got %q after replace", got)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "images/none/x", 0, -1)
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("Get missing = %v, want ErrNotFound", err)
		}
	})
	t.Run("DeleteIsIdempotent", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Put(ctx, "images/d/1", bytes.NewReader(data[:10])); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Delete(ctx, "images/d/1"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
		if _, err := s.Get(ctx, "images/d/1", 0, -1); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("Get after delete = %v", err)
		}
		checkEmpty(t, s)
	})
	t.Run("FailedPutLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		r := io.MultiReader(bytes.NewReader(data), iotestErr{})
		if _, err := s.Put(ctx, "images/f/1", r); err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		if _, err := s.Get(ctx, "images/f/1", 0, -1); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("Get after failed put = %v, want ErrNotFound", err)
		}
		checkEmpty(t, s)
	})
	t.Run("CanceledPutLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(data), n: 1000, cancel: cancel}
		if _, err := s.Put(cctx, "images/c/1", r); err == nil {
			t.Fatal("Put with a cancelled context succeeded")
		}
		checkEmpty(t, s)
	})
}

func read(t *testing.T, s image.BlobStore, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func checkEmpty(t *testing.T, s image.BlobStore) {
	t.Helper()
	l, ok := s.(Lister)
	if !ok {
		return
	}
	keys, err := l.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		t.Fatalf("left behind: %v", keys)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("blobtest: connection reset") }

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	k, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= k
	return k, err
}
