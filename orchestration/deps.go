package orchestration

import "context"

// Deps are what orchestration's resource plugins need of the other
// services. Every method acts as the caller in ctx (the stack's owner, as
// the engine puts it there), so a plugin can reach only the stack's
// project. A nil field leaves its resource types out of the registry.
type Deps struct {
	// Compute backs OS::Nova::Server, ::KeyPair, ::Flavor, ::ServerGroup.
	Compute Compute
	// Network backs the OS::Neutron types.
	Network Network
	// Volumes backs OS::Cinder::Volume.
	Volumes Volumes
	// Attacher backs OS::Cinder::VolumeAttachment.
	Attacher VolumeAttacher
	// Containers backs OS::Swift::Container.
	Containers Containers
	// Images backs OS::Glance::WebImage.
	Images Images
	// Trusts, if set, gives every stack a trust from its owner, with
	// which signals (a scaling policy's alarm_url) act long after the
	// owner's token expired.
	Trusts Trusts
	// Checker checks custom constraints (nova.flavor, glance.image,
	// neutron.network ...); nil refuses templates that use them.
	Checker Checker
}

// ServerSpec is what OS::Nova::Server asks compute for.
type ServerSpec struct {
	Name, Image, Flavor, KeyName, UserData, AvailabilityZone string
	// Networks are the NICs: a network id, a port id or a fixed IP each.
	Networks       []ServerNetwork
	SecurityGroups []string
	Metadata       map[string]string
	// SchedulerGroup is a server group id (scheduler_hints.group).
	SchedulerGroup string
	// BootVolume, if set, is a volume to boot from instead of Image.
	BootVolume string
}

// ServerNetwork is one NIC of a ServerSpec.
type ServerNetwork struct {
	Network, Port, FixedIP string
}

// ServerInfo is what OS::Nova::Server shows of a server.
type ServerInfo struct {
	ID, Name, Status, Fault string
	// Addresses are the server's addresses by network name.
	Addresses map[string][]Address
	// Show is the server as compute's API shows it.
	Show map[string]any
}

// Address is one server address.
type Address struct {
	Addr    string `json:"addr"`
	Version int    `json:"version"`
	Type    string `json:"OS-EXT-IPS:type"`
	MAC     string `json:"OS-EXT-IPS-MAC:mac_addr,omitempty"`
	// PortID is the port the address is on.
	PortID string `json:"port,omitempty"`
}

// Compute is what the OS::Nova plugins need of the compute service.
type Compute interface {
	// CreateServer starts a server build and returns its id.
	CreateServer(ctx context.Context, spec ServerSpec) (string, error)
	// GetServer returns a server; errdefs.ErrNotFound once deleted.
	GetServer(ctx context.Context, id string) (*ServerInfo, error)
	// FindServer returns the id of the caller's server with this name, or "".
	FindServer(ctx context.Context, name string) (string, error)
	// DeleteServer deletes a server and returns once it is gone; nil if it
	// is already gone.
	DeleteServer(ctx context.Context, id string) error
	// CreateKeypair imports publicKey, or generates a key pair when it is
	// empty, and returns the public key and (when generated) private key.
	CreateKeypair(ctx context.Context, name, publicKey string) (public, private string, err error)
	// DeleteKeypair deletes a key pair; nil if already gone.
	DeleteKeypair(ctx context.Context, name string) error
	// CreateFlavor creates a flavor and returns its id.
	CreateFlavor(ctx context.Context, spec FlavorSpec) (string, error)
	// DeleteFlavor deletes a flavor; nil if already gone.
	DeleteFlavor(ctx context.Context, id string) error
	// CreateServerGroup creates a server group and returns its id.
	CreateServerGroup(ctx context.Context, name string, policies []string) (string, error)
	// DeleteServerGroup deletes a server group; nil if already gone.
	DeleteServerGroup(ctx context.Context, id string) error
}

// ServerResizer is a Compute that can resize a server: with it a flavor
// change of OS::Nova::Server is an update in place (same server id);
// without it the server is replaced.
type ServerResizer interface {
	// ResizeServer moves the server to the flavor (an id or a name) and
	// returns once the resize is confirmed and the server is ACTIVE.
	ResizeServer(ctx context.Context, id, flavor string) error
}

// FlavorSpec is what OS::Nova::Flavor asks for.
type FlavorSpec struct {
	Name                 string
	RAMMB, VCPUs, DiskGB int
	EphemeralGB, SwapMB  int
	IsPublic             bool
	ExtraSpecs           map[string]string
}

// NetKind names a kind of network resource.
type NetKind string

// Network resource kinds.
const (
	KindNetwork       NetKind = "network"
	KindSubnet        NetKind = "subnet"
	KindPort          NetKind = "port"
	KindRouter        NetKind = "router"
	KindFloatingIP    NetKind = "floatingip"
	KindSecurityGroup NetKind = "security_group"
	KindRule          NetKind = "security_group_rule"
)

// NetSpec is what OS::Neutron::Net asks for.
type NetSpec struct {
	Name         string
	AdminStateUp bool
	Shared       bool
}

// SubnetSpec is what OS::Neutron::Subnet asks for.
type SubnetSpec struct {
	Name, Network, CIDR, GatewayIP string
	NoGateway                      bool
	IPVersion                      int
	EnableDHCP                     bool
	DNSNameservers                 []string
	AllocationPools                []Pool
}

// Pool is a subnet allocation pool.
type Pool struct{ Start, End string }

// PortSpec is what OS::Neutron::Port asks for.
type PortSpec struct {
	Name, Network  string
	FixedIPs       []FixedIP
	SecurityGroups []string
	// NoSecurityGroups is true when the template gives an empty list.
	NoSecurityGroups bool
	MACAddress       string
	AdminStateUp     bool
}

// FixedIP is one fixed_ips entry.
type FixedIP struct{ Subnet, IP string }

// RouterSpec is what OS::Neutron::Router asks for.
type RouterSpec struct {
	Name string
	// ExternalNetwork is external_gateway_info.network, if any.
	ExternalNetwork string
	AdminStateUp    bool
}

// FloatingIPSpec is what OS::Neutron::FloatingIP asks for.
type FloatingIPSpec struct {
	FloatingNetwork, Port, FixedIP, FloatingIP string
}

// RuleSpec is what OS::Neutron::SecurityGroupRule (and the rules of
// OS::Neutron::SecurityGroup) ask for.
type RuleSpec struct {
	SecurityGroup, Direction, EtherType, Protocol string
	PortMin, PortMax                              int
	RemoteIPPrefix, RemoteGroup                   string
}

// Network is what the OS::Neutron plugins need of the network service.
// Show returns a resource as Neutron's API shows it (its attributes);
// Delete returns nil when the resource is already gone; Find returns the id
// of the caller's resource of that kind with that name, or "".
type Network interface {
	CreateNetwork(ctx context.Context, spec NetSpec) (string, error)
	CreateSubnet(ctx context.Context, spec SubnetSpec) (string, error)
	CreatePort(ctx context.Context, spec PortSpec) (string, error)
	CreateRouter(ctx context.Context, spec RouterSpec) (string, error)
	AddRouterInterface(ctx context.Context, router, subnet, port string) error
	RemoveRouterInterface(ctx context.Context, router, subnet, port string) error
	CreateFloatingIP(ctx context.Context, spec FloatingIPSpec) (string, error)
	// AssociateFloatingIP points a floating IP at a port ("" disassociates).
	AssociateFloatingIP(ctx context.Context, fip, port, fixedIP string) error
	CreateSecurityGroup(ctx context.Context, name, description string) (string, error)
	CreateRule(ctx context.Context, spec RuleSpec) (string, error)
	Show(ctx context.Context, kind NetKind, id string) (map[string]any, error)
	Delete(ctx context.Context, kind NetKind, id string) error
	Find(ctx context.Context, kind NetKind, name string) (string, error)
}

// VolumeSpec is what OS::Cinder::Volume asks for.
type VolumeSpec struct {
	Name, Description, VolumeType, Image, SourceVolume, AvailabilityZone string
	SizeGB                                                               int
	Metadata                                                             map[string]string
}

// VolumeInfo is a volume as OS::Cinder::Volume shows it.
type VolumeInfo struct {
	ID, Name, Status string
	SizeGB           int
	// Show is the volume as block storage's API shows it.
	Show map[string]any
}

// Volumes is what OS::Cinder::Volume needs of the block storage service.
type Volumes interface {
	CreateVolume(ctx context.Context, spec VolumeSpec) (string, error)
	GetVolume(ctx context.Context, id string) (*VolumeInfo, error)
	FindVolume(ctx context.Context, name string) (string, error)
	// DeleteVolume deletes a volume and returns once it is gone; nil if it
	// is already gone.
	DeleteVolume(ctx context.Context, id string) error
}

// VolumeAttacher is what OS::Cinder::VolumeAttachment needs: attaching a
// volume to a server. Attach is idempotent (an existing attachment of the
// same pair is returned); Detach returns once the volume is free.
type VolumeAttacher interface {
	AttachVolume(ctx context.Context, server, volume, device string) (attachmentID string, err error)
	DetachVolume(ctx context.Context, server, volume string) error
}

// Containers is what OS::Swift::Container needs of the object store, in
// the caller's account.
type Containers interface {
	// CreateContainer creates (or updates) a container.
	CreateContainer(ctx context.Context, name string, headers map[string]string) error
	// DeleteContainer deletes a container, its objects first when purge
	// is set; nil if it is already gone.
	DeleteContainer(ctx context.Context, name string, purge bool) error
	// ContainerURL is the container's URL.
	ContainerURL(ctx context.Context, name string) (string, error)
}

// WebImageSpec is what OS::Glance::WebImage asks for.
type WebImageSpec struct {
	Name, Location, DiskFormat, ContainerFormat, Visibility string
	MinDiskGB, MinRAMMB                                     int
	Protected                                               bool
	Tags                                                    []string
}

// ImageInfo is an image as OS::Glance::WebImage shows it.
type ImageInfo struct {
	ID, Name, Status string
	// FailedImport says why the last import failed, if it did.
	FailedImport string
	// Show is the image as the image API shows it.
	Show map[string]any
}

// Images is what OS::Glance::WebImage needs of the image service.
type Images interface {
	// CreateWebImage creates an image and starts its web-download import
	// of spec.Location, which the image service's allow-list must accept
	// (the image is deleted again if it does not); it returns the id.
	CreateWebImage(ctx context.Context, spec WebImageSpec) (string, error)
	// GetImage returns an image; errdefs.ErrNotFound once deleted.
	GetImage(ctx context.Context, id string) (*ImageInfo, error)
	// FindImage returns the id of the caller's image with this name, or "".
	FindImage(ctx context.Context, name string) (string, error)
	// DeleteImage deletes an image; nil if it is already gone.
	DeleteImage(ctx context.Context, id string) error
}
