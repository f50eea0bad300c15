//go:build !race

package objectstore_test

import (
	"fmt"
	"testing"
)

// TestSpeedupS3 checks 64 MiB PUT and GET through the Swift API on
// s3obj against minio-go moving the same bytes to and from the same S3
// server (versitygw on loopback), interleaved, best of five per attempt.
// The target is 0.9 of minio-go; it was measured at 1.0-1.2 for PUT (a
// declared length streams in one request) and 0.83-1.2 for GET on the
// shared 2 cores, so the check fails below 0.7: a real regression (say,
// buffering or hashing the body again), not a busy neighbour.
func TestSpeedupS3(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 64 MiB transfers")
	}
	const size = 64 << 20
	data := randomBytes(size)
	e := newS3BenchEnv(t)
	e.put(t, "g", data)
	e.directPut(t, "direct/g", data)
	var bestPut, bestGet float64
	for attempt := 1; attempt <= 3 && (bestPut < 0.9 || bestGet < 0.9); attempt++ {
		var put, direct, get, directGet float64
		for i := range 5 {
			keepBest(&direct, func() { e.directPut(t, fmt.Sprintf("direct/o%d", i%2), data) })
			keepBest(&put, func() { e.put(t, fmt.Sprintf("o%d", i%2), data) })
			keepBest(&directGet, func() { e.directGet(t, "direct/g") })
			keepBest(&get, func() { e.get(t, "g") })
		}
		mbps := func(s float64) float64 { return size / s / 1e6 }
		t.Logf("attempt %d: PUT swift %.0f MB/s, minio-go %.0f MB/s (ratio %.2f); GET swift %.0f MB/s, minio-go %.0f MB/s (ratio %.2f)",
			attempt, mbps(put), mbps(direct), direct/put, mbps(get), mbps(directGet), directGet/get)
		bestPut, bestGet = max(bestPut, direct/put), max(bestGet, directGet/get)
	}
	if bestPut < 0.7 {
		t.Errorf("64 MiB PUT through Swift on s3obj is %.2f of minio-go's, want >= 0.7 (target 0.9)", bestPut)
	}
	if bestGet < 0.7 {
		t.Errorf("64 MiB GET through Swift on s3obj is %.2f of minio-go's, want >= 0.7 (target 0.9)", bestGet)
	}
}
