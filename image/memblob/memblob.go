// Package memblob is an in-memory image.BlobStore for tests and examples.
// It holds every blob in memory, so it is not for large images.
package memblob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/stratuskit/stratus/errdefs"
)

// Store is an in-memory blob store. The zero value is not usable; call New.
type Store struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

// New returns an empty Store.
func New() *Store { return &Store{blobs: map[string][]byte{}} }

// Put implements image.BlobStore.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, readerCtx{ctx, r}); err != nil {
		return 0, fmt.Errorf("memblob: put %q: %w", key, err)
	}
	s.mu.Lock()
	s.blobs[key] = buf.Bytes()
	s.mu.Unlock()
	return int64(buf.Len()), nil
}

// Get implements image.BlobStore.
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	b, ok := s.blobs[key]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("memblob: blob %q: %w", key, errdefs.ErrNotFound)
	}
	offset = min(max(offset, 0), int64(len(b)))
	b = b[offset:]
	if length >= 0 && length < int64(len(b)) {
		b = b[:length]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Delete implements image.BlobStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	delete(s.blobs, key)
	s.mu.Unlock()
	return ctx.Err()
}

// Keys returns the keys of every stored blob, for tests that check that
// nothing was left behind.
func (s *Store) Keys() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.blobs))
	for k := range s.blobs {
		keys = append(keys, k)
	}
	return keys, nil
}

type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
