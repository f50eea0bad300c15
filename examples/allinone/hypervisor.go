package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/compute/fakevm"
	"github.com/stratuskit/stratus/compute/libvirtvm"
)

// Hypervisor choices of -hypervisor.
const (
	hypervisorAuto    = "auto"
	hypervisorLibvirt = "libvirt"
	hypervisorFake    = "fake"
)

// newHypervisor returns the compute host's driver: libvirt (real VMs,
// disks and console logs under DATA/libvirt, DATA made searchable by
// QEMU's user) or the in-memory fake. "auto" takes libvirt
// when cfg.LibvirtURI answers and the fake otherwise. With the tiny guest
// built, libvirt's auto virt type probes KVM with it once.
func newHypervisor(ctx context.Context, cfg Config, logger *slog.Logger) (compute.Hypervisor, error) {
	choice := cfg.Hypervisor
	if choice == "" {
		choice = hypervisorAuto
	}
	switch choice {
	case hypervisorFake:
		return fakevm.New(&fakevm.Options{Name: "allinone"}), nil
	case hypervisorLibvirt, hypervisorAuto:
	default:
		return nil, fmt.Errorf("-hypervisor %q: want auto, libvirt or fake", choice)
	}
	uri := cfg.LibvirtURI
	if uri == "" {
		uri = "qemu:///system"
	}
	// QEMU's user must reach DATA/libvirt: DATA becomes searchable (0711),
	// not listable, and its files stay 0600.
	if fi, err := os.Stat(cfg.DataDir); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
		if err := os.Chmod(cfg.DataDir, fi.Mode().Perm()|0o011); err != nil {
			return nil, err
		}
	}
	o := libvirtvm.Options{URI: uri, VirtType: cfg.VirtType, StateDir: filepath.Join(cfg.DataDir, "libvirt"), Logger: logger}
	if cfg.GuestDir != "" && (cfg.VirtType == "" || cfg.VirtType == libvirtvm.VirtAuto) {
		k, r := filepath.Join(cfg.GuestDir, "vmlinuz"), filepath.Join(cfg.GuestDir, "initrd.img")
		if _, err := os.Stat(k); err == nil {
			o.KVMProbe = &libvirtvm.KVMProbe{Kernel: k, Initrd: r}
		}
	}
	d, err := libvirtvm.New(ctx, o)
	if err != nil {
		if choice == hypervisorAuto {
			logger.Warn("libvirt is not available: servers run on the fake hypervisor", "uri", uri, "err", err)
			return fakevm.New(&fakevm.Options{Name: "allinone"}), nil
		}
		return nil, err
	}
	logger.Info("servers run on libvirt", "uri", uri, "virt_type", d.VirtType())
	return d, nil
}
