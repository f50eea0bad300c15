package fileblob_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/image/blobtest"
	"github.com/stratuskit/stratus/image/fileblob"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) image.BlobStore {
		s, err := fileblob.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestHostileKeys(t *testing.T) {
	s, err := fileblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"", "../x", "a/../../x", "/etc/passwd", "a//b", ".tmp/x", "a/./b", "a\x00b", "a b"} {
		if _, err := s.Put(context.Background(), k, bytes.NewReader(nil)); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Put(%q) = %v, want ErrInvalid", k, err)
		}
	}
}
