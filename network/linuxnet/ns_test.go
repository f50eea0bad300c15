package linuxnet

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestThreadsLeaveNamespaces: after inNS and createNS, every thread of the
// process is back in the process's namespace. A goroutine that ended
// locked on the main thread once left that thread parked for good in a
// DHCP namespace; /proc/self/ns/net then named that namespace, and a
// backend opened afterwards cleaned the wrong one while the host kept its
// nftables tables.
func TestThreadsLeaveNamespaces(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			path := filepath.Join(dir, "ns"+string(rune('a'+i)))
			ns, err := createNS(path)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { ns.Close(); _ = removeNS(path) }()
			for range 100 {
				if err := inNS(ns, func() error { return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Threads that ended locked die a moment later: give them that moment.
	var away []string
	for range 50 {
		away = away[:0]
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			l, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
			if err == nil && l != self {
				away = append(away, task.Name()+" in "+l)
			}
		}
		if len(away) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(away) > 0 {
		t.Fatalf("threads still in another namespace: %v", away)
	}
	if l, err := os.Readlink("/proc/self/ns/net"); err != nil || l != self {
		t.Fatalf("/proc/self/ns/net = %q (%v), want %q", l, err, self)
	}
	h, err := hostNS()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	want, err := netns.GetFromPath("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if !h.Equal(want) {
		t.Fatalf("hostNS = %s, want %s", h.UniqueId(), want.UniqueId())
	}
}
