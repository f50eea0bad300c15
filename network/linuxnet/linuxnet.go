// Package linuxnet is the Linux dataplane of the network service: a
// network.Backend for one host built from kernel objects driven over
// netlink (github.com/vishvananda/netlink) and nftables
// (github.com/google/nftables), as Neutron's Linux bridge agent does:
//
//   - a network is a bridge brq<id> (a VXLAN device may join it later);
//     flat networks on a physical network named in BridgeMappings use
//     that host bridge instead;
//   - a port is a tap tap<id> (or a veth pair, VethPorts) on the bridge,
//     with anti-spoofing on its ingress (netdev family: only its MAC and
//     fixed IPs or allowed pairs, for IPv4, IPv6 and ARP) and stateful
//     security groups on the bridged path (br_netfilter, ip/ip6 families
//     and the xtables physdev match, since the kernel has no bridge
//     conntrack); remote groups are address sets;
//   - the host itself is fenced off the tenant bridges: they have no
//     address, answer no ARP, run no IPv6, and what the host would
//     receive or route from them is dropped (mapped bridges with
//     BridgeAddrs are the host's own and stay reachable);
//   - a router is a namespace qrouter-<id> with a qr- interface per
//     subnet and a qg- gateway on the external network, SNAT, floating IPs
//     as DNAT/SNAT pairs and static routes;
//   - DHCP is dnsmasq in a namespace qdhcp-<network id> with generated
//     host and option files;
//   - the metadata service (169.254.169.254:80) is served by this process
//     inside each DHCP and router namespace, identifying the guest by its
//     network and source address only.
//
// Everything it creates is marked (link aliases "stratus:…", nftables
// tables named "stratus", namespaces under NetnsDir) so that Cleanup
// removes it and nothing else. The "host" may itself be a namespace
// (Config.HostNS): tests never touch the real host's network.
package linuxnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// Metadata answers guests' metadata requests. Compute implements it over
// its servers' records; the backend only says which guest is asking.
type Metadata interface {
	// MetadataHandler returns the handler serving the server that owns
	// addr on networkID, or an error wrapping errdefs.ErrNotFound.
	MetadataHandler(ctx context.Context, networkID string, addr netip.Addr) (http.Handler, error)
}

// Config configures a Backend.
type Config struct {
	// StateDir holds the backend's specs, DHCP files and pid files. It is
	// required and must survive restarts.
	StateDir string
	// DHCPDir holds dnsmasq's host, option and pid files. dnsmasq reads
	// them as its unprivileged user (nobody), so every directory above
	// it must be traversable by others; empty means StateDir/dhcp.
	DHCPDir string
	// HostNS is the path of the network namespace that plays the host
	// (bridges, port devices, filtering); empty means this process's own.
	HostNS string
	// NetnsDir is where router and DHCP namespaces are pinned; empty means
	// /run/netns, where `ip netns` finds them.
	NetnsDir string
	// BridgeMappings maps a physical network name to a host bridge: flat
	// networks on that physical network use it. A missing bridge is
	// created (and removed with its last network); an existing one is
	// used and left in place.
	BridgeMappings map[string]string
	// BridgeAddrs gives the host an address on a mapped bridge, such as
	// the all-in-one's br-ex 203.0.113.1/24: the host then reaches
	// floating IPs and guests reach the host.
	BridgeAddrs map[string]netip.Prefix
	// Masquerade lets traffic from the BridgeAddrs subnets out through the
	// host's other interfaces (NAT). Off, nothing is forwarded there.
	Masquerade bool
	// VethPorts makes ports veth pairs (the host end TapName(id) on the
	// bridge, the guest end PeerName(id), which VIF.DevName names) for
	// namespaces and containers, instead of taps for VMs.
	VethPorts bool
	// Metadata serves guests' metadata; nil disables the service.
	Metadata Metadata
	// Dnsmasq is the dnsmasq binary; empty means "dnsmasq" on PATH.
	Dnsmasq string
	// Logger receives the backend's log; nil means slog.Default().
	Logger *slog.Logger
}

// Backend is the Linux dataplane. It is safe for concurrent use; its
// operations are serialised (each one is a handful of netlink calls and
// one nftables transaction).
type Backend struct {
	cfg  Config
	log  *slog.Logger
	host netns.NsHandle
	nl   *netlink.Handle

	mu      sync.Mutex
	nets    map[string]network.NetworkSpec
	ports   map[string]network.PortSpec
	groups  map[string]network.SecurityGroupSpec
	routers map[string]network.RouterSpec
	dhcp    map[string]network.DHCPSpec
	meta    map[string]*metaServer // by namespace name

	// rtrIfaces holds each router's interfaces for its metadata
	// service: router id → []network.RouterInterfaceSpec.
	rtrIfaces sync.Map
	// sysctlsDone: br_netfilter is on in the host (set with the first
	// port, so a backend with no ports changes nothing host-wide).
	sysctlsDone bool
}

var _ network.Backend = (*Backend)(nil)

// Link aliases mark what the backend created.
const (
	aliasPrefix = "stratus:"
	aliasNet    = aliasPrefix + "net:"
	aliasExtBr  = aliasPrefix + "extbr:"
	aliasPort   = aliasPrefix + "port:"
	aliasRouter = aliasPrefix + "router:"
	aliasDHCP   = aliasPrefix + "dhcp:"
)

// Namespace name prefixes (Neutron's).
const (
	nsRouter = "qrouter-"
	nsDHCP   = "qdhcp-"
)

// PeerName is the guest end of a port's veth pair (Config.VethPorts).
func PeerName(portID string) string { return devName("vm", portID) }

// BridgeName is the bridge of a network that no mapping names.
func BridgeName(networkID string) string { return devName("brq", networkID) }

// devName is prefix and a hash of id, 15 characters (the Linux limit):
// ids that share their first characters (as test ids do) still get
// distinct devices.
func devName(prefix, id string) string {
	h := sha256.Sum256([]byte(id))
	return (prefix + hex.EncodeToString(h[:]))[:15]
}

var idRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]{0,63}$`)

func checkID(field, id string) error {
	if !idRE.MatchString(id) {
		return errdefs.Invalid(field, "%q is not a valid id", id)
	}
	return nil
}

// New opens the backend and resynchronises the host with the specs it
// recorded before (filtering replaced atomically, dnsmasq restarted if it
// died, metadata listeners reopened), without touching existing links,
// addresses or connections.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.StateDir == "" {
		return nil, errdefs.Invalid("state_dir", "required")
	}
	if cfg.DHCPDir == "" {
		cfg.DHCPDir = filepath.Join(cfg.StateDir, "dhcp")
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = "/run/netns"
	}
	if cfg.Dnsmasq == "" {
		cfg.Dnsmasq = "dnsmasq"
	}
	for phys, br := range cfg.BridgeMappings {
		if len(br) == 0 || len(br) > 15 || strings.ContainsAny(br, "/ \x00") {
			return nil, errdefs.Invalid("bridge_mappings", "bridge %q of %q", br, phys)
		}
	}
	b := &Backend{cfg: cfg, log: cfg.Logger, nets: map[string]network.NetworkSpec{}, ports: map[string]network.PortSpec{},
		groups: map[string]network.SecurityGroupSpec{}, routers: map[string]network.RouterSpec{},
		dhcp: map[string]network.DHCPSpec{}, meta: map[string]*metaServer{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	var err error
	if cfg.HostNS == "" {
		b.host, err = hostNS()
	} else {
		b.host, err = netns.GetFromPath(cfg.HostNS)
	}
	if err != nil {
		return nil, fmt.Errorf("linuxnet: host namespace: %w", err)
	}
	if b.nl, err = netlink.NewHandleAt(b.host); err != nil {
		b.host.Close()
		return nil, fmt.Errorf("linuxnet: netlink: %w", err)
	}
	for _, d := range []string{filepath.Join(cfg.StateDir, "specs"), cfg.DHCPDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Close()
			return nil, fmt.Errorf("linuxnet: %w", err)
		}
	}
	if err := b.load(); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.resync(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Close stops the metadata listeners and releases handles. The dataplane
// itself (links, namespaces, filtering, dnsmasq) keeps running, so
// guests keep their connectivity across a restart.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, m := range b.meta {
		m.close()
		delete(b.meta, k)
	}
	if b.nl != nil {
		b.nl.Close()
		b.nl = nil
	}
	return b.host.Close()
}

// resync converges the host to the recorded specs after a start.
func (b *Backend) resync(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ports) > 0 {
		if err := b.hostSysctls(); err != nil {
			return err
		}
	}
	for id, n := range b.nets {
		if _, mapped := b.mappedBridge(n); !mapped {
			if _, err := b.nl.LinkByName(BridgeName(id)); err == nil {
				if err := b.fenceBridge(BridgeName(id)); err != nil {
					return fmt.Errorf("linuxnet: resync network %s: %w", id, err)
				}
			}
		}
	}
	if err := b.applyFilters(); err != nil {
		return fmt.Errorf("linuxnet: resync filters: %w", err)
	}
	for _, spec := range b.routers {
		if err := b.ensureRouter(ctx, spec); err != nil {
			b.log.Warn("linuxnet: resync router", "router", spec.ID, "err", err)
		}
	}
	for _, spec := range b.dhcp {
		if err := b.ensureDHCP(ctx, spec); err != nil {
			b.log.Warn("linuxnet: resync dhcp", "network", spec.NetworkID, "err", err)
		}
	}
	return nil
}

// hostSysctls makes bridged IPv4 and IPv6 traffic traverse the ip and
// ip6 filter hooks (br_netfilter), where the security groups are.
func (b *Backend) hostSysctls() error {
	if b.sysctlsDone {
		return nil
	}
	for _, k := range []string{"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"} {
		if err := writeSysctl(b.host, k, "1"); err != nil {
			return fmt.Errorf("linuxnet: sysctl %s: %w", k, err)
		}
	}
	b.sysctlsDone = true
	return nil
}

// begin checks ctx and takes the lock; the caller unlocks.
func (b *Backend) begin(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("linuxnet: %s %s: %w", op, id, err)
	}
	b.mu.Lock()
	if b.nl == nil {
		b.mu.Unlock()
		return fmt.Errorf("linuxnet: %s %s: backend closed: %w", op, id, errdefs.ErrUnavailable)
	}
	return nil
}

// Specs are recorded as JSON files StateDir/specs/<kind>-<id>.json so a
// restarted backend knows the ports and groups its filters are made of.

func (b *Backend) specPath(kind, id string) string {
	return filepath.Join(b.cfg.StateDir, "specs", kind+"-"+id+".json")
}

func (b *Backend) saveSpec(kind, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p := b.specPath(kind, id)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("linuxnet: save %s %s: %w", kind, id, err)
	}
	return os.Rename(tmp, p)
}

func (b *Backend) dropSpec(kind, id string) error {
	if err := os.Remove(b.specPath(kind, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("linuxnet: drop %s %s: %w", kind, id, err)
	}
	return nil
}

func (b *Backend) load() error {
	ents, err := os.ReadDir(filepath.Join(b.cfg.StateDir, "specs"))
	if err != nil {
		return fmt.Errorf("linuxnet: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		kind, id, _ := strings.Cut(name, "-")
		data, err := os.ReadFile(filepath.Join(b.cfg.StateDir, "specs", e.Name()))
		if err != nil {
			return fmt.Errorf("linuxnet: %w", err)
		}
		switch kind {
		case "net":
			err = loadInto(data, id, b.nets)
		case "port":
			err = loadInto(data, id, b.ports)
		case "sg":
			err = loadInto(data, id, b.groups)
		case "router":
			err = loadInto(data, id, b.routers)
		case "dhcp":
			err = loadInto(data, id, b.dhcp)
		}
		if err != nil {
			return fmt.Errorf("linuxnet: load %s: %w", e.Name(), err)
		}
	}
	return nil
}

func loadInto[T any](data []byte, id string, m map[string]T) error {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	m[id] = v
	return nil
}

// Inventory implements network.Backend: what exists on the host, found
// by its marks (link aliases, namespaces), and the recorded groups.
func (b *Backend) Inventory(ctx context.Context) (*network.Inventory, error) {
	if err := b.begin(ctx, "inventory", ""); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	inv := &network.Inventory{}
	links, err := b.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("linuxnet: inventory: %w", err)
	}
	for _, l := range links {
		a := l.Attrs().Alias
		if id, ok := strings.CutPrefix(a, aliasNet); ok {
			inv.Networks = append(inv.Networks, id)
		} else if id, ok := strings.CutPrefix(a, aliasPort); ok {
			inv.Ports = append(inv.Ports, id)
		}
	}
	// Networks on a shared mapped bridge carry no alias of their own.
	for id, n := range b.nets {
		if br, ok := b.mappedBridge(n); ok && !slices.Contains(inv.Networks, id) {
			if _, err := b.nl.LinkByName(br); err == nil {
				inv.Networks = append(inv.Networks, id)
			}
		}
	}
	ents, err := os.ReadDir(b.cfg.NetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("linuxnet: inventory: %w", err)
	}
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), nsRouter); ok {
			inv.Routers = append(inv.Routers, id)
		} else if id, ok := strings.CutPrefix(e.Name(), nsDHCP); ok {
			inv.DHCP = append(inv.DHCP, id)
		}
	}
	for id := range b.groups {
		inv.SecurityGroups = append(inv.SecurityGroups, id)
	}
	for _, s := range [][]string{inv.Networks, inv.Ports, inv.Routers, inv.DHCP, inv.SecurityGroups} {
		slices.Sort(s)
	}
	return inv, nil
}
