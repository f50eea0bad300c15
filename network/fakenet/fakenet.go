// Package fakenet is an in-memory network.Backend for tests: it records
// the desired state the network service hands it, checks it as a real
// dataplane would (a port needs its network, a network in use cannot go),
// and fails operations on demand through Hooks.
package fakenet

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/network"
)

// Hooks inject failures. Before is called before every operation with its
// name (the Backend method's, such as "EnsurePort") and the object's id;
// an error it returns fails the operation, which then changes nothing.
type Hooks struct {
	Before func(op, id string) error
}

// Backend is the fake dataplane. It is safe for concurrent use.
type Backend struct {
	mu       sync.Mutex
	hooks    Hooks
	networks map[string]network.NetworkSpec
	ports    map[string]network.PortSpec
	groups   map[string]network.SecurityGroupSpec
	routers  map[string]network.RouterSpec
	dhcp     map[string]network.DHCPSpec
	calls    map[string]int
}

var _ network.Backend = (*Backend)(nil)

// New returns an empty Backend.
func New() *Backend {
	return &Backend{networks: map[string]network.NetworkSpec{}, ports: map[string]network.PortSpec{},
		groups: map[string]network.SecurityGroupSpec{}, routers: map[string]network.RouterSpec{},
		dhcp: map[string]network.DHCPSpec{}, calls: map[string]int{}}
}

// SetHooks replaces the failure hooks.
func (b *Backend) SetHooks(h Hooks) {
	b.mu.Lock()
	b.hooks = h
	b.mu.Unlock()
}

// begin checks ctx and the hooks and takes the lock; the caller unlocks.
func (b *Backend) begin(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fakenet: %s %s: %w", op, id, err)
	}
	b.mu.Lock()
	b.calls[op]++
	if h := b.hooks.Before; h != nil {
		if err := h(op, id); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("fakenet: %s %s: %w", op, id, err)
		}
	}
	return nil
}

// Calls returns how many times op was called.
func (b *Backend) Calls(op string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[op]
}

// EnsureNetwork implements network.Backend.
func (b *Backend) EnsureNetwork(ctx context.Context, spec network.NetworkSpec) error {
	if err := b.begin(ctx, "EnsureNetwork", spec.ID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if spec.ID == "" || spec.MTU < 68 {
		return fmt.Errorf("fakenet: network %q: %w", spec.ID, errdefs.Invalid("mtu", "bad spec"))
	}
	b.networks[spec.ID] = spec
	return nil
}

// DeleteNetwork implements network.Backend.
func (b *Backend) DeleteNetwork(ctx context.Context, id string) error {
	if err := b.begin(ctx, "DeleteNetwork", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if b.inUse(id) {
		return fmt.Errorf("fakenet: network %s: still has ports: %w", id, errdefs.ErrConflict)
	}
	delete(b.networks, id)
	return nil
}

func (b *Backend) inUse(id string) bool {
	for _, p := range b.ports {
		if p.NetworkID == id {
			return true
		}
	}
	if _, ok := b.dhcp[id]; ok {
		return true
	}
	for _, r := range b.routers {
		if r.Gateway != nil && r.Gateway.NetworkID == id {
			return true
		}
		for _, i := range r.Interfaces {
			if i.NetworkID == id {
				return true
			}
		}
	}
	return false
}

// EnsurePort implements network.Backend.
func (b *Backend) EnsurePort(ctx context.Context, spec network.PortSpec) (*network.VIF, error) {
	if err := b.begin(ctx, "EnsurePort", spec.ID); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	if _, ok := b.networks[spec.NetworkID]; !ok {
		return nil, fmt.Errorf("fakenet: port %s: network %s: %w", spec.ID, spec.NetworkID, errdefs.ErrNotFound)
	}
	if spec.DevName != network.TapName(spec.ID) {
		return nil, fmt.Errorf("fakenet: port %s: %w", spec.ID, errdefs.Invalid("devname", "%q is not %q", spec.DevName, network.TapName(spec.ID)))
	}
	if hw, err := net.ParseMAC(spec.MAC); err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("fakenet: port %s: %w", spec.ID, errdefs.Invalid("mac", "%q", spec.MAC))
	}
	spec.FixedIPs = slices.Clone(spec.FixedIPs)
	spec.SecurityGroups = slices.Clone(spec.SecurityGroups)
	spec.AllowedPairs = slices.Clone(spec.AllowedPairs)
	b.ports[spec.ID] = spec
	vif := &network.VIF{PortID: spec.ID, Type: network.VIFTypeTap, DevName: spec.DevName, MAC: spec.MAC, MTU: spec.MTU}
	for _, a := range spec.FixedIPs {
		vif.FixedIPs = append(vif.FixedIPs, network.FixedIP{SubnetID: a.SubnetID, IPAddress: a.Addr.Addr().String()})
	}
	return vif, nil
}

// DeletePort implements network.Backend.
func (b *Backend) DeletePort(ctx context.Context, id string) error {
	if err := b.begin(ctx, "DeletePort", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	delete(b.ports, id)
	return nil
}

// EnsureSecurityGroup implements network.Backend.
func (b *Backend) EnsureSecurityGroup(ctx context.Context, spec network.SecurityGroupSpec) error {
	if err := b.begin(ctx, "EnsureSecurityGroup", spec.ID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	for _, r := range spec.Rules {
		if r.Direction != "ingress" && r.Direction != "egress" {
			return fmt.Errorf("fakenet: group %s: %w", spec.ID, errdefs.Invalid("direction", "%q", r.Direction))
		}
	}
	spec.Rules = slices.Clone(spec.Rules)
	spec.Members = slices.Clone(spec.Members)
	b.groups[spec.ID] = spec
	return nil
}

// DeleteSecurityGroup implements network.Backend.
func (b *Backend) DeleteSecurityGroup(ctx context.Context, id string) error {
	if err := b.begin(ctx, "DeleteSecurityGroup", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	delete(b.groups, id)
	return nil
}

// EnsureRouter implements network.Backend.
func (b *Backend) EnsureRouter(ctx context.Context, spec network.RouterSpec) error {
	if err := b.begin(ctx, "EnsureRouter", spec.ID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if spec.Gateway != nil {
		if _, ok := b.networks[spec.Gateway.NetworkID]; !ok {
			return fmt.Errorf("fakenet: router %s: gateway network %s: %w", spec.ID, spec.Gateway.NetworkID, errdefs.ErrNotFound)
		}
	}
	for _, i := range spec.Interfaces {
		if _, ok := b.networks[i.NetworkID]; !ok {
			return fmt.Errorf("fakenet: router %s: network %s: %w", spec.ID, i.NetworkID, errdefs.ErrNotFound)
		}
	}
	spec.Interfaces = slices.Clone(spec.Interfaces)
	spec.Routes = slices.Clone(spec.Routes)
	spec.FloatingIPs = slices.Clone(spec.FloatingIPs)
	if spec.Gateway != nil {
		g := *spec.Gateway
		spec.Gateway = &g
	}
	b.routers[spec.ID] = spec
	return nil
}

// DeleteRouter implements network.Backend.
func (b *Backend) DeleteRouter(ctx context.Context, id string) error {
	if err := b.begin(ctx, "DeleteRouter", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	delete(b.routers, id)
	return nil
}

// EnsureDHCP implements network.Backend.
func (b *Backend) EnsureDHCP(ctx context.Context, spec network.DHCPSpec) error {
	if err := b.begin(ctx, "EnsureDHCP", spec.NetworkID); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if _, ok := b.networks[spec.NetworkID]; !ok {
		return fmt.Errorf("fakenet: dhcp: network %s: %w", spec.NetworkID, errdefs.ErrNotFound)
	}
	spec.Subnets = slices.Clone(spec.Subnets)
	spec.Hosts = slices.Clone(spec.Hosts)
	b.dhcp[spec.NetworkID] = spec
	return nil
}

// DeleteDHCP implements network.Backend.
func (b *Backend) DeleteDHCP(ctx context.Context, id string) error {
	if err := b.begin(ctx, "DeleteDHCP", id); err != nil {
		return err
	}
	defer b.mu.Unlock()
	delete(b.dhcp, id)
	return nil
}

// Inventory implements network.Backend.
func (b *Backend) Inventory(ctx context.Context) (*network.Inventory, error) {
	if err := b.begin(ctx, "Inventory", ""); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	keys := func(m any) []string {
		var out []string
		switch m := m.(type) {
		case map[string]network.NetworkSpec:
			out = slices.Collect(maps.Keys(m))
		case map[string]network.PortSpec:
			out = slices.Collect(maps.Keys(m))
		case map[string]network.SecurityGroupSpec:
			out = slices.Collect(maps.Keys(m))
		case map[string]network.RouterSpec:
			out = slices.Collect(maps.Keys(m))
		case map[string]network.DHCPSpec:
			out = slices.Collect(maps.Keys(m))
		}
		slices.Sort(out)
		return out
	}
	return &network.Inventory{Networks: keys(b.networks), Ports: keys(b.ports), SecurityGroups: keys(b.groups),
		Routers: keys(b.routers), DHCP: keys(b.dhcp)}, nil
}

// Network returns the recorded spec of a network.
func (b *Backend) Network(id string) (network.NetworkSpec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.networks[id]
	return s, ok
}

// Port returns the recorded spec of a port.
func (b *Backend) Port(id string) (network.PortSpec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.ports[id]
	return s, ok
}

// SecurityGroup returns the recorded spec of a group.
func (b *Backend) SecurityGroup(id string) (network.SecurityGroupSpec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.groups[id]
	return s, ok
}

// Router returns the recorded spec of a router.
func (b *Backend) Router(id string) (network.RouterSpec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.routers[id]
	return s, ok
}

// DHCP returns the recorded DHCP spec of a network.
func (b *Backend) DHCP(id string) (network.DHCPSpec, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.dhcp[id]
	return s, ok
}
