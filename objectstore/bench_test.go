package objectstore_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

// benchEnv is a cloud on fsobj in a directory on the test's disk, and a
// directory beside it for the plain-file baseline.
type benchEnv struct {
	c       *cloud
	u       *user
	dir     string // baseline files
	backend *fsobj.Backend
}

func newBenchEnv(tb testing.TB, opts *fsobj.Options) *benchEnv {
	tb.Helper()
	root := tb.TempDir()
	b, err := fsobj.Open(filepath.Join(root, "objects"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	e := benchEnvOn(tb, b, root)
	e.backend = b
	return e
}

// benchEnvOn is a cloud on b with a user and its container "bench"; with
// root, the baseline's directory is root/files.
func benchEnvOn(tb testing.TB, b objectstore.Backend, root string) *benchEnv {
	tb.Helper()
	c := newCloud(tb, b)
	u := c.tenant(tb, "bench", "bencher", "member")
	c.expect(tb, 201, u, "PUT", "/v1/"+u.account+"/bench", "", nil)
	e := &benchEnv{c: c, u: u}
	if root != "" {
		e.dir = filepath.Join(root, "files")
		if err := os.Mkdir(e.dir, 0o750); err != nil {
			tb.Fatal(err)
		}
	}
	return e
}

func (e *benchEnv) url(name string) string {
	return e.c.objURL + "/v1/" + e.u.account + "/bench/" + name
}

func (e *benchEnv) put(tb testing.TB, name string, data []byte) {
	req, _ := http.NewRequest("PUT", e.url(name), bytes.NewReader(data))
	req.Header.Set("X-Auth-Token", e.u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		tb.Fatalf("PUT %s: %d", name, resp.StatusCode)
	}
}

func (e *benchEnv) get(tb testing.TB, name string) int64 {
	req, _ := http.NewRequest("GET", e.url(name), nil)
	req.Header.Set("X-Auth-Token", e.u.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %v", name, resp.StatusCode, err)
	}
	return n
}

// serveFile writes data to a file and serves it with net/http's own file
// server on loopback: the peer of a GET through the Swift API.
func serveFile(tb testing.TB, data []byte) string {
	dir := tb.TempDir()
	writeFile(tb, filepath.Join(dir, "o"), data)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	tb.Cleanup(srv.Close)
	return srv.URL + "/o"
}

func httpGet(tb testing.TB, url string) int64 {
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return n
}

// writeFile is the baseline write: create, write, fsync, close.
func writeFile(tb testing.TB, path string, data []byte) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// readFile is the baseline read.
func readFile(tb testing.TB, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

var benchSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"64MiB", 64 << 20}}

// BenchmarkPut compares PUT through the Swift API (fsobj) with writing
// and fsyncing the same bytes to a file on the same disk.
func BenchmarkPut(b *testing.B) {
	for _, sz := range benchSizes {
		data := randomBytes(sz.size)
		b.Run(sz.name+"/swift", func(b *testing.B) {
			e := newBenchEnv(b, nil)
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for i := range b.N {
				e.put(b, fmt.Sprintf("o%d", i%16), data)
			}
		})
		b.Run(sz.name+"/backend", func(b *testing.B) {
			e := newBenchEnv(b, nil)
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for i := range b.N {
				k := objectstore.ObjectKey{Account: e.u.account, Container: "bench", Name: fmt.Sprintf("o%d", i%16)}
				if _, err := e.backend.Put(context.Background(), k, bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sz.name+"/file", func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for i := range b.N {
				writeFile(b, filepath.Join(dir, fmt.Sprintf("o%d", i%16)), data)
			}
		})
		b.Run(sz.name+"/file+md5", func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for i := range b.N {
				writeFileMD5(b, filepath.Join(dir, fmt.Sprintf("o%d", i%16)), data)
			}
		})
	}
}

// writeFileMD5 is writeFile that also computes the data's MD5, which
// Swift's ETag requires of every PUT, on another core at the same time.
func writeFileMD5(tb testing.TB, path string, data []byte) {
	done := make(chan []byte)
	go func() {
		h := md5.New()
		h.Write(data)
		done <- h.Sum(nil)
	}()
	writeFile(tb, path, data)
	<-done
}

// BenchmarkGet compares GET through the Swift API (fsobj, checksums
// verified) with reading the same bytes from a file.
func BenchmarkGet(b *testing.B) {
	for _, sz := range benchSizes {
		data := randomBytes(sz.size)
		b.Run(sz.name+"/swift", func(b *testing.B) {
			e := newBenchEnv(b, nil)
			e.put(b, "o", data)
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for range b.N {
				e.get(b, "o")
			}
		})
		b.Run(sz.name+"/file", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "o")
			writeFile(b, path, data)
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for range b.N {
				readFile(b, path)
			}
		})
		b.Run(sz.name+"/httpfile", func(b *testing.B) {
			url := serveFile(b, data)
			b.SetBytes(int64(sz.size))
			b.ResetTimer()
			for range b.N {
				httpGet(b, url)
			}
		})
	}
}

// listingObjects is the size of the listing benchmark's container:
// 100,000, or 10,000 with -short.
func listingObjects() int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// BenchmarkList100k lists a 100,000-object container through the Swift
// API, page by page (10,000 per page, JSON, as swiftclient does), beside
// scanning the same names with a cursor of a bbolt bucket (the index
// alone, without Swift's listing rules, HTTP or JSON).
func BenchmarkList100k(b *testing.B) {
	n := listingObjects()
	b.Run("swift", func(b *testing.B) {
		e := newBenchEnv(b, &fsobj.Options{NoSync: true})
		fill(b, e, n)
		b.ResetTimer()
		for range b.N {
			if got := e.listAll(b); got != n {
				b.Fatalf("listed %d, want %d", got, n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/object")
	})
	b.Run("bbolt", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "names.db"), 0o600, &bolt.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		val := make([]byte, 80) // about an index record
		err = db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucket([]byte("names"))
			if err != nil {
				return err
			}
			bk.FillPercent = 1
			for i := range n {
				if err := bk.Put(fmt.Appendf(nil, "obj-%07d", i), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			got := 0
			_ = db.View(func(tx *bolt.Tx) error {
				c := tx.Bucket([]byte("names")).Cursor()
				for k, v := c.First(); k != nil; k, v = c.Next() {
					_ = string(k)
					got += len(v) / 80
				}
				return nil
			})
			if got != n {
				b.Fatalf("scanned %d", got)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/object")
	})
}

// fill puts n empty objects into the bench container, 32 at a time (so
// that their index writes group-commit), directly on the backend.
func fill(tb testing.TB, e *benchEnv, n int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	const workers = 32
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				k := objectstore.ObjectKey{Account: e.u.account, Container: "bench", Name: fmt.Sprintf("obj-%07d", i)}
				if _, err := e.backend.Put(ctx, k, bytes.NewReader(nil), objectstore.PutOptions{}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// listAll lists the bench container page by page and returns the count.
func (e *benchEnv) listAll(tb testing.TB) int {
	total, marker := 0, ""
	for {
		req, _ := http.NewRequest("GET", e.c.objURL+"/v1/"+e.u.account+"/bench?format=json&marker="+marker, nil)
		req.Header.Set("X-Auth-Token", e.u.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		var page []struct {
			Name string `json:"name"`
		}
		err = jsonDecode(resp.Body, &page)
		resp.Body.Close()
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			return total
		}
		total += len(page)
		marker = page[len(page)-1].Name
	}
}
