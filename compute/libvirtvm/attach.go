//go:build cgo

package libvirtvm

import (
	"context"
	"fmt"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// deviceFlags applies a device change to the live domain when it runs and
// to its persistent definition always.
func deviceFlags(dom *libvirt.Domain) libvirt.DomainDeviceModifyFlags {
	f := libvirt.DOMAIN_DEVICE_MODIFY_CONFIG
	if a, err := dom.IsActive(); err == nil && a {
		f |= libvirt.DOMAIN_DEVICE_MODIFY_LIVE
	}
	return f
}

func domainDef(dom *libvirt.Domain, flags libvirt.DomainXMLFlags) (*libvirtxml.Domain, error) {
	s, err := dom.GetXMLDesc(flags)
	if err != nil {
		return nil, err
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(s); err != nil {
		return nil, err
	}
	return &x, nil
}

// AttachVolume implements compute.Hypervisor: a hot-plug of the volume's
// file (driver_volume_type "file") as a virtio disk whose serial is the
// volume id.
func (d *Driver) AttachVolume(ctx context.Context, id string, a compute.DiskAttachment) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		dk, err := volumeDisk(ctx, a)
		if err != nil {
			return fmt.Errorf("libvirtvm: server %s: %w", id, err)
		}
		def, err := domainDef(dom, libvirt.DOMAIN_XML_INACTIVE)
		if err != nil {
			return classify(err, "libvirtvm: server %s", id)
		}
		used := map[string]bool{}
		for _, x := range def.Devices.Disks {
			if x.Alias != nil && x.Alias.Name == dk.alias {
				return nil // already attached
			}
			if x.Target != nil {
				used[x.Target.Dev] = true
			}
		}
		if dk.dev == "" || used[dk.dev] {
			dk.dev = ""
			for c := 'b'; c <= 'z'; c++ {
				if dev := "vd" + string(c); !used[dev] {
					dk.dev = dev
					break
				}
			}
			if dk.dev == "" {
				return fmt.Errorf("libvirtvm: server %s: no free disk name: %w", id, errdefs.ErrConflict)
			}
		}
		s, err := diskXMLString(dk)
		if err != nil {
			return err
		}
		return classify(dom.AttachDeviceFlags(s, deviceFlags(dom)), "libvirtvm: attach volume %s to server %s", a.VolumeID, id)
	})
}

func diskXMLString(dk disk) (string, error) {
	x := diskXML(dk)
	return x.Marshal()
}

// DetachVolume implements compute.Hypervisor: a hot-unplug that waits up
// to Options.DetachTimeout for the guest to release the disk.
func (d *Driver) DetachVolume(ctx context.Context, id, volumeID string) error {
	alias := volumeAlias(volumeID)
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		return d.detach(ctx, id, dom, "volume "+volumeID, func(def *libvirtxml.Domain) (string, bool, error) {
			for _, x := range def.Devices.Disks {
				if x.Alias != nil && x.Alias.Name == alias {
					s, err := x.Marshal()
					return s, true, err
				}
			}
			return "", false, nil
		})
	})
}

// AttachInterface implements compute.Hypervisor: a hot-plug of the port's
// tap as a virtio NIC ("fake" ports have no device and attach nothing).
func (d *Driver) AttachInterface(ctx context.Context, id string, nic compute.NIC) error {
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		iface, err := nicXML(nic)
		if err != nil {
			return fmt.Errorf("libvirtvm: server %s: %w", id, err)
		}
		if iface == nil {
			return nil
		}
		def, err := domainDef(dom, libvirt.DOMAIN_XML_INACTIVE)
		if err != nil {
			return classify(err, "libvirtvm: server %s", id)
		}
		for _, x := range def.Devices.Interfaces {
			if x.Alias != nil && x.Alias.Name == iface.Alias.Name {
				return nil
			}
		}
		s, err := iface.Marshal()
		if err != nil {
			return err
		}
		return classify(dom.AttachDeviceFlags(s, deviceFlags(dom)), "libvirtvm: attach port %s to server %s", nic.PortID, id)
	})
}

// DetachInterface implements compute.Hypervisor.
func (d *Driver) DetachInterface(ctx context.Context, id, portID string) error {
	alias := portAlias(portID)
	return d.withDomain(ctx, id, func(dom *libvirt.Domain) error {
		return d.detach(ctx, id, dom, "port "+portID, func(def *libvirtxml.Domain) (string, bool, error) {
			for _, x := range def.Devices.Interfaces {
				if x.Alias != nil && x.Alias.Name == alias {
					s, err := x.Marshal()
					return s, true, err
				}
			}
			return "", false, nil
		})
	})
}

// detach removes a device from the persistent definition and, when the
// domain runs, from the live one, waiting for the guest to let it go. A
// device that is absent is detached already.
func (d *Driver) detach(ctx context.Context, id string, dom *libvirt.Domain, what string,
	find func(*libvirtxml.Domain) (string, bool, error)) error {
	for _, f := range []libvirt.DomainXMLFlags{libvirt.DOMAIN_XML_INACTIVE, 0} {
		live := f == 0
		if live {
			if a, err := dom.IsActive(); err != nil || !a {
				continue
			}
		}
		def, err := domainDef(dom, f)
		if err != nil {
			return classify(err, "libvirtvm: server %s", id)
		}
		s, ok, err := find(def)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		flags := libvirt.DOMAIN_DEVICE_MODIFY_CONFIG
		if live {
			flags = libvirt.DOMAIN_DEVICE_MODIFY_LIVE
		}
		if err := dom.DetachDeviceFlags(s, flags); err != nil {
			return classify(err, "libvirtvm: detach %s from server %s", what, id)
		}
		if !live {
			continue
		}
		deadline := time.Now().Add(d.opts.DetachTimeout)
		for {
			def, err := domainDef(dom, 0)
			if err != nil {
				return classify(err, "libvirtvm: server %s", id)
			}
			if _, ok, _ := find(def); !ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("libvirtvm: detach %s from server %s: the guest did not release it within %s: %w",
					what, id, d.opts.DetachTimeout, errdefs.ErrUnavailable)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
