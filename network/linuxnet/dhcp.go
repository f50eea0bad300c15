package linuxnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// EnsureDHCP implements network.Backend: a namespace qdhcp-<network id>
// with the DHCP port's interface, dnsmasq serving the ports' fixed IPs
// only (static ranges, generated host and option files), and the
// metadata service when spec.Metadata.
func (b *Backend) EnsureDHCP(ctx context.Context, spec network.DHCPSpec) error {
	if err := b.begin(ctx, "dhcp", spec.NetworkID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("network_id", spec.NetworkID); err != nil {
		return fmt.Errorf("linuxnet: dhcp: %w", err)
	}
	if spec.PortID != "" {
		if err := checkID("port_id", spec.PortID); err != nil {
			return fmt.Errorf("linuxnet: dhcp %s: %w", spec.NetworkID, err)
		}
	}
	if hw, err := net.ParseMAC(spec.MAC); err != nil || len(hw) != 6 {
		return fmt.Errorf("linuxnet: dhcp %s: %w", spec.NetworkID, errdefs.Invalid("mac", "%q", spec.MAC))
	}
	for _, h := range spec.Hosts {
		if hw, err := net.ParseMAC(h.MAC); err != nil || len(hw) != 6 {
			return fmt.Errorf("linuxnet: dhcp %s: %w", spec.NetworkID, errdefs.Invalid("hosts.mac", "%q", h.MAC))
		}
	}
	if _, err := b.bridgeOf(spec.NetworkID); err != nil {
		return fmt.Errorf("linuxnet: dhcp: %w", err)
	}
	if len(dhcpSubnets(spec)) == 0 {
		return b.deleteDHCP(spec.NetworkID)
	}
	b.dhcp[spec.NetworkID] = spec
	err := b.ensureDHCP(ctx, spec)
	if err == nil {
		err = b.saveSpec("dhcp", spec.NetworkID, spec)
	}
	if err != nil {
		return fmt.Errorf("linuxnet: dhcp %s: %w", spec.NetworkID, err)
	}
	return nil
}

// dhcpSubnets are the IPv4 subnets of spec that DHCP serves.
func dhcpSubnets(spec network.DHCPSpec) []network.SubnetSpec {
	var out []network.SubnetSpec
	for _, s := range spec.Subnets {
		if s.EnableDHCP && s.CIDR.Addr().Is4() && s.DHCPServer.Is4() {
			out = append(out, s)
		}
	}
	return out
}

func (b *Backend) ensureDHCP(_ context.Context, spec network.DHCPSpec) error {
	name := nsDHCP + spec.NetworkID
	ns, err := createNS(b.nsPath(name))
	if err != nil {
		return err
	}
	defer ns.Close()
	rh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer rh.Close()
	if lo, err := rh.LinkByName("lo"); err != nil {
		return err
	} else if err := rh.LinkSetUp(lo); err != nil {
		return err
	}
	port := spec.PortID
	if port == "" {
		port = spec.NetworkID
	}
	subs := dhcpSubnets(spec)
	var addrs []netip.Prefix
	for _, s := range subs {
		addrs = append(addrs, netip.PrefixFrom(s.DHCPServer, s.CIDR.Bits()))
	}
	metadata := spec.Metadata && b.cfg.Metadata != nil
	if metadata {
		addrs = append(addrs, netip.PrefixFrom(MetadataAddr, 32))
	}
	iface := devName("ns-", port)
	// A changed DHCP port replaces the interface.
	if err := b.delAliasedExcept(aliasDHCP+spec.NetworkID, devName("tq", port)); err != nil {
		return err
	}
	if err := b.ensureVeth(rh, ns, iface, devName("tq", port), aliasDHCP+spec.NetworkID, spec.NetworkID, spec.MAC, spec.MTU, addrs); err != nil {
		return err
	}
	dir := filepath.Join(b.cfg.DHCPDir, spec.NetworkID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Host and option files live in directories dnsmasq watches (inotify):
	// a changed file replaces its records without a SIGHUP (dnsmasq 2.90
	// aborts on SIGHUP with --dhcp-hostsfile once it has leases).
	hosts, opts := dnsmasqFiles(spec, subs)
	for _, f := range []struct {
		dir  string
		data []byte
	}{{"hosts.d", hosts}, {"opts.d", opts}} {
		if err := os.MkdirAll(filepath.Join(dir, f.dir), 0o755); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f.dir, "stratus"), f.data); err != nil {
			return err
		}
	}
	args := []string{"--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0", "--leasefile-ro",
		"--pid-file=" + filepath.Join(dir, "pid"), "--dhcp-hostsdir=" + filepath.Join(dir, "hosts.d"),
		"--dhcp-optsdir=" + filepath.Join(dir, "opts.d"), "--interface=" + iface, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-lease-max=65536", "--quiet-dhcp", "--log-facility=" + filepath.Join(dir, "log")}
	for i, s := range subs {
		mask := net.IP(net.CIDRMask(s.CIDR.Bits(), 32)).String()
		args = append(args, fmt.Sprintf("--dhcp-range=set:s%d,%s,static,%s,86400s", i, s.CIDR.Masked().Addr(), mask))
	}
	argsFile := filepath.Join(dir, "args")
	prev, _ := os.ReadFile(argsFile)
	cur := []byte(strings.Join(args, "\n"))
	if pid := dnsmasqPID(dir); pid == 0 || !bytes.Equal(prev, cur) {
		stopPID(pid)
		if err := writeFile(argsFile, cur); err != nil {
			return err
		}
		cmd := exec.Command(b.cfg.Dnsmasq, args...)
		var out []byte
		err := inNS(ns, func() error {
			var err error
			out, err = cmd.CombinedOutput() // dnsmasq daemonizes once it is serving
			return err
		})
		if err != nil {
			return fmt.Errorf("dnsmasq: %w: %s", err, bytes.TrimSpace(out))
		}
	}
	if !metadata {
		b.stopMetadata(name)
		return nil
	}
	netID := spec.NetworkID
	return b.startMetadata(name, ns, func(netip.Addr) (string, bool) { return netID, true })
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$`)
var optNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// dnsmasqFiles renders the host file (a reservation per port's MAC and
// address, tagged per port) and the option file (per subnet: router, DNS
// servers, MTU, classless routes with the metadata route; per port: its
// extra options).
func dnsmasqFiles(spec network.DHCPSpec, subs []network.SubnetSpec) (hosts, opts []byte) {
	var h, o bytes.Buffer
	for i, host := range spec.Hosts {
		for _, a := range host.Addrs {
			if !a.Is4() || !slicesContainsSubnet(subs, a) {
				continue
			}
			fmt.Fprintf(&h, "%s,set:p%d,%s", strings.ToLower(host.MAC), i, a)
			if hostnameRE.MatchString(host.Hostname) {
				fmt.Fprintf(&h, ",%s", host.Hostname)
			}
			h.WriteString("\n")
		}
		for _, x := range host.ExtraOpts {
			if x.IPVersion == 6 || !optNameRE.MatchString(x.OptName) || strings.ContainsAny(x.OptValue, "\n\r") {
				continue
			}
			name := "option:" + x.OptName
			if _, err := strconv.Atoi(x.OptName); err == nil {
				name = x.OptName
			}
			fmt.Fprintf(&o, "tag:p%d,%s,%s\n", i, name, x.OptValue)
		}
	}
	for i, s := range subs {
		tag := fmt.Sprintf("tag:s%d", i)
		if s.Gateway.IsValid() {
			fmt.Fprintf(&o, "%s,option:router,%s\n", tag, s.Gateway)
		} else {
			fmt.Fprintf(&o, "%s,option:router\n", tag)
		}
		var dns []string
		for _, d := range s.DNSNameservers {
			if d.Is4() {
				dns = append(dns, d.String())
			}
		}
		if len(dns) > 0 {
			fmt.Fprintf(&o, "%s,option:dns-server,%s\n", tag, strings.Join(dns, ","))
		}
		if spec.MTU > 0 {
			fmt.Fprintf(&o, "%s,option:mtu,%d\n", tag, spec.MTU)
		}
		var routes []string
		if s.MetadataRoute {
			routes = append(routes, netip.PrefixFrom(MetadataAddr, 32).String(), s.DHCPServer.String())
		}
		for _, r := range s.HostRoutes {
			d, err1 := netip.ParsePrefix(r.Destination)
			nh, err2 := netip.ParseAddr(r.NextHop)
			if err1 == nil && err2 == nil && d.Addr().Is4() && nh.Is4() {
				routes = append(routes, d.Masked().String(), nh.String())
			}
		}
		if len(routes) > 0 {
			// A client taking option 121 ignores option 3: repeat the
			// default route.
			if s.Gateway.IsValid() {
				routes = append(routes, "0.0.0.0/0", s.Gateway.String())
			}
			fmt.Fprintf(&o, "%s,option:classless-static-route,%s\n", tag, strings.Join(routes, ","))
		}
	}
	return h.Bytes(), o.Bytes()
}

func slicesContainsSubnet(subs []network.SubnetSpec, a netip.Addr) bool {
	for _, s := range subs {
		if s.CIDR.Contains(a) {
			return true
		}
	}
	return false
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// dnsmasqPID returns the pid of the running dnsmasq of dir, or 0.
func dnsmasqPID(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmd, []byte(filepath.Join(dir, "pid"))) {
		return 0 // gone, a zombie, or another process with a recycled pid
	}
	return pid
}

// stopPID terminates a process and waits (a little) for it to go.
func stopPID(pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 100 {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmd) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// DeleteDHCP implements network.Backend.
func (b *Backend) DeleteDHCP(ctx context.Context, networkID string) error {
	if err := b.begin(ctx, "dhcp", networkID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkID("network_id", networkID); err != nil {
		return fmt.Errorf("linuxnet: dhcp: %w", err)
	}
	return b.deleteDHCP(networkID)
}

func (b *Backend) deleteDHCP(networkID string) error {
	name := nsDHCP + networkID
	b.stopMetadata(name)
	dir := filepath.Join(b.cfg.DHCPDir, networkID)
	stopPID(dnsmasqPID(dir))
	if err := b.delAliasedExcept(aliasDHCP+networkID, ""); err != nil {
		return fmt.Errorf("linuxnet: dhcp %s: %w", networkID, err)
	}
	if err := removeNS(b.nsPath(name)); err != nil {
		return fmt.Errorf("linuxnet: dhcp %s: %w", networkID, err)
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(b.dhcp, networkID)
	return b.dropSpec("dhcp", networkID)
}

// delAliasedExcept deletes the host links with exactly alias, except the
// one named keep.
func (b *Backend) delAliasedExcept(alias, keep string) error {
	links, err := b.nl.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Attrs().Alias == alias && l.Attrs().Name != keep {
			if err := b.nl.LinkDel(l); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	return nil
}
