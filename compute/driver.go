package compute

import (
	"context"
	"io"
	"time"
)

// PowerState is a domain's power state, numbered as Nova's
// OS-EXT-STS:power_state.
type PowerState int

// Power states.
const (
	PowerNoState   PowerState = 0
	PowerRunning   PowerState = 1
	PowerPaused    PowerState = 3
	PowerShutdown  PowerState = 4
	PowerCrashed   PowerState = 6
	PowerSuspended PowerState = 7
)

// String returns the lowercase name of p.
func (p PowerState) String() string {
	switch p {
	case PowerRunning:
		return "running"
	case PowerPaused:
		return "paused"
	case PowerShutdown:
		return "shutdown"
	case PowerCrashed:
		return "crashed"
	case PowerSuspended:
		return "suspended"
	}
	return "nostate"
}

// Capabilities says what a Hypervisor can do beyond the minimum every driver
// supports (spawn, destroy, power on/off, reboot, console output, stats).
// It is static: the driver answers without I/O.
type Capabilities struct {
	// Type is the hypervisor type shown by os-hypervisors ("fake", "QEMU").
	Type string
	// Version is the hypervisor version as Nova encodes it (major*1e6 +
	// minor*1e3 + patch).
	Version int
	// Pause, Suspend, VolumeAttach and InterfaceAttach report the optional
	// operations; a driver without one returns errdefs.ErrUnsupported from it.
	Pause, Suspend, VolumeAttach, InterfaceAttach bool
}

// ImageInfo is what a driver needs to know about the boot image.
type ImageInfo struct {
	ID         string
	Name       string
	DiskFormat string // raw, qcow2, aki, ari, ami ...
	Size       int64
	Checksum   string // as the image service reports it (sha512 os_hash_value, or md5)
	KernelID   string // direct kernel boot: the aki, when set
	RamdiskID  string // the ari, when set
	MinDiskGB  int
	MinRAMMB   int
	Properties map[string]string
}

// NIC is one network interface of a domain, plugged by the network service
// before spawn.
type NIC struct {
	PortID   string
	MAC      string
	MTU      int
	FixedIPs []string
	// VIFType and VIFDetails are the port's binding:vif_type and
	// binding:vif_details. With VIFType "tap", VIFDetails["tap_name"] names
	// the existing tap device the domain attaches to (not managed by the
	// hypervisor). With VIFType "fake" there is no device: the NIC is left
	// out of the domain.
	VIFType    string
	VIFDetails map[string]string
}

// DiskAttachment is a volume attached to a domain.
type DiskAttachment struct {
	VolumeID string
	// Device is the guest device name ("vdb"), chosen by compute.
	Device     string
	Connection ConnectionInfo
	BootIndex  int // -1 when not bootable
}

// DomainSpec is everything a driver needs to create a domain for a server.
// The driver must mark the domain as Stratus's (libvirt <metadata>, a name
// prefix ...) with ServerID, so that List and the sweep find only its own.
type DomainSpec struct {
	ServerID    string
	Name        string
	ProjectID   string
	VCPUs       int
	MemoryMB    int
	RootGB      int
	EphemeralGB int
	SwapMB      int
	ExtraSpecs  map[string]string
	// Image is the boot image; nil for a server booted from a volume.
	Image *ImageInfo
	// OpenImage opens the bytes of an image by id (the boot image, its
	// kernel or ramdisk) for the driver's image cache. Nil when there is
	// no image.
	OpenImage func(ctx context.Context, imageID string) (io.ReadCloser, error)
	NICs      []NIC
	Volumes   []DiskAttachment
	// ConfigDrive, when not nil, holds the files of an OpenStack config
	// drive (path within the drive, such as
	// "openstack/latest/meta_data.json", to contents); the driver builds
	// the ISO 9660 image labelled config-2.
	ConfigDrive map[string][]byte
}

// DomainState is a domain as the driver sees it.
type DomainState struct {
	ServerID string
	Power    PowerState
	// Stratus reports whether the domain carries Stratus's mark.
	Stratus bool
	// Name is the driver's own name for the domain.
	Name string
}

// HostStats are a host's resources as the driver measures them.
type HostStats struct {
	VCPUs      int
	MemoryMB   int
	DiskGB     int
	VCPUsUsed  int
	MemoryUsed int
	RunningVMs int
	CPUInfo    map[string]any
	Uptime     time.Duration
}

// DomainEvent is a change of a domain's power state that the driver saw
// (for example a guest that shut itself down).
type DomainEvent struct {
	ServerID string
	Power    PowerState
	Time     time.Time
}

// Hypervisor is implemented by compute drivers (one instance per compute
// host). Application code uses *Service. All methods must be safe for
// concurrent use. Every method that takes a server id must return an error
// for which errors.Is(err, errdefs.ErrNotFound) is true when no Stratus
// domain exists for it, and its message must name the id. Methods honour
// ctx cancellation where they block.
type Hypervisor interface {
	// Capabilities is static; no I/O.
	Capabilities() Capabilities
	// Spawn creates the domain and starts it. It is idempotent: when the
	// domain already exists it makes sure it runs and returns nil.
	Spawn(ctx context.Context, spec *DomainSpec) error
	// Destroy stops the domain hard and removes it and every file the
	// driver made for it.
	Destroy(ctx context.Context, serverID string) error
	// PowerOn starts a stopped domain (nil if it runs).
	PowerOn(ctx context.Context, serverID string) error
	// PowerOff stops a domain: a clean shutdown of up to timeout, then a
	// hard stop (nil if it is stopped).
	PowerOff(ctx context.Context, serverID string, timeout time.Duration) error
	// Reboot restarts a domain, cleanly or hard.
	Reboot(ctx context.Context, serverID string, hard bool) error
	// Pause and Unpause freeze and thaw the vCPUs (Capabilities.Pause).
	Pause(ctx context.Context, serverID string) error
	Unpause(ctx context.Context, serverID string) error
	// Suspend saves the domain's memory to disk and stops it; Resume
	// restores it (Capabilities.Suspend).
	Suspend(ctx context.Context, serverID string) error
	Resume(ctx context.Context, serverID string) error
	// State returns the domain's state.
	State(ctx context.Context, serverID string) (*DomainState, error)
	// List returns the domains carrying Stratus's mark, and only those.
	List(ctx context.Context) ([]DomainState, error)
	// ConsoleOutput returns the last lines of the serial console (all of
	// it when lines <= 0).
	ConsoleOutput(ctx context.Context, serverID string, lines int) (string, error)
	// AttachVolume and DetachVolume hot-plug a disk
	// (Capabilities.VolumeAttach).
	AttachVolume(ctx context.Context, serverID string, d DiskAttachment) error
	DetachVolume(ctx context.Context, serverID, volumeID string) error
	// AttachInterface and DetachInterface hot-plug a NIC
	// (Capabilities.InterfaceAttach).
	AttachInterface(ctx context.Context, serverID string, nic NIC) error
	DetachInterface(ctx context.Context, serverID, portID string) error
	// Stats measures the host.
	Stats(ctx context.Context) (*HostStats, error)
	// Close releases the driver's resources; domains keep running.
	Close() error
}

// EventSource is implemented by drivers that report domain power changes
// as they happen. Events returns a channel closed when ctx ends.
type EventSource interface {
	Events(ctx context.Context) <-chan DomainEvent
}

// Resizer is implemented by drivers that can change a domain's flavor (the
// hook compute II's resize uses). A driver may return
// errdefs.ErrUnsupported.
type Resizer interface {
	Resize(ctx context.Context, serverID string, spec *DomainSpec) error
}

// Migrator is implemented by drivers that can move a domain to another
// host (compute II). A driver may return errdefs.ErrUnsupported.
type Migrator interface {
	Migrate(ctx context.Context, serverID string, dest Hypervisor, live bool) error
}

// DomainStats are the usage counters of one domain, for metering.
type DomainStats struct {
	ServerID string
	// CPUTime is the CPU time the domain used since it started.
	CPUTime time.Duration
	VCPUs   int
	// MemoryMB is the memory the domain has now.
	MemoryMB int
	Disks    []DiskStats
	NICs     []NICStats
}

// DiskStats are one disk's counters since the domain started.
type DiskStats struct {
	Device                                             string // vda ...
	ReadBytes, WriteBytes, ReadRequests, WriteRequests int64
}

// NICStats are one NIC's counters since the domain started.
type NICStats struct {
	PortID, Device                                               string
	RxBytes, TxBytes, RxPackets, TxPackets, RxDropped, TxDropped int64
}

// DomainStatsReader is implemented by drivers that measure the usage of
// their running Stratus domains (the metering hook).
type DomainStatsReader interface {
	DomainStats(ctx context.Context) ([]DomainStats, error)
}
