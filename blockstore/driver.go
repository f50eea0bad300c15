package blockstore

import (
	"context"
	"io"
)

// Backend is a volume backend: one storage system holding volumes and
// snapshots in one or more pools. It is about storage only: no policy,
// quota, status or bookkeeping, which the Service owns.
//
// Every method is safe for concurrent use and takes ctx first. Missing
// volumes or snapshots give errors matching errdefs.ErrNotFound that name
// the id; a backend that is full gives errdefs.ErrQuotaExceeded or
// errdefs.ErrUnavailable. DeleteVolume, DeleteSnapshot and Disconnect are
// idempotent (absent is nil). A new volume never shows bytes of a deleted
// one: its unwritten blocks read as zeros.
//
// fakevol and filevol implement it; both pass blockstore/drivertest.
type Backend interface {
	// Pools returns the backend's pools and their capacity.
	Pools(ctx context.Context) ([]PoolStats, error)
	// CreateVolume creates the volume spec.ID of spec.SizeGiB in spec.Pool
	// from src (blank when src is the zero Source). It is idempotent for a
	// volume that already exists with that id: the call replaces it.
	CreateVolume(ctx context.Context, spec VolumeSpec, src Source) error
	// DeleteVolume deletes a volume and its bytes.
	DeleteVolume(ctx context.Context, id string) error
	// ExtendVolume grows a volume to sizeGiB, keeping its bytes. Growing an
	// attached volume needs Capabilities.OnlineExtend.
	ExtendVolume(ctx context.Context, id string, sizeGiB int) error
	// WriteVolume replaces the bytes of a volume with the image read from
	// r in format ("raw" or "qcow2"), converted and zero-padded to the
	// volume's size. An image larger than the volume, or one that names a
	// backing or data file, is errdefs.ErrInvalid.
	WriteVolume(ctx context.Context, id string, r io.Reader, format string) error
	// OpenVolume opens the volume's bytes as raw data of its full size.
	OpenVolume(ctx context.Context, id string) (io.ReadCloser, error)
	// CreateSnapshot makes snapshotID a point-in-time copy of volumeID.
	CreateSnapshot(ctx context.Context, volumeID, snapshotID string) error
	// DeleteSnapshot deletes a snapshot; volumes made from it keep their
	// bytes.
	DeleteSnapshot(ctx context.Context, snapshotID string) error
	// Connect exports the volume to the host c describes and returns how
	// that host reaches it.
	Connect(ctx context.Context, volumeID string, c Connector) (*ConnectionInfo, error)
	// Disconnect ends the export of the volume to the host c describes.
	Disconnect(ctx context.Context, volumeID string, c Connector) error
	// ListVolumes returns the ids of the volumes the backend holds, for the
	// sweep that deletes what no record owns.
	ListVolumes(ctx context.Context) ([]string, error)
	// Capabilities returns what the backend can do.
	Capabilities() Capabilities
}

// VolumeSpec is a volume as a Backend creates it.
type VolumeSpec struct {
	// ID is the volume's id (a UUID).
	ID string
	// SizeGiB is its size in GiB.
	SizeGiB int
	// Pool is the pool the scheduler chose.
	Pool string
}

// Source is what a new volume's bytes come from: nothing (zeros), a
// snapshot, another volume (a clone) or an image.
type Source struct {
	// SnapshotID, if set, is the snapshot to copy.
	SnapshotID string
	// VolumeID, if set, is the volume to clone.
	VolumeID string
	// Image, if set, is the image to write.
	Image *ImageSource
}

// ImageSource is an image a volume is made from. A backend may keep it
// as a copy-on-write base for later volumes of the same image.
type ImageSource struct {
	// ID is the image's id; Checksum its MD5 (part of the cache key).
	ID       string
	Checksum string
	// Format is the image's disk_format: raw or qcow2.
	Format string
	// Open opens the image's bytes.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Connector describes a host a volume is exported to, as os-brick's
// connector properties do.
type Connector struct {
	Host      string `json:"host,omitempty"`
	IP        string `json:"ip,omitempty"`
	Initiator string `json:"initiator,omitempty"`
	Platform  string `json:"platform,omitempty"`
	OSType    string `json:"os_type,omitempty"`
	Multipath bool   `json:"multipath,omitempty"`
}

// Driver volume types of ConnectionInfo.
const (
	// DriverVolumeFile is a volume that is a file on the host.
	DriverVolumeFile = "file"
)

// ConnectionInfo is how a host reaches a volume: a tagged union on
// DriverVolumeType. It is the same shape as compute's ConnectionInfo.
type ConnectionInfo struct {
	DriverVolumeType string `json:"driver_volume_type"`
	// File is set for DriverVolumeFile.
	File *FileConnection `json:"file,omitempty"`
}

// FileConnection is a volume that is a file on the compute host.
type FileConnection struct {
	// Path is the file's absolute path.
	Path string `json:"path"`
	// Format is raw or qcow2.
	Format string `json:"format"`
}

// PoolStats describe a pool's capacity. Provisioned capacity is what the
// Service's records say; the backend reports what is really allocated.
type PoolStats struct {
	// Name is the pool's name within the backend.
	Name string
	// TotalGiB is the pool's capacity; FreeGiB what is not allocated.
	TotalGiB float64
	FreeGiB  float64
	// AllocatedBytes is what the pool's volumes and snapshots really take.
	AllocatedBytes int64
	// Thin pools allocate on write and may be over-subscribed up to
	// MaxOverSubscriptionRatio times TotalGiB (1 means no
	// over-subscription).
	Thin                     bool
	MaxOverSubscriptionRatio float64
	// ReservedPercentage of TotalGiB is kept free.
	ReservedPercentage int
	// Capabilities are matched against volume type extra specs
	// ("capabilities:<key>").
	Capabilities map[string]string
}

// Capabilities are what a backend can do.
type Capabilities struct {
	// OnlineExtend reports that attached volumes can grow.
	OnlineExtend bool
	// Multiattach reports that a volume may be attached to several servers.
	Multiattach bool
}
