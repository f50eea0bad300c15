package s3obj

import (
	"context"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/stratuskit/stratus/objectstore"
)

// cursor is an objectstore.NameCursor over a container's S3 listing:
// forward, it pages through S3's listing (a Seek starts a listing after
// the name's key); in reverse, which S3 cannot list, it reads the names
// under the prefix once and walks them backwards. A long names' group
// (see keys.go) is read whole and sorted by name.
type cursor struct {
	ctx    context.Context
	b      *Backend
	base   string // the container's key prefix
	prefix string // the key prefix of the listing's names
	page   int

	names []string // the current page, decoded
	i     int
	token string // continuation of the current listing
	after string // the key the current listing starts after
	more  bool   // the listing goes on after names

	rev *objectstore.SliceCursor
	err error
}

func newCursor(ctx context.Context, b *Backend, base string, opts objectstore.ListOptions) *cursor {
	c := &cursor{ctx: ctx, b: b, base: base, prefix: seekKey(base, opts.Prefix), page: listPage}
	if opts.Limit > 0 && opts.Delimiter == "" && opts.Limit < listPage {
		c.page = opts.Limit + 1
	}
	if opts.Reverse {
		c.rev = &objectstore.SliceCursor{}
		c.after = ""
		for c.fetch(); c.err == nil; c.fetch() {
			c.rev.Names = append(c.rev.Names, c.names...)
			if !c.more {
				break
			}
		}
	}
	return c
}

// fetch reads the next page of the listing after c.after (continuing
// c.token if set).
func (c *cursor) fetch() {
	c.names, c.i, c.more = c.names[:0], 0, false
	if c.err != nil {
		return
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return
	}
	res, err := c.b.core.ListObjectsV2(c.b.bucket, c.prefix, c.after, c.token, "", c.page)
	if err != nil {
		c.err = classify("list "+c.prefix, err)
		return
	}
	c.token, c.more = "", res.IsTruncated
	if res.IsTruncated {
		c.token = res.NextContinuationToken
	}
	for _, o := range res.Contents {
		rest, ok := strings.CutPrefix(o.Key, c.base)
		if !ok {
			continue
		}
		if g, long := longGroup(o.Key); long {
			// Read the group whole, then list on after it.
			c.readGroup(g)
			c.after, c.token, c.more = g+"\x7f", "", true
			break
		}
		if name, ok := unsegment(rest); ok {
			c.names = append(c.names, name)
		}
	}
	if c.page < listPage {
		c.page = min(listPage, c.page*4) // a listing that goes on reads more at a time
	}
}

// readGroup appends the long names whose keys begin with g, sorted.
func (c *cursor) readGroup(g string) {
	var group []string
	err := c.b.walk(c.ctx, g, "", func(o minio.ObjectInfo) bool {
		oi, err := c.b.client.StatObject(c.ctx, c.b.bucket, o.Key, minio.StatObjectOptions{})
		if err != nil {
			return true // deleted since listed
		}
		if name, ok := decodeName(oi.UserMetadata[metaName]); ok {
			group = append(group, name)
		}
		return true
	})
	if err != nil {
		c.err = err
		return
	}
	slices.Sort(group)
	c.names = append(c.names, group...)
}

func (c *cursor) at() (string, bool) {
	for c.i >= len(c.names) && c.more && c.err == nil {
		c.fetch()
	}
	if c.i < len(c.names) {
		return c.names[c.i], true
	}
	return "", false
}

// Seek implements objectstore.NameCursor.
func (c *cursor) Seek(name string) (string, bool) {
	if c.rev != nil {
		return c.rev.Seek(name)
	}
	// Keys after the unterminated escaped name are those of the names
	// at or after it; a long name's seek starts at its group, and the
	// names before name are skipped here.
	c.after, c.token = seekKey(c.base, name), ""
	c.fetch()
	for {
		n, ok := c.at()
		if !ok || n >= name {
			return n, ok
		}
		c.i++
	}
}

// Next implements objectstore.NameCursor.
func (c *cursor) Next() (string, bool) {
	if c.rev != nil {
		return c.rev.Next()
	}
	c.i++
	return c.at()
}

// SeekBefore implements objectstore.NameCursor.
func (c *cursor) SeekBefore(name string) (string, bool) {
	if c.rev == nil {
		return "", false
	}
	return c.rev.SeekBefore(name)
}

// Prev implements objectstore.NameCursor.
func (c *cursor) Prev() (string, bool) {
	if c.rev == nil {
		return "", false
	}
	return c.rev.Prev()
}
