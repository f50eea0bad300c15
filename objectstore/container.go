package objectstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Account is a project's Swift account: its metadata. Its usage comes
// from the Backend. An account exists implicitly; a record is kept once
// it has metadata.
type Account struct {
	store.Meta
	Name string `json:"name"`
	// Meta holds the X-Account-Meta-* headers by canonical name.
	Metadata map[string]string `json:"metadata,omitempty"`
	Created  time.Time         `json:"created"`
}

// StoreKey implements store.Record.
func (a *Account) StoreKey() string { return a.Name }

// Container is a container's metadata and policy. Its objects and usage
// live in the Backend.
type Container struct {
	store.Meta
	Account string    `json:"account"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Read and Write are the X-Container-Read and -Write ACLs.
	Read  string `json:"read,omitempty"`
	Write string `json:"write,omitempty"`
	// VersionsLocation (stack mode) or HistoryLocation names the
	// container that keeps old versions of overwritten objects.
	VersionsLocation string `json:"versions_location,omitempty"`
	HistoryLocation  string `json:"history_location,omitempty"`
	// Meta holds the X-Container-Meta-* headers by canonical name
	// (quotas and temp URL keys included).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// StoreKey implements store.Record.
func (c *Container) StoreKey() string { return c.Account + "/" + c.Name }

// Quota headers of a container.
const (
	QuotaBytesHeader = "X-Container-Meta-Quota-Bytes"
	QuotaCountHeader = "X-Container-Meta-Quota-Count"
)

func getAccount(tx *store.Txn, name string) (*Account, error) {
	return store.Get[Account](nil, tx, accountTable, name)
}

func getContainer(tx *store.Txn, account, name string) (*Container, error) {
	c, err := store.Get[Container](nil, tx, containerTable, account+"/"+name)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, errdefs.ErrNotFound)
	}
	return c, nil
}

// AccountInfo is an account's metadata and usage.
type AccountInfo struct {
	Name       string
	Meta       map[string]string
	Created    time.Time
	Containers int64
	Objects    int64
	Bytes      int64
}

// ContainerInfo is a container's metadata and usage.
type ContainerInfo struct {
	*Container
	Objects int64
	Bytes   int64
}

// GetAccount returns the account's metadata and usage.
func (s *Service) GetAccount(ctx context.Context, account string) (*AccountInfo, error) {
	if err := checkAccountName(account); err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, opAccountRead, account, nil, ""); err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	info := &AccountInfo{Name: account}
	if a, err := getAccount(tx, account); err == nil {
		info.Meta, info.Created = a.Metadata, a.Created
	}
	cs, err := store.List[Container](nil, tx, containerTable, store.IDIndex+"_prefix", account+"/")
	if err != nil {
		return nil, err
	}
	for c := range cs {
		info.Containers++
		st, err := s.backend.ContainerStats(ctx, account, c.Name)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
		info.Objects += st.Objects
		info.Bytes += st.Bytes
	}
	return info, nil
}

// ContainerEntry is one line of an account listing: a container or,
// with a delimiter, a rolled-up Subdir.
type ContainerEntry struct {
	Subdir       string    `json:"subdir,omitempty"`
	Name         string    `json:"name,omitempty"`
	Count        int64     `json:"count"`
	Bytes        int64     `json:"bytes"`
	LastModified time.Time `json:"last_modified"`
}

// ListContainers lists the account's containers with Swift's listing
// options (Delimiter rolls names up into Subdir entries).
func (s *Service) ListContainers(ctx context.Context, account string, opts ListOptions) (*AccountInfo, []ContainerEntry, error) {
	if err := checkListOptions(opts); err != nil {
		return nil, nil, err
	}
	info, err := s.GetAccount(ctx, account)
	if err != nil {
		return nil, nil, err
	}
	tx := s.st.Snapshot()
	cs, err := store.List[Container](nil, tx, containerTable, store.IDIndex+"_prefix", account+"/")
	if err != nil {
		return nil, nil, err
	}
	var names []string
	byName := map[string]*Container{}
	for c := range cs {
		names = append(names, c.Name)
		byName[c.Name] = c
	}
	if opts.Limit <= 0 {
		opts.Limit = ListingLimit
	}
	var out []ContainerEntry
	Scan(&SliceCursor{Names: names}, opts, func(name string, subdir bool) bool {
		if subdir {
			out = append(out, ContainerEntry{Subdir: name})
			return true
		}
		st, _ := s.backend.ContainerStats(ctx, account, name)
		out = append(out, ContainerEntry{Name: name, Count: st.Objects, Bytes: st.Bytes, LastModified: byName[name].Created})
		return true
	})
	return info, out, nil
}

// UpdateAccount applies X-Account-Meta-* updates (an empty value removes
// the header). Only the account's owner may.
func (s *Service) UpdateAccount(ctx context.Context, account string, meta map[string]string) error {
	if err := checkAccountName(account); err != nil {
		return err
	}
	if err := s.authorize(ctx, opAccountWrite, account, nil, ""); err != nil {
		return err
	}
	meta = canonical(meta)
	return s.st.Update(ctx, func(tx *store.Txn) error {
		a, err := getAccount(tx, account)
		if err != nil {
			a = &Account{Name: account, Created: s.now().UTC()}
		}
		a.Metadata = mergeMeta(a.Metadata, meta)
		if err := checkMeta("X-Account-Meta-", a.Metadata); err != nil {
			return err
		}
		return tx.Put(accountTable, a)
	})
}

func canonical(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out
}

// ContainerOpts are the settable fields of a container. Nil pointers
// leave a field unchanged; an empty string clears it.
type ContainerOpts struct {
	Read, Write                       *string
	VersionsLocation, HistoryLocation *string
	// Meta holds X-Container-Meta-* updates; an empty value removes one.
	Meta map[string]string
}

func (o ContainerOpts) apply(c *Container) error {
	if o.Read != nil {
		if err := checkACL("X-Container-Read", *o.Read, false); err != nil {
			return err
		}
		c.Read = *o.Read
	}
	if o.Write != nil {
		if err := checkACL("X-Container-Write", *o.Write, true); err != nil {
			return err
		}
		c.Write = *o.Write
	}
	for _, loc := range []struct {
		field string
		v     *string
		dst   *string
	}{{"X-Versions-Location", o.VersionsLocation, &c.VersionsLocation}, {"X-History-Location", o.HistoryLocation, &c.HistoryLocation}} {
		if loc.v == nil {
			continue
		}
		if *loc.v != "" {
			if err := checkContainerName(*loc.v); err != nil {
				return errdefs.Invalid(loc.field, "must name a container")
			}
		}
		*loc.dst = *loc.v
	}
	if c.VersionsLocation != "" && c.HistoryLocation != "" {
		return errdefs.Invalid("X-History-Location", "only one of X-Versions-Location and X-History-Location may be set")
	}
	c.Metadata = mergeMeta(c.Metadata, canonical(o.Meta))
	for _, q := range []string{QuotaBytesHeader, QuotaCountHeader} {
		if v, ok := c.Metadata[q]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return errdefs.Invalid(q, "must be a non-negative integer")
			}
		}
	}
	return checkMeta("X-Container-Meta-", c.Metadata)
}

// PutContainer creates the container, or updates it if it exists;
// created reports which.
func (s *Service) PutContainer(ctx context.Context, account, name string, opts ContainerOpts) (created bool, err error) {
	if err := checkAccountName(account); err != nil {
		return false, err
	}
	if err := checkContainerName(name); err != nil {
		return false, err
	}
	if err := s.authorize(ctx, opAccountWrite, account, nil, ""); err != nil {
		return false, err
	}
	if err := opts.apply(&Container{}); err != nil { // validate before creating anything
		return false, err
	}
	if err := s.backend.CreateContainer(ctx, account, name); err != nil {
		return false, err
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		c, err := getContainer(tx, account, name)
		created = err != nil
		if created {
			c = &Container{Account: account, Name: name, Created: s.now().UTC()}
		}
		if err := opts.apply(c); err != nil {
			return err
		}
		return tx.Put(containerTable, c)
	})
	return created, err
}

// UpdateContainer changes an existing container.
func (s *Service) UpdateContainer(ctx context.Context, account, name string, opts ContainerOpts) error {
	if err := checkAccountName(account); err != nil {
		return err
	}
	if err := s.authorize(ctx, opAccountWrite, account, nil, ""); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		c, err := getContainer(tx, account, name)
		if err != nil {
			return err
		}
		if err := opts.apply(c); err != nil {
			return err
		}
		return tx.Update(containerTable, c)
	})
}

// GetContainer returns the container's metadata and usage.
func (s *Service) GetContainer(ctx context.Context, account, name string) (*ContainerInfo, error) {
	c, err := s.container(ctx, opContainerRead, account, name, "")
	if err != nil {
		return nil, err
	}
	return s.containerInfo(ctx, c)
}

func (s *Service) containerInfo(ctx context.Context, c *Container) (*ContainerInfo, error) {
	st, err := s.backend.ContainerStats(ctx, c.Account, c.Name)
	if err != nil {
		return nil, err
	}
	return &ContainerInfo{Container: c, Objects: st.Objects, Bytes: st.Bytes}, nil
}

// container validates names, authorizes o and returns the container.
// Authorization comes first where it does not depend on the container, so
// that a denied caller cannot tell whether it exists.
func (s *Service) container(ctx context.Context, o op, account, name, object string) (*Container, error) {
	if err := checkAccountName(account); err != nil {
		return nil, err
	}
	if err := checkContainerName(name); err != nil {
		return nil, err
	}
	c, err := getContainer(s.st.Snapshot(), account, name)
	if err != nil {
		// Answer as for an existing container the caller may not use.
		if aerr := s.authorize(ctx, o, account, &Container{Account: account, Name: name}, object); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if err := s.authorize(ctx, o, account, c, object); err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteContainer deletes an empty container (errdefs.ErrConflict if it
// holds objects).
func (s *Service) DeleteContainer(ctx context.Context, account, name string) error {
	if err := checkAccountName(account); err != nil {
		return err
	}
	if err := s.authorize(ctx, opAccountWrite, account, nil, ""); err != nil {
		return err
	}
	if _, err := getContainer(s.st.Snapshot(), account, name); err != nil {
		return err
	}
	if err := s.backend.DeleteContainer(ctx, account, name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if _, err := getContainer(tx, account, name); err != nil {
			return err
		}
		return tx.Delete(containerTable, account+"/"+name)
	})
}

func checkListOptions(o ListOptions) error {
	if o.Limit > ListingLimit || o.Limit < 0 {
		return errdefs.Wrap(ErrPreconditionFailed, errdefs.Invalid("limit", "must be at most %d", ListingLimit))
	}
	for f, v := range map[string]string{"prefix": o.Prefix, "delimiter": o.Delimiter, "marker": o.Marker, "end_marker": o.EndMarker} {
		if len(v) > MaxObjectNameLength || strings.IndexByte(v, 0) >= 0 {
			return errdefs.Invalid(f, "must be at most %d bytes without NUL", MaxObjectNameLength)
		}
	}
	if len(o.Delimiter) > 1 {
		return errdefs.Invalid("delimiter", "must be one character")
	}
	return nil
}

// ListObjects lists the container's objects with Swift's options.
func (s *Service) ListObjects(ctx context.Context, account, name string, opts ListOptions) (*ContainerInfo, []Entry, error) {
	if err := checkListOptions(opts); err != nil {
		return nil, nil, err
	}
	c, err := s.container(ctx, opContainerList, account, name, "")
	if err != nil {
		return nil, nil, err
	}
	info, err := s.containerInfo(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	if opts.Limit <= 0 {
		opts.Limit = ListingLimit
	}
	ents, err := s.backend.List(ctx, account, name, opts)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if e.Object != nil {
			listingView(e.Object)
		}
	}
	return info, ents, nil
}

// listingView shows a large object's manifest as Swift lists it: an SLO
// with its total size and the ETag of its segments.
func listingView(o *ObjectInfo) {
	if n, err := strconv.ParseInt(o.Headers[sloSizeHeader], 10, 64); err == nil {
		o.Size = n
		if e := o.Headers[sloETagHeader]; e != "" {
			o.ETag = e
		}
	}
}
