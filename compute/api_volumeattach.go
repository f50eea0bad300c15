package compute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// Nova's os-volume_attachments: list, show, attach (POST), detach
// (DELETE) and PUT (2.85's delete_on_termination update; swapping one
// volume for another is not supported: 501).
func (a *api) routeVolumeAttachments(rt *httpapi.Router) {
	rt.HandleFunc("GET /v2.1/servers/{id}/os-volume_attachments", a.listVolumeAttachments)
	rt.HandleFunc("POST /v2.1/servers/{id}/os-volume_attachments", a.attachVolume)
	rt.HandleFunc("GET /v2.1/servers/{id}/os-volume_attachments/{vol}", a.getVolumeAttachment)
	rt.HandleFunc("PUT /v2.1/servers/{id}/os-volume_attachments/{vol}", a.updateVolumeAttachment)
	rt.HandleFunc("DELETE /v2.1/servers/{id}/os-volume_attachments/{vol}", a.detachVolume)
}

// renderVolumeAttachment is an attachment at the request's microversion:
// tag from 2.70, delete_on_termination from 2.79, attachment_id and
// bdm_uuid instead of id from 2.89 (show and list; create keeps id).
func renderVolumeAttachment(r *http.Request, v *VolumeAttachment, create bool) map[string]any {
	m := map[string]any{"device": nilIfEmpty(v.Device), "serverId": v.ServerID, "volumeId": v.VolumeID}
	if create || !atLeast(r, 89) {
		m["id"] = v.VolumeID
	}
	if atLeast(r, 70) {
		m["tag"] = nilIfEmpty(v.Tag)
	}
	if atLeast(r, 79) {
		m["delete_on_termination"] = v.DeleteOnTermination
	}
	if !create && atLeast(r, 89) {
		m["attachment_id"], m["bdm_uuid"] = nilIfEmpty(v.AttachmentID), nilIfEmpty(v.BDMID)
	}
	return m
}

func (a *api) listVolumeAttachments(w http.ResponseWriter, r *http.Request) {
	atts, err := a.svc.ListVolumeAttachments(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	// Nova pages this list with limit and offset.
	q := r.URL.Query()
	offset, limit := 0, len(atts)
	for _, p := range []struct {
		name string
		v    *int
	}{{"offset", &offset}, {"limit", &limit}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				fail(w, r, errdefs.Invalid(p.name, "must be a non-negative integer"))
				return
			}
			*p.v = n
		}
	}
	offset = min(offset, len(atts))
	atts = atts[offset:min(len(atts), offset+limit)]
	out := make([]map[string]any, 0, len(atts))
	for i := range atts {
		out = append(out, renderVolumeAttachment(r, &atts[i], false))
	}
	ok(w, http.StatusOK, map[string]any{"volumeAttachments": out})
}

func (a *api) getVolumeAttachment(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetVolumeAttachment(r.Context(), r.PathValue("id"), r.PathValue("vol"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volumeAttachment": renderVolumeAttachment(r, v, false)} })
}

// attachBody is a POST's volumeAttachment; its fields are checked against
// the microversion by decodeAttachBody.
type attachBody struct {
	VolumeID            string   `json:"volumeId"`
	Device              *string  `json:"device"`
	Tag                 *string  `json:"tag"`
	DeleteOnTermination flexBool `json:"delete_on_termination"`
}

// decodeAttachBody reads {"volumeAttachment": {...}}, refusing the
// properties the request's microversion does not know (Nova's schemas
// forbid additional properties).
func decodeAttachBody(w http.ResponseWriter, r *http.Request, update bool) (*attachBody, error) {
	var raw map[string]json.RawMessage
	if err := decodeEnvelope(w, r, "volumeAttachment", &raw); err != nil {
		return nil, err
	}
	allowed := map[string]bool{"volumeId": true, "device": true}
	if update {
		allowed = map[string]bool{"volumeId": true}
		for _, k := range []string{"id", "serverId", "device", "tag", "delete_on_termination"} {
			allowed[k] = atLeast(r, 85)
		}
	} else {
		allowed["tag"] = atLeast(r, 49)
		allowed["delete_on_termination"] = atLeast(r, 79)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !allowed[k] {
			return nil, errdefs.Invalid("volumeAttachment", "additional properties are not allowed (%.40q was unexpected)", k)
		}
	}
	b, _ := json.Marshal(raw)
	var out attachBody
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&out); err != nil {
		return nil, errdefs.Invalid("volumeAttachment", "is malformed: %s", jsonProblem(err))
	}
	if out.VolumeID == "" {
		return nil, errdefs.Invalid("volumeAttachment.volumeId", "is required")
	}
	return &out, nil
}

func (a *api) attachVolume(w http.ResponseWriter, r *http.Request) {
	b, err := decodeAttachBody(w, r, false)
	if err != nil {
		fail(w, r, err)
		return
	}
	o := AttachVolumeOpts{VolumeID: b.VolumeID, DeleteOnTermination: b.DeleteOnTermination.V}
	if b.Device != nil {
		o.Device = *b.Device
	}
	if b.Tag != nil {
		if *b.Tag == "" {
			fail(w, r, errdefs.Invalid("volumeAttachment.tag", "must not be empty"))
			return
		}
		o.Tag = *b.Tag
	}
	v, err := a.svc.AttachVolume(r.Context(), r.PathValue("id"), o)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"volumeAttachment": renderVolumeAttachment(r, v, true)} })
}

func (a *api) updateVolumeAttachment(w http.ResponseWriter, r *http.Request) {
	b, err := decodeAttachBody(w, r, true)
	if err != nil {
		fail(w, r, err)
		return
	}
	id, vol := r.PathValue("id"), r.PathValue("vol")
	if _, err := a.svc.GetVolumeAttachment(r.Context(), id, vol); err != nil {
		fail(w, r, err)
		return
	}
	if b.VolumeID != vol {
		fail(w, r, fmt.Errorf("compute: swapping volume %s for %s is not supported: %w", vol, b.VolumeID, errdefs.ErrUnsupported))
		return
	}
	if !b.DeleteOnTermination.Set {
		fail(w, r, errdefs.Invalid("volumeAttachment", "with the same volumeId, only delete_on_termination may be changed"))
		return
	}
	done(w, r, a.svc.SetVolumeDeleteOnTermination(r.Context(), id, vol, b.DeleteOnTermination.V), http.StatusAccepted)
}

func (a *api) detachVolume(w http.ResponseWriter, r *http.Request) {
	done(w, r, a.svc.DetachVolume(r.Context(), r.PathValue("id"), r.PathValue("vol")), http.StatusAccepted)
}
