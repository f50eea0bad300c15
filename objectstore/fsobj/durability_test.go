package fsobj_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

const (
	crashEnv     = "STRATUS_FSOBJ_CRASH_DIR"
	crashBaseEnv = "STRATUS_FSOBJ_CRASH_BASE" // first version number - 1
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

func open(t *testing.T, dir string) *fsobj.Backend {
	t.Helper()
	b, err := fsobj.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var key = func(n string) objectstore.ObjectKey {
	return objectstore.ObjectKey{Account: "AUTH_p", Container: "c", Name: n}
}

// content is what the crash child writes as version v of name: the
// parent can tell a whole version from a torn one.
func content(name string, v int) []byte {
	r := rand.New(rand.NewPCG(uint64(len(name)), uint64(v)))
	n := 1 + r.IntN(300_000)
	head := fmt.Sprintf("%s|%d|%d|", name, v, n)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return append([]byte(head), b...)
}

func crashChild(dir string) int {
	b, err := fsobj.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	ctx := context.Background()
	if err := b.CreateContainer(ctx, "AUTH_p", "c"); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	var mu sync.Mutex
	say := func(format string, args ...any) { // returns once written
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	base, _ := strconv.Atoi(os.Getenv(crashBaseEnv))
	for w := range 4 {
		go func() {
			for v := base + 1; ; v++ {
				name := fmt.Sprintf("w%d/o%d", w, v%7)
				var err error
				if v%5 == 0 {
					say("del %s", name) // before: it may happen unacknowledged
					_ = b.Delete(ctx, key(name))
					continue
				}
				if _, err = b.Put(ctx, key(name), bytes.NewReader(content(name, v)), objectstore.PutOptions{}); err != nil {
					fmt.Fprintln(os.Stderr, "crash child: put:", err)
					os.Exit(3)
				}
				say("put %s %d", name, v)
			}
		}()
	}
	select {}
}

// TestCrash kills a process that is writing objects at random moments
// and checks what it left: every listed object reads back whole and
// verified, no partial object is visible, usage matches the listing, and
// every acknowledged write is there.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("%s=%d", crashBaseEnv, round*1_000_000))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[string]int{} // last acknowledged version; -1 after a delete began
		lines := make(chan struct{})
		ready := make(chan struct{})
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 1 && f[0] == "ready":
					close(ready)
				case len(f) == 3 && f[0] == "put":
					var v int
					fmt.Sscan(f[2], &v)
					acked[f[1]] = v
				case len(f) == 2 && f[0] == "del":
					acked[f[1]] = -1
				}
			}
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("child did not start")
		}
		time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-lines
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) {
			t.Fatalf("round %d: child ended with %v, not by SIGKILL", round, err)
		}
		verify(t, dir, acked, round)
	}
}

var versionRe = regexp.MustCompile(`^([^|]+)\|(\d+)\|`)

func verify(t *testing.T, dir string, acked map[string]int, round int) {
	t.Helper()
	ctx := context.Background()
	b := open(t, dir)
	defer b.Close()
	ents, err := b.List(ctx, "AUTH_p", "c", objectstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	seen := map[string]int{}
	for _, e := range ents {
		name := e.Object.Name
		data := readAll(t, b, name)
		m := versionRe.FindSubmatch(data)
		if m == nil || string(m[1]) != name {
			t.Fatalf("round %d: %s holds foreign or torn bytes", round, name)
		}
		var v int
		fmt.Sscan(string(m[2]), &v)
		if !bytes.Equal(data, content(name, v)) {
			t.Fatalf("round %d: %s version %d is torn (%d bytes)", round, name, v, len(data))
		}
		if s := md5.Sum(data); hex.EncodeToString(s[:]) != e.Object.ETag || int64(len(data)) != e.Object.Size {
			t.Fatalf("round %d: %s: listing etag/size disagree with the bytes", round, name)
		}
		seen[name] = v
		sum += e.Object.Size
	}
	st, err := b.ContainerStats(ctx, "AUTH_p", "c")
	if err != nil || st.Objects != int64(len(ents)) || st.Bytes != sum {
		t.Fatalf("round %d: stats %+v (%v), listing %d objects %d bytes", round, st, err, len(ents), sum)
	}
	for name, v := range acked {
		got, ok := seen[name]
		switch {
		case v == -1:
			// Deleted; a later unacknowledged put may have recreated it.
		case !ok:
			t.Fatalf("round %d: acknowledged %s v%d is missing", round, name, v)
		case got < v:
			t.Fatalf("round %d: %s went back from acknowledged v%d to v%d", round, name, v, got)
		}
	}
	// Nothing unreferenced is left on disk after Open's sweep.
	files := 0
	_ = filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".data") {
			files++
		}
		return nil
	})
	large := 0
	for _, e := range ents {
		if e.Object.Size > fsobj.InlineSize {
			large++
		}
	}
	if files != large {
		t.Fatalf("round %d: %d data files for %d objects stored in files", round, files, large)
	}
	t.Logf("round %d: %d objects verified, %d acknowledged writes", round, len(ents), len(acked))
}

func readAll(t *testing.T, b *fsobj.Backend, name string) []byte {
	t.Helper()
	rc, _, err := b.Get(context.Background(), key(name), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return data
}

// TestCorruption flips one byte of a stored object: reading fails with
// ErrCorrupt at the corrupt chunk, never returning its bytes, and reads of
// other chunks still work.
func TestCorruption(t *testing.T) {
	// Small reads go through a buffer, large ones through a mapping.
	for _, extra := range []int{3 * fsobj.ChunkSize, 6 << 20} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) { testCorruption(t, extra) })
	}
}

func testCorruption(t *testing.T, extra int) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	defer b.Close()
	if err := b.CreateContainer(ctx, "AUTH_p", "c"); err != nil {
		t.Fatal(err)
	}
	data := content("victim", 1)
	data = append(data, bytes.Repeat([]byte("z"), extra)...)
	if _, err := b.Put(ctx, key("victim"), bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	path, err := b.DataPath(key("victim"))
	if err != nil {
		t.Fatal(err)
	}
	off := int64(len(data) - fsobj.ChunkSize/2) // in the last chunk
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	_, _ = f.ReadAt(one[:], off)
	one[0] ^= 0x40
	_, _ = f.WriteAt(one[:], off)
	f.Close()

	rc, _, err := b.Get(ctx, key("victim"), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, objectstore.ErrCorrupt) {
		t.Fatalf("read of a corrupt object: %v, want ErrCorrupt", err)
	}
	if int64(len(got)) > off-off%fsobj.ChunkSize || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("returned %d bytes, including the corrupt chunk or wrong bytes", len(got))
	}
	// The chunks before it still read.
	rc, _, err = b.Get(ctx, key("victim"), 0, fsobj.ChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	first, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(first, data[:fsobj.ChunkSize]) {
		t.Fatalf("first chunk: %v", err)
	}
}

// TestNamesStayInside stores hostile names and checks that every file is
// under the backend's directory and named by an id, not by the name.
func TestNamesStayInside(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	b := open(t, dir)
	defer b.Close()
	if err := b.CreateContainer(ctx, "AUTH_p", "../.."); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"../../../escape", "/etc/passwd", "..", "a/../../../b"} {
		k := objectstore.ObjectKey{Account: "AUTH_p", Container: "../..", Name: n}
		if _, err := b.Put(ctx, k, strings.NewReader("x"), objectstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Put(ctx, objectstore.ObjectKey{Account: "AUTH_p", Container: "../..", Name: strings.Repeat("n", fsobj.MaxNameLen+1)}, strings.NewReader("x"), objectstore.PutOptions{}); err == nil {
		t.Fatal("over-long name accepted")
	}
	if err := b.CreateContainer(ctx, "AUTH_p", "a\x00b"); err == nil {
		t.Fatal("container name with NUL accepted")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Fatalf("files appeared beside the store: %v", entries)
	}
	idRe := regexp.MustCompile(`^[0-9a-f]{32}\.data$`)
	_ = filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !idRe.MatchString(d.Name()) {
			t.Errorf("unexpected file %s", p)
		}
		return nil
	})
}

// TestReopen checks that objects, metadata and usage survive a reopen.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := open(t, dir)
	_ = b.CreateContainer(ctx, "AUTH_p", "c")
	big := strings.Repeat("hello", 10_000)
	_, _ = b.Put(ctx, key("a"), strings.NewReader(big), objectstore.PutOptions{})
	_, _ = b.Put(ctx, key("small"), strings.NewReader("tiny"), objectstore.PutOptions{})
	for _, n := range []string{"a", "small"} {
		if _, err := b.SetMeta(ctx, key(n), objectstore.PutOptions{Headers: map[string]string{"X-Object-Meta-K": "v"}}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	b = open(t, dir)
	defer b.Close()
	h, err := b.Head(ctx, key("a"))
	if err != nil || h.Headers["X-Object-Meta-K"] != "v" || h.Size != int64(len(big)) {
		t.Fatalf("after reopen: %+v %v", h, err)
	}
	if got := string(readAll(t, b, "a")); got != big {
		t.Fatalf("read %d bytes", len(got))
	}
	if got := string(readAll(t, b, "small")); got != "tiny" {
		t.Fatalf("read %q", got)
	}
	if _, err := os.Stat(strings.TrimSuffix(must(b.DataPath(key("a"))), ".data") + ".meta"); err != nil {
		t.Fatalf("metadata file beside the data: %v", err)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
