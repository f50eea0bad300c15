package compute

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

func (a *api) routeServers(rt *httpapi.Router) {
	rt.HandleFunc("GET /v2.1/servers", a.listServers(false))
	rt.HandleFunc("GET /v2.1/servers/detail", a.listServers(true))
	rt.HandleFunc("POST /v2.1/servers", a.createServer)
	rt.HandleFunc("GET /v2.1/servers/{id}", a.getServer)
	rt.HandleFunc("PUT /v2.1/servers/{id}", a.updateServer)
	rt.HandleFunc("DELETE /v2.1/servers/{id}", a.deleteServer)
	rt.HandleFunc("POST /v2.1/servers/{id}/action", a.serverAction)
	rt.HandleFunc("GET /v2.1/servers/{id}/ips", a.serverIPs)
	rt.HandleFunc("GET /v2.1/servers/{id}/ips/{net}", a.serverIPs)
	rt.HandleFunc("GET /v2.1/servers/{id}/os-interface", a.serverInterfaces)
	rt.HandleFunc("GET /v2.1/servers/{id}/metadata", a.getMetadata)
	rt.HandleFunc("PUT /v2.1/servers/{id}/metadata", a.setMetadata(true))
	rt.HandleFunc("POST /v2.1/servers/{id}/metadata", a.setMetadata(false))
	rt.HandleFunc("GET /v2.1/servers/{id}/metadata/{key}", a.getMetadataItem)
	rt.HandleFunc("PUT /v2.1/servers/{id}/metadata/{key}", a.setMetadataItem)
	rt.HandleFunc("DELETE /v2.1/servers/{id}/metadata/{key}", a.deleteMetadataItem)
	rt.HandleFunc("GET /v2.1/servers/{id}/tags", a.getTags)
	rt.HandleFunc("PUT /v2.1/servers/{id}/tags", a.replaceTags)
	rt.HandleFunc("DELETE /v2.1/servers/{id}/tags", a.deleteTag)
	rt.HandleFunc("GET /v2.1/servers/{id}/tags/{tag}", a.checkTag)
	rt.HandleFunc("PUT /v2.1/servers/{id}/tags/{tag}", a.addTag)
	rt.HandleFunc("DELETE /v2.1/servers/{id}/tags/{tag}", a.deleteTag)
	rt.HandleFunc("GET /v2.1/servers/{id}/os-instance-actions", a.listActions)
	rt.HandleFunc("GET /v2.1/servers/{id}/os-instance-actions/{req}", a.getAction)
}

// hostID is Nova's hostId: a hash of the project and host, so that a user
// can tell its servers apart by host without learning host names.
func hostID(projectID, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(projectID + host))
	return hex.EncodeToString(sum[:])
}

func addresses(v *Server) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, p := range v.Ports {
		name := cmpOrS(p.NetworkName, p.NetworkID)
		for _, f := range p.FixedIPs {
			ver := f.Version
			if ver == 0 {
				ver = 4
			}
			out[name] = append(out[name], map[string]any{"addr": f.IPAddress, "version": ver,
				"OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.MAC})
			for _, fl := range f.FloatingIPs {
				out[name] = append(out[name], map[string]any{"addr": fl, "version": 4,
					"OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": p.MAC})
			}
		}
	}
	return out
}

// renderServer is a server's detail body at the request's microversion.
// Admin-only attributes (OS-EXT-SRV-ATTR:*) appear only for callers the
// show_host policy allows.
func (a *api) renderServer(r *http.Request, v *Server) map[string]any {
	m := map[string]any{
		"id": v.ID, "name": v.Name, "status": v.Status(), "tenant_id": v.ProjectID, "user_id": v.UserID,
		"metadata": orEmptyS(v.Metadata), "hostId": hostID(v.ProjectID, v.HostID), "created": fmtTime(v.Created),
		"updated": fmtTime(v.Updated), "addresses": addresses(v), "accessIPv4": v.AccessIPv4, "accessIPv6": v.AccessIPv6,
		"links": links(r, "servers", v.ID), "key_name": nilIfEmpty(v.KeyName), "OS-DCF:diskConfig": "MANUAL",
		"progress": 0, "OS-EXT-AZ:availability_zone": v.AZ, "config_drive": boolStr(v.ConfigDrive),
		"OS-EXT-STS:task_state": nilIfEmpty(string(v.TaskState)), "OS-EXT-STS:vm_state": string(v.VMState),
		"OS-EXT-STS:power_state": int(v.PowerState), "OS-SRV-USG:launched_at": usage(v.LaunchedAt),
		"OS-SRV-USG:terminated_at": usage(v.TerminatedAt),
	}
	if v.ImageID != "" {
		m["image"] = map[string]any{"id": v.ImageID, "links": []httpapi.Link{{Rel: "bookmark", Href: httpapi.BaseURL(r) + "/images/" + v.ImageID}}}
	} else {
		m["image"] = ""
	}
	if atLeast(r, 47) {
		m["flavor"] = map[string]any{"original_name": v.Flavor.Name, "vcpus": v.Flavor.VCPUs, "ram": v.Flavor.RAMMB,
			"disk": v.Flavor.DiskGB, "ephemeral": v.Flavor.EphemeralGB, "swap": v.Flavor.SwapMB, "extra_specs": orEmptyS(v.Flavor.ExtraSpecs)}
	} else {
		m["flavor"] = map[string]any{"id": v.Flavor.ID, "links": []httpapi.Link{{Rel: "bookmark", Href: httpapi.BaseURL(r) + "/flavors/" + v.Flavor.ID}}}
	}
	vols := []map[string]any{}
	for _, bd := range v.BlockDevices {
		if bd.SourceType == "volume" {
			vols = append(vols, map[string]any{"id": bd.UUID, "delete_on_termination": bd.DeleteOnTermination})
		}
	}
	m["os-extended-volumes:volumes_attached"] = vols
	sgs := []map[string]any{}
	for _, g := range v.SecurityGroups {
		sgs = append(sgs, map[string]any{"name": g})
	}
	m["security_groups"] = sgs
	if v.Fault != nil && (v.VMState == VMError || v.VMState == VMDeleted) {
		m["fault"] = map[string]any{"code": v.Fault.Code, "message": v.Fault.Message, "created": fmtTime(v.Fault.Created)}
	}
	if atLeast(r, 9) {
		m["locked"] = v.Locked
	}
	if atLeast(r, 73) {
		m["locked_reason"] = nilIfEmpty(v.LockedReason)
	}
	if atLeast(r, 19) {
		m["description"] = nilIfEmpty(v.Description)
	}
	if atLeast(r, 26) {
		m["tags"] = orEmptyL(v.Tags)
	}
	if atLeast(r, 63) {
		m["trusted_image_certificates"] = nil
	}
	if atLeast(r, 71) {
		g := []string{}
		if v.Hints.Group != "" {
			g = append(g, v.Hints.Group)
		}
		m["server_groups"] = g
	}
	if c := creds(r); c != nil && a.svc.allowed(c, "compute:server:show_host", v.ProjectID) {
		m["OS-EXT-SRV-ATTR:host"] = nilIfEmpty(v.HostID)
		m["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nilIfEmpty(v.HostID)
		m["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + v.ID[:8]
		if atLeast(r, 3) {
			m["OS-EXT-SRV-ATTR:reservation_id"] = v.ReservationID
			m["OS-EXT-SRV-ATTR:launch_index"] = v.LaunchIndex
			m["OS-EXT-SRV-ATTR:hostname"] = v.Hostname
			m["OS-EXT-SRV-ATTR:kernel_id"] = ""
			m["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
			m["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			m["OS-EXT-SRV-ATTR:user_data"] = nilIfEmpty(v.UserData)
		}
		if atLeast(r, 16) {
			m["host_status"] = a.svc.hostStatus(v.HostID)
		}
	}
	if atLeast(r, 90) {
		m["OS-EXT-SRV-ATTR:hostname"] = v.Hostname
	}
	return m
}

func (s *Service) hostStatus(hostID string) string {
	if hostID == "" {
		return ""
	}
	h, err := s.getHost(hostID)
	switch {
	case err != nil:
		return "UNKNOWN"
	case !s.hostUp(h):
		return "DOWN"
	case !h.Enabled:
		return "MAINTENANCE"
	}
	return "UP"
}

func orEmptyS(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orEmptyL(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolStr(b bool) string {
	if b {
		return "True"
	}
	return ""
}

func parseTime(field, s string) (*time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t, nil
		}
	}
	return nil, errdefs.Invalid(field, "must be an ISO 8601 time")
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "t", "yes", "y", "on":
		return true
	}
	return false
}

func (a *api) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		o := ListServersOpts{Name: q.Get("name"), Status: q.Get("status"), Host: q.Get("host"), Flavor: q.Get("flavor"),
			Image: q.Get("image"), IP: q.Get("ip"), AllProjects: truthy(q.Get("all_tenants")) || q.Has("all_tenants") && q.Get("all_tenants") == "",
			ProjectID: cmpOrS(q.Get("project_id"), q.Get("tenant_id"))}
		if cs := q.Get("changes-since"); cs != "" {
			t, err := parseTime("changes-since", cs)
			if err != nil {
				fail(w, r, err)
				return
			}
			o.ChangesSince = t
		}
		if t := q.Get("tags"); t != "" {
			o.Tags = strings.Split(t, ",")
		}
		if l := q.Get("locked"); l != "" {
			b := truthy(l)
			o.Locked = &b
		}
		if o.ProjectID != "" && !o.AllProjects {
			// tenant_id without all_tenants is ignored for everyone but
			// admins, as in Nova.
			if c := creds(r); c == nil || !c.IsSystemReader() {
				o.ProjectID = ""
			}
		}
		list, err := a.svc.ListServers(r.Context(), o)
		if err != nil {
			fail(w, r, err)
			return
		}
		render := func(v *Server) map[string]any {
			return map[string]any{"id": v.ID, "name": v.Name, "links": links(r, "servers", v.ID)}
		}
		if detail {
			render = func(v *Server) map[string]any { return a.renderServer(r, v) }
		}
		paged(w, r, "servers", list, func(v *Server) string { return v.ID }, render)
	}
}

func (a *api) getServer(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"server": a.renderServer(r, v)} })
}

type serverBody struct {
	Name           string            `json:"name"`
	ImageRef       string            `json:"imageRef"`
	FlavorRef      json.RawMessage   `json:"flavorRef"`
	Networks       json.RawMessage   `json:"networks"`
	BDM            []bdmBody         `json:"block_device_mapping_v2"`
	KeyName        string            `json:"key_name"`
	UserData       *string           `json:"user_data"`
	Metadata       map[string]string `json:"metadata"`
	AZ             string            `json:"availability_zone"`
	SecurityGroups []struct {
		Name string `json:"name"`
	} `json:"security_groups"`
	MinCount    flexInt  `json:"min_count"`
	MaxCount    flexInt  `json:"max_count"`
	Description *string  `json:"description"`
	Tags        []string `json:"tags"`
	Hostname    string   `json:"hostname"`
	AccessIPv4  string   `json:"accessIPv4"`
	AccessIPv6  string   `json:"accessIPv6"`
	ConfigDrive flexBool `json:"config_drive"`
	AdminPass   string   `json:"adminPass"`
	ReturnResv  flexBool `json:"return_reservation_id"`
	Personality []struct {
		Path     string `json:"path"`
		Contents string `json:"contents"`
	} `json:"personality"`
}

type bdmBody struct {
	BootIndex           json.RawMessage `json:"boot_index"`
	UUID                string          `json:"uuid"`
	SourceType          string          `json:"source_type"`
	DestinationType     string          `json:"destination_type"`
	VolumeSize          flexInt         `json:"volume_size"`
	DeleteOnTermination flexBool        `json:"delete_on_termination"`
	DeviceName          string          `json:"device_name"`
}

type hintsBody struct {
	Group         string          `json:"group"`
	SameHost      json.RawMessage `json:"same_host"`
	DifferentHost json.RawMessage `json:"different_host"`
}

// ParseHints decodes os:scheduler_hints; same_host and different_host may
// each be a string or a list of strings, as Nova accepts.
func ParseHints(raw json.RawMessage) (SchedulerHints, error) {
	var h SchedulerHints
	if len(raw) == 0 || string(raw) == "null" {
		return h, nil
	}
	var b hintsBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return h, errdefs.Invalid("os:scheduler_hints", "must be an object")
	}
	h.Group = b.Group
	var err error
	if h.SameHost, err = stringOrList("os:scheduler_hints.same_host", b.SameHost); err != nil {
		return h, err
	}
	if h.DifferentHost, err = stringOrList("os:scheduler_hints.different_host", b.DifferentHost); err != nil {
		return h, err
	}
	return h, CheckHints(h)
}

func stringOrList(field string, raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, errdefs.Invalid(field, "must be a server uuid or a list of them")
	}
	return l, nil
}

func (a *api) createServer(w http.ResponseWriter, r *http.Request) {
	var env map[string]json.RawMessage
	if err := decode(w, r, &env); err != nil {
		fail(w, r, err)
		return
	}
	raw, found := env["server"]
	if !found {
		fail(w, r, errdefs.Invalid("server", "is required"))
		return
	}
	var b serverBody
	if err := json.Unmarshal(raw, &b); err != nil {
		if ve, ok := errors.AsType[*errdefs.ValidationError](err); ok {
			fail(w, r, ve)
			return
		}
		fail(w, r, errdefs.Invalid("server", "is malformed: %s", jsonProblem(err)))
		return
	}
	hraw := env["os:scheduler_hints"]
	if hraw == nil {
		hraw = env["OS-SCH-HNT:scheduler_hints"]
	}
	hints, err := ParseHints(hraw)
	if err != nil {
		fail(w, r, err)
		return
	}
	o := CreateServerOpts{Name: b.Name, ImageRef: b.ImageRef, KeyName: b.KeyName, Metadata: b.Metadata, AZ: b.AZ,
		MinCount: b.MinCount.V, MaxCount: b.MaxCount.V, Tags: b.Tags, Hostname: b.Hostname, AccessIPv4: b.AccessIPv4,
		AccessIPv6: b.AccessIPv6, ConfigDrive: b.ConfigDrive.V, AdminPass: b.AdminPass, Hints: hints}
	if b.MinCount.Set && b.MinCount.V < 1 {
		fail(w, r, errdefs.Invalid("min_count", "must be at least 1"))
		return
	}
	if b.MaxCount.Set && b.MaxCount.V < 1 {
		fail(w, r, errdefs.Invalid("max_count", "must be at least 1"))
		return
	}
	if b.Description != nil {
		o.Description = *b.Description
	}
	if b.UserData != nil {
		o.UserData = *b.UserData
	}
	if err := checkName("name", b.Name); err != nil {
		fail(w, r, err)
		return
	}
	if o.FlavorRef, err = refID("flavorRef", b.FlavorRef); err != nil {
		fail(w, r, err)
		return
	}
	if i := strings.LastIndex(o.ImageRef, "/"); i >= 0 {
		o.ImageRef = o.ImageRef[i+1:]
	}
	for _, g := range b.SecurityGroups {
		o.SecurityGroups = append(o.SecurityGroups, g.Name)
	}
	if len(b.Personality) > 0 && atLeast(r, 57) {
		fail(w, r, errdefs.Invalid("personality", "is not allowed from microversion 2.57"))
		return
	}
	if len(b.Networks) > 0 && string(b.Networks) != "null" {
		var mode string
		if json.Unmarshal(b.Networks, &mode) == nil {
			o.NetworksMode = mode
		} else if err := json.Unmarshal(b.Networks, &o.Networks); err != nil {
			fail(w, r, errdefs.Invalid("networks", "must be a list of {uuid, port, fixed_ip}, auto or none"))
			return
		}
	}
	for i, bd := range b.BDM {
		boot := -1
		if len(bd.BootIndex) > 0 && string(bd.BootIndex) != "null" {
			var fi flexInt
			if err := fi.UnmarshalJSON(bd.BootIndex); err != nil {
				fail(w, r, errdefs.Invalid("block_device_mapping_v2["+strconv.Itoa(i)+"].boot_index", "must be an integer"))
				return
			}
			boot = fi.V
		}
		o.BlockDevices = append(o.BlockDevices, BlockDevice{BootIndex: boot, UUID: bd.UUID, SourceType: bd.SourceType,
			DestinationType: bd.DestinationType, VolumeSizeGB: bd.VolumeSize.V, DeleteOnTermination: bd.DeleteOnTermination.V,
			DeviceName: bd.DeviceName})
	}
	srv, err := a.svc.CreateServer(r.Context(), o)
	if err != nil {
		if errors.Is(err, errdefs.ErrQuotaExceeded) {
			// Nova answers 403 for instance quota on create.
			err = &httpapi.HTTPError{Status: http.StatusForbidden, Err: err}
		}
		fail(w, r, err)
		return
	}
	if b.ReturnResv.V {
		ok(w, http.StatusAccepted, map[string]any{"reservation_id": srv.ReservationID})
		return
	}
	w.Header().Set("Location", httpapi.BaseURL(r)+"/v2.1/servers/"+srv.ID)
	sgs := []map[string]string{}
	for _, g := range srv.SecurityGroups {
		sgs = append(sgs, map[string]string{"name": g})
	}
	ok(w, http.StatusAccepted, map[string]any{"server": map[string]any{"id": srv.ID, "links": links(r, "servers", srv.ID),
		"adminPass": srv.AdminPass, "OS-DCF:diskConfig": "MANUAL", "security_groups": sgs}})
}

// refID reads an id or a link to one (flavorRef may be a URL or a number).
func refID(field string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errdefs.Invalid(field, "is required")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", errdefs.Invalid(field, "must be a string")
		}
		s = n.String()
	}
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	return s, nil
}

func (a *api) updateServer(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		Hostname    *string `json:"hostname"`
		AccessIPv4  *string `json:"accessIPv4"`
		AccessIPv6  *string `json:"accessIPv6"`
	}
	if err := decodeEnvelope(w, r, "server", &b); err != nil {
		fail(w, r, err)
		return
	}
	v, err := a.svc.UpdateServer(r.Context(), r.PathValue("id"), UpdateServerOpts{Name: b.Name, Description: b.Description,
		Hostname: b.Hostname, AccessIPv4: b.AccessIPv4, AccessIPv6: b.AccessIPv6})
	if err != nil {
		fail(w, r, err)
		return
	}
	ok(w, http.StatusOK, map[string]any{"server": a.renderServer(r, v)})
}

func (a *api) deleteServer(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteServer(r.Context(), r.PathValue("id"))
	done(w, r, err, http.StatusNoContent)
}

var simpleActions = map[string]Action{
	"os-stop": ActionStop, "os-start": ActionStart, "pause": ActionPause, "unpause": ActionUnpause,
	"suspend": ActionSuspend, "resume": ActionResume,
}

// unsupportedActions are Nova actions Stratus does not have (yet).
var unsupportedActions = []string{"createBackup", "changePassword", "addSecurityGroup", "removeSecurityGroup", "restore",
	"trigger_crash_dump", "os-resetState", "injectNetworkInfo", "resetNetwork", "addFixedIp", "removeFixedIp",
	"os-getVNCConsole", "os-getSPICEConsole", "os-getSerialConsole", "os-getRDPConsole"}

func (a *api) serverAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body map[string]json.RawMessage
	if err := decode(w, r, &body); err != nil {
		fail(w, r, err)
		return
	}
	if len(body) != 1 {
		fail(w, r, errdefs.Invalid("action", "the body must name exactly one action"))
		return
	}
	var name string
	var arg json.RawMessage
	for k, v := range body {
		name, arg = k, v
	}
	ctx := r.Context()
	var err error
	switch name {
	case "reboot":
		var b struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(arg, &b); err != nil {
			fail(w, r, errdefs.Invalid("reboot", "must be {\"type\": \"SOFT\"|\"HARD\"}"))
			return
		}
		switch strings.ToUpper(b.Type) {
		case "SOFT":
			err = a.svc.ServerAction(ctx, id, ActionReboot)
		case "HARD":
			err = a.svc.ServerAction(ctx, id, ActionRebootHard)
		default:
			err = errdefs.Invalid("reboot.type", "must be SOFT or HARD")
		}
	case "lock":
		var b struct {
			Reason string `json:"locked_reason"`
		}
		if len(arg) > 0 && string(arg) != "null" {
			if e := json.Unmarshal(arg, &b); e != nil {
				err = errdefs.Invalid("lock", "must be null or {\"locked_reason\": ...}")
				break
			}
		}
		err = a.svc.LockServer(ctx, id, b.Reason)
	case "unlock":
		err = a.svc.UnlockServer(ctx, id)
	case "forceDelete":
		err = a.svc.ForceDeleteServer(ctx, id)
	case "os-getConsoleOutput":
		var b struct {
			Length json.RawMessage `json:"length"`
		}
		_ = json.Unmarshal(arg, &b)
		lines := 0
		if len(b.Length) > 0 && string(b.Length) != "null" {
			var fi flexInt
			if e := fi.UnmarshalJSON(b.Length); e != nil {
				fail(w, r, errdefs.Invalid("os-getConsoleOutput.length", "must be an integer"))
				return
			}
			lines = fi.V
			if lines < -1 {
				fail(w, r, errdefs.Invalid("os-getConsoleOutput.length", "must be -1 or more"))
				return
			}
		}
		out, err := a.svc.ConsoleOutput(ctx, id, lines)
		if err != nil {
			fail(w, r, err)
			return
		}
		ok(w, http.StatusOK, map[string]any{"output": out})
		return
	default:
		if a.moveAction(w, r, id, name, arg) {
			return
		}
		if act, found := simpleActions[name]; found {
			err = a.svc.ServerAction(ctx, id, act)
		} else if slices.Contains(unsupportedActions, name) {
			if _, gerr := a.svc.GetServer(ctx, id); gerr != nil {
				err = gerr
			} else {
				err = &httpapi.HTTPError{Status: http.StatusNotImplemented, Message: "Action " + name + " is not implemented yet."}
			}
		} else {
			err = errdefs.Invalid("action", "unknown action %q", name)
		}
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	noContent(w, http.StatusAccepted)
}

func (a *api) serverIPs(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	addrs := addresses(v)
	if n := r.PathValue("net"); n != "" {
		l, found := addrs[n]
		if !found {
			fail(w, r, notFound("network", n))
			return
		}
		ok(w, http.StatusOK, map[string]any{n: l})
		return
	}
	ok(w, http.StatusOK, map[string]any{"addresses": addrs})
}

func (a *api) serverInterfaces(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, p := range v.Ports {
		ips := []map[string]any{}
		for _, f := range p.FixedIPs {
			ips = append(ips, map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IPAddress})
		}
		out = append(out, map[string]any{"port_id": p.ID, "net_id": p.NetworkID, "mac_addr": p.MAC, "port_state": "ACTIVE", "fixed_ips": ips})
	}
	ok(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
}

func (a *api) getMetadata(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"metadata": orEmptyS(v.Metadata)} })
}

func (a *api) setMetadata(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var md map[string]string
		if err := decodeEnvelope(w, r, "metadata", &md); err != nil {
			fail(w, r, err)
			return
		}
		out, err := a.svc.SetServerMetadata(r.Context(), r.PathValue("id"), md, replace)
		respond(w, r, err, http.StatusOK, func() any { return map[string]any{"metadata": out} })
	}
}

func (a *api) getMetadataItem(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	k := r.PathValue("key")
	val, found := v.Metadata[k]
	if !found {
		fail(w, r, notFound("metadata item", k))
		return
	}
	ok(w, http.StatusOK, map[string]any{"meta": map[string]string{k: val}})
}

func (a *api) setMetadataItem(w http.ResponseWriter, r *http.Request) {
	var meta map[string]string
	if err := decodeEnvelope(w, r, "meta", &meta); err != nil {
		fail(w, r, err)
		return
	}
	k := r.PathValue("key")
	if _, found := meta[k]; !found || len(meta) != 1 {
		fail(w, r, errdefs.Invalid("meta", "must hold exactly the key of the URL"))
		return
	}
	_, err := a.svc.SetServerMetadata(r.Context(), r.PathValue("id"), meta, false)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"meta": meta} })
}

func (a *api) deleteMetadataItem(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteServerMetadata(r.Context(), r.PathValue("id"), r.PathValue("key"))
	done(w, r, err, http.StatusNoContent)
}

func (a *api) getTags(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"tags": orEmptyL(v.Tags)} })
}

func (a *api) replaceTags(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Tags []string `json:"tags"`
	}
	if err := decode(w, r, &b); err != nil {
		fail(w, r, err)
		return
	}
	tags, err := a.svc.SetServerTags(r.Context(), r.PathValue("id"), b.Tags, true)
	respond(w, r, err, http.StatusOK, func() any { return map[string]any{"tags": tags} })
}

func (a *api) checkTag(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.GetServer(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	if !slices.Contains(v.Tags, r.PathValue("tag")) {
		fail(w, r, notFound("tag", r.PathValue("tag")))
		return
	}
	noContent(w, http.StatusNoContent)
}

func (a *api) addTag(w http.ResponseWriter, r *http.Request) {
	id, tag := r.PathValue("id"), r.PathValue("tag")
	v, err := a.svc.GetServer(r.Context(), id)
	if err != nil {
		fail(w, r, err)
		return
	}
	existed := slices.Contains(v.Tags, tag)
	if _, err := a.svc.SetServerTags(r.Context(), id, []string{tag}, false); err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("Location", httpapi.BaseURL(r)+"/v2.1/servers/"+id+"/tags/"+url.PathEscape(tag))
	if existed {
		noContent(w, http.StatusNoContent)
		return
	}
	noContent(w, http.StatusCreated)
}

func (a *api) deleteTag(w http.ResponseWriter, r *http.Request) {
	err := a.svc.DeleteServerTag(r.Context(), r.PathValue("id"), r.PathValue("tag"))
	done(w, r, err, http.StatusNoContent)
}

func renderAction(r *http.Request, ac *InstanceAction, events bool, admin bool) map[string]any {
	m := map[string]any{"action": ac.Action, "instance_uuid": ac.ServerID, "message": nilIfEmpty(ac.Message),
		"project_id": ac.ProjectID, "request_id": ac.RequestID, "start_time": ac.Start.UTC().Format(usageTime),
		"user_id": ac.UserID}
	if atLeast(r, 58) {
		m["updated_at"] = ac.Updated.UTC().Format(usageTime)
	}
	if events {
		evs := []map[string]any{}
		for _, e := range ac.Events {
			em := map[string]any{"event": e.Event, "start_time": e.Start.UTC().Format(usageTime), "finish_time": usage(e.Finish),
				"result": e.Result}
			if admin {
				em["traceback"] = nilIfEmpty(e.Traceback)
				if atLeast(r, 62) {
					em["host"] = e.Host
				}
			}
			if atLeast(r, 62) {
				em["hostId"] = ""
			}
			evs = append(evs, em)
		}
		m["events"] = evs
	}
	return m
}

func (a *api) listActions(w http.ResponseWriter, r *http.Request) {
	acts, err := a.svc.ListInstanceActions(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, ac := range acts {
		out = append(out, renderAction(r, ac, false, false))
	}
	ok(w, http.StatusOK, map[string]any{"instanceActions": out})
}

func (a *api) getAction(w http.ResponseWriter, r *http.Request) {
	ac, err := a.svc.GetInstanceAction(r.Context(), r.PathValue("id"), r.PathValue("req"))
	if err != nil {
		fail(w, r, err)
		return
	}
	c := creds(r)
	admin := c != nil && c.IsSystemReader()
	ok(w, http.StatusOK, map[string]any{"instanceAction": renderAction(r, ac, true, admin)})
}
