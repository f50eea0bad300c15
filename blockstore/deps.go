package blockstore

import (
	"context"
	"io"

	"github.com/stratuskit/stratus/objectstore"
)

// What blockstore needs of other services, declared here by the consumer.
// The host program passes implementations with Use (image's Service
// through a small adapter; an objectstore.Backend as it is).

// Images is what blockstore needs of the image service: read an image to
// make a volume of it, and make an image of a volume. The caller's
// credentials are in ctx; an image the caller may not use is
// errdefs.ErrNotFound.
type Images interface {
	// GetImage returns an image's metadata.
	GetImage(ctx context.Context, id string) (*ImageInfo, error)
	// OpenImage opens an active image's bytes.
	OpenImage(ctx context.Context, id string) (io.ReadCloser, error)
	// CreateImage creates a queued image owned by the caller's project.
	CreateImage(ctx context.Context, opts NewImage) (*ImageInfo, error)
	// UploadImage stores a queued image's bytes, read from r to EOF.
	UploadImage(ctx context.Context, id string, r io.Reader) error
}

// ImageInfo is an image as blockstore sees it.
type ImageInfo struct {
	ID              string
	Name            string
	Status          string
	DiskFormat      string
	ContainerFormat string
	Checksum        string
	Size            int64
	VirtualSize     int64
	MinDisk         int64
	Properties      map[string]string
}

// NewImage describes the image os-volume_upload_image makes.
type NewImage struct {
	Name            string
	DiskFormat      string
	ContainerFormat string
	Visibility      string
	Protected       bool
	Properties      map[string]string
}

// BackupStore is where backups keep their chunks: the part of
// objectstore.Backend that backups use (any objectstore.Backend is one).
// Backups live in their own account, out of reach of the Swift API.
type BackupStore interface {
	CreateContainer(ctx context.Context, account, container string) error
	Put(ctx context.Context, key objectstore.ObjectKey, r io.Reader, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error)
	Get(ctx context.Context, key objectstore.ObjectKey, offset, length int64) (io.ReadCloser, *objectstore.ObjectInfo, error)
	Delete(ctx context.Context, key objectstore.ObjectKey) error
}
