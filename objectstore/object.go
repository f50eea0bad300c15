package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

// Headers of large objects.
const (
	ManifestHeader    = "X-Object-Manifest"     // DLO: container/prefix
	StaticLargeHeader = "X-Static-Large-Object" // SLO: "True"
	sloSizeHeader     = "X-Object-Sysmeta-Slo-Size"
	sloETagHeader     = "X-Object-Sysmeta-Slo-Etag"
)

// clientHeader reports whether a client may set the object header k.
func clientHeader(k string) bool {
	if _, ok := cutPrefixFold(k, "X-Object-Meta-"); ok {
		return true
	}
	switch k {
	case "Content-Disposition", "Content-Encoding", ManifestHeader:
		return true
	}
	return false
}

// PutObjectOpts are the options of PutObject.
type PutObjectOpts struct {
	// ContentType is the media type; empty means application/octet-stream.
	ContentType string
	// Headers are kept with the object: X-Object-Meta-*,
	// Content-Disposition, Content-Encoding, X-Object-Manifest. Others are
	// ignored.
	Headers map[string]string
	// DeleteAt, if not zero, is the Unix time at which the object expires.
	DeleteAt int64
	// ETag, if set, is the MD5 the data must have.
	ETag string
	// ContentLength is the body's declared length, or -1 if unknown
	// (chunked).
	ContentLength int64
	// IfNoneMatch ("If-None-Match: *") fails the PUT if the object exists.
	IfNoneMatch bool
	// Manifest makes the body an SLO manifest (multipart-manifest=put).
	Manifest bool
}

// PutObject stores body as the object key. Versioning, quotas and large
// object manifests apply.
func (s *Service) PutObject(ctx context.Context, key ObjectKey, body io.Reader, opts PutObjectOpts) (*ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	c, err := s.container(ctx, opObjectWrite, key.Account, key.Container, key.Name)
	if err != nil {
		return nil, err
	}
	popts, err := s.putOptions(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	if popts.ContentType == "" {
		popts.ContentType = mime.TypeByExtension(path.Ext(key.Name))
	}
	if opts.ContentLength > MaxObjectSize {
		return nil, errdefs.Wrap(errdefs.ErrQuotaExceeded, fmt.Errorf("objects are limited to %d bytes", MaxObjectSize))
	}
	if opts.IfNoneMatch {
		if _, err := s.backend.Head(ctx, key); err == nil {
			return nil, ErrPreconditionFailed
		}
	}
	limit, err := s.quotaLimit(ctx, c, opts.ContentLength)
	if err != nil {
		return nil, err
	}
	if opts.Manifest {
		body, err = s.sloManifest(ctx, key, body, &popts)
		if err != nil {
			return nil, err
		}
		opts.ContentLength = -1
	}
	if err := s.archive(ctx, c, key, false); err != nil {
		return nil, err
	}
	r := &limitReader{r: body, left: limit, declared: opts.ContentLength}
	info, err := s.backend.Put(ctx, key, r, popts)
	if err != nil {
		return nil, err
	}
	return info, nil
}

// putOptions validates opts into the backend's options.
func (s *Service) putOptions(ctx context.Context, key ObjectKey, opts PutObjectOpts) (PutOptions, error) {
	h := map[string]string{}
	for k, v := range opts.Headers {
		k = http.CanonicalHeaderKey(k)
		if clientHeader(k) && v != "" {
			h[k] = v
		}
	}
	if err := checkMeta("X-Object-Meta-", h); err != nil {
		return PutOptions{}, err
	}
	for _, k := range []string{"Content-Disposition", "Content-Encoding"} {
		if len(h[k]) > 1024 || strings.ContainsAny(h[k], "\r\n\x00") {
			return PutOptions{}, errdefs.Invalid(k, "must be one line of at most 1024 bytes")
		}
	}
	if len(opts.ContentType) > 256 || strings.ContainsAny(opts.ContentType, "\r\n\x00") {
		return PutOptions{}, errdefs.Invalid("Content-Type", "must be one line of at most 256 bytes")
	}
	if m, ok := h[ManifestHeader]; ok {
		if grantFrom(ctx) != nil {
			// OSSA-2015-016: a manifest would let a temp URL for one
			// object read others.
			return PutOptions{}, errdefs.Invalid(ManifestHeader, "temp URLs cannot create large object manifests")
		}
		cont, _, found := strings.Cut(m, "/")
		if !found || checkContainerName(cont) != nil {
			return PutOptions{}, errdefs.Invalid(ManifestHeader, "must be <container>/<prefix>")
		}
	}
	if opts.Manifest && grantFrom(ctx) != nil {
		return PutOptions{}, errdefs.Invalid("multipart-manifest", "temp URLs cannot create large object manifests")
	}
	if opts.DeleteAt != 0 && opts.DeleteAt <= s.now().Unix() {
		return PutOptions{}, errdefs.Invalid("X-Delete-At", "is in the past")
	}
	if opts.ETag != "" {
		opts.ETag = strings.ToLower(strings.Trim(opts.ETag, `"`))
	}
	return PutOptions{ContentType: opts.ContentType, Headers: h, DeleteAt: opts.DeleteAt, ETag: opts.ETag}, nil
}

// quotaLimit returns how many bytes a PUT into c may write.
func (s *Service) quotaLimit(ctx context.Context, c *Container, declared int64) (int64, error) {
	limit := int64(MaxObjectSize)
	qb, hasBytes := c.Metadata[QuotaBytesHeader]
	qc, hasCount := c.Metadata[QuotaCountHeader]
	if !hasBytes && !hasCount {
		return limit, nil
	}
	st, err := s.backend.ContainerStats(ctx, c.Account, c.Name)
	if err != nil {
		return 0, err
	}
	over := errdefs.Wrap(errdefs.ErrQuotaExceeded, fmt.Errorf("upload exceeds the quota of container %s", c.Name))
	if hasCount {
		if n, _ := strconv.ParseInt(qc, 10, 64); st.Objects+1 > n {
			return 0, over
		}
	}
	if hasBytes {
		n, _ := strconv.ParseInt(qb, 10, 64)
		limit = min(limit, n-st.Bytes)
		if limit < 0 || declared > limit {
			return 0, over
		}
	}
	return limit, nil
}

// limitReader fails once more than left bytes are read, or at EOF when
// the body is shorter than declared.
type limitReader struct {
	r        io.Reader
	left     int64
	declared int64
	n        int64
}

// ContentLength implements SizedReader.
func (l *limitReader) ContentLength() int64 { return l.declared }

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errdefs.Wrap(errdefs.ErrQuotaExceeded, fmt.Errorf("upload exceeds the allowed size"))
	}
	if err == io.EOF && l.declared >= 0 && l.n != l.declared {
		return n, errdefs.Invalid("Content-Length", "body has %d bytes, not the %d declared", l.n, l.declared)
	}
	return n, err
}

// GetObjectOpts are the options of GetObject.
type GetObjectOpts struct {
	// Range is the Range header ("bytes=0-99"); several ranges are
	// answered with the whole object.
	Range string
	// IfMatch and IfNoneMatch are ETag lists or "*".
	IfMatch, IfNoneMatch string
	// IfModifiedSince and IfUnmodifiedSince, if not zero, are conditions.
	IfModifiedSince, IfUnmodifiedSince time.Time
	// Manifest reads a large object's manifest itself
	// (multipart-manifest=get) rather than its segments.
	Manifest bool
	// Head returns no body.
	Head bool
}

// ObjectReader is an object being read.
type ObjectReader struct {
	// Info describes the object; for a large object Size and ETag are
	// those of the whole (ETag quoted, as Swift sends it).
	Info *ObjectInfo
	// Large is set for a DLO or SLO read through its segments.
	Large bool
	// NotModified is set when If-None-Match or If-Modified-Since failed
	// (304); Body is nil then.
	NotModified bool
	// Partial is set for a Range; Start and End (inclusive) locate it.
	Partial    bool
	Start, End int64
	// Body streams the bytes; nil for Head. The caller closes it.
	Body io.ReadCloser
}

// RangeError is a Range the object cannot satisfy (416).
type RangeError struct{ Size int64 }

// Error implements error.
func (e *RangeError) Error() string { return "requested range not satisfiable" }

// Is makes a RangeError match ErrRangeNotSatisfiable.
func (e *RangeError) Is(target error) bool { return target == ErrRangeNotSatisfiable }

// GetObject opens the object key for reading with Swift's conditional,
// range and large-object semantics.
func (s *Service) GetObject(ctx context.Context, key ObjectKey, opts GetObjectOpts) (*ObjectReader, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if _, err := s.container(ctx, opObjectRead, key.Account, key.Container, key.Name); err != nil {
		return nil, err
	}
	info, err := s.head(ctx, key)
	if err != nil {
		return nil, err
	}
	out := &ObjectReader{Info: info}
	var segs []segment
	if !opts.Manifest {
		segs, err = s.segments(ctx, key, info)
		if err != nil {
			return nil, err
		}
		if segs != nil {
			out.Large = true
			info.Size, info.ETag = segmentsSizeETag(segs)
		}
	}
	if err := checkConditions(info, opts); err != nil {
		if errors.Is(err, errNotModified) {
			out.NotModified = true
			return out, nil
		}
		return nil, err
	}
	start, end, partial, err := parseRange(opts.Range, info.Size)
	if err != nil {
		return nil, err
	}
	out.Partial, out.Start, out.End = partial, start, end
	if opts.Head {
		return out, nil
	}
	length := end - start + 1
	if segs != nil {
		out.Body = &segmentReader{s: s, ctx: withSegmentAccess(ctx), segs: segs, skip: start, left: length}
		return out, nil
	}
	rc, got, err := s.backend.Get(ctx, key, start, length)
	if err != nil {
		return nil, err
	}
	if got.ETag != info.ETag || got.Size != info.Size {
		// Replaced between the head and the open: the headers (and the
		// conditions) were decided on the old version.
		rc.Close()
		return nil, errdefs.Wrap(errdefs.ErrConflict, fmt.Errorf("object %s changed while it was being opened; retry", key.Name))
	}
	out.Body = rc
	return out, nil
}

// head returns the object's information, treating expired objects as
// gone.
func (s *Service) head(ctx context.Context, key ObjectKey) (*ObjectInfo, error) {
	info, err := s.backend.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	if info.DeleteAt != 0 && info.DeleteAt <= s.now().Unix() {
		return nil, fmt.Errorf("object %s expired: %w", key.Name, errdefs.ErrNotFound)
	}
	return info, nil
}

var errNotModified = errors.New("not modified")

func etagMatches(list, etag string) bool {
	etag = strings.Trim(etag, `"`)
	for e := range strings.SplitSeq(list, ",") {
		e = strings.TrimSpace(e)
		e = strings.TrimPrefix(e, "W/")
		if e == "*" || strings.Trim(e, `"`) == etag {
			return true
		}
	}
	return false
}

func checkConditions(info *ObjectInfo, o GetObjectOpts) error {
	mod := info.LastModified.Truncate(time.Second)
	if o.IfMatch != "" && !etagMatches(o.IfMatch, info.ETag) {
		return ErrPreconditionFailed
	}
	if o.IfMatch == "" && !o.IfUnmodifiedSince.IsZero() && mod.After(o.IfUnmodifiedSince) {
		return ErrPreconditionFailed
	}
	if o.IfNoneMatch != "" && etagMatches(o.IfNoneMatch, info.ETag) {
		return errNotModified
	}
	if o.IfNoneMatch == "" && !o.IfModifiedSince.IsZero() && !mod.After(o.IfModifiedSince) {
		return errNotModified
	}
	return nil
}

// parseRange resolves a single byte range against size. A missing,
// malformed or multiple range means the whole object.
func parseRange(h string, size int64) (start, end int64, partial bool, err error) {
	whole := func() (int64, int64, bool, error) { return 0, size - 1, false, nil }
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return whole()
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return whole()
	}
	if a == "" { // the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return whole()
		}
		if n == 0 || size == 0 {
			return 0, 0, false, &RangeError{Size: size}
		}
		return max(0, size-n), size - 1, true, nil
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 {
		return whole()
	}
	e := size - 1
	if b != "" {
		if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
			return whole()
		}
		e = min(e, size-1)
	}
	if s >= size {
		return 0, 0, false, &RangeError{Size: size}
	}
	return s, e, true, nil
}

// PostObjectOpts are the options of PostObject.
type PostObjectOpts struct {
	// ContentType, if set, replaces the media type.
	ContentType string
	// Headers replace the object's X-Object-Meta-*, Content-Disposition
	// and Content-Encoding; X-Object-Manifest is kept unless given.
	Headers map[string]string
	// DeleteAt sets (or with 0 clears) the expiry.
	DeleteAt int64
}

// PostObject replaces the object's metadata, as Swift's POST does.
func (s *Service) PostObject(ctx context.Context, key ObjectKey, opts PostObjectOpts) (*ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if _, err := s.container(ctx, opObjectWrite, key.Account, key.Container, key.Name); err != nil {
		return nil, err
	}
	cur, err := s.head(ctx, key)
	if err != nil {
		return nil, err
	}
	popts, err := s.putOptions(ctx, key, PutObjectOpts{ContentType: opts.ContentType, Headers: opts.Headers, DeleteAt: opts.DeleteAt})
	if err != nil {
		return nil, err
	}
	if popts.ContentType == "" {
		popts.ContentType = cur.ContentType
	}
	for k, v := range cur.Headers {
		if !clientHeader(k) || (k == ManifestHeader && popts.Headers[k] == "") {
			popts.Headers[k] = v // sysmeta, the SLO flag, the DLO manifest
		}
	}
	return s.backend.SetMeta(ctx, key, popts)
}

// DeleteObject deletes the object. With versioning, the previous version
// comes back (X-Versions-Location) or the deleted one is archived
// (X-History-Location).
func (s *Service) DeleteObject(ctx context.Context, key ObjectKey) error {
	if err := checkKey(key); err != nil {
		return err
	}
	c, err := s.container(ctx, opObjectWrite, key.Account, key.Container, key.Name)
	if err != nil {
		return err
	}
	if c.HistoryLocation != "" {
		if err := s.archive(ctx, c, key, true); err != nil {
			return err
		}
	}
	err = s.backend.Delete(ctx, key)
	if c.VersionsLocation != "" {
		restored, rerr := s.restore(ctx, c, key)
		if rerr != nil {
			return rerr
		}
		if restored && errors.Is(err, errdefs.ErrNotFound) {
			return nil // an expired or missing current version; the previous one is back
		}
	}
	return err
}

// CopyObjectOpts are the options of CopyObject.
type CopyObjectOpts struct {
	PutObjectOpts
	// FreshMetadata drops the source's metadata (X-Fresh-Metadata).
	FreshMetadata bool
	// Manifest copies a large object's manifest rather than its content.
	Manifest bool
}

// CopyObject copies src to dst (COPY or PUT with X-Copy-From): the
// content of a large object, the source's metadata merged with opts'.
func (s *Service) CopyObject(ctx context.Context, src, dst ObjectKey, opts CopyObjectOpts) (*ObjectInfo, error) {
	if grantFrom(ctx) != nil {
		// A temp URL reaches one object; a copy would read another.
		return nil, errUnauthorized()
	}
	rd, err := s.GetObject(ctx, src, GetObjectOpts{Manifest: opts.Manifest})
	if err != nil {
		return nil, err
	}
	defer rd.Body.Close()
	put := opts.PutObjectOpts
	headers := map[string]string{}
	if !opts.FreshMetadata {
		for k, v := range rd.Info.Headers {
			if clientHeader(k) && (k != ManifestHeader || opts.Manifest) {
				headers[k] = v
			}
		}
		if put.ContentType == "" {
			put.ContentType = rd.Info.ContentType
		}
	}
	for k, v := range put.Headers {
		headers[http.CanonicalHeaderKey(k)] = v
	}
	put.Headers, put.ETag, put.ContentLength = headers, "", rd.Info.Size
	if rd.Large {
		put.ContentLength = -1
	}
	return s.PutObject(ctx, dst, rd.Body, put)
}

// BulkResult is the outcome of BulkDelete or of deleting an SLO with its
// segments, in Swift's shape.
type BulkResult struct {
	NumberDeleted  int        `json:"Number Deleted"`
	NumberNotFound int        `json:"Number Not Found"`
	Errors         [][]string `json:"Errors"`
	ResponseStatus string     `json:"Response Status"`
	ResponseBody   string     `json:"Response Body"`
}

func (r *BulkResult) add(path string, err error) {
	switch {
	case err == nil:
		r.NumberDeleted++
	case errors.Is(err, errdefs.ErrNotFound):
		r.NumberNotFound++
	default:
		status := "500 Internal Error"
		switch {
		case errors.Is(err, errdefs.ErrConflict):
			status = "409 Conflict"
		case errors.Is(err, errdefs.ErrForbidden):
			status = "403 Forbidden"
		case errors.Is(err, errdefs.ErrUnauthenticated):
			status = "401 Unauthorized"
		case errors.Is(err, errdefs.ErrInvalid):
			status = "400 Bad Request"
		}
		r.Errors = append(r.Errors, []string{path, status})
	}
}

func (r *BulkResult) finish() *BulkResult {
	r.ResponseStatus = "200 OK"
	if len(r.Errors) > 0 {
		r.ResponseStatus = "400 Bad Request"
	}
	if r.Errors == nil {
		r.Errors = [][]string{}
	}
	return r
}

// BulkDelete deletes each of paths ("/container/object" or
// "/container"), each with the caller's authority.
func (s *Service) BulkDelete(ctx context.Context, account string, paths []string) (*BulkResult, error) {
	if err := checkAccountName(account); err != nil {
		return nil, err
	}
	if len(paths) > MaxBulkDeletes {
		return nil, errdefs.Invalid("bulk-delete", "at most %d paths", MaxBulkDeletes)
	}
	res := &BulkResult{}
	for _, p := range paths {
		cont, obj, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		var err error
		if obj == "" {
			err = s.DeleteContainer(ctx, account, cont)
		} else {
			err = s.DeleteObject(ctx, ObjectKey{Account: account, Container: cont, Name: obj})
		}
		res.add(p, err)
	}
	return res.finish(), nil
}
