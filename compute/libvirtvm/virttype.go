//go:build cgo

package libvirtvm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/errdefs"
)

// chooseVirtType resolves Options.VirtType. "kvm" must be offered by
// libvirt. "auto" is kvm only when /dev/kvm exists, libvirt offers kvm and
// the KVMProbe kernel reached userspace under KVM (a result cached in the
// state directory per host kernel and probe kernel); else qemu.
func (d *Driver) chooseVirtType(ctx context.Context) (string, error) {
	switch d.opts.VirtType {
	case VirtQEMU:
		return VirtQEMU, nil
	case VirtKVM:
		if !d.offersKVM() {
			return "", fmt.Errorf("libvirtvm: VirtType kvm: libvirt at %s offers no kvm domains: %w", d.opts.URI, errdefs.ErrUnavailable)
		}
		return VirtKVM, nil
	}
	if !exists("/dev/kvm") || !d.offersKVM() || d.opts.KVMProbe == nil {
		return VirtQEMU, nil
	}
	if d.kvmWorks(ctx) {
		return VirtKVM, nil
	}
	return VirtQEMU, nil
}

func (d *Driver) offersKVM() bool {
	s, err := d.conn.GetCapabilities()
	if err != nil {
		return false
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(s); err != nil {
		return false
	}
	for _, g := range caps.Guests {
		if g.Arch.Name != "x86_64" {
			continue
		}
		for _, dm := range g.Arch.Domains {
			if dm.Type == VirtKVM {
				return true
			}
		}
	}
	return false
}

// kvmWorks boots the probe kernel under KVM once and caches the answer.
func (d *Driver) kvmWorks(ctx context.Context) bool {
	p := d.opts.KVMProbe
	key := probeKey(p)
	cache := filepath.Join(d.opts.StateDir, "kvm-probe.json")
	var cached struct {
		Key string `json:"key"`
		OK  bool   `json:"ok"`
	}
	if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &cached) == nil && cached.Key == key {
		return cached.OK
	}
	ok := bootsUnderKVM(ctx, p)
	cached.Key, cached.OK = key, ok
	if b, err := json.Marshal(cached); err == nil {
		_ = os.MkdirAll(d.opts.StateDir, 0o755)
		_ = writeFileAtomic(cache, b)
	}
	d.log.Info("kvm probe", "works", ok)
	return ok
}

func probeKey(p *KVMProbe) string {
	h := sha256.New()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Write(b)
	}
	for _, f := range []string{p.Kernel, p.Initrd} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	fmt.Fprintf(h, "%s\x00%s", p.Cmdline, p.Marker)
	return hex.EncodeToString(h.Sum(nil))
}

// bootsUnderKVM runs QEMU with KVM on the probe kernel and reports whether
// the marker appears on the serial console within the timeout.
func bootsUnderKVM(ctx context.Context, p *KVMProbe) bool {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	args := []string{"-accel", "kvm", "-cpu", "host", "-m", "256", "-nographic", "-nodefaults", "-no-reboot",
		"-serial", "stdio", "-kernel", p.Kernel, "-append", p.Cmdline}
	if p.Initrd != "" {
		args = append(args, "-initrd", p.Initrd)
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false
	}
	if err := cmd.Start(); err != nil {
		return false
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	found := make(chan bool, 1)
	go func() {
		var seen bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			seen.Write(buf[:n])
			if strings.Contains(seen.String(), p.Marker) {
				found <- true
				return
			}
			if err != nil {
				found <- false
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
	}()
	select {
	case ok := <-found:
		return ok
	case <-ctx.Done():
		return false
	case <-time.After(p.Timeout):
		return false
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
