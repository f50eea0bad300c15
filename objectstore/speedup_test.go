//go:build !race

package objectstore_test

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestSpeedup64MiB checks the throughput of 64 MiB objects through the
// Swift API on fsobj, best of several rounds against peers measured in
// the same run on the same disk:
//
//   - PUT against writing and fsyncing the same bytes to a file while
//     computing their MD5 on another core, as Swift's ETag requires of
//     every PUT: at least 0.8 of it. The ratio to a plain write+fsync is logged (MD5
//     runs slower than this disk writes).
//   - GET against net/http's file server sending the same file over
//     loopback: at least 0.8 of it. The ratio to reading the file is
//     logged.
func TestSpeedup64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 64 MiB transfers")
	}
	const size = 64 << 20
	data := randomBytes(size)
	e := newBenchEnv(t, nil)
	dir := t.TempDir()
	const rounds = 5
	var put, putMD5, file, get, httpFile, read float64
	i := 0
	putMD5 = measure(rounds, func() { writeFileMD5(t, filepath.Join(dir, "m"), data) }).Seconds()
	file = measure(rounds, func() { writeFile(t, filepath.Join(dir, "f"), data) }).Seconds()
	put = measure(rounds, func() { i++; e.put(t, fmt.Sprintf("o%d", i%2), data) }).Seconds()
	get = measure(rounds, func() { e.get(t, "o0") }).Seconds()
	url := serveFile(t, data)
	httpFile = measure(rounds, func() { httpGet(t, url) }).Seconds()
	read = measure(rounds, func() { readFile(t, filepath.Join(dir, "f")) }).Seconds()
	mbps := func(s float64) float64 { return size / s / 1e6 }
	t.Logf("PUT: swift %.0f MB/s, file+fsync+md5 %.0f MB/s (ratio %.2f), file+fsync %.0f MB/s (ratio %.2f)",
		mbps(put), mbps(putMD5), putMD5/put, mbps(file), file/put)
	t.Logf("GET: swift %.0f MB/s, net/http file server %.0f MB/s (ratio %.2f), file read %.0f MB/s (ratio %.2f)",
		mbps(get), mbps(httpFile), httpFile/get, mbps(read), read/get)
	if r := putMD5 / put; r < 0.8 {
		t.Errorf("64 MiB PUT is %.2f of writing+fsyncing+MD5 the same bytes, want >= 0.8", r)
	}
	if r := httpFile / get; r < 0.8 {
		t.Errorf("64 MiB GET is %.2f of net/http's file server, want >= 0.8", r)
	}
}
