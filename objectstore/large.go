package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

// MaxDLOSegments bounds the segments one DLO reads.
const MaxDLOSegments = 100_000

// segment is one part of a large object.
type segment struct {
	key  ObjectKey
	etag string // expected ETag; checked as the segment is opened
	size int64
}

// sloEntry is one segment in a stored SLO manifest (Swift's stored form,
// which multipart-manifest=get returns).
type sloEntry struct {
	Name         string `json:"name"`
	Hash         string `json:"hash"`
	Bytes        int64  `json:"bytes"`
	ContentType  string `json:"content_type,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// sloPutEntry is one segment of a multipart-manifest=put body.
type sloPutEntry struct {
	Path      string  `json:"path"`
	ETag      *string `json:"etag"`
	SizeBytes *int64  `json:"size_bytes"`
}

// segments returns the segments of a large object, or nil for a plain
// one.
func (s *Service) segments(ctx context.Context, key ObjectKey, info *ObjectInfo) ([]segment, error) {
	if strings.EqualFold(info.Headers[StaticLargeHeader], "true") {
		entries, err := s.readSLO(ctx, key)
		if err != nil {
			return nil, err
		}
		segs := make([]segment, 0, len(entries))
		for _, e := range entries {
			cont, obj, _ := strings.Cut(strings.TrimPrefix(e.Name, "/"), "/")
			segs = append(segs, segment{key: ObjectKey{Account: key.Account, Container: cont, Name: obj}, etag: e.Hash, size: e.Bytes})
		}
		return segs, nil
	}
	m := info.Headers[ManifestHeader]
	if m == "" {
		return nil, nil
	}
	cont, prefix, _ := strings.Cut(m, "/")
	sctx := withSegmentAccess(ctx)
	if _, err := s.container(sctx, opObjectRead, key.Account, cont, prefix); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return []segment{}, nil
		}
		return nil, err
	}
	segs := []segment{}
	marker := ""
	for len(segs) < MaxDLOSegments {
		ents, err := s.backend.List(ctx, key.Account, cont, ListOptions{Prefix: prefix, Marker: marker, Limit: ListingLimit})
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			segs = append(segs, segment{key: ObjectKey{Account: key.Account, Container: cont, Name: e.Object.Name}, etag: e.Object.ETag, size: e.Object.Size})
		}
		if len(ents) < ListingLimit {
			break
		}
		marker = ents[len(ents)-1].Name()
	}
	return segs, nil
}

func (s *Service) readSLO(ctx context.Context, key ObjectKey) ([]sloEntry, error) {
	rc, _, err := s.backend.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	var entries []sloEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", key, err)
	}
	return entries, nil
}

// segmentsSizeETag returns a large object's size and ETag: the MD5 of
// its segments' ETags, quoted.
func segmentsSizeETag(segs []segment) (int64, string) {
	h := md5.New()
	var size int64
	for _, sg := range segs {
		size += sg.size
		_, _ = io.WriteString(h, sg.etag)
	}
	return size, `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

// segmentReader streams the segments from skip for left bytes, checking
// each segment's authorization and ETag as it opens it.
type segmentReader struct {
	s    *Service
	ctx  context.Context
	segs []segment
	skip int64
	left int64
	cur  io.ReadCloser
	err  error
}

func (r *segmentReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.left <= 0 {
			return 0, io.EOF
		}
		if r.cur == nil {
			if err := r.open(); err != nil {
				r.err = err
				return 0, err
			}
			continue
		}
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
		n, err := r.cur.Read(p)
		r.left -= int64(n)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			r.err = err
		}
		return n, err
	}
}

func (r *segmentReader) open() error {
	for len(r.segs) > 0 && r.skip >= r.segs[0].size {
		r.skip -= r.segs[0].size
		r.segs = r.segs[1:]
	}
	if len(r.segs) == 0 {
		return io.ErrUnexpectedEOF
	}
	sg := r.segs[0]
	r.segs = r.segs[1:]
	if _, err := r.s.container(r.ctx, opObjectRead, sg.key.Account, sg.key.Container, sg.key.Name); err != nil {
		return fmt.Errorf("segment %s: %w", sg.key, err)
	}
	rc, info, err := r.s.backend.Get(r.ctx, sg.key, r.skip, min(sg.size-r.skip, r.left))
	if err != nil {
		return fmt.Errorf("segment %s: %w", sg.key, err)
	}
	if info.ETag != sg.etag || info.Size != sg.size {
		rc.Close()
		return fmt.Errorf("segment %s changed since the manifest was written", sg.key)
	}
	r.skip = 0
	r.cur = rc
	return nil
}

func (r *segmentReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// SLOError lists what was wrong with the segments of a manifest PUT.
type SLOError struct{ Problems [][]string }

func (e *SLOError) Error() string {
	var sb strings.Builder
	sb.WriteString("Errors:\n")
	for _, p := range e.Problems {
		sb.WriteString(p[0] + ", " + p[1] + "\n")
	}
	return sb.String()
}

// Is makes an SLOError an errdefs.ErrInvalid.
func (e *SLOError) Is(target error) bool { return target == errdefs.ErrInvalid }

// sloManifest validates a multipart-manifest=put body and returns the
// manifest to store, setting the SLO headers in popts.
func (s *Service) sloManifest(ctx context.Context, key ObjectKey, body io.Reader, popts *PutOptions) (io.Reader, error) {
	data, err := io.ReadAll(io.LimitReader(body, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxManifestSize {
		return nil, errdefs.Invalid("multipart-manifest", "manifest must be at most %d bytes", MaxManifestSize)
	}
	var in []sloPutEntry
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, errdefs.Invalid("multipart-manifest", "manifest must be a JSON list of segments: %v", err)
	}
	if len(in) == 0 || len(in) > MaxManifestSegments {
		return nil, errdefs.Invalid("multipart-manifest", "manifest must list 1 to %d segments", MaxManifestSegments)
	}
	var problems [][]string
	out := make([]sloEntry, 0, len(in))
	segs := make([]segment, 0, len(in))
	for _, e := range in {
		cont, obj, _ := strings.Cut(strings.TrimPrefix(e.Path, "/"), "/")
		sk := ObjectKey{Account: key.Account, Container: cont, Name: obj}
		if checkKey(sk) != nil || !strings.HasPrefix(e.Path, "/") {
			problems = append(problems, []string{e.Path, "Bad Request"})
			continue
		}
		if sk == key {
			problems = append(problems, []string{e.Path, "Segment cannot be the manifest itself"})
			continue
		}
		if _, err := s.container(ctx, opObjectRead, sk.Account, sk.Container, sk.Name); err != nil {
			problems = append(problems, []string{e.Path, statusText(err)})
			continue
		}
		info, err := s.head(ctx, sk)
		if err != nil {
			problems = append(problems, []string{e.Path, statusText(err)})
			continue
		}
		if info.Headers[StaticLargeHeader] != "" || info.Headers[ManifestHeader] != "" {
			problems = append(problems, []string{e.Path, "Nested large objects are not supported"})
			continue
		}
		if e.ETag != nil && *e.ETag != "" && !strings.EqualFold(strings.Trim(*e.ETag, `"`), info.ETag) {
			problems = append(problems, []string{e.Path, "Etag Mismatch"})
			continue
		}
		if e.SizeBytes != nil && *e.SizeBytes != info.Size {
			problems = append(problems, []string{e.Path, "Size Mismatch"})
			continue
		}
		out = append(out, sloEntry{Name: "/" + sk.Container + "/" + sk.Name, Hash: info.ETag, Bytes: info.Size,
			ContentType: info.ContentType, LastModified: info.LastModified.Format("2006-01-02T15:04:05.000000")})
		segs = append(segs, segment{key: sk, etag: info.ETag, size: info.Size})
	}
	if len(problems) > 0 {
		return nil, &SLOError{Problems: problems}
	}
	size, etag := segmentsSizeETag(segs)
	if popts.ETag != "" && popts.ETag != strings.Trim(etag, `"`) {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, ErrETagMismatch)
	}
	popts.ETag = ""
	popts.Headers[StaticLargeHeader] = "True"
	popts.Headers[sloSizeHeader] = strconv.FormatInt(size, 10)
	popts.Headers[sloETagHeader] = strings.Trim(etag, `"`)
	stored, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(stored), nil
}

func statusText(err error) string {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return "404 Not Found"
	case errors.Is(err, errdefs.ErrForbidden):
		return "403 Forbidden"
	case errors.Is(err, errdefs.ErrUnauthenticated):
		return "401 Unauthorized"
	}
	return "400 Bad Request"
}

// SLOManifest returns an SLO's manifest in the form of a
// multipart-manifest=put body (multipart-manifest=get&format=raw).
func (s *Service) SLOManifest(ctx context.Context, key ObjectKey) ([]byte, error) {
	if _, err := s.container(ctx, opObjectRead, key.Account, key.Container, key.Name); err != nil {
		return nil, err
	}
	entries, err := s.readSLO(ctx, key)
	if err != nil {
		return nil, err
	}
	raw := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		raw = append(raw, map[string]any{"path": e.Name, "etag": e.Hash, "size_bytes": e.Bytes})
	}
	return json.Marshal(raw)
}

// DeleteLargeObject deletes an SLO and its segments
// (multipart-manifest=delete); a plain object is deleted alone.
func (s *Service) DeleteLargeObject(ctx context.Context, key ObjectKey) (*BulkResult, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if _, err := s.container(ctx, opObjectWrite, key.Account, key.Container, key.Name); err != nil {
		return nil, err
	}
	info, err := s.backend.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	res := &BulkResult{}
	if strings.EqualFold(info.Headers[StaticLargeHeader], "true") {
		entries, err := s.readSLO(ctx, key)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			cont, obj, _ := strings.Cut(strings.TrimPrefix(e.Name, "/"), "/")
			res.add(e.Name, s.DeleteObject(ctx, ObjectKey{Account: key.Account, Container: cont, Name: obj}))
		}
	}
	res.add("/"+key.Container+"/"+key.Name, s.DeleteObject(ctx, key))
	return res.finish(), nil
}

// versionPrefix is where the old versions of name live in the archive
// container (Swift's layout: the name's length in 3 hex digits, the name,
// a slash, then a timestamp).
func versionPrefix(name string) string { return fmt.Sprintf("%03x%s/", len(name), name) }

func versionStamp(t time.Time) string { return fmt.Sprintf("%016.5f", float64(t.UnixNano())/1e9) }

// DeleteMarkerType is the content type of a history-mode delete marker.
const DeleteMarkerType = "application/x-deleted;swift_versions_deleted=1"

// archive copies the current version of key into c's versions or history
// container before it is overwritten (or, in history mode, deleted).
func (s *Service) archive(ctx context.Context, c *Container, key ObjectKey, deleting bool) error {
	loc := c.VersionsLocation
	if loc == "" {
		loc = c.HistoryLocation
	}
	if loc == "" || (deleting && c.HistoryLocation == "") {
		return nil
	}
	if _, err := getContainer(s.st.Snapshot(), key.Account, loc); err != nil {
		return errdefs.Invalid("X-Versions-Location", "container %s does not exist", loc)
	}
	cur, err := s.backend.Head(ctx, key)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rc, _, err := s.backend.Get(ctx, key, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	dst := ObjectKey{Account: key.Account, Container: loc, Name: versionPrefix(key.Name) + versionStamp(cur.LastModified)}
	if _, err := s.backend.Put(ctx, dst, rc, PutOptions{ContentType: cur.ContentType, Headers: cur.Headers, ETag: cur.ETag}); err != nil {
		return fmt.Errorf("archive %s: %w", key.Name, err)
	}
	if deleting {
		marker := ObjectKey{Account: key.Account, Container: loc, Name: versionPrefix(key.Name) + versionStamp(s.now().Add(time.Microsecond*10))}
		if _, err := s.backend.Put(ctx, marker, bytes.NewReader(nil), PutOptions{ContentType: DeleteMarkerType}); err != nil {
			return fmt.Errorf("delete marker of %s: %w", key.Name, err)
		}
	}
	return nil
}

// restore brings the newest archived version of key back (stack mode),
// removing it from the archive, and reports whether there was one.
func (s *Service) restore(ctx context.Context, c *Container, key ObjectKey) (bool, error) {
	ents, err := s.backend.List(ctx, key.Account, c.VersionsLocation, ListOptions{Prefix: versionPrefix(key.Name), Reverse: true, Limit: 1})
	if err != nil || len(ents) == 0 {
		if errors.Is(err, errdefs.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	src := ObjectKey{Account: key.Account, Container: c.VersionsLocation, Name: ents[0].Object.Name}
	rc, info, err := s.backend.Get(ctx, src, 0, -1)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if _, err := s.backend.Put(ctx, key, rc, PutOptions{ContentType: info.ContentType, Headers: info.Headers, ETag: info.ETag}); err != nil {
		return false, err
	}
	return true, s.backend.Delete(ctx, src)
}
