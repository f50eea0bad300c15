package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/libvirtvm"
)

// The tiny guest is registered once, at the first start, as three images.
func TestGuestRegisteredOnce(t *testing.T) {
	guest := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd.img", "root.img"} {
		if err := os.WriteFile(filepath.Join(guest, f), []byte("guest file "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	addr := loopback()
	p := start(t, "-data", data, "-listen", addr, "-guest", guest, "-hypervisor", "fake")
	p.waitLine(t, "stratus: ready")
	p.stop(t, syscall.SIGTERM)
	logs := p.stderr.String()
	for _, name := range []string{"stratus-tiny-kernel", "stratus-tiny-ramdisk", "stratus-tiny"} {
		if !strings.Contains(logs, `"registered the tiny guest image" name=`+name+" ") {
			t.Errorf("%s not registered; stderr:\n%s", name, logs)
		}
	}
	p = start(t, "-data", data, "-listen", addr, "-guest", guest, "-hypervisor", "fake")
	p.waitLine(t, "stratus: ready")
	p.stop(t, syscall.SIGTERM)
	if strings.Contains(p.stderr.String(), "registered the tiny guest image") {
		t.Fatalf("guest registered again at restart; stderr:\n%s", p.stderr)
	}
}

func TestNewHypervisor(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	data := t.TempDir()
	h, err := newHypervisor(ctx, Config{Hypervisor: hypervisorFake, DataDir: data}, logger)
	if _, ok := h.(*fakevm.Driver); err != nil || !ok {
		t.Fatalf("fake: %T %v", h, err)
	}
	h, err = newHypervisor(ctx, Config{Hypervisor: hypervisorLibvirt, LibvirtURI: "test:///default", DataDir: data}, logger)
	if d, ok := h.(*libvirtvm.Driver); err != nil || !ok || d.VirtType() != "test" {
		t.Fatalf("libvirt: %T %v", h, err)
	}
	_ = h.Close()
	h, err = newHypervisor(ctx, Config{Hypervisor: hypervisorAuto, LibvirtURI: "nonexistent:///", DataDir: data}, logger)
	if _, ok := h.(*fakevm.Driver); err != nil || !ok {
		t.Fatalf("auto without libvirt: %T %v, want the fake", h, err)
	}
	if _, err := newHypervisor(ctx, Config{Hypervisor: hypervisorLibvirt, LibvirtURI: "nonexistent:///", DataDir: data}, logger); err == nil {
		t.Fatal("libvirt without libvirt succeeded")
	}
	if _, err := newHypervisor(ctx, Config{Hypervisor: "xen"}, logger); err == nil {
		t.Fatal("-hypervisor xen accepted")
	}
}
