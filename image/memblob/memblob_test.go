package memblob_test

import (
	"testing"

	"github.com/stratuskit/stratus/image"
	"github.com/stratuskit/stratus/image/blobtest"
	"github.com/stratuskit/stratus/image/memblob"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(*testing.T) image.BlobStore { return memblob.New() })
}
