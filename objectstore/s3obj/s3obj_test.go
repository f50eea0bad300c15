package s3obj_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/drivertest"
	"github.com/stratuskit/stratus/objectstore/s3obj"
	"github.com/stratuskit/stratus/objectstore/s3obj/s3test"
)

// open returns a backend on a fresh bucket of srv, with parts small
// enough that the suite's larger objects are multipart uploads.
func open(t *testing.T, srv *s3test.Server, bucket string) *s3obj.Backend {
	t.Helper()
	b, err := s3obj.Open(context.Background(), s3obj.Config{
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
