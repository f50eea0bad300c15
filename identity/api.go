package identity

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// Wire time formats.
const (
	tokenTimeFormat    = "2006-01-02T15:04:05.000000Z"
	passwordTimeFormat = "2006-01-02T15:04:05.000000"
)

// NewHandler returns the Keystone v3 API of svc: version discovery, tokens,
// the catalog and the CRUD of every resource, behind the auth middleware
// and the standard request id, access log and recovery chain.
func NewHandler(svc *Service, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Keystone)
	rt.HandleFunc("GET /{$}", a.versions)
	rt.HandleFunc("GET /v3", a.version)
	rt.HandleFunc("GET /v3/{$}", a.version)

	rt.HandleFunc("POST /v3/auth/tokens", a.issueToken)
	rt.HandleFunc("GET /v3/auth/tokens", a.validateToken)
	rt.HandleFunc("DELETE /v3/auth/tokens", a.revokeToken)
	rt.HandleFunc("GET /v3/auth/catalog", a.authCatalog)
	rt.HandleFunc("GET /v3/auth/projects", a.authProjects)
	rt.HandleFunc("GET /v3/auth/domains", a.authDomains)
	rt.HandleFunc("GET /v3/auth/system", a.authSystem)

	a.routeDomains(rt)
	a.routeProjects(rt)
	a.routeUsers(rt)
	a.routeGroups(rt)
	a.routeRoles(rt)
	a.routeGrants(rt)
	a.routeCatalog(rt)
	a.routeAppCreds(rt)
	a.routeTrusts(rt)
	a.routeCredentials(rt)

	h := Middleware(svc, rt, &MiddlewareOptions{Public: func(r *http.Request) bool {
		switch r.URL.Path {
		case "/", "/v3", "/v3/":
			return r.Method == http.MethodGet || r.Method == http.MethodHead
		case "/v3/auth/tokens":
			return r.Method == http.MethodPost
		}
		// Changing one's password needs no token (an expired password
		// gives none): the original password proves who calls.
		return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v3/users/") && strings.HasSuffix(r.URL.Path, "/password")
	}, ServiceType: "identity"})
	return httpapi.Wrap(h, httpapi.Keystone, logger)
}

type api struct{ svc *Service }

func fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, httpapi.Keystone, err)
}

func ok(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

// reply writes err, or else {key: render(r, v)} with status.
func reply[T any](w http.ResponseWriter, r *http.Request, status int, key string, render func(*http.Request, *T) map[string]any, v *T, err error) {
	if err != nil {
		fail(w, r, err)
		return
	}
	ok(w, status, map[string]any{key: render(r, v)})
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return httpapi.DecodeJSON(w, r, v, httpapi.DecodeOptions{})
}

func versionInfo(r *http.Request) httpapi.VersionInfo {
	return httpapi.VersionInfo{
		ID: "v3.14", Status: httpapi.VersionStable, Updated: "2020-04-07T00:00:00Z",
		Links:      []httpapi.Link{{Rel: "self", Href: httpapi.BaseURL(r) + "/v3/"}},
		MediaTypes: []httpapi.MediaType{{Base: "application/json", Type: "application/vnd.openstack.identity-v3+json"}},
	}
}

func (a *api) versions(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteVersionValues(w, http.StatusMultipleChoices, []httpapi.VersionInfo{versionInfo(r)})
}

func (a *api) version(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteVersion(w, http.StatusOK, versionInfo(r))
}

// link returns the absolute URL of path on this server.
func link(r *http.Request, path string) map[string]any {
	return map[string]any{"self": httpapi.BaseURL(r) + path}
}

func listLinks(r *http.Request) map[string]any {
	return map[string]any{"self": httpapi.BaseURL(r) + r.URL.RequestURI(), "previous": nil, "next": nil}
}

// list writes a collection, applying limit and marker.
func list[T any](w http.ResponseWriter, r *http.Request, name string, items []T, id func(T) string, render func(T) map[string]any) {
	page, err := httpapi.ParsePage(r, httpapi.PageOptions{})
	if err != nil {
		fail(w, r, err)
		return
	}
	items, more, err := httpapi.PageSlice(items, page, id)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, render(it))
	}
	body := map[string]any{name: out, "links": listLinks(r)}
	if more {
		body["truncated"] = true
		// With limit=0 the page is empty: there is no last id to page from.
		if len(items) == 0 {
			ok(w, http.StatusOK, body)
			return
		}
		if ls := httpapi.PageLinks(r, page, more, id(items[len(items)-1])); len(ls) > 0 {
			body["links"].(map[string]any)["next"] = ls[0].Href
		}
	}
	ok(w, http.StatusOK, body)
}

// flag reports whether a query flag is set: present and not false.
func flag(r *http.Request, name string) bool {
	q := r.URL.Query()
	if !q.Has(name) {
		return false
	}
	switch strings.ToLower(q.Get(name)) {
	case "false", "0", "no", "off":
		return false
	}
	return true
}

func boolQuery(r *http.Request, name string) *bool {
	q := r.URL.Query()
	if !q.Has(name) {
		return nil
	}
	v := flag(r, name)
	return &v
}

func csv(r *http.Request, name string) []string {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func emptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Tokens.

// rendered caches a token's JSON body, with and without the catalog.
type rendered struct{ body [2]atomic.Pointer[[]byte] }

func (a *api) tokenBody(r *http.Request, t *Token, catalog bool) []byte {
	i := 0
	if catalog {
		i = 1
	}
	if b := t.rendered.body[i].Load(); b != nil {
		return *b
	}
	body := map[string]any{"token": a.renderToken(t, catalog)}
	b, err := json.Marshal(body)
	if err != nil {
		return nil
	}
	b = append(b, '\n')
	t.rendered.body[i].Store(&b)
	return b
}

func (a *api) renderToken(t *Token, catalog bool) map[string]any {
	user := map[string]any{"id": t.User.ID, "name": t.User.Name,
		"domain": map[string]any{"id": t.User.Domain.ID, "name": t.User.Domain.Name}, "password_expires_at": nil}
	if t.User.PasswordExpiresAt != nil {
		user["password_expires_at"] = t.User.PasswordExpiresAt.UTC().Format(passwordTimeFormat)
	}
	roles := make([]map[string]any, 0, len(t.Roles))
	for _, r := range t.Roles {
		roles = append(roles, map[string]any{"id": r.ID, "name": r.Name})
	}
	out := map[string]any{
		"methods": t.Methods, "user": user, "audit_ids": t.AuditIDs,
		"expires_at": t.ExpiresAt.UTC().Format(tokenTimeFormat),
		"issued_at":  t.IssuedAt.UTC().Format(tokenTimeFormat),
	}
	if t.Project != nil {
		out["project"] = map[string]any{"id": t.Project.ID, "name": t.Project.Name,
			"domain": map[string]any{"id": t.Project.Domain.ID, "name": t.Project.Domain.Name}}
		out["is_domain"] = false
		out["is_admin_project"] = t.IsAdminProject
	}
	if t.Domain != nil {
		out["domain"] = map[string]any{"id": t.Domain.ID, "name": t.Domain.Name}
	}
	if t.System {
		out["system"] = map[string]any{"all": true}
	}
	if tr := t.Trust; tr != nil {
		out["OS-TRUST:trust"] = map[string]any{"id": tr.ID, "impersonation": tr.Impersonation,
			"trustor_user": map[string]any{"id": tr.TrustorUserID}, "trustee_user": map[string]any{"id": tr.TrusteeUserID}}
	}
	if ac := t.ApplicationCredential; ac != nil {
		acm := map[string]any{"id": ac.ID, "name": ac.Name, "restricted": !ac.Unrestricted}
		if len(ac.AccessRules) > 0 {
			acm["access_rules"] = renderAccessRules(ac.AccessRules)
		}
		out["application_credential"] = acm
	}
	if t.Project != nil || t.Domain != nil || t.System {
		out["roles"] = roles
		if catalog {
			project := ""
			if t.Project != nil {
				project = t.Project.ID
			}
			out["catalog"] = a.svc.catalog(a.svc.st.Snapshot(), project)
		}
	}
	return out
}

func (a *api) issueToken(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		fail(w, r, &httpapi.HTTPError{Status: http.StatusRequestEntityTooLarge, Err: err})
		return
	}
	req, err := ParseAuthRequest(body)
	if err != nil {
		fail(w, r, err)
		return
	}
	id, tok, err := a.svc.Authenticate(r.Context(), *req)
	if err != nil {
		fail(w, r, err)
		return
	}
	w.Header().Set("X-Subject-Token", id)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(a.tokenBody(r, tok, !r.URL.Query().Has("nocatalog")))
}

// subject validates the X-Subject-Token for the caller.
func (a *api) subject(r *http.Request) (string, *Token, error) {
	id := r.Header.Get("X-Subject-Token")
	if id == "" {
		return "", nil, errdefs.Invalid("X-Subject-Token", "header is required")
	}
	tok, err := a.svc.ValidateToken(r.Context(), id)
	if err != nil {
		// An invalid subject token is a missing resource, not a failed
		// authentication of the caller.
		if errors.Is(err, errdefs.ErrUnauthenticated) {
			return "", nil, notFound("token", "subject token")
		}
		return "", nil, err
	}
	if err := a.svc.policy.Enforce(r.Context(), "identity:validate_token", Target{UserID: tok.User.ID}); err != nil {
		return "", nil, err
	}
	return id, tok, nil
}

func (a *api) validateToken(w http.ResponseWriter, r *http.Request) {
	id, tok, err := a.subject(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("X-Subject-Token", id)
	h.Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.tokenBody(r, tok, !r.URL.Query().Has("nocatalog")))
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Subject-Token")
	if id == "" {
		fail(w, r, errdefs.Invalid("X-Subject-Token", "header is required"))
		return
	}
	if err := a.svc.RevokeToken(r.Context(), id); err != nil {
		if errors.Is(err, errdefs.ErrUnauthenticated) {
			err = notFound("token", "subject token")
		}
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) authCatalog(w http.ResponseWriter, r *http.Request) {
	cat, err := a.svc.Catalog(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	ok(w, http.StatusOK, map[string]any{"catalog": cat, "links": listLinks(r)})
}

func (a *api) authProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := a.svc.AuthProjects(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	list(w, r, "projects", ps, func(p *Project) string { return p.ID }, func(p *Project) map[string]any { return renderProject(r, p) })
}

func (a *api) authDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := a.svc.AuthDomains(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	list(w, r, "domains", ds, func(d *Domain) string { return d.ID }, func(d *Domain) map[string]any { return renderDomain(r, d) })
}

func (a *api) authSystem(w http.ResponseWriter, r *http.Request) {
	has, err := a.svc.AuthSystem(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	sys := []map[string]any{}
	if has {
		sys = append(sys, map[string]any{"all": true})
	}
	ok(w, http.StatusOK, map[string]any{"system": sys, "links": listLinks(r)})
}
