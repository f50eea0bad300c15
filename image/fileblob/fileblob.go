// Package fileblob is an image.BlobStore on a local directory: each blob is
// one file, written to a temporary file, fsynced and renamed into place,
// so that a crash never leaves a partial blob under its key.
//
// It is the all-in-one's default until image bytes go to the object
// store's backend. Keys map to paths below the directory and are checked
// so that no key escapes it.
package fileblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

const tmpDir = ".tmp"

// copyBuffer is the size of the buffer Put copies through.
const copyBuffer = 1 << 20

// Store keeps blobs as files under one directory.
type Store struct {
	root string
}

// Open returns a Store on dir, creating it if needed. Temporary files left
// by a crash are removed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("fileblob: directory is required")
	}
	if err := os.RemoveAll(filepath.Join(dir, tmpDir)); err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	return &Store{root: dir}, nil
}

// path returns the file of key, or a validation error for a key that is
// empty, absolute, has empty, "." or ".." segments or bytes other than
// [A-Za-z0-9._-/].
func (s *Store) path(key string) (string, error) {
	bad := key == "" || len(key) > 512 || strings.HasPrefix(key, tmpDir)
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			bad = true
		}
	}
	for _, c := range []byte(key) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '/':
		default:
			bad = true
		}
	}
	if bad {
		return "", errdefs.Invalid("key", "%q is not a valid blob key", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements image.BlobStore: temp file, fsync, rename, fsync of the
// directory.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	buf := make([]byte, copyBuffer)
	n, err = io.CopyBuffer(struct{ io.Writer }{f}, ctxReader{ctx, r}, buf) // hide ReadFrom: use buf
	if err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, err)
	}
	if err = f.Sync(); err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	dir := filepath.Dir(p)
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	if err = syncDir(dir); err != nil {
		return 0, fmt.Errorf("fileblob: put %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	return n, nil
}

// Get implements image.BlobStore.
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fileblob: blob %q: %w", key, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fileblob: get %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("fileblob: get %q: %w", key, err)
		}
	}
	if length < 0 {
		return f, nil
	}
	return &limited{Reader: io.LimitReader(f, length), f: f}, nil
}

// Delete implements image.BlobStore. It also removes the key's directory
// when that leaves it empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fileblob: delete %q: %w", key, errdefs.Wrap(errdefs.ErrUnavailable, err))
	}
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty, or gone
		}
	}
	return ctx.Err()
}

// Keys returns the key of every stored blob, and of temporary files as
// ".tmp/<name>", for tests that check that nothing was left behind.
func (s *Store) Keys() ([]string, error) {
	var keys []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	return keys, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type limited struct {
	io.Reader
	f *os.File
}

func (l *limited) Close() error { return l.f.Close() }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
