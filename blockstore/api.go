package blockstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// timeFormat is how Cinder writes times (no zone; gophercloud parses it).
const timeFormat = "2006-01-02T15:04:05.000000"

// Microversions are the Cinder v3 microversions this API serves.
var Microversions = httpapi.Microversions{
	Service:      "volume",
	LegacyHeader: "X-OpenStack-Volume-API-Version",
	Min:          httpapi.Version{Major: 3, Minor: 0},
	Max:          httpapi.Version{Major: 3, Minor: 70},
}

var (
	v327 = httpapi.Version{Major: 3, Minor: 27}
	v344 = httpapi.Version{Major: 3, Minor: 44}
)

const maxBody = 1 << 20

// NewHandler returns the Cinder v3 API of svc: version discovery and
// /v3/{project_id}/... behind identity's auth middleware (tokens validated
// by v), microversion negotiation and the standard request id, access log
// and recovery chain. Errors have Cinder's shape
// ({"badRequest":{"code":400,"message":…}}).
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Cinder)
	rt.HandleFunc("GET /{$}", a.versions)
	rt.HandleFunc("GET /v3", a.version)
	rt.HandleFunc("GET /v3/{$}", a.version)

	p := "/v3/{project}"
	h := func(pattern string, f http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		rt.Handle(method+" "+p+path, a.scoped(f))
	}
	h("GET /volumes", a.listVolumes(false))
	h("GET /volumes/detail", a.listVolumes(true))
	h("POST /volumes", a.createVolume)
	h("GET /volumes/{id}", a.getVolume)
	h("PUT /volumes/{id}", a.updateVolume)
	h("DELETE /volumes/{id}", a.deleteVolume)
	h("POST /volumes/{id}/action", a.volumeAction)
	h("GET /volumes/{id}/metadata", a.getVolumeMetadata)
	h("POST /volumes/{id}/metadata", a.setVolumeMetadata(false))
	h("PUT /volumes/{id}/metadata", a.setVolumeMetadata(true))
	h("GET /volumes/{id}/metadata/{key}", a.getVolumeMetadataKey)
	h("PUT /volumes/{id}/metadata/{key}", a.putVolumeMetadataKey)
	h("DELETE /volumes/{id}/metadata/{key}", a.deleteVolumeMetadataKey)

	h("GET /snapshots", a.listSnapshots(false))
	h("GET /snapshots/detail", a.listSnapshots(true))
	h("POST /snapshots", a.createSnapshot)
	h("GET /snapshots/{id}", a.getSnapshot)
	h("PUT /snapshots/{id}", a.updateSnapshot)
	h("DELETE /snapshots/{id}", a.deleteSnapshot)
	h("GET /snapshots/{id}/metadata", a.getSnapshotMetadata)
	h("POST /snapshots/{id}/metadata", a.setSnapshotMetadata)
	h("PUT /snapshots/{id}/metadata", a.setSnapshotMetadata)

	h("GET /types", a.listTypes)
	h("POST /types", a.createType)
	h("GET /types/default", a.defaultType)
	h("GET /types/{id}", a.getType)
	h("PUT /types/{id}", a.updateType)
	h("DELETE /types/{id}", a.deleteType)
	h("GET /types/{id}/extra_specs", a.getSpecs)
	h("POST /types/{id}/extra_specs", a.setSpecs)
	h("GET /types/{id}/extra_specs/{key}", a.getSpec)
	h("PUT /types/{id}/extra_specs/{key}", a.putSpec)
	h("DELETE /types/{id}/extra_specs/{key}", a.deleteSpec)
	h("GET /types/{id}/os-volume-type-access", a.typeAccess)
	h("POST /types/{id}/action", a.typeAction)

	h("GET /attachments", a.listAttachments)
	h("GET /attachments/detail", a.listAttachments)
	h("POST /attachments", a.createAttachment)
	h("GET /attachments/{id}", a.getAttachment)
	h("PUT /attachments/{id}", a.updateAttachment)
	h("DELETE /attachments/{id}", a.deleteAttachment)
	h("POST /attachments/{id}/action", a.attachmentAction)

	h("GET /backups", a.listBackups(false))
	h("GET /backups/detail", a.listBackups(true))
	h("POST /backups", a.createBackup)
	h("GET /backups/{id}", a.getBackup)
	h("DELETE /backups/{id}", a.deleteBackup)
	h("POST /backups/{id}/restore", a.restoreBackup)

	for _, base := range []string{"/os-volume-transfer", "/volume-transfers"} {
		h("GET "+base, a.listTransfers)
		h("GET "+base+"/detail", a.listTransfers)
		h("POST "+base, a.createTransfer)
		h("GET "+base+"/{id}", a.getTransfer)
		h("DELETE "+base+"/{id}", a.deleteTransfer)
		h("POST "+base+"/{id}/accept", a.acceptTransfer)
	}

	h("GET /limits", a.limits)
	h("GET /os-quota-sets/{target}", a.getQuota)
	h("GET /os-quota-sets/{target}/defaults", a.quotaDefaults)
	h("PUT /os-quota-sets/{target}", a.setQuota)
	h("DELETE /os-quota-sets/{target}", a.deleteQuota)
	h("GET /os-availability-zone", a.zones)
	h("GET /extensions", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, map[string]any{"extensions": []any{}})
	})

	public := func(r *http.Request) bool {
		switch r.URL.Path {
		case "/", "/v3", "/v3/":
			return r.Method == http.MethodGet || r.Method == http.MethodHead
		}
		return false
	}
	return httpapi.Wrap(identity.Middleware(v, Microversions.Handler(httpapi.Cinder, rt), &identity.MiddlewareOptions{Public: public}), httpapi.Cinder, logger)
}

type api struct{ svc *Service }

func fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, httpapi.Cinder, err)
}

func reply(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return httpapi.DecodeJSON(w, r, v, httpapi.DecodeOptions{MaxBytes: maxBody})
}

// decoded decodes the body into v, answering the error itself when it fails.
func decoded(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decode(w, r, v); err != nil {
		fail(w, r, err)
		return false
	}
	return true
}

// respond answers err when it is set, else status with the body body
// builds (body runs only on success, so it may use what err guards).
func respond(w http.ResponseWriter, r *http.Request, err error, status int, body func() any) {
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, status, body())
}

// done answers err when it is set, else status with no body.
func done(w http.ResponseWriter, r *http.Request, err error, status int) {
	if err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(status)
}

// scoped checks that the URL's project is the token's (admins may name
// any project) before f runs.
func (a *api) scoped(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := identity.CredentialsFrom(r.Context())
		if p := r.PathValue("project"); c == nil || (p != c.ProjectID && !c.IsCloudAdmin()) {
			fail(w, r, badRequest("Malformed request url"))
			return
		}
		f(w, r)
	})
}

func (a *api) versionInfo(r *http.Request) httpapi.VersionInfo {
	return httpapi.VersionInfo{ID: "v3.0", Status: httpapi.VersionCurrent, MinVersion: Microversions.Min.String(),
		Version: Microversions.Max.String(), Updated: "2023-01-01T00:00:00Z",
		Links:      []httpapi.Link{{Rel: "self", Href: httpapi.BaseURL(r) + "/v3/"}},
		MediaTypes: []httpapi.MediaType{{Base: "application/json", Type: "application/vnd.openstack.volume+json;version=3"}}}
}

func (a *api) versions(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteVersionList(w, http.StatusMultipleChoices, []httpapi.VersionInfo{a.versionInfo(r)})
}

func (a *api) version(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteVersionList(w, http.StatusOK, []httpapi.VersionInfo{a.versionInfo(r)})
}

func tstr(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func selfLinks(r *http.Request, coll, id string) []httpapi.Link {
	base := httpapi.BaseURL(r)
	p := r.PathValue("project")
	return []httpapi.Link{{Rel: "self", Href: base + "/v3/" + p + "/" + coll + "/" + id}, {Rel: "bookmark", Href: base + "/" + p + "/" + coll + "/" + id}}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// queryBool reads a boolean query parameter as Cinder does.
func queryBool(r *http.Request, key string) bool {
	switch strings.ToLower(r.URL.Query().Get(key)) {
	case "1", "true", "yes", "on", "y", "t":
		return true
	}
	return false
}

// --- volumes

func (a *api) renderVolume(r *http.Request, v *Volume, detail bool) map[string]any {
	m := map[string]any{"id": v.ID, "name": v.Name, "links": selfLinks(r, "volumes", v.ID)}
	if !detail {
		return m
	}
	c := identity.CredentialsFrom(r.Context())
	tx := a.svc.st.Snapshot()
	atts, _ := attachmentsOf(tx, v.ID)
	al := []map[string]any{}
	for _, at := range atts {
		if at.Status != AttachAttached {
			continue
		}
		al = append(al, map[string]any{"id": v.ID, "attachment_id": at.ID, "volume_id": v.ID, "server_id": at.InstanceID,
			"host_name": hostOf(at), "device": null(at.Mountpoint), "attached_at": tstr(at.AttachedAt)})
	}
	typeName := ""
	if t, err := getType(tx, v.TypeID); err == nil {
		typeName = t.Name
	}
	m["description"] = null(v.Description)
	m["size"] = v.SizeGiB
	m["status"] = string(v.Status)
	m["attachments"] = al
	m["availability_zone"] = v.Zone
	m["bootable"] = strconv.FormatBool(v.Bootable)
	m["encrypted"] = false
	m["multiattach"] = v.Multiattach
	m["volume_type"] = typeName
	m["volume_type_id"] = v.TypeID
	m["snapshot_id"] = null(v.SnapshotID)
	m["source_volid"] = null(v.SourceVolID)
	m["backup_id"] = null(v.BackupID)
	m["metadata"] = orEmpty(v.Metadata)
	m["user_id"] = v.UserID
	m["os-vol-tenant-attr:tenant_id"] = v.ProjectID
	m["replication_status"] = "disabled"
	m["consistencygroup_id"] = nil
	m["group_id"] = nil
	m["migration_status"] = nil
	m["shared_targets"] = false
	m["created_at"] = tstr(v.CreatedAt)
	m["updated_at"] = tstr(v.UpdatedAt)
	if len(v.ImageMetadata) > 0 {
		m["volume_image_metadata"] = v.ImageMetadata
	}
	if c.IsCloudAdmin() {
		m["os-vol-host-attr:host"] = null(v.host(a.svc))
		m["os-vol-mig-status-attr:migstat"] = nil
		m["os-vol-mig-status-attr:name_id"] = nil
	}
	return m
}

func hostOf(at *Attachment) any {
	if at.Connector == nil {
		return nil
	}
	return null(at.Connector.Host)
}

func (a *api) listVolumes(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := ListVolumesOpts{AllTenants: queryBool(r, "all_tenants"), ProjectID: q.Get("project_id"), Name: q.Get("name"), Status: q.Get("status")}
		if b := q.Get("bootable"); b != "" {
			v := queryBool(r, "bootable")
			opts.Bootable = &v
		}
		if md := q.Get("metadata"); md != "" {
			if err := json.Unmarshal([]byte(md), &opts.Metadata); err != nil {
				opts.Metadata = parsePyDict(md)
				if opts.Metadata == nil {
					fail(w, r, invalid("metadata", "Invalid input received: metadata filter must be a JSON object"))
					return
				}
			}
		}
		vols, err := a.svc.ListVolumes(r.Context(), opts)
		if err != nil {
			fail(w, r, err)
			return
		}
		a.page(w, r, "volumes", vols, func(v *Volume) string { return v.ID }, func(v *Volume) any { return a.renderVolume(r, v, detail) })
	}
}

// parsePyDict reads the Python dict repr cinderclient sends as a metadata
// filter ({'k': 'v'}), or nil.
func parsePyDict(s string) map[string]string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil
	}
	out := map[string]string{}
	for part := range strings.SplitSeq(s[1:len(s)-1], ",") {
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		out[strings.Trim(strings.TrimSpace(k), `'"`)] = strings.Trim(strings.TrimSpace(v), `'"`)
	}
	return out
}

// page writes one page of items as a Cinder list.
func page[T any](w http.ResponseWriter, r *http.Request, coll string, items []T, id func(T) string, render func(T) any) {
	p, err := httpapi.ParsePage(r, httpapi.PageOptions{DefaultLimit: 1000, MaxLimit: 1000})
	if err != nil {
		fail(w, r, err)
		return
	}
	if strings.HasSuffix(r.URL.Query().Get("sort"), ":desc") || r.URL.Query().Get("sort_dir") == "desc" {
		slices.Reverse(items)
	}
	pg, more, err := httpapi.PageSlice(items, p, id)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]any, 0, len(pg))
	for _, it := range pg {
		out = append(out, render(it))
	}
	last := ""
	if len(pg) > 0 {
		last = id(pg[len(pg)-1])
	}
	reply(w, http.StatusOK, httpapi.ListBody(coll, out, httpapi.PageLinks(r, p, more, last)))
}

func (a *api) page(w http.ResponseWriter, r *http.Request, coll string, vols []*Volume, id func(*Volume) string, render func(*Volume) any) {
	page(w, r, coll, vols, id, render)
}

type volumeBody struct {
	Volume *struct {
		Size             json.RawMessage   `json:"size"`
		Name             *string           `json:"name"`
		DisplayName      *string           `json:"display_name"`
		Description      *string           `json:"description"`
		VolumeType       *string           `json:"volume_type"`
		AvailabilityZone *string           `json:"availability_zone"`
		Metadata         map[string]string `json:"metadata"`
		ImageRef         *string           `json:"imageRef"`
		ImageID          *string           `json:"image_id"`
		SnapshotID       *string           `json:"snapshot_id"`
		SourceVolID      *string           `json:"source_volid"`
		BackupID         *string           `json:"backup_id"`
		Multiattach      bool              `json:"multiattach"`
	} `json:"volume"`
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (a *api) createVolume(w http.ResponseWriter, r *http.Request) {
	var body volumeBody
	if !decoded(w, r, &body) {
		return
	}
	b := body.Volume
	if b == nil {
		fail(w, r, invalid("volume", "Missing required element 'volume' in request body."))
		return
	}
	size, err := intField(b.Size)
	if err != nil {
		fail(w, r, invalid("size", "Invalid input received: volume size must be an integer greater than 0"))
		return
	}
	name := deref(b.Name)
	if name == "" {
		name = deref(b.DisplayName)
	}
	image := deref(b.ImageRef)
	if image == "" {
		image = deref(b.ImageID)
	}
	if b.BackupID != nil && *b.BackupID != "" {
		v, err := a.svc.RestoreBackup(r.Context(), *b.BackupID, RestoreBackupOpts{Name: name})
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusAccepted, map[string]any{"volume": a.renderVolume(r, v, true)})
		return
	}
	if size == 0 && image == "" && deref(b.SnapshotID) == "" && deref(b.SourceVolID) == "" {
		fail(w, r, invalid("size", "Invalid input received: volume size must be given and be an integer greater than 0"))
		return
	}
	v, err := a.svc.CreateVolume(r.Context(), CreateVolumeOpts{Name: name, Description: deref(b.Description), SizeGiB: size,
		VolumeType: deref(b.VolumeType), AvailabilityZone: deref(b.AvailabilityZone), Metadata: b.Metadata, ImageID: image,
		SnapshotID: deref(b.SnapshotID), SourceVolID: deref(b.SourceVolID), Multiattach: b.Multiattach})
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusAccepted, map[string]any{"volume": a.renderVolume(r, v, true)})
}

func (a *api) getVolume(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetVolume(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volume": a.renderVolume(r, v, true)} })
}

func (a *api) updateVolume(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Volume *struct {
			Name        *string           `json:"name"`
			DisplayName *string           `json:"display_name"`
			Description *string           `json:"description"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"volume"`
	}
	if !decoded(w, r, &body) {
		return
	}
	if body.Volume == nil {
		fail(w, r, invalid("volume", "Missing required element 'volume' in request body."))
		return
	}
	name := body.Volume.Name
	if name == nil {
		name = body.Volume.DisplayName
	}
	v, err := a.svc.UpdateVolume(r.Context(), r.PathValue("id"), UpdateVolumeOpts{Name: name, Description: body.Volume.Description, Metadata: body.Volume.Metadata})
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volume": a.renderVolume(r, v, true)} })
}

func (a *api) deleteVolume(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteVolume(r.Context(), r.PathValue("id"), DeleteVolumeOpts{Cascade: queryBool(r, "cascade"), Force: queryBool(r, "force")})
	done(w, r, err, http.StatusAccepted)
}

func (a *api) getVolumeMetadata(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetVolume(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"metadata": orEmpty(v.Metadata)} })
}

func (a *api) setVolumeMetadata(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Metadata map[string]string `json:"metadata"`
		}
		if !decoded(w, r, &body) {
			return
		}
		if body.Metadata == nil {
			fail(w, r, invalid("metadata", "Malformed request body"))
			return
		}
		opts := UpdateVolumeOpts{MergeMetadata: body.Metadata}
		if replace {
			opts = UpdateVolumeOpts{Metadata: body.Metadata}
		}
		v, err := a.svc.UpdateVolume(r.Context(), r.PathValue("id"), opts)
		respond(w, r, err, http.StatusOK, func() any { return map[string]any{"metadata": orEmpty(v.Metadata)} })
	}
}

func (a *api) getVolumeMetadataKey(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetVolume(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	k := r.PathValue("key")
	val, ok := v.Metadata[k]
	if !ok {
		fail(w, r, errdefs.Wrap(errdefs.ErrNotFound, errorf("Volume %s has no metadata with key %s.", v.ID, k)))
		return
	}
	reply(w, http.StatusOK, map[string]any{"meta": map[string]string{k: val}})
}

func (a *api) putVolumeMetadataKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Meta map[string]string `json:"meta"`
	}
	if !decoded(w, r, &body) {
		return
	}
	k := r.PathValue("key")
	if _, ok := body.Meta[k]; !ok || len(body.Meta) != 1 {
		fail(w, r, invalid("meta", "Request body and URI mismatch"))
		return
	}
	_, err := a.svc.UpdateVolume(r.Context(), r.PathValue("id"), UpdateVolumeOpts{MergeMetadata: body.Meta})
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"meta": body.Meta} })
}

func (a *api) deleteVolumeMetadataKey(w http.ResponseWriter, r *http.Request) {
	_, err := a.svc.UpdateVolume(r.Context(), r.PathValue("id"), UpdateVolumeOpts{DeleteMetadataKey: r.PathValue("key")})
	done(w, r, err, http.StatusOK)
}

// volumeAction handles POST /volumes/{id}/action: one key names the action.
func (a *api) volumeAction(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if !decoded(w, r, &body) {
		return
	}
	if len(body) != 1 {
		fail(w, r, invalid("action", "Invalid input received: the body must name exactly one action"))
		return
	}
	var name string
	var arg json.RawMessage
	for name, arg = range body {
	}
	ctx, id := r.Context(), r.PathValue("id")
	un := func(v any) bool {
		if len(arg) == 0 || string(arg) == "null" {
			return true
		}
		if err := json.Unmarshal(arg, v); err != nil {
			fail(w, r, invalid(name, "Invalid input received: %v", err))
			return false
		}
		return true
	}
	var err error
	switch name {
	case "os-extend":
		var b struct {
			NewSize json.RawMessage `json:"new_size"`
		}
		if !un(&b) {
			return
		}
		n, cerr := intField(b.NewSize)
		if cerr != nil {
			fail(w, r, invalid("new_size", "Invalid input received: New size for extend must be specified as an integer."))
			return
		}
		err = a.svc.ExtendVolume(ctx, id, n)
	case "os-reset_status":
		var b struct {
			Status       string `json:"status"`
			AttachStatus string `json:"attach_status"`
		}
		if !un(&b) {
			return
		}
		err = a.svc.ResetVolumeStatus(ctx, id, VolumeStatus(b.Status), b.AttachStatus)
	case "os-set_bootable":
		var b struct {
			Bootable any `json:"bootable"`
		}
		if !un(&b) {
			return
		}
		val, ok := parseBool(b.Bootable)
		if !ok {
			fail(w, r, invalid("bootable", "Invalid input received: Invalid value '%v' for bootable", b.Bootable))
			return
		}
		if err := a.svc.SetBootable(ctx, id, val); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	case "os-force_delete":
		err = a.svc.DeleteVolume(ctx, id, DeleteVolumeOpts{Force: true})
	case "os-volume_upload_image":
		var b struct {
			ImageName       string `json:"image_name"`
			DiskFormat      string `json:"disk_format"`
			ContainerFormat string `json:"container_format"`
			Visibility      string `json:"visibility"`
			Protected       bool   `json:"protected"`
			Force           any    `json:"force"`
		}
		if !un(&b) {
			return
		}
		force, _ := parseBool(b.Force)
		img, v, err := a.svc.UploadVolumeToImage(ctx, id, UploadImageOpts{ImageName: b.ImageName, DiskFormat: b.DiskFormat,
			ContainerFormat: b.ContainerFormat, Visibility: b.Visibility, Protected: b.Protected, Force: force})
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusAccepted, map[string]any{"os-volume_upload_image": map[string]any{
			"id": v.ID, "updated_at": tstr(v.UpdatedAt), "status": string(v.Status), "display_description": null(v.Description),
			"size": v.SizeGiB, "volume_type": nil, "image_id": img.ID, "container_format": img.ContainerFormat,
			"disk_format": img.DiskFormat, "image_name": img.Name, "visibility": b.Visibility, "protected": b.Protected}})
		return
	case "os-update_readonly_flag", "os-set_image_metadata", "os-unset_image_metadata", "os-retype", "os-reimage",
		"os-migrate_volume", "os-migrate_volume_completion", "os-unmanage", "os-begin_detaching", "os-roll_detaching",
		"os-reserve", "os-unreserve", "os-initialize_connection", "os-terminate_connection":
		fail(w, r, errdefs.Wrap(errdefs.ErrUnsupported, fmt.Errorf("the action %s is not implemented", name)))
		return
	case "os-attach":
		var b struct {
			InstanceUUID string `json:"instance_uuid"`
			Mountpoint   string `json:"mountpoint"`
			Mode         string `json:"mode"`
			HostName     string `json:"host_name"`
		}
		if !un(&b) {
			return
		}
		err = a.svc.LegacyAttach(ctx, id, b.InstanceUUID, b.HostName, b.Mountpoint, b.Mode)
	case "os-detach":
		var b struct {
			AttachmentID string `json:"attachment_id"`
		}
		if !un(&b) {
			return
		}
		err = a.svc.LegacyDetach(ctx, id, b.AttachmentID)
	default:
		fail(w, r, invalid("action", "Invalid input received: There is no such action: %s", name))
		return
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// intField reads an integer given as a JSON number or a numeric string,
// as Cinder accepts; absent or null is 0.
func intField(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(strings.TrimSpace(s))
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, err
	}
	return n, nil
}

// parseBool reads a bool given as a JSON bool or a string, as Cinder does.
func parseBool(v any) (bool, bool) {
	switch x := v.(type) {
	case nil:
		return false, true
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "on", "t", "y":
			return true, true
		case "false", "0", "no", "off", "f", "n", "":
			return false, true
		}
	}
	return false, false
}

// --- snapshots

func (a *api) renderSnapshot(r *http.Request, s *Snapshot, detail bool) map[string]any {
	m := map[string]any{"id": s.ID, "name": s.Name, "description": null(s.Description), "volume_id": s.VolumeID,
		"status": string(s.Status), "size": s.SizeGiB, "metadata": orEmpty(s.Metadata), "created_at": tstr(s.CreatedAt),
		"updated_at": tstr(s.UpdatedAt), "links": selfLinks(r, "snapshots", s.ID)}
	if detail {
		progress := "0%"
		if s.Status == SnapshotAvailable {
			progress = "100%"
		}
		m["os-extended-snapshot-attributes:project_id"] = s.ProjectID
		m["os-extended-snapshot-attributes:progress"] = progress
		m["user_id"] = s.UserID
		m["group_snapshot_id"] = nil
	}
	return m
}

func (a *api) listSnapshots(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := ListVolumesOpts{AllTenants: queryBool(r, "all_tenants"), ProjectID: q.Get("project_id"), Name: q.Get("name"), Status: q.Get("status")}
		snaps, err := a.svc.ListSnapshots(r.Context(), opts, q.Get("volume_id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		page(w, r, "snapshots", snaps, func(s *Snapshot) string { return s.ID }, func(s *Snapshot) any { return a.renderSnapshot(r, s, detail) })
	}
}

func (a *api) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Snapshot *struct {
			VolumeID    string            `json:"volume_id"`
			Name        string            `json:"name"`
			DisplayName string            `json:"display_name"`
			Description string            `json:"description"`
			Metadata    map[string]string `json:"metadata"`
			Force       any               `json:"force"`
		} `json:"snapshot"`
	}
	if !decoded(w, r, &body) {
		return
	}
	b := body.Snapshot
	if b == nil || b.VolumeID == "" {
		fail(w, r, invalid("volume_id", "Invalid input received: 'volume_id' must be specified"))
		return
	}
	force, ok := parseBool(b.Force)
	if !ok {
		fail(w, r, invalid("force", "Invalid input received: Invalid value '%v' for force", b.Force))
		return
	}
	name := b.Name
	if name == "" {
		name = b.DisplayName
	}
	s, err := a.svc.CreateSnapshot(r.Context(), CreateSnapshotOpts{VolumeID: b.VolumeID, Name: name, Description: b.Description, Metadata: b.Metadata, Force: force})
	respond(w, r, err, http.StatusAccepted, func() any { return map[string]any{"snapshot": a.renderSnapshot(r, s, true)} })
}

func (a *api) getSnapshot(w http.ResponseWriter, r *http.Request) {
	s, err := a.svc.GetSnapshot(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"snapshot": a.renderSnapshot(r, s, true)} })
}

func (a *api) updateSnapshot(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Snapshot *struct {
			Name        *string `json:"name"`
			DisplayName *string `json:"display_name"`
			Description *string `json:"description"`
		} `json:"snapshot"`
	}
	if !decoded(w, r, &body) {
		return
	}
	if body.Snapshot == nil {
		fail(w, r, invalid("snapshot", "Missing required element 'snapshot' in request body."))
		return
	}
	name := body.Snapshot.Name
	if name == nil {
		name = body.Snapshot.DisplayName
	}
	s, err := a.svc.UpdateSnapshot(r.Context(), r.PathValue("id"), name, body.Snapshot.Description, nil)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"snapshot": a.renderSnapshot(r, s, true)} })
}

func (a *api) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteSnapshot(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusAccepted)
}

func (a *api) getSnapshotMetadata(w http.ResponseWriter, r *http.Request) {
	s, err := a.svc.GetSnapshot(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"metadata": orEmpty(s.Metadata)} })
}

func (a *api) setSnapshotMetadata(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Metadata map[string]string `json:"metadata"`
	}
	if !decoded(w, r, &body) {
		return
	}
	cur, err := a.svc.GetSnapshot(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	md := maps.Clone(orEmpty(cur.Metadata))
	if r.Method == http.MethodPut {
		md = map[string]string{}
	}
	maps.Copy(md, body.Metadata)
	s, err := a.svc.UpdateSnapshot(r.Context(), cur.ID, nil, nil, md)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"metadata": orEmpty(s.Metadata)} })
}

// --- types

func renderType(t *VolumeType) map[string]any {
	return map[string]any{"id": t.ID, "name": t.Name, "description": null(t.Description), "is_public": t.IsPublic,
		"os-volume-type-access:is_public": t.IsPublic, "extra_specs": orEmpty(t.ExtraSpecs), "qos_specs_id": nil}
}

func (a *api) listTypes(w http.ResponseWriter, r *http.Request) {
	var pub *bool
	if v := r.URL.Query().Get("is_public"); v != "" && !strings.EqualFold(v, "none") {
		b := queryBool(r, "is_public")
		pub = &b
	}
	ts, err := a.svc.ListTypes(r.Context(), pub)
	if err != nil {
		fail(w, r, err)
		return
	}
	page(w, r, "volume_types", ts, func(t *VolumeType) string { return t.ID }, func(t *VolumeType) any { return renderType(t) })
}

type typeBody struct {
	VolumeType *struct {
		Name        *string           `json:"name"`
		Description *string           `json:"description"`
		IsPublic    any               `json:"is_public"`
		IsPublicExt any               `json:"os-volume-type-access:is_public"`
		ExtraSpecs  map[string]string `json:"extra_specs"`
	} `json:"volume_type"`
}

func (b *typeBody) public() (*bool, error) {
	v := b.VolumeType.IsPublic
	if v == nil {
		v = b.VolumeType.IsPublicExt
	}
	if v == nil {
		return nil, nil
	}
	p, ok := parseBool(v)
	if !ok {
		return nil, invalid("is_public", "Invalid input received: Invalid value '%v' for is_public", v)
	}
	return &p, nil
}

func (a *api) createType(w http.ResponseWriter, r *http.Request) {
	var body typeBody
	if !decoded(w, r, &body) {
		return
	}
	if body.VolumeType == nil {
		fail(w, r, invalid("volume_type", "Missing required element 'volume_type' in request body."))
		return
	}
	pub, err := body.public()
	if err != nil {
		fail(w, r, err)
		return
	}
	t, err := a.svc.CreateType(r.Context(), CreateTypeOpts{Name: deref(body.VolumeType.Name), Description: deref(body.VolumeType.Description),
		IsPublic: pub, ExtraSpecs: body.VolumeType.ExtraSpecs})
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"volume_type": renderType(t)})
}

func (a *api) defaultType(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.DefaultType(r.Context())
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volume_type": renderType(t)} })
}

func (a *api) getType(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetType(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volume_type": renderType(t)} })
}

func (a *api) updateType(w http.ResponseWriter, r *http.Request) {
	var body typeBody
	if !decoded(w, r, &body) {
		return
	}
	if body.VolumeType == nil {
		fail(w, r, invalid("volume_type", "Missing required element 'volume_type' in request body."))
		return
	}
	pub, err := body.public()
	if err != nil {
		fail(w, r, err)
		return
	}
	t, err := a.svc.UpdateType(r.Context(), r.PathValue("id"), UpdateTypeOpts{Name: body.VolumeType.Name, Description: body.VolumeType.Description, IsPublic: pub})
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volume_type": renderType(t)} })
}

func (a *api) deleteType(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteType(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusAccepted)
}

func (a *api) getSpecs(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetType(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"extra_specs": orEmpty(t.ExtraSpecs)} })
}

func (a *api) setSpecs(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	if !decoded(w, r, &body) {
		return
	}
	_, err := a.svc.UpdateType(r.Context(), r.PathValue("id"), UpdateTypeOpts{SetSpecs: body.ExtraSpecs})
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"extra_specs": orEmpty(body.ExtraSpecs)} })
}

func (a *api) getSpec(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetType(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	k := r.PathValue("key")
	v, ok := t.ExtraSpecs[k]
	if !ok {
		fail(w, r, errdefs.Wrap(errdefs.ErrNotFound, errorf("Volume Type %s has no extra specs with key %s.", t.ID, k)))
		return
	}
	reply(w, http.StatusOK, map[string]string{k: v})
}

func (a *api) putSpec(w http.ResponseWriter, r *http.Request) {
	var body map[string]string
	if !decoded(w, r, &body) {
		return
	}
	k := r.PathValue("key")
	if _, ok := body[k]; !ok || len(body) != 1 {
		fail(w, r, invalid("extra_specs", "Request body and URI mismatch"))
		return
	}
	_, err := a.svc.UpdateType(r.Context(), r.PathValue("id"), UpdateTypeOpts{SetSpecs: body})
	respond(w, r, err, http.StatusOK, func() any { return body })
}

func (a *api) deleteSpec(w http.ResponseWriter, r *http.Request) {
	_, err := a.svc.UpdateType(r.Context(), r.PathValue("id"), UpdateTypeOpts{DeleteSpec: r.PathValue("key")})
	done(w, r, err, http.StatusAccepted)
}

func (a *api) typeAccess(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetType(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	if t.IsPublic {
		fail(w, r, errdefs.Wrap(errdefs.ErrNotFound, errorf("Volume type %s is public and has no access list.", t.ID)))
		return
	}
	out := []map[string]string{}
	for _, p := range t.Projects {
		out = append(out, map[string]string{"volume_type_id": t.ID, "project_id": p})
	}
	reply(w, http.StatusOK, map[string]any{"volume_type_access": out})
}

func (a *api) typeAction(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Add    *struct{ Project string } `json:"addProjectAccess"`
		Remove *struct{ Project string } `json:"removeProjectAccess"`
	}
	if !decoded(w, r, &body) {
		return
	}
	var opts UpdateTypeOpts
	switch {
	case body.Add != nil && body.Add.Project != "":
		opts.AddProject = body.Add.Project
	case body.Remove != nil && body.Remove.Project != "":
		opts.RemoveProject = body.Remove.Project
	default:
		fail(w, r, invalid("project", "Invalid input received: addProjectAccess or removeProjectAccess with a project is required"))
		return
	}
	_, err := a.svc.UpdateType(r.Context(), r.PathValue("id"), opts)
	done(w, r, err, http.StatusAccepted)
}

// --- attachments

func renderConnection(ci *ConnectionInfo) map[string]any {
	if ci == nil {
		return nil
	}
	m := map[string]any{"driver_volume_type": ci.DriverVolumeType}
	if ci.File != nil {
		m["data"] = map[string]any{"path": ci.File.Path, "format": ci.File.Format, "device_path": ci.File.Path}
	}
	return m
}

func renderAttachment(at *Attachment) map[string]any {
	return map[string]any{"id": at.ID, "volume_id": at.VolumeID, "instance": null(at.InstanceID), "status": string(at.Status),
		"attach_mode": at.Mode, "attached_at": tstr(at.AttachedAt), "detached_at": nil, "connection_info": renderConnection(at.Connection)}
}

func (a *api) needs(w http.ResponseWriter, r *http.Request, v httpapi.Version) bool {
	if !httpapi.APIVersion(r.Context()).AtLeast(v) {
		fail(w, r, errdefs.Wrap(errdefs.ErrNotFound, fmt.Errorf("this API needs microversion %s or later", v)))
		return false
	}
	return true
}

func (a *api) listAttachments(w http.ResponseWriter, r *http.Request) {
	if !a.needs(w, r, v327) {
		return
	}
	q := r.URL.Query()
	atts, err := a.svc.ListAttachments(r.Context(), queryBool(r, "all_tenants"), q.Get("volume_id"), q.Get("instance_id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	page(w, r, "attachments", atts, func(at *Attachment) string { return at.ID }, func(at *Attachment) any { return renderAttachment(at) })
}

func (a *api) createAttachment(w http.ResponseWriter, r *http.Request) {
	if !a.needs(w, r, v327) {
		return
	}
	var body struct {
		Attachment *struct {
			VolumeUUID   string     `json:"volume_uuid"`
			InstanceUUID string     `json:"instance_uuid"`
			Connector    *Connector `json:"connector"`
			Mode         string     `json:"mode"`
		} `json:"attachment"`
	}
	if !decoded(w, r, &body) {
		return
	}
	b := body.Attachment
	if b == nil || b.VolumeUUID == "" {
		fail(w, r, invalid("volume_uuid", "Invalid input received: volume_uuid is required"))
		return
	}
	at, err := a.svc.CreateAttachment(r.Context(), CreateAttachmentOpts{VolumeID: b.VolumeUUID, InstanceID: b.InstanceUUID, Connector: b.Connector, Mode: b.Mode})
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"attachment": renderAttachment(at)} })
}

func (a *api) getAttachment(w http.ResponseWriter, r *http.Request) {
	if !a.needs(w, r, v327) {
		return
	}
	at, err := a.svc.GetAttachment(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"attachment": renderAttachment(at)} })
}

func (a *api) updateAttachment(w http.ResponseWriter, r *http.Request) {
	if !a.needs(w, r, v327) {
		return
	}
	var body struct {
		Attachment *struct {
			Connector *Connector `json:"connector"`
		} `json:"attachment"`
	}
	if !decoded(w, r, &body) {
		return
	}
	if body.Attachment == nil || body.Attachment.Connector == nil {
		fail(w, r, invalid("connector", "Invalid input received: connector is required"))
		return
	}
	at, err := a.svc.UpdateAttachment(r.Context(), r.PathValue("id"), *body.Attachment.Connector)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"attachment": renderAttachment(at)} })
}

func (a *api) deleteAttachment(w http.ResponseWriter, r *http.Request) {
	if !a.needs(w, r, v327) {
		return
	}
	if err := a.svc.DeleteAttachment(r.Context(), r.PathValue("id")); err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"attachments": []any{}})
}

func (a *api) attachmentAction(w http.ResponseWriter, r *http.Request) {
	if !a.needs(w, r, v344) {
		return
	}
	var body map[string]json.RawMessage
	if !decoded(w, r, &body) {
		return
	}
	if _, ok := body["os-complete"]; !ok || len(body) != 1 {
		fail(w, r, invalid("action", "Invalid input received: the only attachment action is os-complete"))
		return
	}
	err := a.svc.CompleteAttachment(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusNoContent)
}

// --- backups

func (a *api) renderBackup(r *http.Request, b *Backup, detail bool) map[string]any {
	m := map[string]any{"id": b.ID, "name": b.Name, "links": selfLinks(r, "backups", b.ID)}
	if !detail {
		return m
	}
	m["description"] = null(b.Description)
	m["volume_id"] = b.VolumeID
	m["snapshot_id"] = nil
	m["status"] = string(b.Status)
	m["size"] = b.SizeGiB
	m["object_count"] = b.ObjectCount
	m["container"] = BackupContainer
	m["availability_zone"] = a.svc.cfg.AvailabilityZone
	m["has_dependent_backups"] = a.svc.HasDependents(b)
	m["fail_reason"] = null(b.FailReason)
	m["is_incremental"] = b.Incremental
	m["created_at"] = tstr(b.CreatedAt)
	m["updated_at"] = tstr(b.UpdatedAt)
	m["data_timestamp"] = tstr(b.DataTimestamp)
	m["os-backup-project-attr:project_id"] = b.ProjectID
	m["user_id"] = b.UserID
	m["metadata"] = map[string]string{}
	return m
}

func (a *api) listBackups(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		bs, err := a.svc.ListBackups(r.Context(), ListVolumesOpts{AllTenants: queryBool(r, "all_tenants"), Name: q.Get("name"), Status: q.Get("status")}, q.Get("volume_id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		page(w, r, "backups", bs, func(b *Backup) string { return b.ID }, func(b *Backup) any { return a.renderBackup(r, b, detail) })
	}
}

func (a *api) createBackup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Backup *struct {
			VolumeID    string `json:"volume_id"`
			Name        string `json:"name"`
			Description string `json:"description"`
			Incremental any    `json:"incremental"`
			Force       any    `json:"force"`
			Container   string `json:"container"`
			SnapshotID  string `json:"snapshot_id"`
		} `json:"backup"`
	}
	if !decoded(w, r, &body) {
		return
	}
	b := body.Backup
	if b == nil || b.VolumeID == "" {
		fail(w, r, invalid("volume_id", "Invalid input received: volume_id is required"))
		return
	}
	if b.SnapshotID != "" {
		fail(w, r, errdefs.Wrap(errdefs.ErrUnsupported, errors.New("backups of snapshots are not implemented")))
		return
	}
	inc, ok1 := parseBool(b.Incremental)
	force, ok2 := parseBool(b.Force)
	if !ok1 || !ok2 {
		fail(w, r, invalid("incremental", "Invalid input received: incremental and force must be booleans"))
		return
	}
	bk, err := a.svc.CreateBackup(r.Context(), CreateBackupOpts{VolumeID: b.VolumeID, Name: b.Name, Description: b.Description, Incremental: inc, Force: force})
	respond(w, r, err, http.StatusAccepted, func() any {
		return map[string]any{"backup": map[string]any{"id": bk.ID, "name": bk.Name, "links": selfLinks(r, "backups", bk.ID)}}
	})
}

func (a *api) getBackup(w http.ResponseWriter, r *http.Request) {
	b, err := a.svc.GetBackup(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"backup": a.renderBackup(r, b, true)} })
}

func (a *api) deleteBackup(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteBackup(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusAccepted)
}

func (a *api) restoreBackup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Restore *struct {
			VolumeID string `json:"volume_id"`
			Name     string `json:"name"`
		} `json:"restore"`
	}
	if !decoded(w, r, &body) {
		return
	}
	if body.Restore == nil {
		fail(w, r, invalid("restore", "Missing required element 'restore' in request body."))
		return
	}
	id := r.PathValue("id")
	v, err := a.svc.RestoreBackup(r.Context(), id, RestoreBackupOpts{VolumeID: body.Restore.VolumeID, Name: body.Restore.Name})
	respond(w, r, err, http.StatusAccepted, func() any {
		return map[string]any{"restore": map[string]any{"backup_id": id, "volume_id": v.ID, "volume_name": v.Name}}
	})
}

// --- transfers

func (a *api) renderTransfer(r *http.Request, t *Transfer) map[string]any {
	m := map[string]any{"id": t.ID, "name": null(t.Name), "volume_id": t.VolumeID, "created_at": tstr(t.CreatedAt),
		"links": selfLinks(r, "os-volume-transfer", t.ID)}
	if t.AuthKey != "" {
		m["auth_key"] = t.AuthKey
	}
	return m
}

func (a *api) listTransfers(w http.ResponseWriter, r *http.Request) {
	ts, err := a.svc.ListTransfers(r.Context(), queryBool(r, "all_tenants"))
	if err != nil {
		fail(w, r, err)
		return
	}
	page(w, r, "transfers", ts, func(t *Transfer) string { return t.ID }, func(t *Transfer) any { return a.renderTransfer(r, t) })
}

func (a *api) createTransfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Transfer *struct {
			VolumeID string `json:"volume_id"`
			Name     string `json:"name"`
		} `json:"transfer"`
	}
	if !decoded(w, r, &body) {
		return
	}
	if body.Transfer == nil || body.Transfer.VolumeID == "" {
		fail(w, r, invalid("volume_id", "Invalid input received: volume_id is required"))
		return
	}
	t, err := a.svc.CreateTransfer(r.Context(), body.Transfer.VolumeID, body.Transfer.Name)
	respond(w, r, err, http.StatusAccepted, func() any { return map[string]any{"transfer": a.renderTransfer(r, t)} })
}

func (a *api) getTransfer(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetTransfer(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"transfer": a.renderTransfer(r, t)} })
}

func (a *api) deleteTransfer(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteTransfer(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusAccepted)
}

func (a *api) acceptTransfer(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Accept *struct {
			AuthKey string `json:"auth_key"`
		} `json:"accept"`
	}
	if !decoded(w, r, &body) {
		return
	}
	if body.Accept == nil || body.Accept.AuthKey == "" {
		fail(w, r, invalid("auth_key", "Invalid input received: auth_key is required"))
		return
	}
	t, err := a.svc.AcceptTransfer(r.Context(), r.PathValue("id"), body.Accept.AuthKey)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusAccepted, map[string]any{"transfer": map[string]any{"id": t.ID, "name": null(t.Name), "volume_id": t.VolumeID,
		"links": selfLinks(r, "os-volume-transfer", t.ID)}})
}

// --- limits, quotas, zones

func (a *api) limits(w http.ResponseWriter, r *http.Request) {
	c := identity.CredentialsFrom(r.Context())
	q, err := a.svc.GetQuota(r.Context(), c.ProjectID)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]int{
		"maxTotalVolumes": q[QuotaVolumes].Limit, "maxTotalSnapshots": q[QuotaSnapshots].Limit,
		"maxTotalVolumeGigabytes": q[QuotaGigabytes].Limit, "maxTotalBackups": q[QuotaBackups].Limit,
		"maxTotalBackupGigabytes": q[QuotaBackupGigabytes].Limit, "totalVolumesUsed": q[QuotaVolumes].InUse,
		"totalGigabytesUsed": q[QuotaGigabytes].InUse, "totalSnapshotsUsed": q[QuotaSnapshots].InUse,
		"totalBackupsUsed": q[QuotaBackups].InUse, "totalBackupGigabytesUsed": q[QuotaBackupGigabytes].InUse}}})
}

func (a *api) getQuota(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	q, err := a.svc.GetQuota(r.Context(), target)
	if err != nil {
		fail(w, r, err)
		return
	}
	usage := queryBool(r, "usage")
	out := map[string]any{"id": target}
	for k, u := range q {
		if usage {
			out[k] = u
		} else {
			out[k] = u.Limit
		}
	}
	reply(w, http.StatusOK, map[string]any{"quota_set": out})
}

func (a *api) quotaDefaults(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"id": r.PathValue("target")}
	for k, v := range DefaultQuota() {
		if c, ok := a.svc.cfg.Quota[k]; ok {
			v = c
		}
		out[k] = v
	}
	reply(w, http.StatusOK, map[string]any{"quota_set": out})
}

func (a *api) setQuota(w http.ResponseWriter, r *http.Request) {
	var body struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if !decoded(w, r, &body) {
		return
	}
	limits := map[string]int{}
	for k, raw := range body.QuotaSet {
		if k == "id" || k == "tenant_id" {
			continue
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				fail(w, r, invalid("quota_set", "Invalid input received: Quota value for %s must be an integer", k))
				return
			}
			n = json.Number(s)
		}
		v, err := strconv.Atoi(string(n))
		if err != nil {
			fail(w, r, invalid("quota_set", "Invalid input received: Quota value for %s must be an integer", k))
			return
		}
		limits[k] = v
	}
	target := r.PathValue("target")
	if err := a.svc.SetQuota(r.Context(), target, limits); err != nil {
		fail(w, r, err)
		return
	}
	a.getQuota(w, r)
}

func (a *api) deleteQuota(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteQuota(r.Context(), r.PathValue("target"))
	done(w, r, err, http.StatusOK)
}

func (a *api) zones(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{map[string]any{
		"zoneName": a.svc.cfg.AvailabilityZone, "zoneState": map[string]bool{"available": true}}}})
}
