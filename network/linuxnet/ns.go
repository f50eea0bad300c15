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

// inNS runs fn on an OS thread that has entered ns, then returns the
// thread to the namespace it came from. Only when that return fails does
// the goroutine end still locked to its thread, so the Go runtime destroys
// it instead of reusing it: nothing else ever runs in ns by accident.
//
// Returning the thread matters: when the thread is the process's main
// thread, the runtime cannot destroy it and parks it for good, still in
// ns — and /proc/self/ns/net, /proc/self/net and every netlink socket
// opened "in the process's namespace" would then name ns, not the host.
func inNS(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return fn()
	})
}

// onThread runs fn on a locked OS thread and then returns the thread to
// the network namespace it was in; if that fails, the goroutine ends
// locked and the runtime destroys the thread.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// hostNS returns a handle to the namespace of the calling goroutine's
// thread: the process's own, since inNS always returns its threads (or
// destroys them). Not /proc/self/ns/net, which is the main thread's.
func hostNS() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return netns.Get()
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
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
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
