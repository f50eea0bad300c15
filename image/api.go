package image

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// timeFormat is how Glance writes times.
const timeFormat = "2006-01-02T15:04:05Z"

// List paging, Glance's defaults (limit_param_default, api_limit_max).
const (
	defaultLimit = 25
	maxLimit     = 1000
)

// NewHandler returns the Glance v2 API of svc: version discovery, schemas,
// images, data, members, tags, import and info, behind identity's auth
// middleware (tokens validated by v) and the standard request id, access
// log and recovery chain.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Glance)
	rt.HandleFunc("GET /{$}", a.versions(http.StatusMultipleChoices))
	rt.HandleFunc("GET /versions", a.versions(http.StatusOK))
	rt.HandleFunc("GET /v2", a.versions(http.StatusMultipleChoices))
	rt.HandleFunc("GET /v2/{$}", a.versions(http.StatusMultipleChoices))

	rt.HandleFunc("GET /v2/schemas/image", schema(imageSchema))
	rt.HandleFunc("GET /v2/schemas/images", schema(imagesSchema))
	rt.HandleFunc("GET /v2/schemas/member", schema(memberSchema))
	rt.HandleFunc("GET /v2/schemas/members", schema(membersSchema))

	rt.HandleFunc("GET /v2/images", a.listImages)
	rt.HandleFunc("POST /v2/images", a.createImage)
	rt.HandleFunc("GET /v2/images/{id}", a.getImage)
	rt.HandleFunc("PATCH /v2/images/{id}", a.updateImage)
	rt.HandleFunc("DELETE /v2/images/{id}", a.deleteImage)
	rt.HandleFunc("PUT /v2/images/{id}/file", a.upload(false))
	rt.HandleFunc("GET /v2/images/{id}/file", a.download)
	rt.HandleFunc("PUT /v2/images/{id}/stage", a.upload(true))
	rt.HandleFunc("POST /v2/images/{id}/import", a.importImage)
	rt.HandleFunc("POST /v2/images/{id}/actions/deactivate", a.action(svc.DeactivateImage))
	rt.HandleFunc("POST /v2/images/{id}/actions/reactivate", a.action(svc.ReactivateImage))
	rt.HandleFunc("PUT /v2/images/{id}/tags/{tag}", a.tag(true))
	rt.HandleFunc("DELETE /v2/images/{id}/tags/{tag}", a.tag(false))
	rt.HandleFunc("GET /v2/images/{id}/members", a.listMembers)
	rt.HandleFunc("POST /v2/images/{id}/members", a.addMember)
	rt.HandleFunc("GET /v2/images/{id}/members/{member}", a.getMember)
	rt.HandleFunc("PUT /v2/images/{id}/members/{member}", a.updateMember)
	rt.HandleFunc("DELETE /v2/images/{id}/members/{member}", a.deleteMember)
	rt.HandleFunc("GET /v2/info/import", a.infoImport)
	rt.HandleFunc("GET /v2/info/stores", a.infoStores)

	h := identity.Middleware(v, rt, &identity.MiddlewareOptions{Public: func(r *http.Request) bool {
		switch r.URL.Path {
		case "/", "/versions", "/v2", "/v2/":
			return r.Method == http.MethodGet || r.Method == http.MethodHead
		}
		return false
	}})
	return httpapi.Wrap(h, httpapi.Glance, logger)
}

type api struct{ svc *Service }

func fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, httpapi.Glance, err)
}

func reply(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

func (a *api) versions(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		href := httpapi.BaseURL(r) + "/v2/"
		var vs []httpapi.VersionInfo
		for minor := 16; minor >= 0; minor-- {
			st := httpapi.VersionSupported
			if minor == 16 {
				st = httpapi.VersionCurrent
			}
			vs = append(vs, httpapi.VersionInfo{ID: "v2." + strconv.Itoa(minor), Status: st,
				Links: []httpapi.Link{{Rel: "self", Href: href}}})
		}
		_ = httpapi.WriteVersionList(w, status, vs)
	}
}

// render is the Glance JSON of img for the caller of r.
func (a *api) render(r *http.Request, img *Image) map[string]any {
	m := make(map[string]any, 24+len(img.Properties))
	for k, v := range img.Properties {
		m[k] = v
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	ptr := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	m["id"] = img.ID
	m["name"] = null(img.Name)
	m["status"] = img.Status
	m["visibility"] = img.Visibility
	m["protected"] = img.Protected
	m["os_hidden"] = img.Hidden
	m["owner"] = null(img.Owner)
	m["disk_format"] = null(img.DiskFormat)
	m["container_format"] = null(img.ContainerFormat)
	m["min_disk"] = img.MinDisk
	m["min_ram"] = img.MinRAM
	m["size"] = ptr(img.Size)
	m["virtual_size"] = ptr(img.VirtualSize)
	m["checksum"] = null(img.Checksum)
	m["os_hash_algo"] = null(img.HashAlgo)
	m["os_hash_value"] = null(img.HashValue)
	m["tags"] = tags
	m["created_at"] = img.CreatedAt.UTC().Format(timeFormat)
	m["updated_at"] = img.UpdatedAt.UTC().Format(timeFormat)
	m["self"] = "/v2/images/" + img.ID
	m["file"] = "/v2/images/" + img.ID + "/file"
	m["schema"] = "/v2/schemas/image"
	if img.FailedImport != "" {
		m["os_glance_failed_import"] = img.FailedImport
	}
	if img.BlobKey != "" {
		m["stores"] = storeID
	}
	if a.svc.cfg.ShowDirectURL && img.BlobKey != "" {
		if c := identity.CredentialsFrom(r.Context()); c.IsCloudAdmin() {
			m["direct_url"] = "stratus-blob:" + img.BlobKey
		}
	}
	return m
}

// storeID names the one store in /v2/info/stores.
const storeID = "local"

func (a *api) getImage(w http.ResponseWriter, r *http.Request) {
	img, err := a.svc.GetImage(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, a.render(r, img))
}

// createImage decodes Glance's bare image body: known attributes, and every
// other key a string property.
func (a *api) createImage(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{}); err != nil {
		fail(w, r, err)
		return
	}
	var o CreateImageOpts
	dec := func(k string, dst any) error {
		v, ok := body[k]
		delete(body, k)
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return errdefs.Invalid(k, "provided object does not match schema 'image': %s is not of the expected type", truncate(string(v), 40))
		}
		return nil
	}
	var vis string
	for _, f := range []struct {
		k   string
		dst any
	}{
		{"id", &o.ID}, {"name", &o.Name}, {"visibility", &vis}, {"protected", &o.Protected},
		{"os_hidden", &o.Hidden}, {"disk_format", &o.DiskFormat}, {"container_format", &o.ContainerFormat},
		{"min_disk", &o.MinDisk}, {"min_ram", &o.MinRAM}, {"tags", &o.Tags}, {"owner", &o.Owner},
	} {
		if err := dec(f.k, f.dst); err != nil {
			fail(w, r, err)
			return
		}
	}
	o.Visibility = Visibility(vis)
	for k, v := range body {
		if err := checkPropertyName(k); err != nil {
			fail(w, r, err)
			return
		}
		if string(v) == "null" && (k == "kernel_id" || k == "ramdisk_id") {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			fail(w, r, errdefs.Invalid(k, "provided object does not match schema 'image': %s is not of type 'string'", truncate(string(v), 40)))
			return
		}
		if o.Properties == nil {
			o.Properties = map[string]string{}
		}
		o.Properties[k] = s
	}
	img, err := a.svc.CreateImage(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("Location", httpapi.BaseURL(r)+"/v2/images/"+img.ID)
	w.Header().Set("OpenStack-image-import-methods", strings.Join(a.svc.ImportMethods(), ","))
	w.Header().Set("OpenStack-image-store-ids", storeID)
	reply(w, http.StatusCreated, a.render(r, img))
}

func (a *api) updateImage(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != PatchContentType && ct != "application/openstack-images-v2.0-json-patch" {
		fail(w, r, httpapi.Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q: use %s", ct, PatchContentType))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpapi.DefaultMaxBodyBytes))
	if err != nil {
		fail(w, r, err)
		return
	}
	ops, err := ParsePatch(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	img, err := a.svc.UpdateImage(r.Context(), r.PathValue("id"), ops)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, a.render(r, img))
}

func (a *api) deleteImage(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteImage(r.Context(), r.PathValue("id")); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) action(fn func(ctx context.Context, id string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context(), r.PathValue("id")); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *api) tag(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		if add {
			err = a.svc.AddTag(r.Context(), r.PathValue("id"), r.PathValue("tag"))
		} else {
			err = a.svc.DeleteTag(r.Context(), r.PathValue("id"), r.PathValue("tag"))
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// upload streams a PUT body into UploadData or StageData. Content-MD5, in
// hex or base64, declares a checksum.
func (a *api) upload(stage bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "" && ct != "application/octet-stream" {
			fail(w, r, httpapi.Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q: use application/octet-stream", ct))
			return
		}
		opts := UploadOpts{Size: r.ContentLength}
		if v := r.Header.Get("Content-MD5"); v != "" {
			sum, err := parseMD5(v)
			if err != nil {
				fail(w, r, err)
				return
			}
			opts.Checksum = sum
		}
		var err error
		if stage {
			_, err = a.svc.StageData(r.Context(), r.PathValue("id"), r.Body, opts)
		} else {
			_, err = a.svc.UploadData(r.Context(), r.PathValue("id"), r.Body, opts)
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func parseMD5(v string) (string, error) {
	if len(v) == 32 {
		if _, err := hex.DecodeString(v); err == nil {
			return strings.ToLower(v), nil
		}
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 16 {
		return hex.EncodeToString(b), nil
	}
	return "", errdefs.Invalid("Content-MD5", "%q is not an MD5 digest in hex or base64", truncate(v, 40))
}

// download serves an image's bytes, with a single byte range if asked.
func (a *api) download(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	img, err := a.svc.GetImage(r.Context(), id)
	if err != nil {
		fail(w, r, err)
		return
	}
	if img.BlobKey == "" {
		w.WriteHeader(http.StatusNoContent) // no data yet, as Glance answers
		return
	}
	var size int64
	if img.Size != nil {
		size = *img.Size
	}
	off, n, partial, err := parseRange(r.Header.Get("Range"), size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		fail(w, r, err)
		return
	}
	img, rc, err := a.svc.OpenData(r.Context(), id, off, n)
	if errors.Is(err, ErrNoData) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	defer rc.Close()
	if img.Size == nil || *img.Size != size {
		fail(w, r, conflict("image %s changed during the request", id)) // cannot happen: data never changes
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
		status = http.StatusPartialContent
	} else {
		h.Set("Content-MD5", img.Checksum)
	}
	w.WriteHeader(status)
	if _, err := io.Copy(w, rc); err != nil {
		httpapi.Logger(r.Context()).Warn("image: download interrupted", "image", id, "err", err)
		panic(http.ErrAbortHandler) // a short body must not look complete
	}
}

// parseRange parses one "bytes=" range against size; no header means the
// whole image. Several ranges are served as the whole image, as Glance
// does.
func parseRange(h string, size int64) (off, n int64, partial bool, err error) {
	if h == "" || strings.Contains(h, ",") {
		return 0, size, false, nil
	}
	bad := httpapi.Errorf(http.StatusRequestedRangeNotSatisfiable, "Requested range %q not satisfiable for an image of %d bytes", truncate(h, 60), size)
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return 0, 0, false, bad
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, bad
	}
	if first == "" { // suffix: the last N bytes
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k <= 0 {
			return 0, 0, false, bad
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 || a >= size {
		return 0, 0, false, bad
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, 0, false, bad
		}
		b = min(b, size-1)
	}
	return a, b - a + 1, true, nil
}

func (a *api) importImage(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Method *struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"method"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{}); err != nil {
		fail(w, r, err)
		return
	}
	if body.Method == nil {
		fail(w, r, errdefs.Invalid("method", "import request requires a 'method' field"))
		return
	}
	if err := a.svc.ImportImage(r.Context(), r.PathValue("id"), ImportOpts{Method: body.Method.Name, URI: body.Method.URI}); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *api) infoImport(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": a.svc.ImportMethods(),
	}})
}

func (a *api) infoStores(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"stores": []map[string]any{
		{"id": storeID, "description": "Stratus image store", "default": true},
	}})
}

// listImages parses Glance's list query.
func (a *api) listImages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var o ListImagesOpts
	o.Limit = defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail(w, r, errdefs.Invalid("limit", "limit param must be a positive integer"))
			return
		}
		o.Limit = min(n, maxLimit)
	}
	if o.Limit == 0 {
		o.Limit = maxLimit
	}
	boolean := func(k string) (*bool, error) {
		if !q.Has(k) {
			return nil, nil
		}
		b, err := strconv.ParseBool(q.Get(k))
		if err != nil {
			return nil, errdefs.Invalid(k, "%q is not a boolean", q.Get(k))
		}
		return &b, nil
	}
	integer := func(k string) (*int64, error) {
		if !q.Has(k) {
			return nil, nil
		}
		n, err := strconv.ParseInt(q.Get(k), 10, 64)
		if err != nil {
			return nil, errdefs.Invalid(k, "%q is not an integer", q.Get(k))
		}
		return &n, nil
	}
	var err error
	if o.Hidden, err = boolean("os_hidden"); err == nil {
		if o.Protected, err = boolean("protected"); err == nil {
			if o.SizeMin, err = integer("size_min"); err == nil {
				o.SizeMax, err = integer("size_max")
			}
		}
	}
	if err == nil {
		o.CreatedAt, err = timeFilters(q["created_at"], "created_at")
	}
	if err == nil {
		o.UpdatedAt, err = timeFilters(q["updated_at"], "updated_at")
	}
	if err == nil {
		o.Sort, err = parseSort(q)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	in := func(v string) []string {
		if rest, ok := strings.CutPrefix(v, "in:"); ok {
			return strings.Split(rest, ",")
		}
		return nil
	}
	if name := q.Get("name"); in(name) != nil {
		o.Names = in(name)
	} else {
		o.Name = name
	}
	if id := q.Get("id"); id != "" {
		if o.IDs = in(id); o.IDs == nil {
			o.IDs = []string{id}
		}
	}
	if o.Statuses = in(q.Get("status")); o.Statuses == nil {
		o.Status = q.Get("status")
	}
	o.Owner, o.Visibility = q.Get("owner"), q.Get("visibility")
	o.MemberStatus, o.DiskFormat, o.ContainerFormat = q.Get("member_status"), q.Get("disk_format"), q.Get("container_format")
	o.Tags, o.Marker = q["tag"], q.Get("marker")
	known := []string{"limit", "marker", "name", "id", "status", "owner", "visibility", "member_status", "disk_format",
		"container_format", "tag", "os_hidden", "protected", "size_min", "size_max", "created_at", "updated_at",
		"sort", "sort_key", "sort_dir"}
	for k, vs := range q {
		if !slices.Contains(known, k) && len(vs) > 0 {
			if o.Properties == nil {
				o.Properties = map[string]string{}
			}
			o.Properties[k] = vs[0]
		}
	}
	imgs, more, err := a.svc.ListImages(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]map[string]any, len(imgs))
	for i, img := range imgs {
		out[i] = a.render(r, img)
	}
	first := url.Values{}
	for k, vs := range q {
		if k != "marker" {
			first[k] = vs
		}
	}
	body := map[string]any{"images": out, "schema": "/v2/schemas/images", "first": pathWith("/v2/images", first)}
	if more && len(imgs) > 0 {
		next := url.Values{}
		for k, vs := range first {
			next[k] = vs
		}
		next.Set("marker", imgs[len(imgs)-1].ID)
		body["next"] = pathWith("/v2/images", next)
	}
	reply(w, http.StatusOK, body)
}

func pathWith(p string, q url.Values) string {
	if len(q) == 0 {
		return p
	}
	return p + "?" + q.Encode()
}

func timeFilters(vs []string, field string) ([]TimeFilter, error) {
	var out []TimeFilter
	for _, v := range vs {
		op, ts, ok := strings.Cut(v, ":")
		if !ok || !slices.Contains([]string{"gt", "gte", "lt", "lte", "eq", "neq"}, op) {
			op, ts = "eq", v
		}
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return nil, errdefs.Invalid(field, "%q is not an ISO 8601 time with an operator (gt, gte, lt, lte, eq, neq)", truncate(v, 60))
		}
		out = append(out, TimeFilter{Op: op, Time: t})
	}
	return out, nil
}

// parseSort reads sort=key:dir,... or sort_key/sort_dir pairs.
func parseSort(q url.Values) ([]Sort, error) {
	var out []Sort
	dir := func(d string) (bool, error) {
		switch d {
		case "", "desc":
			return true, nil
		case "asc":
			return false, nil
		}
		return false, errdefs.Invalid("sort_dir", "%q is not asc or desc", truncate(d, 20))
	}
	if v := q.Get("sort"); v != "" {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return nil, errdefs.Invalid("sort", "the 'sort' parameter cannot be combined with sort_key or sort_dir")
		}
		for part := range strings.SplitSeq(v, ",") {
			k, d, _ := strings.Cut(strings.TrimSpace(part), ":")
			desc, err := dir(d)
			if err != nil {
				return nil, err
			}
			out = append(out, Sort{Key: k, Desc: desc})
		}
		return out, nil
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(dirs) > 1 && len(dirs) != len(keys) {
		return nil, errdefs.Invalid("sort_dir", "give one sort_dir, or one per sort_key")
	}
	for i, k := range keys {
		d := ""
		if len(dirs) == 1 {
			d = dirs[0]
		} else if len(dirs) > 1 {
			d = dirs[i]
		}
		desc, err := dir(d)
		if err != nil {
			return nil, err
		}
		out = append(out, Sort{Key: k, Desc: desc})
	}
	return out, nil
}

func renderMember(m *Member) map[string]any {
	return map[string]any{
		"image_id": m.ImageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": m.CreatedAt.UTC().Format(timeFormat), "updated_at": m.UpdatedAt.UTC().Format(timeFormat),
		"schema": "/v2/schemas/member",
	}
}

func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := a.svc.ListMembers(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = renderMember(m)
	}
	reply(w, http.StatusOK, map[string]any{"members": out, "schema": "/v2/schemas/members"})
}

func (a *api) addMember(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Member *string `json:"member"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{}); err != nil {
		fail(w, r, err)
		return
	}
	if body.Member == nil {
		fail(w, r, errdefs.Invalid("member", "member is required"))
		return
	}
	m, err := a.svc.AddMember(r.Context(), r.PathValue("id"), *body.Member)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, renderMember(m))
}

func (a *api) getMember(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetMember(r.Context(), r.PathValue("id"), r.PathValue("member"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, renderMember(m))
}

func (a *api) updateMember(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"status"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{}); err != nil {
		fail(w, r, err)
		return
	}
	m, err := a.svc.UpdateMember(r.Context(), r.PathValue("id"), r.PathValue("member"), MemberStatus(body.Status))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, renderMember(m))
}

func (a *api) deleteMember(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteMember(r.Context(), r.PathValue("id"), r.PathValue("member")); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
