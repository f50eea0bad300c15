package linuxnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNS runs fn on a fresh OS thread that has entered ns. The goroutine
// ends still locked to its thread (no runtime.UnlockOSThread), so the Go
// runtime destroys that thread instead of reusing it: nothing else ever
// runs in ns by accident, even if fn fails half-way.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// createNS makes a new network namespace pinned by a bind mount at path
// (as `ip netns add` does under /run/netns) and returns a handle to it.
// An existing namespace at path is returned as it is.
func createNS(path string) (netns.NsHandle, error) {
	if h, err := netns.GetFromPath(path); err == nil {
		var st unix.Statfs_t
		if unix.Fstatfs(int(h), &st) == nil && st.Type == unix.NSFS_MAGIC {
			return h, nil
		}
		h.Close() // a plain file left by a crash between create and mount
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return netns.None(), err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return netns.None(), err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return netns.None(), err
	}
	return netns.GetFromPath(path)
}

// removeNS unpins the namespace at path; it disappears once nothing else
// (a process, a socket) holds it. An absent path is not an error.
func removeNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// writeSysctl sets a /proc/sys value as seen from ns.
func writeSysctl(ns netns.NsHandle, key, value string) error {
	return inNS(ns, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}
