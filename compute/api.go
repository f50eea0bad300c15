package compute

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// Wire time formats.
const (
	novaTime  = "2006-01-02T15:04:05Z"
	usageTime = "2006-01-02T15:04:05.000000" // OS-SRV-USG:*, no Z (gophercloud)
)

// Microversions are the compute API's: 2.1 to 2.90.
var Microversions = httpapi.Microversions{
	Service: "compute", LegacyHeader: "X-OpenStack-Nova-API-Version",
	Min: httpapi.Version{Major: 2, Minor: 1}, Max: httpapi.Version{Major: 2, Minor: 90},
}

// NewHandler returns the Nova v2.1 API of svc behind identity's auth
// middleware (tokens validated by v), microversion negotiation and the
// standard request id, access log and recovery chain.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Nova)
	rt.HandleFunc("GET /{$}", a.versions)
	rt.HandleFunc("GET /v2.1", a.version)
	rt.HandleFunc("GET /v2.1/{$}", a.version)
	a.routeServers(rt)
	a.routeResources(rt)
	a.routeVolumeAttachments(rt)
	a.routeMoves(rt)
	h := Microversions.Handler(httpapi.Nova, rt)
	h = identity.Middleware(v, h, &identity.MiddlewareOptions{Public: func(r *http.Request) bool {
		switch r.URL.Path {
		case "/", "/v2.1", "/v2.1/":
			return r.Method == http.MethodGet || r.Method == http.MethodHead
		}
		return false
	}})
	return httpapi.Wrap(h, httpapi.Nova, logger)
}

type api struct{ svc *Service }

func fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, httpapi.Nova, err)
}

func ok(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

func noContent(w http.ResponseWriter, status int) { w.WriteHeader(status) }

// respond answers err when it is set, else status with the body body
// builds (body runs only on success, so it may use what err guards).
func respond(w http.ResponseWriter, r *http.Request, err error, status int, body func() any) {
	if err != nil {
		fail(w, r, err)
		return
	}
	ok(w, status, body())
}

// done answers err when it is set, else status with no body.
func done(w http.ResponseWriter, r *http.Request, err error, status int) {
	if err != nil {
		fail(w, r, err)
		return
	}
	noContent(w, status)
}

// atLeast reports whether the request's microversion is 2.minor or later.
func atLeast(r *http.Request, minor int) bool {
	return httpapi.APIVersion(r.Context()).AtLeast(httpapi.Version{Major: 2, Minor: minor})
}

// decode reads a JSON body into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return httpapi.DecodeJSON(w, r, v, httpapi.DecodeOptions{})
}

// decodeEnvelope reads {"key": {...}} into v, naming key when missing.
func decodeEnvelope(w http.ResponseWriter, r *http.Request, key string, v any) error {
	var env map[string]json.RawMessage
	if err := decode(w, r, &env); err != nil {
		return err
	}
	raw, ok := env[key]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return errdefs.Invalid(key, "is required")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(v); err != nil {
		return errdefs.Invalid(key, "is malformed: %s", jsonProblem(err))
	}
	return nil
}

func jsonProblem(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return "field " + te.Field + " must be " + te.Type.String()
	}
	return "invalid JSON"
}

func versionInfo(r *http.Request) httpapi.VersionInfo {
	return httpapi.VersionInfo{
		ID: "v2.1", Status: httpapi.VersionCurrent, Version: Microversions.Max.String(), MinVersion: Microversions.Min.String(),
		Updated:    "2013-07-23T11:33:21Z",
		Links:      []httpapi.Link{{Rel: "self", Href: httpapi.BaseURL(r) + "/v2.1/"}},
		MediaTypes: []httpapi.MediaType{{Base: "application/json", Type: "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

func (a *api) versions(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteVersionList(w, http.StatusOK, []httpapi.VersionInfo{versionInfo(r)})
}

func (a *api) version(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteVersion(w, http.StatusOK, versionInfo(r))
}

func links(r *http.Request, coll, id string) []httpapi.Link {
	base := httpapi.BaseURL(r)
	return []httpapi.Link{
		{Rel: "self", Href: base + "/v2.1/" + coll + "/" + id},
		{Rel: "bookmark", Href: base + "/" + coll + "/" + id},
	}
}

func fmtTime(t time.Time) string { return t.UTC().Format(novaTime) }

func usage(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(usageTime)
}

// flexInt accepts a JSON number or a numeric string, as Nova does.
type flexInt struct {
	V   int
	Set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return errdefs.Invalid("integer", "%q is not an integer", s)
	}
	f.V, f.Set = n, true
	return nil
}

// flexBool accepts a JSON bool or a string ("true", "1", "False" ...).
type flexBool struct {
	V   bool
	Set bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.ToLower(strings.Trim(string(b), `"`))
	switch s {
	case "", "null":
		return nil
	case "true", "1", "yes", "on", "t", "y":
		f.V, f.Set = true, true
	case "false", "0", "no", "off", "f", "n":
		f.V, f.Set = false, true
	default:
		return errdefs.Invalid("boolean", "%q is not a boolean", s)
	}
	return nil
}

// paged writes a collection page of items with "<coll>_links".
func paged[T any](w http.ResponseWriter, r *http.Request, coll string, items []T, id func(T) string, render func(T) map[string]any) {
	page, err := httpapi.ParsePage(r, httpapi.PageOptions{})
	if err != nil {
		fail(w, r, err)
		return
	}
	items, more, err := httpapi.PageSlice(items, page, id)
	if err != nil {
		fail(w, r, errdefs.Invalid("marker", "marker %s could not be found", page.Marker))
		return
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, render(it))
	}
	last := ""
	if len(items) > 0 {
		last = id(items[len(items)-1])
	}
	ok(w, http.StatusOK, httpapi.ListBody(coll, out, httpapi.PageLinks(r, page, more, last)))
}

func creds(r *http.Request) *identity.Credentials { return identity.CredentialsFrom(r.Context()) }
