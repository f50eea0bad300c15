package objblob_test

import (
	"context"
	"testing"

	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/image/blobtest"
	"github.com/stratuskit/stratus/image/objblob"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
	"github.com/stratuskit/stratus/objectstore/memobj"
)

func newStore(t *testing.T, b objectstore.Backend) image.BlobStore {
	s, err := objblob.New(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemobj(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) image.BlobStore { return newStore(t, memobj.New()) })
}

func TestFsobj(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) image.BlobStore {
		b, err := fsobj.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return newStore(t, b)
	})
}
