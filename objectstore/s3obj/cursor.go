package s3obj

import (
	"context"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/stratuskit/stratus/objectstore"
)

// cursor is an objectstore.NameCursor over a container's S3 listing:
// forward, it pages through S3's listing (a Seek starts a listing after
// the name's key); in reverse, which S3 cannot list, it reads the names
// under the prefix once and walks them backwards.
type cursor struct {
	ctx    context.Context
	b      *Backend
	base   string // the container's key prefix
	prefix string // base + the listing prefix's segment
	page   int

	names []string // the current page, decoded
	i     int
	token string // continuation of the current listing; "" at its end
	after string // the key the current listing started after

	rev *objectstore.SliceCursor
	err error
}

func newCursor(ctx context.Context, b *Backend, base string, opts objectstore.ListOptions) *cursor {
	c := &cursor{ctx: ctx, b: b, base: base, prefix: base + segment(opts.Prefix, true), page: listPage}
	if opts.Limit > 0 && opts.Delimiter == "" && opts.Limit < listPage {
		c.page = opts.Limit + 1
	}
	if opts.Reverse {
		c.rev = &objectstore.SliceCursor{}
		c.err = b.walk(ctx, c.prefix, "", func(o minio.ObjectInfo) bool {
			if name, ok := c.decode(o.Key); ok {
				c.rev.Names = append(c.rev.Names, name)
			}
			return true
		})
	}
	return c
}

func (c *cursor) decode(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, c.base)
	if !ok {
		return "", false
	}
	return unsegment(rest)
}

// fetch reads the next page of the current listing.
func (c *cursor) fetch(token string) {
	c.names, c.i, c.token = c.names[:0], 0, ""
	if c.err != nil {
		return
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return
	}
	res, err := c.b.core.ListObjectsV2(c.b.bucket, c.prefix, c.after, token, "", c.page)
	if err != nil {
		c.err = classify("list "+c.prefix, err)
		return
	}
	for _, o := range res.Contents {
		if name, ok := c.decode(o.Key); ok {
			c.names = append(c.names, name)
		}
	}
	if res.IsTruncated {
		c.token = res.NextContinuationToken
	}
	if c.page < listPage {
		c.page = min(listPage, c.page*4) // a listing that goes on reads more at a time
	}
}

func (c *cursor) at() (string, bool) {
	for c.i >= len(c.names) && c.token != "" {
		c.fetch(c.token)
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
	// Keys after the unterminated segment of name are the names >= name.
	c.after = c.base + segment(name, true)
	if c.after < c.prefix {
		c.after = ""
	}
	c.fetch("")
	return c.at()
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
		c.rev = &objectstore.SliceCursor{}
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
