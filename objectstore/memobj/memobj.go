// Package memobj is an in-memory objectstore.Backend for tests and
// examples. It keeps everything in maps and loses it on exit.
package memobj

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/objectstore"
)

var _ objectstore.Backend = (*Backend)(nil)

// Backend is an in-memory objectstore.Backend. The zero value is not
// usable; call New.
type Backend struct {
	mu         sync.RWMutex
	containers map[string]*container // by account + "/" + container
	now        func() time.Time
}

type container struct {
	objects map[string]*object
	names   []string // sorted
	bytes   int64
}

type object struct {
	info *objectstore.ObjectInfo
	data []byte
}

// New returns an empty Backend.
func New() *Backend {
	return &Backend{containers: map[string]*container{}, now: time.Now}
}

func ckey(account, cont string) string { return account + "/" + cont }

func (b *Backend) get(account, cont string) (*container, error) {
	c := b.containers[ckey(account, cont)]
	if c == nil {
		return nil, fmt.Errorf("memobj: container %s/%s: %w", account, cont, errdefs.ErrNotFound)
	}
	return c, nil
}

// CreateContainer implements objectstore.Backend.
func (b *Backend) CreateContainer(_ context.Context, account, cont string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.containers[ckey(account, cont)] == nil {
		b.containers[ckey(account, cont)] = &container{objects: map[string]*object{}}
	}
	return nil
}

// DeleteContainer implements objectstore.Backend.
func (b *Backend) DeleteContainer(_ context.Context, account, cont string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.get(account, cont)
	if err != nil {
		return err
	}
	if len(c.objects) > 0 {
		return fmt.Errorf("memobj: container %s/%s is not empty: %w", account, cont, errdefs.ErrConflict)
	}
	delete(b.containers, ckey(account, cont))
	return nil
}

// ContainerStats implements objectstore.Backend.
func (b *Backend) ContainerStats(_ context.Context, account, cont string) (objectstore.ContainerStats, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	c, err := b.get(account, cont)
	if err != nil {
		return objectstore.ContainerStats{}, err
	}
	return objectstore.ContainerStats{Objects: int64(len(c.objects)), Bytes: c.bytes}, nil
}

// Put implements objectstore.Backend.
func (b *Backend) Put(ctx context.Context, key objectstore.ObjectKey, r io.Reader, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	b.mu.RLock()
	_, err := b.get(key.Account, key.Container)
	b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	h := md5.New()
	if _, err := io.Copy(io.MultiWriter(&buf, h), r); err != nil {
		return nil, fmt.Errorf("memobj: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if opts.ETag != "" && opts.ETag != etag {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, objectstore.ErrETagMismatch)
	}
	info := newInfo(key.Name, opts, b.now())
	info.Size, info.ETag = int64(buf.Len()), etag
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.get(key.Account, key.Container)
	if err != nil {
		return nil, err
	}
	if old := c.objects[key.Name]; old != nil {
		c.bytes -= old.info.Size
	} else {
		i, _ := slices.BinarySearch(c.names, key.Name)
		c.names = slices.Insert(c.names, i, key.Name)
	}
	c.objects[key.Name] = &object{info: info, data: buf.Bytes()}
	c.bytes += info.Size
	return info.Clone(), nil
}

func newInfo(name string, opts objectstore.PutOptions, now time.Time) *objectstore.ObjectInfo {
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	info := &objectstore.ObjectInfo{Name: name, ContentType: ct, LastModified: now.UTC(), DeleteAt: opts.DeleteAt}
	if len(opts.Headers) > 0 {
		info.Headers = make(map[string]string, len(opts.Headers))
		for k, v := range opts.Headers {
			info.Headers[k] = v
		}
	}
	return info
}

func (b *Backend) lookup(key objectstore.ObjectKey) (*object, error) {
	c, err := b.get(key.Account, key.Container)
	if err != nil {
		return nil, err
	}
	o := c.objects[key.Name]
	if o == nil {
		return nil, fmt.Errorf("memobj: object %s: %w", key, errdefs.ErrNotFound)
	}
	return o, nil
}

// Get implements objectstore.Backend.
func (b *Backend) Get(_ context.Context, key objectstore.ObjectKey, offset, length int64) (io.ReadCloser, *objectstore.ObjectInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, err := b.lookup(key)
	if err != nil {
		return nil, nil, err
	}
	size := int64(len(o.data))
	if offset < 0 || offset > size {
		return nil, nil, errdefs.Invalid("offset", "%d is outside the object's %d bytes", offset, size)
	}
	end := size
	if length >= 0 && offset+length < size {
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:end])), o.info.Clone(), nil
}

// Head implements objectstore.Backend.
func (b *Backend) Head(_ context.Context, key objectstore.ObjectKey) (*objectstore.ObjectInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, err := b.lookup(key)
	if err != nil {
		return nil, err
	}
	return o.info.Clone(), nil
}

// SetMeta implements objectstore.Backend.
func (b *Backend) SetMeta(_ context.Context, key objectstore.ObjectKey, opts objectstore.PutOptions) (*objectstore.ObjectInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, err := b.lookup(key)
	if err != nil {
		return nil, err
	}
	info := newInfo(key.Name, opts, b.now())
	info.Size, info.ETag = o.info.Size, o.info.ETag
	o.info = info
	return info.Clone(), nil
}

// Delete implements objectstore.Backend.
func (b *Backend) Delete(_ context.Context, key objectstore.ObjectKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deleteLocked(key)
}

func (b *Backend) deleteLocked(key objectstore.ObjectKey) error {
	c, err := b.get(key.Account, key.Container)
	if err != nil {
		return err
	}
	o := c.objects[key.Name]
	if o == nil {
		return fmt.Errorf("memobj: object %s: %w", key, errdefs.ErrNotFound)
	}
	delete(c.objects, key.Name)
	c.bytes -= o.info.Size
	if i, found := slices.BinarySearch(c.names, key.Name); found {
		c.names = slices.Delete(c.names, i, i+1)
	}
	return nil
}

// List implements objectstore.Backend.
func (b *Backend) List(_ context.Context, account, cont string, opts objectstore.ListOptions) ([]objectstore.Entry, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	c, err := b.get(account, cont)
	if err != nil {
		return nil, err
	}
	var out []objectstore.Entry
	objectstore.Scan(&objectstore.SliceCursor{Names: c.names}, opts, func(name string, subdir bool) bool {
		if subdir {
			out = append(out, objectstore.Entry{Subdir: name})
		} else {
			out = append(out, objectstore.Entry{Object: c.objects[name].info.Clone()})
		}
		return true
	})
	return out, nil
}

// ReapExpired implements objectstore.Backend.
func (b *Backend) ReapExpired(_ context.Context, now time.Time, limit int) ([]objectstore.ObjectKey, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var reaped []objectstore.ObjectKey
	for ck, c := range b.containers {
		for name, o := range c.objects {
			if len(reaped) >= limit {
				return reaped, nil
			}
			if o.info.DeleteAt != 0 && o.info.DeleteAt <= now.Unix() {
				acct, cont, _ := cut(ck)
				key := objectstore.ObjectKey{Account: acct, Container: cont, Name: name}
				if err := b.deleteLocked(key); err != nil {
					return reaped, err
				}
				reaped = append(reaped, key)
			}
		}
	}
	return reaped, nil
}

// cut splits a container key at its first slash (account names hold none).
func cut(ck string) (string, string, bool) {
	for i := range len(ck) {
		if ck[i] == '/' {
			return ck[:i], ck[i+1:], true
		}
	}
	return ck, "", false
}

// Close implements objectstore.Backend.
func (b *Backend) Close() error { return nil }
