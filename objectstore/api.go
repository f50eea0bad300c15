package objectstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// listingTime is the format of last_modified in listings.
const listingTime = "2006-01-02T15:04:05.000000"

// NewHandler returns the Swift v1 API of svc (/v1/AUTH_<project>/...,
// /info) behind identity's token middleware (v validates X-Auth-Token)
// and the standard request id, access log and recovery chain. Requests
// without a token reach the Service, which admits them only where a temp
// URL or a public-read ACL allows.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	h := identity.Middleware(v, a, &identity.MiddlewareOptions{Public: func(*http.Request) bool { return true }})
	return httpapi.Wrap(h, httpapi.Swift, logger)
}

type api struct{ svc *Service }

func fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *RangeError
	switch {
	case errors.As(err, &re):
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", re.Size))
		err = &httpapi.HTTPError{Status: http.StatusRequestedRangeNotSatisfiable, Message: "Requested range not satisfiable", Err: err}
	case errors.Is(err, ErrPreconditionFailed):
		msg := "A precondition for this request was not met."
		if errors.Is(err, errdefs.ErrInvalid) {
			msg = err.Error()
		}
		err = &httpapi.HTTPError{Status: http.StatusPreconditionFailed, Message: msg, Err: err}
	case errors.Is(err, ErrETagMismatch):
		err = &httpapi.HTTPError{Status: http.StatusUnprocessableEntity, Message: "The ETag does not match the MD5 of the uploaded data.", Err: err}
	case errors.Is(err, ErrCorrupt):
		err = &httpapi.HTTPError{Status: http.StatusServiceUnavailable, Message: "The object's stored data failed its checksum.", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = &httpapi.HTTPError{Status: 499, Message: "Client disconnected before sending the whole body.", Err: err}
	}
	httpapi.WriteError(w, r, httpapi.Swift, err)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/info":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			fail(w, r, &httpapi.HTTPError{Status: http.StatusMethodNotAllowed})
			return
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, Capabilities())
		return
	case "/", "/healthcheck":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "OK")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		fail(w, r, errdefs.Wrap(errdefs.ErrNotFound, errors.New("not found")))
		return
	}
	account, rest, _ := strings.Cut(rest, "/")
	container, object, _ := strings.Cut(rest, "/")
	ctx := r.Context()
	switch {
	case container == "":
		a.account(ctx, w, r, account)
	case object == "":
		a.container(ctx, w, r, account, container)
	default:
		a.object(ctx, w, r, ObjectKey{Account: account, Container: container, Name: object})
	}
}

// metaFrom collects the request's headers with prefix as canonical
// names, and X-Remove-<rest> headers as removals (empty values).
func metaFrom(h http.Header, prefix string) map[string]string {
	out := map[string]string{}
	for k, vs := range h {
		if _, ok := cutPrefixFold(k, prefix); ok && len(vs) > 0 {
			out[http.CanonicalHeaderKey(k)] = vs[0]
		}
		if rest, ok := cutPrefixFold(k, "X-Remove-"); ok {
			if _, ok := cutPrefixFold(rest, strings.TrimPrefix(prefix, "X-")); ok {
				out[http.CanonicalHeaderKey("X-"+rest)] = ""
			}
		}
	}
	return out
}

func setMeta(h http.Header, meta map[string]string) {
	for k, v := range meta {
		h[k] = []string{v}
	}
}

func timestamp(t time.Time) string {
	return fmt.Sprintf("%.5f", float64(t.UnixNano())/1e9)
}

func listOptions(r *http.Request) (ListOptions, error) {
	q := r.URL.Query()
	o := ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), Marker: q.Get("marker"), EndMarker: q.Get("end_marker")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, errdefs.Invalid("limit", "must be a non-negative integer")
		}
		if n > ListingLimit {
			return o, errdefs.Wrap(ErrPreconditionFailed, errdefs.Invalid("limit", "must be at most %d", ListingLimit))
		}
		o.Limit = n
	}
	switch strings.ToLower(q.Get("reverse")) {
	case "true", "1", "yes", "on", "t", "y":
		o.Reverse = true
	}
	return o, nil
}

// listingFormat picks json, xml or plain from ?format= or Accept.
func listingFormat(r *http.Request) string {
	switch f := strings.ToLower(r.URL.Query().Get("format")); f {
	case "json", "xml", "plain":
		return f
	}
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "application/json"):
		return "json"
	case strings.Contains(accept, "application/xml"), strings.Contains(accept, "text/xml"):
		return "xml"
	}
	return "plain"
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeListing writes a listing in the requested format; empty plain
// listings are 204, as in Swift.
func writeListing(w http.ResponseWriter, r *http.Request, n int, format string, jsonBody any, xmlRoot string, xmlItem func(i int) string, plain func(i int) string) {
	var body bytes.Buffer
	switch format {
	case "json":
		enc := json.NewEncoder(&body)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(jsonBody)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	case "xml":
		body.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + xmlRoot)
		for i := range n {
			body.WriteString(xmlItem(i))
		}
		body.WriteString("</" + strings.Fields(strings.TrimPrefix(xmlRoot, "<"))[0] + ">")
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	default:
		for i := range n {
			body.WriteString(plain(i) + "\n")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	status := http.StatusOK
	if format == "plain" && n == 0 {
		status = http.StatusNoContent
	}
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead && status != http.StatusNoContent {
		_, _ = w.Write(body.Bytes())
	}
}

func (a *api) account(ctx context.Context, w http.ResponseWriter, r *http.Request, account string) {
	switch r.Method {
	case http.MethodHead, http.MethodGet:
		opts, err := listOptions(r)
		if err != nil {
			fail(w, r, err)
			return
		}
		var info *AccountInfo
		var ents []ContainerEntry
		if r.Method == http.MethodHead {
			info, err = a.svc.GetAccount(ctx, account)
		} else {
			info, ents, err = a.svc.ListContainers(ctx, account, opts)
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		h := w.Header()
		h.Set("X-Account-Container-Count", strconv.FormatInt(info.Containers, 10))
		h.Set("X-Account-Object-Count", strconv.FormatInt(info.Objects, 10))
		h.Set("X-Account-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
		created := info.Created
		if created.IsZero() {
			created = time.Now()
		}
		h.Set("X-Timestamp", timestamp(created))
		h.Set("X-Account-Storage-Policy-Policy-0-Container-Count", strconv.FormatInt(info.Containers, 10))
		h.Set("X-Account-Storage-Policy-Policy-0-Object-Count", strconv.FormatInt(info.Objects, 10))
		h.Set("X-Account-Storage-Policy-Policy-0-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
		setMeta(h, info.Meta)
		if r.Method == http.MethodHead {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		type jsonEntry struct {
			Subdir       string `json:"subdir,omitempty"`
			Name         string `json:"name,omitempty"`
			Count        *int64 `json:"count,omitempty"`
			Bytes        *int64 `json:"bytes,omitempty"`
			LastModified string `json:"last_modified,omitempty"`
		}
		js := make([]jsonEntry, len(ents))
		for i, e := range ents {
			if e.Subdir != "" {
				js[i] = jsonEntry{Subdir: e.Subdir}
			} else {
				js[i] = jsonEntry{Name: e.Name, Count: &e.Count, Bytes: &e.Bytes, LastModified: e.LastModified.Format(listingTime)}
			}
		}
		writeListing(w, r, len(ents), listingFormat(r), js, fmt.Sprintf(`<account name="%s">`, xmlText(account)),
			func(i int) string {
				e := ents[i]
				if e.Subdir != "" {
					return fmt.Sprintf(`<subdir name="%s"><name>%s</name></subdir>`, xmlText(e.Subdir), xmlText(e.Subdir))
				}
				return fmt.Sprintf("<container><name>%s</name><count>%d</count><bytes>%d</bytes><last_modified>%s</last_modified></container>",
					xmlText(e.Name), e.Count, e.Bytes, e.LastModified.Format(listingTime))
			},
			func(i int) string { return ents[i].Name + ents[i].Subdir })
	case http.MethodPost:
		if _, ok := r.URL.Query()["bulk-delete"]; ok {
			a.bulkDelete(ctx, w, r, account)
			return
		}
		if err := a.svc.UpdateAccount(ctx, account, metaFrom(r.Header, "X-Account-Meta-")); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, r, &httpapi.HTTPError{Status: http.StatusMethodNotAllowed})
	}
}

func (a *api) bulkDelete(ctx context.Context, w http.ResponseWriter, r *http.Request, account string) {
	var paths []string
	sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, 8<<20))
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, err := url.PathUnescape(line)
		if err != nil {
			p = line
		}
		paths = append(paths, p)
	}
	if err := sc.Err(); err != nil {
		fail(w, r, errdefs.Invalid("bulk-delete", "body must be one path per line: %v", err))
		return
	}
	res, err := a.svc.BulkDelete(ctx, account, paths)
	if err != nil {
		fail(w, r, err)
		return
	}
	writeBulk(w, r, res)
}

func writeBulk(w http.ResponseWriter, r *http.Request, res *BulkResult) {
	if strings.Contains(r.Header.Get("Accept"), "json") {
		_ = httpapi.WriteJSON(w, http.StatusOK, res)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Number Deleted: %d\nNumber Not Found: %d\nResponse Body: %s\nResponse Status: %s\nErrors:\n", res.NumberDeleted, res.NumberNotFound, res.ResponseBody, res.ResponseStatus)
	for _, e := range res.Errors {
		fmt.Fprintf(&b, "%s, %s\n", e[0], e[1])
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}

func containerOpts(h http.Header) ContainerOpts {
	o := ContainerOpts{Meta: metaFrom(h, "X-Container-Meta-")}
	str := func(name string) *string {
		if vs, ok := h[http.CanonicalHeaderKey(name)]; ok {
			return &vs[0]
		}
		if _, ok := h[http.CanonicalHeaderKey("X-Remove-"+strings.TrimPrefix(name, "X-"))]; ok {
			empty := ""
			return &empty
		}
		return nil
	}
	o.Read, o.Write = str("X-Container-Read"), str("X-Container-Write")
	o.VersionsLocation, o.HistoryLocation = str("X-Versions-Location"), str("X-History-Location")
	return o
}

func (a *api) container(ctx context.Context, w http.ResponseWriter, r *http.Request, account, name string) {
	switch r.Method {
	case http.MethodPut:
		created, err := a.svc.PutContainer(ctx, account, name, containerOpts(r.Header))
		if err != nil {
			fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		if created {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusAccepted)
		}
	case http.MethodPost:
		if err := a.svc.UpdateContainer(ctx, account, name, containerOpts(r.Header)); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := a.svc.DeleteContainer(ctx, account, name); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodHead, http.MethodGet:
		opts, err := listOptions(r)
		if err != nil {
			fail(w, r, err)
			return
		}
		var info *ContainerInfo
		var ents []Entry
		if r.Method == http.MethodHead {
			info, err = a.svc.GetContainer(ctx, account, name)
		} else {
			info, ents, err = a.svc.ListObjects(ctx, account, name, opts)
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		h := w.Header()
		h.Set("X-Container-Object-Count", strconv.FormatInt(info.Objects, 10))
		h.Set("X-Container-Bytes-Used", strconv.FormatInt(info.Bytes, 10))
		h.Set("X-Timestamp", timestamp(info.Created))
		h.Set("X-Storage-Policy", "Policy-0")
		h.Set("Accept-Ranges", "bytes")
		if owner, _ := owns(identity.CredentialsFrom(ctx), account); owner {
			if info.Read != "" {
				h.Set("X-Container-Read", info.Read)
			}
			if info.Write != "" {
				h.Set("X-Container-Write", info.Write)
			}
		}
		if info.VersionsLocation != "" {
			h.Set("X-Versions-Location", info.VersionsLocation)
		}
		if info.HistoryLocation != "" {
			h.Set("X-History-Location", info.HistoryLocation)
		}
		setMeta(h, info.Metadata)
		if r.Method == http.MethodHead {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		a.objectListing(w, r, name, ents)
	default:
		fail(w, r, &httpapi.HTTPError{Status: http.StatusMethodNotAllowed})
	}
}

func (a *api) objectListing(w http.ResponseWriter, r *http.Request, name string, ents []Entry) {
	type jsonEntry struct {
		Subdir       string  `json:"subdir,omitempty"`
		Name         string  `json:"name,omitempty"`
		Hash         string  `json:"hash,omitempty"`
		Bytes        *int64  `json:"bytes,omitempty"`
		ContentType  string  `json:"content_type,omitempty"`
		LastModified string  `json:"last_modified,omitempty"`
		SLOETag      *string `json:"slo_etag,omitempty"`
	}
	js := make([]jsonEntry, len(ents))
	for i, e := range ents {
		if e.Object == nil {
			js[i] = jsonEntry{Subdir: e.Subdir}
			continue
		}
		o := e.Object
		js[i] = jsonEntry{Name: o.Name, Hash: o.ETag, Bytes: &o.Size, ContentType: o.ContentType, LastModified: o.LastModified.UTC().Format(listingTime)}
		if v := o.Headers[sloETagHeader]; v != "" {
			q := `"` + v + `"`
			js[i].SLOETag = &q
		}
	}
	writeListing(w, r, len(ents), listingFormat(r), js, fmt.Sprintf(`<container name="%s">`, xmlText(name)),
		func(i int) string {
			e := ents[i]
			if e.Object == nil {
				return fmt.Sprintf(`<subdir name="%s"><name>%s</name></subdir>`, xmlText(e.Subdir), xmlText(e.Subdir))
			}
			o := e.Object
			return fmt.Sprintf("<object><name>%s</name><hash>%s</hash><bytes>%d</bytes><content_type>%s</content_type><last_modified>%s</last_modified></object>",
				xmlText(o.Name), o.ETag, o.Size, xmlText(o.ContentType), o.LastModified.UTC().Format(listingTime))
		},
		func(i int) string { return ents[i].Name() })
}

// objectHeaders collects the object headers a client sets.
func objectHeaders(h http.Header) map[string]string {
	out := metaFrom(h, "X-Object-Meta-")
	for _, k := range []string{"Content-Disposition", "Content-Encoding", ManifestHeader} {
		if v := h.Get(k); v != "" {
			out[k] = v
		}
	}
	return out
}

func (a *api) deleteAt(h http.Header) (int64, error) {
	if v := h.Get("X-Delete-At"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, errdefs.Invalid("X-Delete-At", "must be a Unix time")
		}
		return n, nil
	}
	if v := h.Get("X-Delete-After"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 100*365*86400 {
			return 0, errdefs.Invalid("X-Delete-After", "must be a number of seconds")
		}
		return a.svc.now().Unix() + max(n, 1), nil
	}
	return 0, nil
}

// parseCopyPath reads "/container/object" (or without the leading
// slash, percent-encoded) from X-Copy-From or Destination.
func parseCopyPath(field, v, account string) (ObjectKey, error) {
	p, err := url.PathUnescape(v)
	if err != nil {
		return ObjectKey{}, errdefs.Invalid(field, "must be /container/object")
	}
	cont, obj, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !ok || cont == "" || obj == "" {
		return ObjectKey{}, errdefs.Invalid(field, "must be /container/object")
	}
	return ObjectKey{Account: account, Container: cont, Name: obj}, nil
}

func (a *api) object(ctx context.Context, w http.ResponseWriter, r *http.Request, key ObjectKey) {
	q := r.URL.Query()
	if sig := q.Get("temp_url_sig"); sig != "" || q.Has("temp_url_expires") {
		tu := TempURL{Signature: sig, Expires: q.Get("temp_url_expires")}
		if q.Has("temp_url_prefix") {
			p := q.Get("temp_url_prefix")
			tu.Prefix = &p
		}
		var err error
		if ctx, err = a.svc.VerifyTempURL(ctx, r.Method, key, tu); err != nil {
			fail(w, r, err)
			return
		}
	}
	mm := q.Get("multipart-manifest")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.getObject(ctx, w, r, key, mm)
	case http.MethodPut:
		a.putObject(ctx, w, r, key, mm)
	case "COPY":
		dstAccount := key.Account
		if v := r.Header.Get("Destination-Account"); v != "" {
			dstAccount = v
		}
		dst, err := parseCopyPath("Destination", r.Header.Get("Destination"), dstAccount)
		if err != nil {
			fail(w, r, err)
			return
		}
		a.copyObject(ctx, w, r, key, dst, mm)
	case http.MethodPost:
		at, err := a.deleteAt(r.Header)
		if err != nil {
			fail(w, r, err)
			return
		}
		if _, err := a.svc.PostObject(ctx, key, PostObjectOpts{ContentType: r.Header.Get("Content-Type"), Headers: objectHeaders(r.Header), DeleteAt: at}); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case http.MethodDelete:
		if mm == "delete" {
			res, err := a.svc.DeleteLargeObject(ctx, key)
			if err != nil {
				fail(w, r, err)
				return
			}
			writeBulk(w, r, res)
			return
		}
		if err := a.svc.DeleteObject(ctx, key); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, r, &httpapi.HTTPError{Status: http.StatusMethodNotAllowed})
	}
}

func (a *api) putOpts(r *http.Request) (PutObjectOpts, error) {
	at, err := a.deleteAt(r.Header)
	if err != nil {
		return PutObjectOpts{}, err
	}
	o := PutObjectOpts{
		ContentType:   r.Header.Get("Content-Type"),
		Headers:       objectHeaders(r.Header),
		DeleteAt:      at,
		ETag:          r.Header.Get("Etag"),
		ContentLength: r.ContentLength,
	}
	switch v := r.Header.Get("If-None-Match"); v {
	case "":
	case "*":
		o.IfNoneMatch = true
	default:
		return o, errdefs.Invalid("If-None-Match", "only '*' is supported on PUT")
	}
	return o, nil
}

func (a *api) putObject(ctx context.Context, w http.ResponseWriter, r *http.Request, key ObjectKey, mm string) {
	opts, err := a.putOpts(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	var info *ObjectInfo
	if src := r.Header.Get("X-Copy-From"); src != "" {
		srcAccount := key.Account
		if v := r.Header.Get("X-Copy-From-Account"); v != "" {
			srcAccount = v
		}
		sk, err := parseCopyPath("X-Copy-From", src, srcAccount)
		if err != nil {
			fail(w, r, err)
			return
		}
		a.copyObject(ctx, w, r, sk, key, mm)
		return
	}
	opts.Manifest = mm == "put"
	info, err = a.svc.PutObject(ctx, key, r.Body, opts)
	if err != nil {
		var se *SLOError
		if errors.As(err, &se) {
			err = &httpapi.HTTPError{Status: http.StatusBadRequest, Message: se.Error(), Err: err}
		}
		fail(w, r, err)
		return
	}
	writeCreated(w, info)
}

func writeCreated(w http.ResponseWriter, info *ObjectInfo) {
	h := w.Header()
	etag := info.ETag
	if v := info.Headers[sloETagHeader]; v != "" {
		etag = `"` + v + `"`
	}
	h.Set("Etag", etag)
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (a *api) copyObject(ctx context.Context, w http.ResponseWriter, r *http.Request, src, dst ObjectKey, mm string) {
	opts, err := a.putOpts(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	fresh := strings.EqualFold(r.Header.Get("X-Fresh-Metadata"), "true")
	info, err := a.svc.CopyObject(ctx, src, dst, CopyObjectOpts{PutObjectOpts: opts, FreshMetadata: fresh, Manifest: mm == "get"})
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("X-Copied-From", src.Container+"/"+src.Name)
	writeCreated(w, info)
}

func httpTime(v string) time.Time {
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}
	}
	return t
}

func (a *api) getObject(ctx context.Context, w http.ResponseWriter, r *http.Request, key ObjectKey, mm string) {
	q := r.URL.Query()
	if mm == "get" && q.Get("format") == "raw" {
		raw, err := a.svc.SLOManifest(ctx, key)
		if err != nil {
			fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(raw)
		return
	}
	opts := GetObjectOpts{
		Range:             r.Header.Get("Range"),
		IfMatch:           r.Header.Get("If-Match"),
		IfNoneMatch:       r.Header.Get("If-None-Match"),
		IfModifiedSince:   httpTime(r.Header.Get("If-Modified-Since")),
		IfUnmodifiedSince: httpTime(r.Header.Get("If-Unmodified-Since")),
		Manifest:          mm == "get",
		Head:              r.Method == http.MethodHead,
	}
	rd, err := a.svc.GetObject(ctx, key, opts)
	if err != nil {
		fail(w, r, err)
		return
	}
	if rd.Body != nil {
		defer rd.Body.Close()
	}
	info := rd.Info
	h := w.Header()
	h.Set("Etag", info.ETag)
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("X-Timestamp", timestamp(info.LastModified))
	h.Set("Accept-Ranges", "bytes")
	if rd.NotModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ct := info.ContentType
	if opts.Manifest && info.Headers[StaticLargeHeader] != "" {
		ct = "application/json; charset=utf-8"
	}
	h.Set("Content-Type", ct)
	for k, v := range info.Headers {
		if clientHeader(k) || k == StaticLargeHeader {
			h.Set(k, v)
		}
	}
	if info.DeleteAt != 0 {
		h.Set("X-Delete-At", strconv.FormatInt(info.DeleteAt, 10))
	}
	if g := grantFrom(ctx); g != nil {
		if fn := q.Get("filename"); fn != "" || q.Has("inline") {
			disp := "attachment"
			if q.Has("inline") {
				disp = "inline"
			}
			if fn != "" {
				disp += "; filename*=UTF-8''" + url.PathEscape(fn)
			}
			h.Set("Content-Disposition", disp)
		}
	}
	status := http.StatusOK
	length := info.Size
	if rd.Partial {
		status = http.StatusPartialContent
		length = rd.End - rd.Start + 1
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rd.Start, rd.End, info.Size))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if rd.Body == nil {
		w.WriteHeader(status)
		return
	}
	// Read the first chunk before the status: a failure there is still
	// an error response; after it, the response is aborted.
	first := make([]byte, 64<<10)
	n, err := io.ReadFull(rd.Body, first)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		h.Del("Content-Length")
		h.Del("Content-Range")
		fail(w, r, err)
		return
	}
	w.WriteHeader(status)
	if _, werr := w.Write(first[:n]); werr != nil {
		return
	}
	if err == nil {
		if _, err := io.Copy(w, rd.Body); err != nil {
			httpapi.Logger(ctx).Warn("objectstore: aborting a GET", "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// Capabilities returns what GET /info reports.
func Capabilities() map[string]any {
	return map[string]any{
		"swift": map[string]any{
			"version":                   "2.31.1",
			"max_file_size":             MaxObjectSize,
			"max_meta_name_length":      MaxMetaNameLength,
			"max_meta_value_length":     MaxMetaValueLength,
			"max_meta_count":            MaxMetaCount,
			"max_meta_overall_size":     MaxMetaOverallSize,
			"max_header_size":           8192,
			"max_object_name_length":    MaxObjectNameLength,
			"max_container_name_length": MaxContainerNameLength,
			"max_account_name_length":   256,
			"account_listing_limit":     ListingLimit,
			"container_listing_limit":   ListingLimit,
			"extra_header_count":        0,
			"strict_cors_mode":          true,
			"policies":                  []map[string]any{{"name": "Policy-0", "default": true}},
			"allow_account_management":  false,
			"account_autocreate":        true,
		},
		"tempurl": map[string]any{
			"methods":         TempURLMethods,
			"allowed_digests": []string{"sha1", "sha256", "sha512"},
		},
		"slo": map[string]any{
			"max_manifest_segments": MaxManifestSegments,
			"max_manifest_size":     MaxManifestSize,
			"min_segment_size":      1,
			"yield_frequency":       10,
		},
		"bulk_delete": map[string]any{
			"max_deletes_per_request": MaxBulkDeletes,
			"max_failed_deletes":      1000,
		},
		"versioned_writes": map[string]any{"allowed_flags": []string{"x-versions-location", "x-history-location"}},
		"container_quotas": map[string]any{},
		"dlo":              map[string]any{"max_segments": MaxDLOSegments},
	}
}
