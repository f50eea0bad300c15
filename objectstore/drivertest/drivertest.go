// Package drivertest is the conformance suite of objectstore.Backend:
// every backend, real or fake, must pass Run.
package drivertest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

// Run runs the conformance suite. newBackend returns a fresh, empty
// backend for each subtest; the suite closes it.
func Run(t *testing.T, newBackend func(t *testing.T) objectstore.Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, objectstore.Backend)
	}{
		{"Containers", testContainers},
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"FailedPutKeepsOld", testFailedPut},
		{"Ranges", testRanges},
		{"SetMeta", testSetMeta},
		{"Delete", testDelete},
		{"Listing", testListing},
		{"ListingModel", testListingModel},
		{"Expiry", testExpiry},
		{"HostileNames", testHostileNames},
		{"Concurrent", testConcurrent},
		{"Isolation", testIsolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			defer func() {
				if r := recover(); r != nil {
					f, ok := r.(failure)
					if !ok {
						panic(r)
					}
					t.Fatal(f.err)
				}
			}()
			tc.fn(t, b)
		})
	}
}

const acct = "AUTH_test"

func key(c, n string) objectstore.ObjectKey {
	return objectstore.ObjectKey{Account: acct, Container: c, Name: n}
}

// failure carries a must error to the subtest, which fails with it.
type failure struct{ err error }

// must returns v, or stops the subtest (see Run) with err.
func must[T any](v T, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

func put(t *testing.T, b objectstore.Backend, k objectstore.ObjectKey, data []byte, opts objectstore.PutOptions) *objectstore.ObjectInfo {
	t.Helper()
	info, err := b.Put(context.Background(), k, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Put %s: %v", k, err)
	}
	return info
}

func read(t *testing.T, b objectstore.Backend, k objectstore.ObjectKey, off, n int64) []byte {
	t.Helper()
	rc, _, err := b.Get(context.Background(), k, off, n)
	if err != nil {
		t.Fatalf("Get %s: %v", k, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", k, err)
	}
	return data
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testContainers(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	if _, err := b.ContainerStats(ctx, acct, "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("stats of missing container: %v, want NotFound", err)
	}
	if _, err := b.Put(ctx, key("c", "o"), strings.NewReader("x"), objectstore.PutOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("put into missing container: %v, want NotFound", err)
	}
	if err := b.DeleteContainer(ctx, acct, "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("delete missing container: %v, want NotFound", err)
	}
	for range 2 { // idempotent
		if err := b.CreateContainer(ctx, acct, "c"); err != nil {
			t.Fatal(err)
		}
	}
	put(t, b, key("c", "a"), []byte("hello"), objectstore.PutOptions{})
	put(t, b, key("c", "b"), []byte("hi"), objectstore.PutOptions{})
	st := must(b.ContainerStats(ctx, acct, "c"))
	if st.Objects != 2 || st.Bytes != 7 {
		t.Fatalf("stats = %+v, want 2 objects 7 bytes", st)
	}
	if err := b.DeleteContainer(ctx, acct, "c"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("delete non-empty container: %v, want Conflict", err)
	}
	for _, n := range []string{"a", "b"} {
		if err := b.Delete(ctx, key("c", n)); err != nil {
			t.Fatal(err)
		}
	}
	st = must(b.ContainerStats(ctx, acct, "c"))
	if st.Objects != 0 || st.Bytes != 0 {
		t.Fatalf("stats after deletes = %+v, want zero", st)
	}
	if err := b.DeleteContainer(ctx, acct, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ContainerStats(ctx, acct, "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("stats after delete: %v, want NotFound", err)
	}
}

func testPutGet(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	for _, size := range []int{0, 1, 4096, 65535, 65536, 65537, 3<<20 + 17} {
		data := randBytes(size, uint64(size))
		k := key("c", fmt.Sprintf("obj-%d", size))
		opts := objectstore.PutOptions{
			ContentType: "text/x-test",
			Headers:     map[string]string{"X-Object-Meta-Color": "blue", "Content-Disposition": "inline"},
			ETag:        md5hex(data),
		}
		before := time.Now().Add(-time.Second)
		info := put(t, b, k, data, opts)
		if info.Size != int64(size) || info.ETag != md5hex(data) || info.Name != k.Name {
			t.Fatalf("put info = %+v", info)
		}
		if info.LastModified.Before(before) {
			t.Fatalf("LastModified %v is too old", info.LastModified)
		}
		h := must(b.Head(ctx, k))
		if h.Size != info.Size || h.ETag != info.ETag || h.ContentType != "text/x-test" ||
			h.Headers["X-Object-Meta-Color"] != "blue" || h.Headers["Content-Disposition"] != "inline" {
			t.Fatalf("head = %+v", h)
		}
		if got := read(t, b, k, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("size %d: read %d bytes, differ from written", size, len(got))
		}
	}
	info := put(t, b, key("c", "plain"), []byte("x"), objectstore.PutOptions{})
	if info.ContentType != "application/octet-stream" {
		t.Fatalf("default content type %q", info.ContentType)
	}
	if _, err := b.Head(ctx, key("c", "missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("head missing: %v", err)
	}
	if _, _, err := b.Get(ctx, key("c", "missing"), 0, -1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func must0(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testOverwrite(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	put(t, b, key("c", "o"), []byte("first version"), objectstore.PutOptions{Headers: map[string]string{"X-Object-Meta-A": "1"}})
	put(t, b, key("c", "o"), []byte("second"), objectstore.PutOptions{})
	if got := string(read(t, b, key("c", "o"), 0, -1)); got != "second" {
		t.Fatalf("read %q", got)
	}
	h := must(b.Head(ctx, key("c", "o")))
	if h.Headers["X-Object-Meta-A"] != "" {
		t.Fatal("metadata of the old version survived the overwrite")
	}
	st := must(b.ContainerStats(ctx, acct, "c"))
	if st.Objects != 1 || st.Bytes != 6 {
		t.Fatalf("stats %+v", st)
	}
}

type failReader struct {
	r   io.Reader
	err error
}

func (f *failReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func testFailedPut(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	put(t, b, key("c", "o"), []byte("old"), objectstore.PutOptions{})
	boom := errors.New("client went away")
	big := randBytes(200_000, 1)
	if _, err := b.Put(ctx, key("c", "o"), &failReader{r: bytes.NewReader(big), err: boom}, objectstore.PutOptions{}); !errors.Is(err, boom) {
		t.Fatalf("put with failing reader: %v, want the reader's error", err)
	}
	if _, err := b.Put(ctx, key("c", "o"), bytes.NewReader(big), objectstore.PutOptions{ETag: md5hex([]byte("other"))}); !errors.Is(err, objectstore.ErrETagMismatch) || !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("put with wrong etag: %v, want ErrETagMismatch and ErrInvalid", err)
	}
	if _, err := b.Put(ctx, key("c", "new"), &failReader{r: bytes.NewReader(big), err: boom}, objectstore.PutOptions{}); err == nil {
		t.Fatal("failed put of a new object succeeded")
	}
	if got := string(read(t, b, key("c", "o"), 0, -1)); got != "old" {
		t.Fatalf("after failed puts read %q, want old", got)
	}
	if _, err := b.Head(ctx, key("c", "new")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("failed new object is visible: %v", err)
	}
	ents := must(b.List(ctx, acct, "c", objectstore.ListOptions{}))
	if len(ents) != 1 || ents[0].Name() != "o" {
		t.Fatalf("listing after failed puts: %v", names(ents))
	}
	st := must(b.ContainerStats(ctx, acct, "c"))
	if st.Objects != 1 || st.Bytes != 3 {
		t.Fatalf("stats after failed puts %+v", st)
	}
}

func testRanges(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	data := randBytes(300_001, 9)
	put(t, b, key("c", "o"), data, objectstore.PutOptions{})
	for _, r := range [][2]int64{{0, 1}, {1, 10}, {65535, 2}, {65536, 65536}, {100_000, 150_000}, {300_000, 1}, {300_000, 50}, {299_990, -1}, {0, -1}, {300_001, -1}, {5, 0}} {
		got := read(t, b, key("c", "o"), r[0], r[1])
		end := int64(len(data))
		if r[1] >= 0 && r[0]+r[1] < end {
			end = r[0] + r[1]
		}
		if !bytes.Equal(got, data[r[0]:end]) {
			t.Fatalf("range %v: got %d bytes, differ", r, len(got))
		}
	}
	if _, _, err := b.Get(ctx, key("c", "o"), 300_002, -1); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("offset past the end: %v, want Invalid", err)
	}
}

func testSetMeta(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	data := []byte("payload")
	put(t, b, key("c", "o"), data, objectstore.PutOptions{Headers: map[string]string{"X-Object-Meta-Old": "1"}})
	info := must(b.SetMeta(ctx, key("c", "o"), objectstore.PutOptions{ContentType: "text/plain", Headers: map[string]string{"X-Object-Meta-New": "2"}, DeleteAt: 4102444800}))
	if info.Size != int64(len(data)) || info.ETag != md5hex(data) || info.ContentType != "text/plain" {
		t.Fatalf("SetMeta info %+v", info)
	}
	h := must(b.Head(ctx, key("c", "o")))
	if h.Headers["X-Object-Meta-Old"] != "" || h.Headers["X-Object-Meta-New"] != "2" || h.DeleteAt != 4102444800 {
		t.Fatalf("head after SetMeta %+v", h)
	}
	if got := read(t, b, key("c", "o"), 0, -1); !bytes.Equal(got, data) {
		t.Fatal("SetMeta changed the bytes")
	}
	if _, err := b.SetMeta(ctx, key("c", "missing"), objectstore.PutOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("SetMeta of missing: %v", err)
	}
}

func testDelete(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	put(t, b, key("c", "o"), []byte("x"), objectstore.PutOptions{})
	must0(t, b.Delete(ctx, key("c", "o")))
	if err := b.Delete(ctx, key("c", "o")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := b.Head(ctx, key("c", "o")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("head after delete: %v", err)
	}
	if ents := must(b.List(ctx, acct, "c", objectstore.ListOptions{})); len(ents) != 0 {
		t.Fatalf("listing after delete: %v", names(ents))
	}
}

func names(ents []objectstore.Entry) []string {
	var out []string
	for _, e := range ents {
		if e.Object == nil {
			out = append(out, e.Subdir+"(dir)")
		} else {
			out = append(out, e.Object.Name)
		}
	}
	return out
}

func testListing(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	for _, n := range []string{"a", "b/1", "b/2", "b/c/3", "c", "d/4", "é"} {
		put(t, b, key("c", n), []byte(n), objectstore.PutOptions{ContentType: "text/plain"})
	}
	cases := []struct {
		opts objectstore.ListOptions
		want string
	}{
		{objectstore.ListOptions{}, "a b/1 b/2 b/c/3 c d/4 é"},
		{objectstore.ListOptions{Delimiter: "/"}, "a b/(dir) c d/(dir) é"},
		{objectstore.ListOptions{Prefix: "b/", Delimiter: "/"}, "b/1 b/2 b/c/(dir)"},
		{objectstore.ListOptions{Prefix: "b/"}, "b/1 b/2 b/c/3"},
		{objectstore.ListOptions{Marker: "b/2"}, "b/c/3 c d/4 é"},
		{objectstore.ListOptions{Marker: "b", EndMarker: "c"}, "b/1 b/2 b/c/3"},
		{objectstore.ListOptions{Limit: 2}, "a b/1"},
		{objectstore.ListOptions{Limit: 2, Delimiter: "/"}, "a b/(dir)"},
		{objectstore.ListOptions{Reverse: true}, "é d/4 c b/c/3 b/2 b/1 a"},
		{objectstore.ListOptions{Reverse: true, Delimiter: "/"}, "é d/(dir) c b/(dir) a"},
		{objectstore.ListOptions{Reverse: true, Marker: "c"}, "b/c/3 b/2 b/1 a"},
		{objectstore.ListOptions{Reverse: true, Marker: "c", EndMarker: "b/1", Limit: 5}, "b/c/3 b/2"},
		{objectstore.ListOptions{Reverse: true, Prefix: "b/"}, "b/c/3 b/2 b/1"},
		{objectstore.ListOptions{Marker: "b/", Delimiter: "/"}, "c d/(dir) é"},
		{objectstore.ListOptions{Prefix: "zz"}, ""},
	}
	for _, tc := range cases {
		got := strings.Join(names(must(b.List(ctx, acct, "c", tc.opts))), " ")
		if got != tc.want {
			t.Errorf("List(%+v) = %q, want %q", tc.opts, got, tc.want)
		}
	}
	ents := must(b.List(ctx, acct, "c", objectstore.ListOptions{Prefix: "a"}))
	if len(ents) != 1 || ents[0].Object.Size != 1 || ents[0].Object.ETag != md5hex([]byte("a")) || ents[0].Object.ContentType != "text/plain" {
		t.Fatalf("entry %+v", ents[0].Object)
	}
}

// testListingModel compares listings with a naive model on random names
// and options.
func testListingModel(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	r := rand.New(rand.NewPCG(1, 2))
	alpha := []string{"a", "b", "/", "-", "é"}
	word := func() string {
		var sb strings.Builder
		for range 1 + r.IntN(5) {
			sb.WriteString(alpha[r.IntN(len(alpha))])
		}
		return sb.String()
	}
	set := map[string]bool{}
	for range 150 {
		n := word()
		if !set[n] {
			set[n] = true
			put(t, b, key("c", n), nil, objectstore.PutOptions{})
		}
	}
	all := make([]string, 0, len(set))
	for n := range set {
		all = append(all, n)
	}
	sort.Strings(all)
	for i := range 400 {
		opts := objectstore.ListOptions{Reverse: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			opts.Prefix = word()[:1]
		}
		if r.IntN(2) == 0 {
			opts.Delimiter = alpha[r.IntN(len(alpha))]
		}
		if r.IntN(2) == 0 {
			opts.Marker = word()
		}
		if r.IntN(3) == 0 {
			opts.EndMarker = word()
		}
		if r.IntN(2) == 0 {
			opts.Limit = 1 + r.IntN(10)
		}
		want := model(all, opts)
		got := names(must(b.List(ctx, acct, "c", opts)))
		if !slices.Equal(got, want) {
			t.Fatalf("case %d List(%+v)\n got %q\nwant %q", i, opts, got, want)
		}
	}
}

// model is Swift's listing by brute force.
func model(all []string, o objectstore.ListOptions) []string {
	var out []string
	seen := map[string]bool{}
	order := slices.Clone(all)
	if o.Reverse {
		slices.Reverse(order)
	}
	for _, n := range order {
		if !strings.HasPrefix(n, o.Prefix) {
			continue
		}
		if o.Reverse {
			if o.Marker != "" && n >= o.Marker || o.EndMarker != "" && n <= o.EndMarker {
				continue
			}
		} else if o.Marker != "" && n <= o.Marker || o.EndMarker != "" && n >= o.EndMarker {
			continue
		}
		entry := n
		if o.Delimiter != "" {
			if i := strings.Index(n[len(o.Prefix):], o.Delimiter); i >= 0 {
				sub := n[:len(o.Prefix)+i+len(o.Delimiter)]
				if seen[sub] || sub == o.Marker {
					continue
				}
				seen[sub] = true
				entry = sub + "(dir)"
			}
		}
		out = append(out, entry)
		if o.Limit > 0 && len(out) == o.Limit {
			break
		}
	}
	return out
}

func testExpiry(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	now := time.Now()
	put(t, b, key("c", "past"), []byte("1"), objectstore.PutOptions{DeleteAt: now.Add(-time.Minute).Unix()})
	put(t, b, key("c", "future"), []byte("2"), objectstore.PutOptions{DeleteAt: now.Add(time.Hour).Unix()})
	put(t, b, key("c", "never"), []byte("3"), objectstore.PutOptions{})
	put(t, b, key("c", "cleared"), []byte("4"), objectstore.PutOptions{DeleteAt: now.Add(-time.Minute).Unix()})
	must(b.SetMeta(ctx, key("c", "cleared"), objectstore.PutOptions{}))
	put(t, b, key("c", "rewritten"), []byte("5"), objectstore.PutOptions{DeleteAt: now.Add(-time.Minute).Unix()})
	put(t, b, key("c", "rewritten"), []byte("6"), objectstore.PutOptions{})
	reaped := must(b.ReapExpired(ctx, now, 100))
	if len(reaped) != 1 || reaped[0] != key("c", "past") {
		t.Fatalf("reaped %v, want only c/past", reaped)
	}
	if _, err := b.Head(ctx, key("c", "past")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("reaped object still there: %v", err)
	}
	for _, n := range []string{"future", "never", "cleared", "rewritten"} {
		must(b.Head(ctx, key("c", n)))
	}
	reaped = must(b.ReapExpired(ctx, now.Add(2*time.Hour), 100))
	if len(reaped) != 1 || reaped[0] != key("c", "future") {
		t.Fatalf("second reap %v, want c/future", reaped)
	}
	st := must(b.ContainerStats(ctx, acct, "c"))
	if st.Objects != 3 {
		t.Fatalf("stats after reaping %+v", st)
	}
}

func testHostileNames(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	hostile := []string{"..", "../../../../etc/passwd", "/abs", "a/../../b", "./.", "//", strings.Repeat("x/", 512), "name with spaces", "\u202e", "%2e%2e"}
	for i, n := range hostile {
		put(t, b, key("c", n), []byte(fmt.Sprint(i)), objectstore.PutOptions{})
	}
	for i, n := range hostile {
		if got := string(read(t, b, key("c", n), 0, -1)); got != fmt.Sprint(i) {
			t.Fatalf("%q read %q", n, got)
		}
	}
	ents := must(b.List(ctx, acct, "c", objectstore.ListOptions{}))
	if len(ents) != len(hostile) {
		t.Fatalf("listing has %d entries, want %d", len(ents), len(hostile))
	}
	// A container name that looks like a path stays its own namespace.
	must0(t, b.CreateContainer(ctx, acct, "c/.."))
	if ents := must(b.List(ctx, acct, "c/..", objectstore.ListOptions{})); len(ents) != 0 {
		t.Fatalf("container c/.. sees %v", names(ents))
	}
}

func testConcurrent(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, acct, "c"))
	var wg sync.WaitGroup
	const writers, each = 8, 20
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				data := randBytes(100+i*50, uint64(w*1000+i))
				k := key("c", fmt.Sprintf("w%d/o%d", w, i%5))
				if _, err := b.Put(ctx, k, bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				// A failing write beside the others fails alone (backends
				// that group commits must not fail its batch mates).
				if err := b.Delete(ctx, key("c", fmt.Sprintf("missing-%d-%d", w, i))); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("delete of a missing object: %v", err)
					return
				}
				rc, info, err := b.Get(ctx, k, 0, -1)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || md5hex(got) != info.ETag {
					t.Errorf("%s: read %d bytes whose md5 differs from its etag (%v)", k, len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := must(b.ContainerStats(ctx, acct, "c"))
	ents := must(b.List(ctx, acct, "c", objectstore.ListOptions{}))
	var bytesSum int64
	for _, e := range ents {
		bytesSum += e.Object.Size
	}
	if st.Objects != writers*5 || int64(len(ents)) != st.Objects || bytesSum != st.Bytes {
		t.Fatalf("stats %+v, listing %d objects %d bytes", st, len(ents), bytesSum)
	}
}

func testIsolation(t *testing.T, b objectstore.Backend) {
	ctx := context.Background()
	must0(t, b.CreateContainer(ctx, "AUTH_a", "c"))
	must0(t, b.CreateContainer(ctx, "AUTH_b", "c"))
	if _, err := b.Put(ctx, objectstore.ObjectKey{Account: "AUTH_a", Container: "c", Name: "o"}, strings.NewReader("a"), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Head(ctx, objectstore.ObjectKey{Account: "AUTH_b", Container: "c", Name: "o"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("object of AUTH_a visible in AUTH_b: %v", err)
	}
	if ents := must(b.List(ctx, "AUTH_b", "c", objectstore.ListOptions{})); len(ents) != 0 {
		t.Fatalf("AUTH_b lists %v", names(ents))
	}
}
