package compute

import (
	"context"
	"io"
)

// What compute needs of other services, declared here by the consumer.
// The host program passes implementations in Deps (network's, image's and
// blockstore's Services through small adapters); compute/standin has
// temporary built-in ones.

// Images is what compute needs of the image service.
type Images interface {
	// GetImage returns the metadata of an image the project may use, or an
	// error matching errdefs.ErrNotFound.
	GetImage(ctx context.Context, projectID, imageID string) (*ImageInfo, error)
	// OpenImage opens the image's bytes.
	OpenImage(ctx context.Context, projectID, imageID string) (io.ReadCloser, error)
}

// PortRequest asks for a port for a server.
type PortRequest struct {
	ProjectID string
	// NetworkID is the network to create the port on; empty with PortID.
	NetworkID string
	// PortID is an existing port of the project to use instead.
	PortID string
	// FixedIP, if set, is the address wanted on the network.
	FixedIP string
	// DeviceID is the server id (the owner key that makes the call
	// idempotent: a port already owned by the server is returned).
	DeviceID       string
	SecurityGroups []string
}

// Port is a network port as compute sees it.
type Port struct {
	ID        string
	NetworkID string
	// NetworkName keys the server's addresses.
	NetworkName string
	MAC         string
	FixedIPs    []FixedIP
	MTU         int
	// DeviceID is the server that owns the port; empty when free.
	DeviceID string
	// Host is binding:host_id; set by BindPort.
	Host       string
	VIFType    string
	VIFDetails map[string]string
	// Created reports whether compute created the port (and deletes it with
	// the server) rather than being given it.
	Created bool
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string
	IPAddress string
	Version   int
	// CIDR, Gateway and DNS describe the subnet, for network_data.json.
	CIDR    string
	Gateway string
	DNS     []string
	// FloatingIPs are the floating addresses associated with this one;
	// the server's addresses list them with OS-EXT-IPS:type floating.
	FloatingIPs []string `json:",omitempty"`
}

// Ports is what compute needs of the network service.
type Ports interface {
	// CreatePort creates a port for a server on a network, or takes the
	// existing port req.PortID, and sets its device_id to req.DeviceID. It
	// is idempotent for a given (DeviceID, NetworkID or PortID).
	CreatePort(ctx context.Context, req PortRequest) (*Port, error)
	// BindPort binds the port to a compute host: the network backend
	// plugs it (tap, filtering, DHCP) and returns the vif details.
	BindPort(ctx context.Context, portID, host string) (*Port, error)
	// UnbindPort clears the port's binding (idempotent).
	UnbindPort(ctx context.Context, portID string) error
	// DeletePort deletes a port (idempotent: absent is nil). Ports compute
	// did not create are released (device_id cleared) instead by
	// ReleasePort.
	DeletePort(ctx context.Context, portID string) error
	// ReleasePort clears device_id and the binding of a port the user gave.
	ReleasePort(ctx context.Context, portID string) error
	// ListPorts returns the ports whose device_id is deviceID.
	ListPorts(ctx context.Context, deviceID string) ([]Port, error)
}

// HostConnector describes a compute host to a volume backend, as
// os-brick's connector properties do.
type HostConnector struct {
	Host      string
	IP        string
	Initiator string // iSCSI initiator name, when any
	Platform  string
	OSType    string
}

// ConnectionInfo is how a host reaches an attached volume: a tagged union
// on DriverVolumeType ("file" now; "iscsi" and "rbd" later).
type ConnectionInfo struct {
	DriverVolumeType string `json:"driver_volume_type"`
	// File is set for driver_volume_type "file".
	File *FileConnection `json:"file,omitempty"`
}

// FileConnection is a volume that is a file on the compute host.
type FileConnection struct {
	Path   string `json:"path"`
	Format string `json:"format"` // raw or qcow2
}

// Volume is a block storage volume as compute sees it.
type Volume struct {
	ID       string
	SizeGB   int
	Status   string
	Bootable bool
}

// Attachment is a volume attachment in Cinder's attachment flow.
type Attachment struct {
	ID         string
	VolumeID   string
	ServerID   string
	Connection *ConnectionInfo
}

// Volumes is what compute needs of the block storage service: Cinder's
// attachment flow (reserve → connect with a host connector → complete →
// delete).
type Volumes interface {
	// GetVolume returns a volume the project may use.
	GetVolume(ctx context.Context, projectID, volumeID string) (*Volume, error)
	// ReserveAttachment creates an attachment of the volume to the server
	// with no connection yet (volume "reserved"). Idempotent per
	// (volume, server).
	ReserveAttachment(ctx context.Context, projectID, volumeID, serverID string) (*Attachment, error)
	// ConnectAttachment gives the attachment a host connector and returns
	// the connection info (volume "attaching").
	ConnectAttachment(ctx context.Context, attachmentID string, conn HostConnector) (*Attachment, error)
	// CompleteAttachment marks the volume "in-use".
	CompleteAttachment(ctx context.Context, attachmentID string) error
	// DeleteAttachment removes the attachment (idempotent: absent is nil).
	DeleteAttachment(ctx context.Context, attachmentID string) error
}
