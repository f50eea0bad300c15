package image

import (
	"context"
	"io"
)

// BlobStore is what the image service needs of a byte store: put a stream
// under a key, read a range back, delete. The service chooses every key
// ("images/<id>/<nonce>", "staging/<id>/<nonce>"); keys use only ASCII
// letters, digits, '-', '_' and '/'.
//
// The host adapts an object store (objectstore's Backend, an S3 bucket) to
// it; image/fileblob keeps the bytes in a local directory and
// image/memblob in memory, for tests. Every implementation passes
// image/blobtest. Implementations must be safe for concurrent use.
type BlobStore interface {
	// Put stores everything r yields under key and returns how many bytes
	// that was. It returns only once the bytes are durable. If r fails,
	// ctx ends or the store fails, Put returns an error and nothing is
	// stored under key: a partial blob is never visible. Put never reads
	// the whole stream into memory. Putting an existing key replaces it.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get opens the blob under key from offset, for length bytes (length
	// < 0: to the end). A missing key is an error matching
	// errdefs.ErrNotFound; an offset beyond the end yields no bytes.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Delete removes the blob under key. Deleting a missing key is not an
	// error, so that cleanups can be retried.
	Delete(ctx context.Context, key string) error
}

// BlobLister is implemented by blob stores that can list their keys. The
// service uses it at Start to delete bytes that no image refers to (left
// by a crash between deleting an image's record and its bytes). Keys under
// a prefix other than "images/" and "staging/" are never touched.
type BlobLister interface {
	Keys() ([]string, error)
}
