package objectstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Backend stores objects: their bytes, their metadata and each container's
// listing. It is the object store's driver: about storage only, with no
// policy, quota, ACL, versioning or large-object logic, which the Service
// owns. Accounts and containers are namespaces here; their metadata lives
// in the control plane's store (see Tables).
//
// Every method is safe for concurrent use. Missing containers or objects
// give errors matching errdefs.ErrNotFound. A write is durable when it
// returns, and atomic: after a crash an object is either wholly its old
// version or wholly its new one, and a listing never shows an object whose
// bytes are missing.
//
// memobj, fsobj and s3obj implement it; all pass objectstore/drivertest. A
// program that only needs to keep blobs (image) uses Put, Get and Delete
// on a container it created with CreateContainer.
type Backend interface {
	// CreateContainer makes the container account/container exist. It is
	// idempotent.
	CreateContainer(ctx context.Context, account, container string) error
	// DeleteContainer removes an empty container. It fails with
	// errdefs.ErrConflict if the container holds objects.
	DeleteContainer(ctx context.Context, account, container string) error
	// ContainerStats returns the container's object count and bytes.
	ContainerStats(ctx context.Context, account, container string) (ContainerStats, error)

	// Put stores r's bytes, read to EOF, as the object key with opts, and
	// returns what it stored (ETag: the MD5 of the bytes, in hex). If r
	// fails, or opts.ETag is set and differs (an error matching
	// ErrETagMismatch), nothing is stored and the old version stays.
	Put(ctx context.Context, key ObjectKey, r io.Reader, opts PutOptions) (*ObjectInfo, error)
	// Get opens the object for reading length bytes from offset (length
	// < 0: to the end). A Backend that keeps checksums verifies the bytes
	// as it reads them: the reader fails (ErrCorrupt) rather than return
	// bytes that differ from those stored. An offset past the end is
	// errdefs.ErrInvalid.
	Get(ctx context.Context, key ObjectKey, offset, length int64) (io.ReadCloser, *ObjectInfo, error)
	// Head returns the object's information.
	Head(ctx context.Context, key ObjectKey) (*ObjectInfo, error)
	// SetMeta replaces the object's content type, headers and expiry,
	// keeping its bytes.
	SetMeta(ctx context.Context, key ObjectKey, opts PutOptions) (*ObjectInfo, error)
	// Delete removes the object.
	Delete(ctx context.Context, key ObjectKey) error
	// List lists a container in name order with Swift's semantics (see
	// ListOptions).
	List(ctx context.Context, account, container string, opts ListOptions) ([]Entry, error)
	// ReapExpired deletes up to limit objects whose DeleteAt is at or
	// before now and returns their keys.
	ReapExpired(ctx context.Context, now time.Time, limit int) ([]ObjectKey, error)
	// Close releases the backend.
	Close() error
}

// SizedReader is a Put body whose length the client declared: a Backend
// that can stream a known length in one request (s3obj) looks for it.
// The reader fails if the body turns out longer or shorter.
type SizedReader interface {
	io.Reader
	// ContentLength returns the declared length, or -1 if there is none
	// (a chunked upload).
	ContentLength() int64
}

// ObjectKey names an object: account ("AUTH_<project id>"), container and
// object name.
type ObjectKey struct {
	Account   string
	Container string
	Name      string
}

// String returns account/container/name, for messages.
func (k ObjectKey) String() string { return k.Account + "/" + k.Container + "/" + k.Name }

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Name is the object's name within its container.
	Name string `json:"name"`
	// Size is the number of stored bytes.
	Size int64 `json:"bytes"`
	// ETag is the MD5 of the stored bytes, in lowercase hex.
	ETag string `json:"hash"`
	// ContentType is the object's media type.
	ContentType string `json:"content_type"`
	// LastModified is when the object was last written (Put or SetMeta).
	LastModified time.Time `json:"last_modified"`
	// DeleteAt, if not zero, is the Unix time at which the object expires.
	DeleteAt int64 `json:"delete_at,omitempty"`
	// Headers are the other headers kept with the object, by canonical
	// name: X-Object-Meta-*, Content-Disposition, Content-Encoding,
	// X-Object-Manifest, X-Static-Large-Object, X-Object-Sysmeta-*.
	Headers map[string]string `json:"headers,omitempty"`
}

// Clone returns a copy of i that shares nothing with it.
func (i *ObjectInfo) Clone() *ObjectInfo {
	c := *i
	if i.Headers != nil {
		c.Headers = make(map[string]string, len(i.Headers))
		for k, v := range i.Headers {
			c.Headers[k] = v
		}
	}
	return &c
}

// PutOptions are what Put and SetMeta store besides the bytes.
type PutOptions struct {
	// ContentType is the media type; empty means application/octet-stream.
	ContentType string
	// Headers are kept with the object (see ObjectInfo.Headers).
	Headers map[string]string
	// DeleteAt, if not zero, is the Unix time at which the object expires.
	DeleteAt int64
	// ETag, if set, is the MD5 (hex) the bytes must have (Put only).
	ETag string
}

// ListOptions select and order the entries of a container listing, as
// Swift's query parameters do.
type ListOptions struct {
	// Prefix keeps only names that begin with it.
	Prefix string
	// Delimiter, if set, rolls up the names that contain it after Prefix
	// into one Entry with Subdir set to the name up to and including the
	// delimiter.
	Delimiter string
	// Marker keeps names after it (before it with Reverse).
	Marker string
	// EndMarker keeps names before it (after it with Reverse).
	EndMarker string
	// Limit bounds the number of entries; 0 means no limit.
	Limit int
	// Reverse lists in descending name order.
	Reverse bool
}

// Entry is one line of a container listing: an object or, with a
// delimiter, a rolled-up subdirectory.
type Entry struct {
	// Subdir is set for a rolled-up prefix; Object is nil then.
	Subdir string
	// Object is the object's information.
	Object *ObjectInfo
}

// Name returns the entry's object name or subdir.
func (e Entry) Name() string {
	if e.Object != nil {
		return e.Object.Name
	}
	return e.Subdir
}

// ContainerStats are a container's usage.
type ContainerStats struct {
	// Objects is the number of objects.
	Objects int64
	// Bytes is the sum of their sizes.
	Bytes int64
}

// Errors a Backend returns besides the errdefs kinds.
var (
	// ErrETagMismatch is returned by Put when the bytes' MD5 differs from
	// PutOptions.ETag. It is wrapped with errdefs.ErrInvalid.
	ErrETagMismatch = errors.New("etag does not match the MD5 of the data")
	// ErrCorrupt is returned by a reader when stored bytes fail their
	// checksum.
	ErrCorrupt = errors.New("stored object failed its checksum")
)
