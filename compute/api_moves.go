package compute

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

func (a *api) routeMoves(rt *httpapi.Router) {
	rt.HandleFunc("GET /v2.1/os-migrations", a.listMigrations)
	rt.HandleFunc("GET /v2.1/servers/{id}/migrations", a.serverMigrations)
	rt.HandleFunc("GET /v2.1/servers/{id}/migrations/{mid}", a.serverMigration)
	rt.HandleFunc("POST /v2.1/servers/{id}/os-interface", a.attachInterface)
	rt.HandleFunc("GET /v2.1/servers/{id}/os-interface/{port}", a.getInterface)
	rt.HandleFunc("DELETE /v2.1/servers/{id}/os-interface/{port}", a.detachInterface)
}

// hasBody reports whether an action's argument is an object (not null).
func hasBody(arg json.RawMessage) bool {
	return len(arg) > 0 && string(arg) != "null"
}

// unmarshalArg decodes an action's argument, naming the action on error.
func unmarshalArg(name string, arg json.RawMessage, v any) error {
	if !hasBody(arg) {
		return nil
	}
	if err := json.Unmarshal(arg, v); err != nil {
		return errdefs.Invalid(name, "is malformed: %s", jsonProblem(err))
	}
	return nil
}

// hostArg decodes the optional "host" of a migrate or evacuate action
// ("" when it is absent or null).
func hostArg(name string, arg json.RawMessage) (string, error) {
	var b struct {
		Host *string `json:"host"`
	}
	if err := unmarshalArg(name, arg, &b); err != nil || b.Host == nil {
		return "", err
	}
	return *b.Host, nil
}

// moveAction answers the compute II server actions; it reports false for
// an action it does not know.
func (a *api) moveAction(w http.ResponseWriter, r *http.Request, id, name string, arg json.RawMessage) bool {
	ctx := r.Context()
	var err error
	status := http.StatusAccepted
	var body any
	switch name {
	case "resize":
		var b struct {
			FlavorRef json.RawMessage `json:"flavorRef"`
		}
		if err = unmarshalArg(name, arg, &b); err == nil {
			var fl string
			if fl, err = refID("resize.flavorRef", b.FlavorRef); err == nil {
				err = a.svc.ResizeServer(ctx, id, fl)
			}
		}
	case "confirmResize":
		err, status = a.svc.ConfirmResize(ctx, id), http.StatusNoContent
	case "revertResize":
		err = a.svc.RevertResize(ctx, id)
	case "migrate":
		var host string
		if host, err = hostArg(name, arg); err == nil {
			if !atLeast(r, 56) {
				host = ""
			}
			err = a.svc.MigrateServer(ctx, id, host)
		}
	case "os-migrateLive":
		var host string
		if host, err = hostArg(name, arg); err == nil {
			err = a.svc.LiveMigrateServer(ctx, id, host)
		}
	case "evacuate":
		var host string
		if host, err = hostArg(name, arg); err == nil {
			// From 2.14 Nova answers 200 with no adminPass; an empty
			// object keeps clients that decode the body (gophercloud) happy.
			err, status, body = a.svc.EvacuateServer(ctx, id, host), http.StatusOK, map[string]any{}
			if !atLeast(r, 14) {
				body = map[string]any{"adminPass": newUUID()[:12]}
			}
		}
	case "rebuild":
		return a.rebuild(w, r, id, arg)
	case "createImage":
		var b struct {
			Name     string            `json:"name"`
			Metadata map[string]string `json:"metadata"`
		}
		if err = unmarshalArg(name, arg, &b); err == nil {
			var imageID string
			if imageID, err = a.svc.CreateServerImage(ctx, id, b.Name, b.Metadata); err == nil {
				w.Header().Set("Location", httpapi.BaseURL(r)+"/images/"+imageID)
				if atLeast(r, 45) {
					body = map[string]any{"image_id": imageID}
				}
			}
		}
	case "rescue":
		var b struct {
			AdminPass string `json:"adminPass"`
			ImageRef  string `json:"rescue_image_ref"`
		}
		if err = unmarshalArg(name, arg, &b); err == nil {
			err, status = a.svc.RescueServer(ctx, id, b.ImageRef), http.StatusOK
			body = map[string]any{"adminPass": cmpOrS(b.AdminPass, newUUID()[:12])}
		}
	case "unrescue":
		err = a.svc.UnrescueServer(ctx, id)
	case "shelve":
		err = a.svc.ShelveServer(ctx, id, false)
	case "shelveOffload":
		err = a.svc.ShelveOffloadServer(ctx, id)
	case "unshelve":
		var b struct {
			AZ *string `json:"availability_zone"`
		}
		if err = unmarshalArg(name, arg, &b); err == nil {
			az := ""
			if b.AZ != nil {
				az = *b.AZ
			}
			err = a.svc.UnshelveServer(ctx, id, az)
		}
	default:
		return false
	}
	if err != nil {
		fail(w, r, err)
		return true
	}
	if body != nil {
		ok(w, status, body)
		return true
	}
	noContent(w, status)
	return true
}

func (a *api) rebuild(w http.ResponseWriter, r *http.Request, id string, arg json.RawMessage) bool {
	var b struct {
		ImageRef    string             `json:"imageRef"`
		Name        *string            `json:"name"`
		Metadata    *map[string]string `json:"metadata"`
		KeyName     json.RawMessage    `json:"key_name"`
		UserData    json.RawMessage    `json:"user_data"`
		Description *string            `json:"description"`
		Hostname    *string            `json:"hostname"`
		AdminPass   string             `json:"adminPass"`
	}
	if err := unmarshalArg("rebuild", arg, &b); err != nil {
		fail(w, r, err)
		return true
	}
	o := RebuildOpts{ImageRef: b.ImageRef, Name: b.Name, Description: b.Description}
	if b.Metadata != nil {
		o.Metadata = *b.Metadata
		if o.Metadata == nil {
			o.Metadata = map[string]string{}
		}
	}
	if b.Hostname != nil && atLeast(r, 90) {
		o.Hostname = b.Hostname
	}
	for _, f := range []struct {
		field string
		raw   json.RawMessage
		min   int
		to    **string
	}{{"rebuild.key_name", b.KeyName, 54, &o.KeyName}, {"rebuild.user_data", b.UserData, 57, &o.UserData}} {
		if len(f.raw) == 0 || !atLeast(r, f.min) {
			continue
		}
		v := ""
		if string(f.raw) != "null" && json.Unmarshal(f.raw, &v) != nil {
			fail(w, r, errdefs.Invalid(f.field, "must be a string or null"))
			return true
		}
		*f.to = &v
	}
	v, err := a.svc.RebuildServer(r.Context(), id, o)
	if err != nil {
		fail(w, r, err)
		return true
	}
	m := a.renderServer(r, v)
	m["adminPass"] = cmpOrS(b.AdminPass, newUUID()[:12])
	ok(w, http.StatusAccepted, map[string]any{"server": m})
	return true
}

// flavorDBID is the integer Nova shows for a flavor in a migration (its
// internal database id, opaque to users): the flavor id when it is a
// number, else a stable 31-bit hash of it.
func flavorDBID(id string) int64 {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int64(h.Sum32() & 0x7fffffff)
}

func renderMigration(r *http.Request, m *Migration) map[string]any {
	id, _ := strconv.Atoi(m.ID)
	out := map[string]any{"id": id, "instance_uuid": m.ServerID, "status": m.Status,
		"source_compute": m.SourceHost, "source_node": m.SourceHost, "source_region": "RegionOne",
		"dest_compute": nilIfEmpty(m.DestHost), "dest_node": nilIfEmpty(m.DestHost), "dest_host": nilIfEmpty(m.DestHost), "dest_region": "RegionOne",
		"old_instance_type_id": flavorDBID(m.OldFlavor.ID), "new_instance_type_id": flavorDBID(m.NewFlavor.ID),
		"created_at": m.Created.UTC().Format(usageTime), "updated_at": m.Updated.UTC().Format(usageTime)}
	if atLeast(r, 23) {
		out["migration_type"] = m.Type
		if m.Type == MigrationLive && !m.terminal() {
			out["links"] = links(r, "servers/"+m.ServerID+"/migrations", m.ID)
		}
	}
	if atLeast(r, 59) {
		out["uuid"] = m.UUID
	}
	if atLeast(r, 80) {
		out["user_id"], out["project_id"] = m.UserID, m.ProjectID
	}
	return out
}

func (a *api) listMigrations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := ListMigrationsOpts{ServerID: q.Get("instance_uuid"), Host: q.Get("host"), Status: q.Get("status"), Type: q.Get("migration_type"),
		SourceHost: q.Get("source_compute"), UserID: q.Get("user_id"), ProjectID: q.Get("project_id")}
	if cs := q.Get("changes-since"); cs != "" {
		t, err := parseTime("changes-since", cs)
		if err != nil {
			fail(w, r, err)
			return
		}
		o.ChangesSince = t
	}
	list, err := a.svc.ListMigrations(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	if !atLeast(r, 59) {
		out := []map[string]any{}
		for _, m := range list {
			out = append(out, renderMigration(r, m))
		}
		ok(w, http.StatusOK, map[string]any{"migrations": out})
		return
	}
	paged(w, r, "migrations", list, func(m *Migration) string { return m.UUID }, func(m *Migration) map[string]any { return renderMigration(r, m) })
}

// serverMigrations lists a server's live migrations under way (Nova's
// GET /servers/{id}/migrations).
func (a *api) serverMigrations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.svc.GetServer(r.Context(), id); err != nil {
		fail(w, r, err)
		return
	}
	list, err := a.svc.ListMigrations(r.Context(), ListMigrationsOpts{ServerID: id, Type: MigrationLive})
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, m := range list {
		if !m.terminal() {
			out = append(out, renderServerMigration(r, m))
		}
	}
	ok(w, http.StatusOK, map[string]any{"migrations": out})
}

func renderServerMigration(r *http.Request, m *Migration) map[string]any {
	out := renderMigration(r, m)
	out["server_uuid"] = m.ServerID
	delete(out, "instance_uuid")
	return out
}

func (a *api) serverMigration(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	list, err := a.svc.ListMigrations(r.Context(), ListMigrationsOpts{ServerID: id, Type: MigrationLive})
	if err != nil {
		fail(w, r, err)
		return
	}
	for _, m := range list {
		if m.ID == r.PathValue("mid") && !m.terminal() {
			ok(w, http.StatusOK, map[string]any{"migration": renderServerMigration(r, m)})
			return
		}
	}
	fail(w, r, notFound("migration", r.PathValue("mid")))
}

func renderInterface(p *Port) map[string]any {
	ips := []map[string]any{}
	for _, f := range p.FixedIPs {
		ips = append(ips, map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IPAddress})
	}
	return map[string]any{"port_id": p.ID, "net_id": p.NetworkID, "mac_addr": p.MAC, "port_state": "ACTIVE", "fixed_ips": ips}
}

func (a *api) attachInterface(w http.ResponseWriter, r *http.Request) {
	var b struct {
		PortID   string `json:"port_id"`
		NetID    string `json:"net_id"`
		FixedIPs []struct {
			IP string `json:"ip_address"`
		} `json:"fixed_ips"`
	}
	if err := decodeEnvelope(w, r, "interfaceAttachment", &b); err != nil {
		fail(w, r, err)
		return
	}
	if len(b.FixedIPs) > 1 {
		fail(w, r, errdefs.Invalid("interfaceAttachment.fixed_ips", "at most one fixed IP"))
		return
	}
	o := AttachInterfaceOpts{PortID: strings.TrimSpace(b.PortID), NetworkID: strings.TrimSpace(b.NetID)}
	if len(b.FixedIPs) == 1 {
		o.FixedIP = b.FixedIPs[0].IP
	}
	p, err := a.svc.AttachInterface(r.Context(), r.PathValue("id"), o)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"interfaceAttachment": renderInterface(p)} })
}

func (a *api) getInterface(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	for i := range v.Ports {
		if v.Ports[i].ID == r.PathValue("port") {
			ok(w, http.StatusOK, map[string]any{"interfaceAttachment": renderInterface(&v.Ports[i])})
			return
		}
	}
	fail(w, r, notFound("port", r.PathValue("port")))
}

func (a *api) detachInterface(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DetachInterface(r.Context(), r.PathValue("id"), r.PathValue("port"))
	done(w, r, err, http.StatusAccepted)
}
