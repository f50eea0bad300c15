package objectstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/stratuskit/stratus/objectstore/s3obj"
	"github.com/stratuskit/stratus/objectstore/s3obj/s3test"
)

// s3BenchEnv is a cloud on s3obj on a versitygw started for the
// benchmark, and minio-go on the same server and bucket: the baseline.
type s3BenchEnv struct {
	*benchEnv
	direct *minio.Client
	bucket string
}

func newS3BenchEnv(tb testing.TB) *s3BenchEnv {
	tb.Helper()
	srv := s3test.Start(tb)
	b, err := s3obj.Open(context.Background(), s3obj.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	return &s3BenchEnv{benchEnv: benchEnvOn(tb, b, ""), direct: b.Client(), bucket: "bench"}
}

// The baseline's uploads use what s3obj uses: the same part size and
// parallelism, no payload SHA-256.
func (e *s3BenchEnv) directPut(tb testing.TB, key string, data []byte) {
	_, err := e.direct.PutObject(context.Background(), e.bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{PartSize: s3obj.DefaultPartSize, NumThreads: s3obj.DefaultPartConcurrency, DisableContentSha256: true})
	if err != nil {
		tb.Fatal(err)
	}
}

func (e *s3BenchEnv) directGet(tb testing.TB, key string) int64 {
	o, err := e.direct.GetObject(context.Background(), e.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer o.Close()
	n, err := io.Copy(io.Discard, o)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// s3BenchSizes are the sizes of the S3 benchmarks: 4 KiB and
// $STRATUS_S3_BENCH_MB MiB (make bench: 64; default 8, for make test).
func s3BenchSizes(tb testing.TB) []struct {
	name string
	size int
} {
	mb := 8
	if v := os.Getenv("STRATUS_S3_BENCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			tb.Fatalf("STRATUS_S3_BENCH_MB=%q", v)
		}
		mb = n
	}
	return []struct {
		name string
		size int
	}{{"4KiB", 4 << 10}, {fmt.Sprintf("%dMiB", mb), mb << 20}}
}

// BenchmarkS3Put is PUT through the Swift API on s3obj (swift) against
// the same bytes uploaded with minio-go to the same server (minio).
func BenchmarkS3Put(b *testing.B) {
	e := newS3BenchEnv(b)
	for _, sz := range s3BenchSizes(b) {
		data := randomBytes(sz.size)
		b.Run(sz.name+"/swift", func(b *testing.B) {
			b.SetBytes(int64(sz.size))
			for i := range b.N {
				e.put(b, fmt.Sprintf("o%d", i%16), data)
			}
		})
		b.Run(sz.name+"/minio", func(b *testing.B) {
			b.SetBytes(int64(sz.size))
			for i := range b.N {
				e.directPut(b, fmt.Sprintf("direct/o%d", i%16), data)
			}
		})
	}
}

// BenchmarkS3Get is GET through the Swift API on s3obj (swift) against
// minio-go reading the same bytes from the same server (minio).
func BenchmarkS3Get(b *testing.B) {
	e := newS3BenchEnv(b)
	for _, sz := range s3BenchSizes(b) {
		data := randomBytes(sz.size)
		e.put(b, "g"+sz.name, data)
		e.directPut(b, "direct/g"+sz.name, data)
		b.Run(sz.name+"/swift", func(b *testing.B) {
			b.SetBytes(int64(sz.size))
			for range b.N {
				e.get(b, "g"+sz.name)
			}
		})
		b.Run(sz.name+"/minio", func(b *testing.B) {
			b.SetBytes(int64(sz.size))
			for range b.N {
				e.directGet(b, "direct/g"+sz.name)
			}
		})
	}
}
