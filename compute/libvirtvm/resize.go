package libvirtvm

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// Resize implements compute.Resizer (a cold resize on this host): the
// domain is stopped (cleanly for up to Options.SoftRebootTimeout, then
// hard), its root disk grown to the new
// flavor's size, its definition given the new vCPUs and memory, and it
// is started again if it ran. A spec the domain already has changes
// nothing. Disks never shrink.
func (d *Driver) Resize(ctx context.Context, id string, spec *compute.DomainSpec) error {
	if spec == nil || spec.VCPUs <= 0 || spec.MemoryMB <= 0 {
		return fmt.Errorf("libvirtvm: resize of server %s: vcpus and memory must be positive: %w", id, errdefs.ErrInvalid)
	}
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		desc, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
		if err != nil {
			return classify(err, "libvirtvm: definition of server %s", id)
		}
		var x libvirtxml.Domain
		if err := x.Unmarshal(desc); err != nil {
			return fmt.Errorf("libvirtvm: definition of server %s: %w", id, err)
		}
		wantKiB := uint(spec.MemoryMB) * 1024
		sameCPU := x.VCPU != nil && x.VCPU.Value == uint(spec.VCPUs)
		sameMem := x.Memory != nil && memKiB(x.Memory.Value, x.Memory.Unit) == wantKiB
		root := filepath.Join(d.serverDir(id), "disk")
		grow := int64(0)
		if spec.RootGB > 0 && exists(root) {
			vs, err := d.sizeInUse(ctx, root)
			if err != nil {
				return fmt.Errorf("libvirtvm: resize of server %s: %w", id, err)
			}
			if want := int64(spec.RootGB) * gib; want > vs {
				grow = want
			}
		}
		if sameCPU && sameMem && grow == 0 {
			return nil
		}
		p, err := powerOf(dom)
		if err != nil {
			return classify(err, "libvirtvm: state of server %s", id)
		}
		running := p == compute.PowerRunning || p == compute.PowerPaused
		if running {
			if err := d.powerOff(ctx, id, dom, d.opts.SoftRebootTimeout); err != nil {
				return err
			}
		}
		if grow > 0 {
			if err := d.qemuImg(ctx, "resize", "-q", "-f", "qcow2", root, fmt.Sprint(grow)); err != nil {
				return fmt.Errorf("libvirtvm: grow the root disk of server %s: %w", id, err)
			}
		}
		x.Memory = &libvirtxml.DomainMemory{Value: uint(spec.MemoryMB), Unit: "MiB"}
		x.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: uint(spec.MemoryMB), Unit: "MiB"}
		x.VCPU = &libvirtxml.DomainVCPU{Value: uint(spec.VCPUs)}
		doc, err := x.Marshal()
		if err != nil {
			return fmt.Errorf("libvirtvm: definition of server %s: %w", id, err)
		}
		nd, err := d.conn.DomainDefineXML(doc)
		if err != nil {
			return classify(err, "libvirtvm: redefine server %s", id)
		}
		_ = nd.Free()
		d.consoleMark(id, fmt.Sprintf("resized to %d vcpus, %d MB", spec.VCPUs, spec.MemoryMB))
		if running {
			return d.start(id, dom)
		}
		return nil
	})
}

// sizeInUse is the virtual size of a qcow2 disk that a running QEMU may
// hold locked (qemu-img info -U reads it without the lock).
func (d *Driver) sizeInUse(ctx context.Context, p string) (int64, error) {
	out, err := exec.CommandContext(ctx, d.opts.QemuImg, "info", "-U", "--output=json", "-f", "qcow2", p).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info: %w", err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, fmt.Errorf("qemu-img info: %w", err)
	}
	return info.VirtualSize, nil
}

// memKiB converts a libvirt memory value to KiB.
func memKiB(v uint, unit string) uint {
	switch unit {
	case "b", "bytes":
		return v / 1024
	case "M", "MiB":
		return v * 1024
	case "G", "GiB":
		return v * 1024 * 1024
	}
	return v // KiB, libvirt's default
}

// Migrate implements compute.Migrator through libvirt's migration API to
// the destination driver's connection: live (the running domain moves,
// the source is undefined) or cold (offline: the stopped domain is
// defined on the destination too, and the source's definition stays
// until compute confirms). Disks must be reachable from both hosts at the
// same paths (shared storage). libvirt refuses a migration to the host a
// domain is on, and its test driver has no migration at all: both come
// back as errors the compute service rolls back from.
func (d *Driver) Migrate(ctx context.Context, id string, dest compute.Hypervisor, live bool) error {
	dd, ok := dest.(*Driver)
	if !ok {
		return fmt.Errorf("libvirtvm: migration of server %s: the destination is not a libvirt host: %w", id, errdefs.ErrUnsupported)
	}
	if dd == d {
		return fmt.Errorf("libvirtvm: migration of server %s: source and destination are one host: %w", id, errdefs.ErrInvalid)
	}
	if _, err := dd.State(ctx, id); err == nil {
		return nil // there already (a repeated call)
	}
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		flags := libvirt.MIGRATE_PERSIST_DEST
		if live {
			flags |= libvirt.MIGRATE_LIVE | libvirt.MIGRATE_UNDEFINE_SOURCE
		} else {
			flags |= libvirt.MIGRATE_OFFLINE
		}
		// The destination knows the domain as its own: its state directory
		// goes into the Stratus mark of the definition it receives.
		desc, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_MIGRATABLE)
		if err != nil {
			return classify(err, "libvirtvm: definition of server %s", id)
		}
		desc = strings.Replace(desc, "<statedir>"+xmlEscape(d.opts.StateDir)+"</statedir>", "<statedir>"+xmlEscape(dd.opts.StateDir)+"</statedir>", 1)
		nd, err := dom.Migrate2(dd.conn, desc, flags, "", "", 0)
		if err != nil {
			return classify(err, "libvirtvm: migrate server %s to %s", id, dd.opts.URI)
		}
		_ = nd.Free()
		return nil
	})
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Snapshot implements compute.Snapshotter: the root disk flattened into a
// standalone qcow2 (qemu-img convert of the overlay and its base), taken
// with the guest's vCPUs paused so that the copy is consistent. The file
// is removed when the reader is closed.
func (d *Driver) Snapshot(ctx context.Context, id string) (io.ReadCloser, string, error) {
	var out string
	err := d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		root := filepath.Join(d.serverDir(id), "disk")
		if !exists(root) {
			return fmt.Errorf("libvirtvm: server %s has no local root disk to snapshot: %w", id, errdefs.ErrUnsupported)
		}
		if p, _ := powerOf(dom); p == compute.PowerRunning {
			if err := dom.Suspend(); err != nil {
				return classify(err, "libvirtvm: pause server %s for a snapshot", id)
			}
			defer func() { _ = dom.Resume() }()
		}
		f, err := os.CreateTemp(d.serverDir(id), ".snapshot-*.qcow2")
		if err != nil {
			return fmt.Errorf("libvirtvm: snapshot of server %s: %w", id, err)
		}
		out = f.Name()
		_ = f.Close()
		if err := d.qemuImg(ctx, "convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2", root, out); err != nil {
			_ = os.Remove(out)
			return fmt.Errorf("libvirtvm: snapshot of server %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(out)
	if err != nil {
		_ = os.Remove(out)
		return nil, "", fmt.Errorf("libvirtvm: snapshot of server %s: %w", id, err)
	}
	return &removeOnClose{File: f}, "qcow2", nil
}

// removeOnClose is a temporary file removed when it is closed.
type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	if rerr := os.Remove(r.Name()); err == nil {
		err = rerr
	}
	return err
}
