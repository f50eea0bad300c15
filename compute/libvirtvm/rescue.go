package libvirtvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

var _ compute.Rescuer = (*Driver)(nil)

// Rescue implements compute.Rescuer as Nova's libvirt driver does: the
// domain's definition is kept in the server's directory, and the domain
// is redefined to boot the rescue image (an overlay on the cached base,
// with its kernel and ramdisk for a direct kernel boot) as vda, with its
// own disks after it, then started. Rescuing a rescued domain keeps the
// first saved definition.
func (d *Driver) Rescue(ctx context.Context, spec *compute.DomainSpec) error {
	if spec == nil || spec.Image == nil || spec.OpenImage == nil {
		return fmt.Errorf("libvirtvm: rescue needs an image: %w", errdefs.ErrInvalid)
	}
	id := spec.ServerID
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		saved := filepath.Join(d.serverDir(id), "unrescue.xml")
		desc, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
		if err != nil {
			return classify(err, "libvirtvm: definition of server %s", id)
		}
		if !exists(saved) {
			if err := writeFileAtomic(saved, []byte(desc)); err != nil {
				return fmt.Errorf("libvirtvm: rescue of server %s: %w", id, err)
			}
		} else if b, err := os.ReadFile(saved); err == nil {
			desc = string(b)
		}
		var x libvirtxml.Domain
		if err := x.Unmarshal(desc); err != nil {
			return fmt.Errorf("libvirtvm: definition of server %s: %w", id, err)
		}
		img := spec.Image
		base, err := d.cacheImage(ctx, spec.OpenImage, img.ID, img.Checksum, img.DiskFormat, img.Size)
		if err != nil {
			return err
		}
		root := filepath.Join(d.serverDir(id), "disk.rescue")
		if !exists(root) {
			if err := d.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-b", base.path, "-F", base.Format, root); err != nil {
				return fmt.Errorf("libvirtvm: rescue disk of server %s: %w", id, err)
			}
		}
		x.OS.Kernel, x.OS.Initrd, x.OS.Cmdline = "", "", ""
		if img.KernelID != "" {
			k, err := d.cacheImage(ctx, spec.OpenImage, img.KernelID, "", "aki", 0)
			if err != nil {
				return fmt.Errorf("rescue kernel: %w", err)
			}
			x.OS.Kernel, x.OS.Cmdline = k.path, d.opts.KernelCmdline
			if c := img.Properties["os_command_line"]; c != "" {
				x.OS.Cmdline = c
			}
			if d.virtType != VirtKVM && !slices.Contains(strings.Fields(x.OS.Cmdline), "no_timer_check") {
				x.OS.Cmdline += " no_timer_check"
			}
			if img.RamdiskID != "" {
				r, err := d.cacheImage(ctx, spec.OpenImage, img.RamdiskID, "", "ari", 0)
				if err != nil {
					return fmt.Errorf("rescue ramdisk: %w", err)
				}
				x.OS.Initrd = r.path
			}
		}
		// The rescue disk first; the server's disks after it, renamed in
		// order (vdb, vdc ...), none of them a boot disk.
		disks := []libvirtxml.DomainDisk{diskXML(disk{path: root, format: "qcow2", dev: "vda", boot: bootIf(img.KernelID == "")})}
		for i, dk := range x.Devices.Disks {
			dk.Boot = nil
			if dk.Target != nil {
				t := *dk.Target
				t.Dev = "vd" + string(rune('b'+i))
				dk.Target = &t
			}
			disks = append(disks, dk)
		}
		x.Devices.Disks = disks
		doc, err := x.Marshal()
		if err != nil {
			return fmt.Errorf("libvirtvm: rescue definition of server %s: %w", id, err)
		}
		if err := d.powerOff(ctx, id, dom, d.opts.SoftRebootTimeout); err != nil {
			return err
		}
		nd, err := d.conn.DomainDefineXML(doc)
		if err != nil {
			return classify(err, "libvirtvm: define the rescue of server %s", id)
		}
		_ = nd.Free()
		return d.start(id, dom)
	})
}

func bootIf(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// Unrescue implements compute.Rescuer: the saved definition comes back
// and the domain boots from its own disk; the rescue disk is removed.
// Unrescuing a domain that is not rescued makes sure it runs.
func (d *Driver) Unrescue(ctx context.Context, id string) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		saved := filepath.Join(d.serverDir(id), "unrescue.xml")
		b, err := os.ReadFile(saved)
		if os.IsNotExist(err) {
			if p, _ := powerOf(dom); p != compute.PowerRunning {
				return d.start(id, dom)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("libvirtvm: unrescue of server %s: %w", id, err)
		}
		if err := d.powerOff(ctx, id, dom, d.opts.SoftRebootTimeout); err != nil {
			return err
		}
		nd, err := d.conn.DomainDefineXML(string(b))
		if err != nil {
			return classify(err, "libvirtvm: redefine server %s", id)
		}
		_ = nd.Free()
		_ = os.Remove(filepath.Join(d.serverDir(id), "disk.rescue"))
		if err := os.Remove(saved); err != nil {
			return fmt.Errorf("libvirtvm: unrescue of server %s: %w", id, err)
		}
		return d.start(id, dom)
	})
}
