package network

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// NewHandler returns the Neutron v2.0 API of svc behind the identity
// middleware (tokens validated by v), with request ids, access log and
// panic recovery.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Neutron)
	rt.HandleFunc("GET /{$}", a.versions)
	rt.HandleFunc("GET /v2.0", a.resources)
	rt.HandleFunc("GET /v2.0/{$}", a.resources)
	rt.HandleFunc("GET /v2.0/extensions", a.extensions)
	rt.HandleFunc("GET /v2.0/extensions/{alias}", a.extension)
	rt.HandleFunc("GET /v2.0/availability_zones", a.availabilityZones)
	rt.HandleFunc("GET /v2.0/network-ip-availabilities", a.ipAvailabilities)
	rt.HandleFunc("GET /v2.0/network-ip-availabilities/{id}", a.ipAvailability)

	a.routeNetworks(rt)
	a.routeSubnets(rt)
	a.routePorts(rt)
	a.routeRouters(rt)
	a.routeFloatingIPs(rt)
	a.routeSecurityGroups(rt)
	a.routeQuotas(rt)
	for _, kind := range []string{KindNetworks, KindSubnets, KindPorts, KindRouters, KindFloatingIPs, KindSecurityGroups} {
		a.routeTags(rt, kind)
	}

	h := identity.Middleware(v, rt, &identity.MiddlewareOptions{ServiceType: "network", Public: func(r *http.Request) bool {
		return r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	}})
	return httpapi.Wrap(h, httpapi.Neutron, logger)
}

type api struct{ svc *Service }

// faultStatus gives the status of Neutron error types whose status their
// errdefs kind does not give.
var faultStatus = map[string]int{"RevisionNumberConstraintFailed": http.StatusPreconditionFailed}

func fail(w http.ResponseWriter, r *http.Request, err error) {
	if f, ok := errors.AsType[*Fault](err); ok {
		err = &httpapi.HTTPError{Status: faultStatus[f.Type], Type: f.Type, Err: err}
	}
	httpapi.WriteError(w, r, httpapi.Neutron, err)
}

func reply(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return httpapi.DecodeJSON(w, r, v, httpapi.DecodeOptions{})
}

// ifMatch parses If-Match: revision_number=N.
func ifMatch(r *http.Request) (*int, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil, nil
	}
	for part := range strings.SplitSeq(h, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "revision_number=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, errdefs.Invalid("If-Match", "%q is not revision_number=N", h)
		}
		return &n, nil
	}
	return nil, errdefs.Invalid("If-Match", "%q is not revision_number=N", h)
}

func (a *api) versions(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"versions": []map[string]any{{
		"id": "v2.0", "status": "CURRENT",
		"links": []httpapi.Link{{Rel: "self", Href: httpapi.BaseURL(r) + "/v2.0/"}},
	}}})
}

var collections = []struct{ name, collection string }{
	{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"}, {"router", "routers"},
	{"floatingip", "floatingips"}, {"security_group", "security-groups"}, {"security_group_rule", "security-group-rules"},
	{"quota", "quotas"}, {"network_ip_availability", "network-ip-availabilities"}, {"availability_zone", "availability_zones"},
	{"extension", "extensions"},
}

func (a *api) resources(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	for _, c := range collections {
		out = append(out, map[string]any{"name": c.name, "collection": c.collection,
			"links": []httpapi.Link{{Rel: "self", Href: httpapi.BaseURL(r) + "/v2.0/" + c.collection}}})
	}
	reply(w, http.StatusOK, map[string]any{"resources": out})
}

// extensionList is what this service implements, by Neutron alias.
var extensionList = [][2]string{
	{"security-group", "Security Group"},
	{"stateful-security-group", "Stateful security group"},
	{"router", "Neutron L3 Router"},
	{"external-net", "Neutron external network"},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode"},
	{"extraroute", "Neutron Extra Route"},
	{"extraroute-atomic", "Atomically add/remove extra routes"},
	{"standard-attr-revisions", "Resource revision numbers"},
	{"revision-if-match", "If-Match constraints based on revision_number"},
	{"standard-attr-tag", "Tag support for resources with standard attribute"},
	{"tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation"},
	{"standard-attr-description", "standard-attr-description"},
	{"standard-attr-timestamp", "Resource timestamps"},
	{"project-id", "project_id field enabled"},
	{"port-security", "Port Security"},
	{"allowed-address-pairs", "Allowed Address Pairs"},
	{"extra_dhcp_opt", "Neutron Extra DHCP options"},
	{"binding", "Port Binding"},
	{"provider", "Provider Network"},
	{"net-mtu", "Network MTU"},
	{"quotas", "Quota management support"},
	{"quota_details", "Quota details management support"},
	{"availability_zone", "Availability Zone"},
	{"network_availability_zone", "Network Availability Zone"},
	{"router_availability_zone", "Router Availability Zone"},
	{"network-ip-availability", "Network IP Availability"},
	{"sorting", "Sorting support"},
	{"pagination", "Pagination support"},
}

func extensionBody(alias, name string) map[string]any {
	return map[string]any{"alias": alias, "name": name, "description": name + ".",
		"updated": "2024-01-01T00:00:00-00:00", "links": []any{}}
}

func (a *api) extensions(w http.ResponseWriter, r *http.Request) {
	out := make([]map[string]any, 0, len(extensionList))
	for _, e := range extensionList {
		out = append(out, extensionBody(e[0], e[1]))
	}
	reply(w, http.StatusOK, map[string]any{"extensions": out})
}

func (a *api) extension(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	for _, e := range extensionList {
		if e[0] == alias {
			reply(w, http.StatusOK, map[string]any{"extension": extensionBody(e[0], e[1])})
			return
		}
	}
	fail(w, r, fault("ExtensionNotFound", errdefs.ErrNotFound, "extension with alias %s does not exist", alias))
}

func (a *api) availabilityZones(w http.ResponseWriter, r *http.Request) {
	if _, err := caller(r.Context()); err != nil {
		fail(w, r, err)
		return
	}
	z := a.svc.cfg.AvailabilityZone
	items := []map[string]any{
		{"name": z, "resource": "network", "state": "available"},
		{"name": z, "resource": "router", "state": "available"},
	}
	a.list(w, r, "availability_zones", items, false)
}

func (a *api) ipAvailabilities(w http.ResponseWriter, r *http.Request) {
	avs, err := a.svc.NetworkIPAvailabilities(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(avs))
	for _, av := range avs {
		items = append(items, toMap(av))
	}
	a.list(w, r, "network_ip_availabilities", items, false)
}

func (a *api) ipAvailability(w http.ResponseWriter, r *http.Request) {
	av, err := a.svc.NetworkIPAvailability(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"network_ip_availability": toMap(av)})
}

// toMap renders v (a record or wire struct) as a JSON object.
func toMap(v any) map[string]any {
	raw, _ := json.Marshal(v)
	m := map[string]any{}
	_ = json.Unmarshal(raw, &m)
	delete(m, "_v")
	return m
}

// routeTags registers the /tags verbs of a collection.
func (a *api) routeTags(rt *httpapi.Router, kind string) {
	base := "/v2.0/" + kind + "/{id}/tags"
	rt.HandleFunc("GET "+base, func(w http.ResponseWriter, r *http.Request) {
		tags, err := a.svc.Tags(r.Context(), kind, r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"tags": tags})
	})
	rt.HandleFunc("PUT "+base, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Tags []string `json:"tags"`
		}
		if err := decode(w, r, &body); err != nil {
			fail(w, r, err)
			return
		}
		if body.Tags == nil {
			fail(w, r, errdefs.Invalid("tags", "required"))
			return
		}
		tags, err := a.svc.ReplaceTags(r.Context(), kind, r.PathValue("id"), body.Tags)
		if err != nil {
			fail(w, r, err)
			return
		}
		reply(w, http.StatusOK, map[string]any{"tags": tags})
	})
	rt.HandleFunc("DELETE "+base, func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.svc.ReplaceTags(r.Context(), kind, r.PathValue("id"), nil); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	rt.HandleFunc("GET "+base+"/{tag}", func(w http.ResponseWriter, r *http.Request) {
		tags, err := a.svc.Tags(r.Context(), kind, r.PathValue("id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		for _, t := range tags {
			if t == r.PathValue("tag") {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		fail(w, r, fault("TagNotFound", errdefs.ErrNotFound, "tag %s could not be found", r.PathValue("tag")))
	})
	rt.HandleFunc("PUT "+base+"/{tag}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.svc.AddTag(r.Context(), kind, r.PathValue("id"), r.PathValue("tag")); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	rt.HandleFunc("DELETE "+base+"/{tag}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.svc.RemoveTag(r.Context(), kind, r.PathValue("id"), r.PathValue("tag")); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
