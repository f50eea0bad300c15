// Package libvirtvm is a compute.Hypervisor on libvirt and QEMU: a server
// is a libvirt domain running in QEMU, under KVM where KVM works and in
// software emulation (TCG, domain type "qemu") elsewhere.
//
// A domain is built from the flavor (vCPUs, memory) with typed domain XML
// (libvirt.org/go/libvirtxml): virtio disks and NICs, a serial console
// logged to a file per server (ConsoleOutput reads it), and Stratus's
// <metadata> (server id, project, name), which List and the sweep use to
// touch only Stratus's domains. The domain's UUID is the server id and its
// name "stratus-<server id>".
//
// Disks: the boot image is fetched once per host through
// DomainSpec.OpenImage, checked by image.Inspect before any qemu-img or
// QEMU opens it (qcow2 with a backing file or an external data file, VMDK
// descriptors ... are refused), verified against the image service's
// checksum and kept in a content-addressed cache (StateDir/base, named by
// the checksum) shared by qcow2 overlays (qemu-img create -b … -F …).
// Ephemeral and swap disks come from the flavor (blank qcow2), the config
// drive is an ISO 9660 image labelled config-2 made with genisoimage, and
// volumes with "file" connection info are hot-plugged. Images with
// kernel_id and ramdisk_id (aki/ari/ami) boot the kernel directly, with
// the ami as the root disk.
//
// The package needs cgo and libvirt's headers to build (Debian:
// libvirt-dev) and libvirt0 at run time; a real host needs
// libvirt-daemon-system, libvirt-clients, qemu-system-x86, qemu-utils and
// genisoimage. Without cgo, New returns errdefs.ErrUnavailable.
//
// libvirt's in-process test driver (URI "test:///default") is supported
// for fast tests: domains get type "test", files are prepared as for QEMU
// but nothing opens them, and the console log holds only the driver's own
// lines.
package libvirtvm

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// Virtualisation types for Options.VirtType.
const (
	VirtKVM  = "kvm"
	VirtQEMU = "qemu"
	VirtAuto = "auto"
)

// DefaultStateDir is where disks, console logs and the image cache live
// by default: outside any 0700 home, so that QEMU's user (libvirt-qemu on
// Debian) can reach them.
const DefaultStateDir = "/var/lib/stratus/libvirt"

// Options configure a Driver.
type Options struct {
	// URI is the libvirt connection URI. Default "qemu:///system";
	// "test:///default" is libvirt's in-process test driver.
	URI string
	// VirtType is "kvm", "qemu" (TCG software emulation) or "auto"
	// (default): KVM only when /dev/kvm exists, libvirt offers it and
	// KVMProbe booted a Linux guest under it; otherwise qemu. Without a
	// KVMProbe, auto means qemu: on hosts where /dev/kvm exists but nested
	// guests hang, only booting a real kernel tells.
	VirtType string
	// KVMProbe, when set, is booted once under KVM by VirtType auto; the
	// result is cached in StateDir per host kernel and probe kernel.
	KVMProbe *KVMProbe
	// StateDir holds the image cache (base/) and each server's files
	// (domains/<server id>/). Default DefaultStateDir. Every directory on
	// its path must be searchable by QEMU's user. It also scopes the
	// driver: domains are marked with it, and a driver sees only the
	// domains of its own StateDir (two clouds sharing a libvirtd never
	// sweep each other's).
	StateDir string
	// SoftRebootTimeout bounds the clean shutdown of a soft reboot before
	// it turns hard. Default 60s.
	SoftRebootTimeout time.Duration
	// DetachTimeout bounds how long DetachVolume and DetachInterface wait
	// for the guest to release the device. Default 20s.
	DetachTimeout time.Duration
	// KernelCmdline is the kernel command line of direct kernel boots
	// when the image has no os_command_line property. Default
	// "root=/dev/vda console=ttyS0", as Nova. Without KVM the driver adds
	// no_timer_check: a loaded host can otherwise fail the kernel's
	// IO-APIC timer check under TCG and panic the guest.
	KernelCmdline string
	// QemuImg and GenISOImage name the tools. Defaults "qemu-img" and
	// "genisoimage".
	QemuImg, GenISOImage string
	// Logger receives the driver's log lines. Default: discarded.
	Logger *slog.Logger
}

// KVMProbe is a Linux kernel (and initramfs) that prints Marker on its
// serial console once it reaches userspace.
type KVMProbe struct {
	Kernel, Initrd string
	// Cmdline default "console=ttyS0 quiet".
	Cmdline string
	// Marker default "stratus-guest: up".
	Marker string
	// Timeout default 15s.
	Timeout time.Duration
}

func (o *Options) setDefaults() error {
	if o.URI == "" {
		o.URI = "qemu:///system"
	}
	switch o.VirtType {
	case "":
		o.VirtType = VirtAuto
	case VirtKVM, VirtQEMU, VirtAuto:
	default:
		return errors.New(`libvirtvm: Options.VirtType must be "kvm", "qemu" or "auto"`)
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	o.StateDir = abs
	if o.SoftRebootTimeout == 0 {
		o.SoftRebootTimeout = 60 * time.Second
	}
	if o.DetachTimeout == 0 {
		o.DetachTimeout = 20 * time.Second
	}
	if o.KernelCmdline == "" {
		o.KernelCmdline = "root=/dev/vda console=ttyS0"
	}
	if o.QemuImg == "" {
		o.QemuImg = "qemu-img"
	}
	if o.GenISOImage == "" {
		o.GenISOImage = "genisoimage"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p := o.KVMProbe; p != nil {
		if p.Cmdline == "" {
			p.Cmdline = "console=ttyS0 quiet"
		}
		if p.Marker == "" {
			p.Marker = "stratus-guest: up"
		}
		if p.Timeout == 0 {
			p.Timeout = 15 * time.Second
		}
	}
	return nil
}
