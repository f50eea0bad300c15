package network

import (
	"context"
	"net/netip"
)

// Backend is the dataplane: it makes networks, ports, security groups,
// routers and DHCP exist on a host. The service's reconcilers call it with
// the complete desired state of one object at a time (level-triggered), so
// every Ensure method must be idempotent and converge an existing object
// to the spec without disturbing what already matches (existing flows of
// a port whose spec did not change). Delete methods are idempotent: an
// absent object is not an error.
//
// Methods must honour ctx cancellation, return errors matching the
// errdefs kinds named below (wrapping the raw error too), and be safe for
// concurrent use on different objects; the service never calls two
// methods on the same object at once.
//
// The Backend holds no policy, quota or bookkeeping: the store is the
// truth, and Inventory lets the service sweep what no record owns.
type Backend interface {
	// EnsureNetwork creates or updates the network's layer-2 segment (a
	// bridge, a VLAN or VXLAN device on a physical network).
	EnsureNetwork(ctx context.Context, spec NetworkSpec) error
	// DeleteNetwork removes a network. It fails with errdefs.ErrConflict
	// while ports, DHCP or router interfaces are still plugged into it.
	DeleteNetwork(ctx context.Context, id string) error
	// EnsurePort creates the port's host device (a tap named TapName(id))
	// on its network, with its anti-spoofing and security group filtering
	// and its MTU, before it returns the VIF the hypervisor attaches. The
	// network must have been ensured: otherwise errdefs.ErrNotFound.
	EnsurePort(ctx context.Context, spec PortSpec) (*VIF, error)
	// DeletePort removes the port's device and filtering.
	DeletePort(ctx context.Context, id string) error
	// EnsureSecurityGroup installs a group's rules and its member
	// addresses (the set that remote_group rules of any group match).
	// Ports name the groups they use; a group may arrive after its ports.
	EnsureSecurityGroup(ctx context.Context, spec SecurityGroupSpec) error
	// DeleteSecurityGroup removes a group's rules and address sets.
	DeleteSecurityGroup(ctx context.Context, id string) error
	// EnsureRouter creates or updates a router: its interfaces, its
	// gateway with SNAT, static routes and floating IP NAT. The networks
	// of its interfaces and gateway must exist (errdefs.ErrNotFound).
	EnsureRouter(ctx context.Context, spec RouterSpec) error
	// DeleteRouter removes a router and its NAT.
	DeleteRouter(ctx context.Context, id string) error
	// EnsureDHCP configures DHCP (and the metadata proxy) for a network's
	// subnets with DHCP enabled; a spec with no subnets stops it.
	EnsureDHCP(ctx context.Context, spec DHCPSpec) error
	// DeleteDHCP stops DHCP for a network.
	DeleteDHCP(ctx context.Context, networkID string) error
	// Inventory lists the ids of every object the backend holds, so that
	// the service can delete those no record owns (after a crash between
	// a store delete and the backend's).
	Inventory(ctx context.Context) (*Inventory, error)
}

// Inventory is what a Backend holds, by kind.
type Inventory struct {
	Networks, Ports, SecurityGroups, Routers, DHCP []string
}

// NetworkSpec is the desired state of a network.
type NetworkSpec struct {
	ID              string
	ProjectID       string
	NetworkType     string // flat, vlan or vxlan
	PhysicalNetwork string
	SegmentationID  int
	MTU             int
	External        bool
	AdminStateUp    bool
}

// SubnetSpec is a subnet as a dataplane needs it.
type SubnetSpec struct {
	ID              string
	CIDR            netip.Prefix
	Gateway         netip.Addr // invalid when the subnet has none
	EnableDHCP      bool
	DNSNameservers  []netip.Addr
	HostRoutes      []HostRoute
	IPv6AddressMode string
	IPv6RAMode      string
	// DHCPServer is the address of the network's DHCP port on the subnet.
	DHCPServer netip.Addr
	// MetadataRoute asks DHCP to hand out a route to 169.254.169.254 via
	// the DHCP server (option 121), because no router serves the subnet.
	MetadataRoute bool
}

// PortAddr is a fixed IP of a port.
type PortAddr struct {
	SubnetID string
	Addr     netip.Prefix // the address with its subnet's prefix length
}

// AllowedPair is an address (or prefix) and MAC a port may also send
// from.
type AllowedPair struct {
	Prefix netip.Prefix
	MAC    string
}

// PortSpec is the desired state of a bound port.
type PortSpec struct {
	ID           string
	NetworkID    string
	ProjectID    string
	Host         string
	DevName      string
	MAC          string
	MTU          int
	AdminStateUp bool
	FixedIPs     []PortAddr
	// PortSecurity enables anti-spoofing (only MAC, FixedIPs and
	// AllowedPairs may be sent from) and security groups (ingress denied
	// unless a rule of one of SecurityGroups allows it).
	PortSecurity   bool
	SecurityGroups []string
	AllowedPairs   []AllowedPair
}

// RuleSpec is one security group rule. Protocol -1 means any; PortMin
// and PortMax 0 mean any port (for ICMP they are type and code, -1 any).
type RuleSpec struct {
	ID        string
	Direction string // ingress or egress
	Ethertype string // IPv4 or IPv6
	Protocol  int
	PortMin   int
	PortMax   int
	// RemotePrefix limits the peer address; invalid means any.
	RemotePrefix netip.Prefix
	// RemoteGroupID limits the peer to the members of that group.
	RemoteGroupID string
}

// SecurityGroupSpec is the desired state of a group.
type SecurityGroupSpec struct {
	ID       string
	Stateful bool
	Rules    []RuleSpec
	// Members are the addresses of the group's ports (fixed IPs and
	// allowed pairs), which remote_group rules naming it match.
	Members []netip.Prefix
}

// RouterGatewaySpec is a router's external side.
type RouterGatewaySpec struct {
	NetworkID  string
	PortID     string
	MAC        string
	Addrs      []netip.Prefix
	NextHops   []netip.Addr // the external subnets' gateways
	EnableSNAT bool
}

// RouterInterfaceSpec is a router's port on a tenant subnet.
type RouterInterfaceSpec struct {
	PortID    string
	NetworkID string
	SubnetID  string
	MAC       string
	Addr      netip.Prefix
}

// RouteSpec is a static route.
type RouteSpec struct {
	Destination netip.Prefix
	NextHop     netip.Addr
}

// FloatingIPSpec is a 1:1 NAT of a floating address to a fixed one.
type FloatingIPSpec struct {
	ID       string
	Floating netip.Addr
	Fixed    netip.Addr
	PortID   string
}

// RouterSpec is the desired state of a router.
type RouterSpec struct {
	ID           string
	ProjectID    string
	AdminStateUp bool
	Gateway      *RouterGatewaySpec
	Interfaces   []RouterInterfaceSpec
	Routes       []RouteSpec
	FloatingIPs  []FloatingIPSpec
	// Metadata asks for the metadata service at 169.254.169.254 in the
	// router's namespace, for the subnets of its interfaces. Guests are
	// told apart by (network, source address): see Service.PortByAddress.
	Metadata bool
}

// DHCPHost is a DHCP reservation.
type DHCPHost struct {
	PortID    string
	MAC       string
	Addrs     []netip.Addr
	Hostname  string
	ExtraOpts []DHCPOpt
}

// DHCPSpec is the desired DHCP configuration of a network.
type DHCPSpec struct {
	NetworkID string
	MTU       int
	// PortID and MAC are the network's DHCP port, whose addresses are the
	// servers' (SubnetSpec.DHCPServer).
	PortID  string
	MAC     string
	Subnets []SubnetSpec
	Hosts   []DHCPHost
	// Metadata asks for the metadata service at 169.254.169.254 in the
	// DHCP namespace.
	Metadata bool
}
