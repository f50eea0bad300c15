package linuxnet

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// VIFTypeVeth is the VIF type of a port made as a veth pair
// (Config.VethPorts); VIF.DevName is then the guest end, PeerName(id).
const VIFTypeVeth = "veth"

// EnsurePort implements network.Backend. The device is created down,
// attached to its network's bridge, filtered, and only then set up.
func (b *Backend) EnsurePort(ctx context.Context, spec network.PortSpec) (*network.VIF, error) {
	if err := b.begin(ctx, "port", spec.ID); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	if err := checkID("id", spec.ID); err != nil {
		return nil, fmt.Errorf("linuxnet: port: %w", err)
	}
	if spec.DevName != network.TapName(spec.ID) {
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, errdefs.Invalid("devname", "%q is not %q", spec.DevName, network.TapName(spec.ID)))
	}
	mac, err := net.ParseMAC(spec.MAC)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, errdefs.Invalid("mac", "%q", spec.MAC))
	}
	if spec.MTU < 68 || spec.MTU > 65535 {
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, errdefs.Invalid("mtu", "%d", spec.MTU))
	}
	for _, p := range spec.AllowedPairs {
		if p.MAC != "" {
			if hw, err := net.ParseMAC(p.MAC); err != nil || len(hw) != 6 {
				return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, errdefs.Invalid("allowed_address_pairs", "mac %q", p.MAC))
			}
		}
	}
	brName, err := b.bridgeOf(spec.NetworkID)
	if err != nil {
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
	}
	br, err := b.nl.LinkByName(brName)
	if err != nil {
		if isNotFound(err) {
			err = fmt.Errorf("network %s: bridge %s: %w", spec.NetworkID, brName, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
	}
	if spec.PortSecurity {
		if err := b.hostSysctls(); err != nil {
			return nil, err
		}
	}
	l, created, err := b.portLink(spec, mac, br)
	if err != nil {
		return nil, err
	}
	old, had := b.ports[spec.ID]
	b.ports[spec.ID] = spec
	err = b.applyPort(spec, false)
	if err == nil {
		err = b.saveSpec("port", spec.ID, spec)
	}
	if err != nil {
		if had {
			b.ports[spec.ID] = old
		} else {
			delete(b.ports, spec.ID)
		}
		if created {
			_ = b.nl.LinkDel(l)
		}
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
	}
	up := b.nl.LinkSetUp
	if !spec.AdminStateUp {
		up = b.nl.LinkSetDown
	}
	if err := up(l); err != nil {
		return nil, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
	}
	vif := &network.VIF{PortID: spec.ID, Type: network.VIFTypeTap, DevName: spec.DevName, MAC: spec.MAC, MTU: spec.MTU}
	if b.cfg.VethPorts {
		vif.Type, vif.DevName = VIFTypeVeth, PeerName(spec.ID)
	}
	for _, a := range spec.FixedIPs {
		vif.FixedIPs = append(vif.FixedIPs, network.FixedIP{SubnetID: a.SubnetID, IPAddress: a.Addr.Addr().String()})
	}
	return vif, nil
}

// portLink creates the port's device (down) on bridge br, or brings an
// existing one to the spec.
func (b *Backend) portLink(spec network.PortSpec, mac net.HardwareAddr, br netlink.Link) (netlink.Link, bool, error) {
	name := spec.DevName
	l, err := b.nl.LinkByName(name)
	created := false
	switch {
	case isNotFound(err):
		if b.cfg.VethPorts {
			err = b.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: spec.MTU},
				PeerName: PeerName(spec.ID), PeerHardwareAddr: mac, PeerMTU: uint32(spec.MTU)})
		} else {
			// The tap is made by opening /dev/net/tun, which creates it in
			// the calling thread's namespace: enter the host's first.
			err = inNS(b.host, func() error {
				return b.nl.LinkAdd(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name},
					Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR})
			})
		}
		if err != nil {
			return nil, false, fmt.Errorf("linuxnet: port %s: add %s: %w", spec.ID, name, err)
		}
		created = true
		if l, err = b.nl.LinkByName(name); err == nil {
			err = b.nl.LinkSetAlias(l, aliasPort+spec.ID)
		}
		if err != nil {
			if l != nil {
				_ = b.nl.LinkDel(l)
			}
			return nil, false, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
		}
	case err != nil:
		return nil, false, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
	case l.Attrs().Alias != aliasPort+spec.ID:
		return nil, false, fmt.Errorf("linuxnet: port %s: a link %s not made for it exists: %w", spec.ID, name, errdefs.ErrConflict)
	}
	fail := func(err error) (netlink.Link, bool, error) {
		if created {
			_ = b.nl.LinkDel(l)
		}
		return nil, false, fmt.Errorf("linuxnet: port %s: %w", spec.ID, err)
	}
	if l.Attrs().MTU != spec.MTU {
		if err := b.nl.LinkSetMTU(l, spec.MTU); err != nil {
			return fail(err)
		}
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := b.nl.LinkSetMaster(l, br); err != nil {
			return fail(err)
		}
	}
	return l, created, nil
}

// DeletePort implements network.Backend.
func (b *Backend) DeletePort(ctx context.Context, id string) error {
	if err := b.begin(ctx, "port", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("id", id); err != nil {
		return fmt.Errorf("linuxnet: port: %w", err)
	}
	name := network.TapName(id)
	l, err := b.nl.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("linuxnet: port %s: %w", id, err)
	}
	if err == nil && l.Attrs().Alias == aliasPort+id {
		// Stop the traffic first: down, then filters (a netdev chain
		// hooked on the device must go before the device does).
		_ = b.nl.LinkSetDown(l)
	}
	if _, ok := b.ports[id]; ok {
		old := b.ports[id]
		delete(b.ports, id)
		if err := b.applyPort(old, true); err != nil {
			b.ports[id] = old
			return fmt.Errorf("linuxnet: port %s: filters: %w", id, err)
		}
	}
	if err == nil && l.Attrs().Alias == aliasPort+id {
		if err := b.nl.LinkDel(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("linuxnet: port %s: %w", id, err)
		}
	}
	return b.dropSpec("port", id)
}
