// Package objblob stores image bytes in an object store backend: it adapts
// an objectstore.Backend (objectstore/fsobj on local disks, memobj in
// tests) to image.BlobStore. Each blob is one object of a container the
// image service owns, in an account of its own, so image bytes are never
// seen through a project's Swift account.
package objblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

// Defaults for Options.
const (
	DefaultAccount   = ".stratus_image"
	DefaultContainer = "images"
)

// Options name where the blobs go. The zero value means the defaults.
type Options struct {
	// Account and Container hold the blobs. Default: ".stratus_image" and
	// "images".
	Account   string
	Container string
}

// Store is an image.BlobStore on an objectstore.Backend.
type Store struct {
	b         objectstore.Backend
	account   string
	container string
}

// New returns a Store on b, creating its container if needed. The caller
// keeps ownership of b.
func New(ctx context.Context, b objectstore.Backend, opts *Options) (*Store, error) {
	s := &Store{b: b, account: DefaultAccount, container: DefaultContainer}
	if opts != nil && opts.Account != "" {
		s.account = opts.Account
	}
	if opts != nil && opts.Container != "" {
		s.container = opts.Container
	}
	if err := b.CreateContainer(ctx, s.account, s.container); err != nil {
		return nil, fmt.Errorf("objblob: create container %s/%s: %w", s.account, s.container, err)
	}
	return s, nil
}

func (s *Store) key(k string) objectstore.ObjectKey {
	return objectstore.ObjectKey{Account: s.account, Container: s.container, Name: k}
}

// Put implements image.BlobStore.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	info, err := s.b.Put(ctx, s.key(key), r, objectstore.PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return 0, fmt.Errorf("objblob: put %q: %w", key, err)
	}
	return info.Size, nil
}

// Get implements image.BlobStore. An offset at or past the end yields no
// bytes, as image.BlobStore says (the backend calls that invalid).
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, _, err := s.b.Get(ctx, s.key(key), offset, length)
	if err != nil && errors.Is(err, errdefs.ErrInvalid) && offset > 0 {
		if info, herr := s.b.Head(ctx, s.key(key)); herr == nil && offset >= info.Size {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("objblob: get %q: %w", key, err)
	}
	return rc, nil
}

// Delete implements image.BlobStore; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.b.Delete(ctx, s.key(key)); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("objblob: delete %q: %w", key, err)
	}
	return nil
}

// Keys implements image.BlobLister: every blob's key, listed in pages.
func (s *Store) Keys() ([]string, error) {
	var keys []string
	marker := ""
	for {
		es, err := s.b.List(context.Background(), s.account, s.container, objectstore.ListOptions{Marker: marker, Limit: 10_000})
		if err != nil {
			return nil, fmt.Errorf("objblob: list: %w", err)
		}
		for _, e := range es {
			if e.Object != nil {
				keys = append(keys, e.Object.Name)
				marker = e.Object.Name
			}
		}
		if len(es) < 10_000 {
			return keys, nil
		}
	}
}
