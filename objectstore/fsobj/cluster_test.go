package fsobj_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
	"github.com/stratuskit/stratus/objectstore/drivertest"
	"github.com/stratuskit/stratus/objectstore/fsobj"
)

func devDirs(t *testing.T, n int) []string {
	base := t.TempDir()
	var dirs []string
	for i := range n {
		dirs = append(dirs, filepath.Join(base, fmt.Sprintf("dev%d", i)))
	}
	return dirs
}

func openCluster(t *testing.T, dirs []string) *fsobj.Cluster {
	t.Helper()
	c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: dirs, PartPower: 6})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clusterWithContainer opens a cluster on n new devices with container
// AUTH_p/c in it; it is closed when the test ends.
func clusterWithContainer(t *testing.T, n int) (*fsobj.Cluster, []string) {
	t.Helper()
	dirs := devDirs(t, n)
	c := openCluster(t, dirs)
	t.Cleanup(func() { _ = c.Close() })
	mustContainer(t, c)
	return c, dirs
}

// mustContainer creates container AUTH_p/c in b.
func mustContainer(t *testing.T, b objectstore.Backend) {
	t.Helper()
	if err := b.CreateContainer(context.Background(), "AUTH_p", "c"); err != nil {
		t.Fatal(err)
	}
}

// mustPut writes data as object name of AUTH_p/c in b.
func mustPut(t *testing.T, b objectstore.Backend, name string, data []byte) {
	t.Helper()
	if _, err := b.Put(context.Background(), key(name), bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// mustPass runs one replication pass over c.
func mustPass(t *testing.T, c *fsobj.Cluster) {
	t.Helper()
	if _, err := fsobj.NewReplicator(c, 0).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestClusterConformance runs the conformance suite on four devices with
// three replicas (without fsync: the suite tests semantics; the tests
// below and TestCrash test durability).
func TestClusterConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) objectstore.Backend {
		c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: devDirs(t, 4), PartPower: 6, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func readKey(t *testing.T, b objectstore.Backend, k objectstore.ObjectKey) []byte {
	t.Helper()
	rc, _, err := b.Get(context.Background(), k, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", k, err)
	}
	return data
}

func randData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// copies returns how many of dirs hold a good copy of k (read verified).
func copies(t *testing.T, c *fsobj.Cluster, dirs []string, k objectstore.ObjectKey, want []byte) int {
	t.Helper()
	n := 0
	for _, dir := range dirs {
		rc, _, err := c.Device(dir).Get(context.Background(), k, 0, -1)
		if err != nil {
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err == nil && bytes.Equal(got, want) {
			n++
		}
	}
	return n
}

// TestClusterDurability corrupts one replica's bytes and deletes another
// replica's file; GETs running all the while return the right bytes, and
// the auditor and the replicator restore both copies.
func TestClusterDurability(t *testing.T) {
	c, dirs := clusterWithContainer(t, 3)
	ctx := context.Background()
	objs := map[string][]byte{}
	for i, size := range []int{1 << 10, 200_000, 1_300_000} {
		name := fmt.Sprintf("o%d", i)
		objs[name] = randData(size, uint64(i+1))
		mustPut(t, c, name, objs[name])
	}
	reps := c.Replicas("AUTH_p", "c")
	if len(reps) != 3 {
		t.Fatalf("%d replicas", len(reps))
	}
	// Flip a byte in the big object on the first replica, delete its file
	// on the second, and corrupt the small (inline) one on the second too.
	p, err := c.Device(reps[0]).DataPath(key("o2"))
	if err != nil {
		t.Fatal(err)
	}
	flip(t, p, 1_200_000) // past the first 1 MiB window: fails over mid-stream
	p, err = c.Device(reps[1]).DataPath(key("o2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	p1, _ := c.Device(reps[0]).DataPath(key("o1"))
	flip(t, p1, 10)
	if n := copies(t, c, dirs, key("o2"), objs["o2"]); n != 1 {
		t.Fatalf("%d good copies of o2 after damage, want 1", n)
	}
	// Reads fail over mid-stream, through Read and through WriteTo, and
	// in ranges.
	if got := readKey(t, c, key("o2")); !bytes.Equal(got, objs["o2"]) {
		t.Fatal("read of the damaged object differs")
	}
	for _, r := range [][2]int64{{0, -1}, {900_000, 350_000}, {1_200_000, 1}} {
		rc, _, err := c.Get(ctx, key("o2"), r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, rc)
		rc.Close()
		end := int64(len(objs["o2"]))
		if r[1] >= 0 {
			end = r[0] + r[1]
		}
		if err != nil || !bytes.Equal(buf.Bytes(), objs["o2"][r[0]:end]) {
			t.Fatalf("range %v: %d bytes, %v", r, buf.Len(), err)
		}
	}

	// Readers run all the time the auditor and replicator work.
	stop := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("o%d", (i+w)%3)
				rc, _, err := c.Get(ctx, key(name), 0, -1)
				if err != nil {
					t.Errorf("get %s: %v", name, err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, objs[name]) {
					t.Errorf("get %s: %d bytes, err %v: wrong bytes", name, len(got), err)
					return
				}
				reads.Add(1)
			}
		})
	}
	aud := fsobj.NewAuditor(c, 64<<20, 0)
	ast, err := aud.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ast.Quarantined != 3 {
		t.Fatalf("auditor quarantined %d copies, want 3 (%+v)", ast.Quarantined, ast)
	}
	rep := fsobj.NewReplicator(c, 0)
	rst, err := rep.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	t.Logf("audit %+v, replication %+v, %d concurrent GETs", ast, rst, reads.Load())
	if rst.Objects != 3 {
		t.Fatalf("replicator copied %d objects, want 3", rst.Objects)
	}
	for name, data := range objs {
		if n := copies(t, c, dirs, key(name), data); n != 3 {
			t.Fatalf("%s has %d good copies after repair, want 3", name, n)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(reps[0], "quarantined")); len(ents) != 2 {
		t.Fatalf("quarantine holds %d files, want 2", len(ents))
	}
	// A clean pass finds nothing.
	if ast, err := aud.Pass(ctx); err != nil || ast.Quarantined != 0 {
		t.Fatalf("second audit %+v %v", ast, err)
	}
	if rst, err := rep.Pass(ctx); err != nil || rst.SuffixesSynced != 0 {
		t.Fatalf("second replication %+v %v", rst, err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestClusterDeviceAway takes a device away: writes and deletes succeed
// at quorum on the others, and the returned device is repaired. With a
// fourth device, writes go to a handoff that gives them back.
func TestClusterDeviceAway(t *testing.T) {
	for _, n := range []int{3, 4} {
		t.Run(fmt.Sprintf("%d devices", n), func(t *testing.T) {
			c, dirs := clusterWithContainer(t, n)
			ctx := context.Background()
			old := randData(100_000, 1)
			for _, name := range []string{"keep", "gone", "changed"} {
				mustPut(t, c, name, old)
			}
			reps := c.Replicas("AUTH_p", "c")
			away := reps[0] // the first replica: listings would come from it
			if err := os.Rename(away, away+".away"); err != nil {
				t.Fatal(err)
			}
			fresh := randData(300_000, 2)
			if _, err := c.Put(ctx, key("new"), bytes.NewReader(fresh), objectstore.PutOptions{}); err != nil {
				t.Fatalf("put with a device away: %v", err)
			}
			mustPut(t, c, "changed", fresh)
			if err := c.Delete(ctx, key("gone")); err != nil {
				t.Fatalf("delete with a device away: %v", err)
			}
			if got := readKey(t, c, key("new")); !bytes.Equal(got, fresh) {
				t.Fatal("read with a device away differs")
			}
			// A pass while it is away (filling the replicator's cache).
			rep := fsobj.NewReplicator(c, 0)
			if _, err := rep.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(away+".away", away); err != nil {
				t.Fatal(err)
			}
			// Back but stale: reads still see the newest versions.
			if got := readKey(t, c, key("changed")); !bytes.Equal(got, fresh) {
				t.Fatal("read after the device returned saw the old version")
			}
			if _, err := c.Head(ctx, key("gone")); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("deleted object visible after the device returned: %v", err)
			}
			// Listings come from a replica that did not miss the writes.
			if got := listNames(t, c); got != "changed keep new" {
				t.Fatalf("listing before repair: %q", got)
			}
			if st, err := c.ContainerStats(ctx, "AUTH_p", "c"); err != nil || st.Objects != 3 {
				t.Fatalf("stats before repair: %+v, %v", st, err)
			}
			rst, err := rep.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("replication %+v", rst)
			dev := c.Device(away)
			for name, want := range map[string][]byte{"keep": old, "new": fresh, "changed": fresh} {
				rc, _, err := dev.Get(ctx, key(name), 0, -1)
				if err != nil {
					t.Fatalf("returned device lacks %s: %v", name, err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, want) {
					t.Fatalf("returned device's %s is not the newest version", name)
				}
			}
			if _, err := dev.Head(ctx, key("gone")); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("returned device still holds the deleted object: %v", err)
			}
			ents, err := c.List(ctx, "AUTH_p", "c", objectstore.ListOptions{})
			if err != nil || len(ents) != 3 {
				t.Fatalf("listing after repair: %d entries, %v", len(ents), err)
			}
			if n == 4 {
				if rst.Reverted == 0 {
					t.Fatal("the handoff gave nothing back")
				}
				for _, d := range dirs {
					if !contains(reps, d) {
						if _, err := c.Device(d).ContainerStats(ctx, "AUTH_p", "c"); !errors.Is(err, errdefs.ErrNotFound) {
							t.Fatalf("handoff %s still holds the container: %v", d, err)
						}
					}
				}
			}
		})
	}
}

func listNames(t *testing.T, b objectstore.Backend) string {
	t.Helper()
	ents, err := b.List(context.Background(), "AUTH_p", "c", objectstore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestClusterQuorum: with two of three devices away a write fails.
func TestClusterQuorum(t *testing.T) {
	c, dirs := clusterWithContainer(t, 3)
	ctx := context.Background()
	for _, d := range dirs[:2] {
		if err := os.Rename(d, d+".away"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Put(ctx, key("o"), bytes.NewReader([]byte("x")), objectstore.PutOptions{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("put on one device of three: %v, want Unavailable", err)
	}
}

// TestClusterRebalance reopens three devices with a fourth: the ring
// moves about a quarter, and the replicator moves the data to match.
func TestClusterRebalance(t *testing.T) {
	dirs := devDirs(t, 4)
	c := openCluster(t, dirs[:3])
	ctx := context.Background()
	var conts []string
	for i := range 12 {
		name := fmt.Sprintf("c%d", i)
		conts = append(conts, name)
		if err := c.CreateContainer(ctx, "AUTH_p", name); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, objectstore.ObjectKey{Account: "AUTH_p", Container: name, Name: "o"}, bytes.NewReader([]byte(name)), objectstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: dirs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	total := c.Ring().Parts() * 3
	if m := c.Moved(); m < total/5 || m > total*3/10 {
		t.Fatalf("adding a 4th device moved %d of %d", m, total)
	}
	if c.Ring().Version != 2 {
		t.Fatalf("ring version %d, want 2", c.Ring().Version)
	}
	mustPass(t, c)
	for _, name := range conts {
		k := objectstore.ObjectKey{Account: "AUTH_p", Container: name, Name: "o"}
		reps := c.Replicas("AUTH_p", name)
		for _, d := range dirs {
			_, err := c.Device(d).Head(ctx, k)
			if has := err == nil; has != contains(reps, d) {
				t.Fatalf("%s on %s: present %v, primary %v", name, d, has, contains(reps, d))
			}
		}
		if got := readKey(t, c, k); string(got) != name {
			t.Fatalf("%s reads %q", name, got)
		}
	}
}

// TestClusterDeviceMissingAtOpen: a device whose directory is gone when
// the cluster opens is down, not replaced: the ring stays, writes succeed
// at quorum, and the device is repaired once it is back.
func TestClusterDeviceMissingAtOpen(t *testing.T) {
	dirs := devDirs(t, 3)
	ctx := context.Background()
	c := openCluster(t, dirs)
	mustContainer(t, c)
	c.Close()
	if err := os.Rename(dirs[1], dirs[1]+".away"); err != nil {
		t.Fatal(err)
	}
	c = openCluster(t, dirs)
	if c.Ring().Version != 1 || c.Moved() != 0 {
		t.Fatalf("a missing device changed the ring: version %d, moved %d", c.Ring().Version, c.Moved())
	}
	if _, err := os.Stat(dirs[1]); !os.IsNotExist(err) {
		t.Fatalf("the missing device's directory was made again: %v", err)
	}
	data := randData(50_000, 5)
	if _, err := c.Put(ctx, key("o"), bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
		t.Fatalf("put with a device missing: %v", err)
	}
	c.Close()
	if err := os.Rename(dirs[1]+".away", dirs[1]); err != nil {
		t.Fatal(err)
	}
	c = openCluster(t, dirs)
	defer c.Close()
	mustPass(t, c)
	if n := copies(t, c, dirs, key("o"), data); n != 3 {
		t.Fatalf("%d copies after the device came back, want 3", n)
	}
}

// TestClusterErroringDevice: a device whose writes fail with I/O errors
// fails that write alone (quorum holds), then counts as down: the next
// write goes to a handoff.
func TestClusterErroringDevice(t *testing.T) {
	c, dirs := clusterWithContainer(t, 4)
	ctx := context.Background()
	reps := c.Replicas("AUTH_p", "c")
	bad := reps[2]
	// Writes to the device's scratch directory now fail (ENOTDIR).
	if err := os.RemoveAll(filepath.Join(bad, "tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	data := randData(100_000, 7)
	if _, err := c.Put(ctx, key("first"), bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
		t.Fatalf("put with an erroring replica: %v", err)
	}
	if n := copies(t, c, dirs, key("first"), data); n != 2 {
		t.Fatalf("first write has %d copies, want 2", n)
	}
	mustPut(t, c, "second", data)
	var handoff string
	for _, d := range dirs {
		if !contains(reps, d) {
			handoff = d
		}
	}
	if _, err := c.Device(handoff).Head(ctx, key("second")); err != nil {
		t.Fatalf("the write after the failure did not go to the handoff: %v", err)
	}
	if n := copies(t, c, dirs, key("second"), data); n != 3 {
		t.Fatalf("second write has %d copies, want 3", n)
	}
}

// TestClusterReclaim: tombstones older than the reclaim age go.
func TestClusterReclaim(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: devDirs(t, 3), PartPower: 4, Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	mustContainer(t, c)
	mustPut(t, c, "o", []byte("x"))
	if err := c.Delete(ctx, key("o")); err != nil {
		t.Fatal(err)
	}
	rep := fsobj.NewReplicator(c, 0)
	if st, err := rep.Pass(ctx); err != nil || st.Reclaimed != 0 {
		t.Fatalf("fresh tombstones reclaimed: %+v %v", st, err)
	}
	now.Add(int64(fsobj.DefaultReclaimAge + time.Hour))
	if st, err := rep.Pass(ctx); err != nil || st.Reclaimed != 3 {
		t.Fatalf("old tombstones: %+v %v, want 3 reclaimed", st, err)
	}
}

// TestClusterFromOneDirectory: a directory of the one-directory Backend
// becomes a device of a cluster, and the replicator copies its containers
// and objects to the new devices.
func TestClusterFromOneDirectory(t *testing.T) {
	dirs := devDirs(t, 3)
	b := open(t, dirs[0])
	mustContainer(t, b)
	data := randData(70_000, 9)
	mustPut(t, b, "o", data)
	b.Close()
	c := openCluster(t, dirs)
	defer c.Close()
	if got := readKey(t, c, key("o")); !bytes.Equal(got, data) {
		t.Fatal("object of the old directory reads differently")
	}
	mustPass(t, c)
	if n := copies(t, c, dirs, key("o"), data); n != 3 {
		t.Fatalf("%d copies after replication, want 3", n)
	}
}

// TestAuditorRate: the auditor reads no faster than its rate.
func TestAuditorRate(t *testing.T) {
	c := openCluster(t, devDirs(t, 3))
	defer c.Close()
	ctx := context.Background()
	mustContainer(t, c)
	mustPut(t, c, "o", randData(500_000, 3))
	const rate = 5_000_000 // 1.5 MB in 3 copies: at least 0.3 s
	start := time.Now()
	st, err := fsobj.NewAuditor(c, rate, 0).Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if st.Bytes != 1_500_000 || st.Objects != 3 {
		t.Fatalf("audit %+v", st)
	}
	if floor := time.Duration(float64(st.Bytes) / rate * float64(time.Second)); el < floor*9/10 {
		t.Fatalf("audited %d bytes in %v, faster than %d B/s", st.Bytes, el, rate)
	}
}

// TestClusterReplicateUnderWrites runs replication passes while writers
// overwrite and delete objects with a device away part of the time; once
// the writes stop and the device is back, passes make every replica equal
// and every object reads as its last acknowledged write.
func TestClusterReplicateUnderWrites(t *testing.T) {
	dirs := devDirs(t, 4)
	// A write that fails as the device goes makes it count as down for
	// ErrorSuppression: short here, so that it is back for the last passes.
	c, err := fsobj.OpenCluster(fsobj.ClusterConfig{Devices: dirs, PartPower: 6, ErrorSuppression: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	mustContainer(t, c)
	reps := c.Replicas("AUTH_p", "c")
	var mu sync.Mutex
	last := map[string][]byte{} // nil: deleted
	var writes atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i%6) // each writer its own names
				if i%5 == 4 {
					err := c.Delete(ctx, key(name))
					if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
						t.Errorf("delete %s: %v", name, err)
						return
					}
					mu.Lock()
					last[name] = nil
					mu.Unlock()
				} else {
					data := randData(1000+i*3000%40_000, uint64(w*10_000+i))
					if _, err := c.Put(ctx, key(name), bytes.NewReader(data), objectstore.PutOptions{}); err != nil {
						t.Errorf("put %s: %v", name, err)
						return
					}
					mu.Lock()
					last[name] = data
					mu.Unlock()
				}
				writes.Add(1)
			}
		})
	}
	rep := fsobj.NewReplicator(c, 0)
	for round := range 6 {
		if round == 1 {
			if err := os.Rename(reps[0], reps[0]+".away"); err != nil {
				t.Fatal(err)
			}
		}
		if round == 4 {
			if err := os.Rename(reps[0]+".away", reps[0]); err != nil {
				t.Fatal(err)
			}
		}
		for w := writes.Load(); writes.Load() < w+30; {
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := rep.Pass(ctx); err != nil {
			t.Logf("pass %d: %v", round, err)
		}
	}
	close(stop)
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // past ErrorSuppression
	for range 2 {
		if _, err := rep.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := rep.Pass(ctx); err != nil || st.SuffixesSynced != 0 {
		t.Fatalf("replicas still differ after the writes stopped: %+v %v", st, err)
	}
	for name, want := range last {
		for _, d := range reps {
			rc, _, err := c.Device(d).Get(ctx, key(name), 0, -1)
			if want == nil {
				if err == nil {
					rc.Close()
					t.Fatalf("%s: deleted, but %s holds it", name, d)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s on %s: %v", name, d, err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, want) {
				t.Fatalf("%s on %s is not the last acknowledged write", name, d)
			}
		}
	}
	for _, d := range dirs {
		if !contains(reps, d) {
			if _, err := c.Device(d).ContainerStats(ctx, "AUTH_p", "c"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("handoff %s still holds the container: %v", d, err)
			}
		}
	}
	t.Logf("%d writes, %d names checked on %d replicas", writes.Load(), len(last), len(reps))
}

// TestClusterDeletedContainerWhileAway: a device away while an object and
// then its container were deleted loses both when it returns (no zombie
// container keeping its bytes).
func TestClusterDeletedContainerWhileAway(t *testing.T) {
	c, _ := clusterWithContainer(t, 3)
	ctx := context.Background()
	mustPut(t, c, "o", randData(80_000, 4))
	away := c.Replicas("AUTH_p", "c")[0]
	path, err := c.Device(away).DataPath(key("o"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, away+".away"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, key("o")); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteContainer(ctx, "AUTH_p", "c"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away+".away", away); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerStats(ctx, "AUTH_p", "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("deleted container visible: %v", err)
	}
	mustPass(t, c)
	if _, err := c.Device(away).ContainerStats(ctx, "AUTH_p", "c"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("the returned device keeps the deleted container: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the deleted object's file is still there: %v", err)
	}
}

// TestClusterLoops: started, the auditor and the replicator find and
// repair a flipped byte by themselves, and Close stops them.
func TestClusterLoops(t *testing.T) {
	c, dirs := clusterWithContainer(t, 3)
	data := randData(90_000, 8)
	mustPut(t, c, "o", data)
	p, err := c.Device(dirs[1]).DataPath(key("o"))
	if err != nil {
		t.Fatal(err)
	}
	flip(t, p, 70_000)
	rep := fsobj.NewReplicator(c, 20*time.Millisecond)
	aud := fsobj.NewAuditor(c, 0, 20*time.Millisecond)
	rep.Start()
	aud.Start()
	deadline := time.Now().Add(20 * time.Second)
	for copies(t, c, dirs, key("o"), data) != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the loops did not repair the flipped byte")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := aud.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rep.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dirs[1], "quarantined")); len(ents) != 1 {
		t.Fatalf("quarantine holds %d files, want 1", len(ents))
	}
}
