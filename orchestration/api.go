package orchestration

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
)

const heatTime = "2006-01-02T15:04:05Z"

// NewHandler returns the Heat v1 API of svc: version discovery and
// /v1/{project_id}/... behind identity's auth middleware (tokens validated
// by v). Errors have Heat's shape ({"code":…,"title":…,"error":{…}}).
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Heat)
	rt.HandleFunc("GET /{$}", a.versions)
	p := "/v1/{project}"
	rt.HandleFunc("GET "+p+"/stacks", a.scoped(a.listStacks))
	rt.HandleFunc("POST "+p+"/stacks", a.scoped(a.createStack))
	rt.HandleFunc(p+"/stacks/{rest...}", a.scoped(a.stack))
	rt.HandleFunc("POST "+p+"/validate", a.scoped(a.validate))
	rt.HandleFunc("GET "+p+"/resource_types", a.scoped(a.resourceTypes))
	rt.HandleFunc("GET "+p+"/resource_types/{type}", a.scoped(a.resourceType))
	rt.HandleFunc("GET "+p+"/template_versions", a.scoped(a.templateVersions))
	rt.HandleFunc("POST /signal/{stack}/{resource}/{secret}", a.signal)
	// The root, and pre-signed signal URLs (their secret is the
	// credential), need no token.
	public := func(r *http.Request) bool { return r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/signal/") }
	h := identity.Middleware(v, rt, &identity.MiddlewareOptions{ServiceType: "orchestration", Public: public})
	return httpapi.Wrap(h, httpapi.Heat, logger)
}

type api struct{ svc *Service }

// fail writes err in Heat's error body; a template that does not validate
// is a StackValidationFailed, as Heat names it.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *errdefs.ValidationError
	if errors.As(err, &ve) && !errors.Is(err, errdefs.ErrUnsupported) {
		err = &httpapi.HTTPError{Type: "StackValidationFailed", Err: err}
	}
	httpapi.WriteError(w, r, httpapi.Heat, err)
}

// scoped answers 404 for a URL naming another project than the token's.
func (a *api) scoped(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := identity.CredentialsFrom(r.Context())
		if c == nil || r.PathValue("project") != c.ProjectID {
			fail(w, r, fmt.Errorf("orchestration: the project %q: %w", r.PathValue("project"), errdefs.ErrNotFound))
			return
		}
		f(w, r)
	}
}

// signal is POST /signal/{stack}/{resource}/{secret}: a pre-signed
// signal (a scaling policy's alarm_url, a wait condition handle's
// endpoint), with an optional JSON body.
func (a *api) signal(w http.ResponseWriter, r *http.Request) {
	var data map[string]any
	if r.ContentLength != 0 {
		var raw any
		if err := httpapi.DecodeJSON(w, r, &raw, httpapi.DecodeOptions{MaxBytes: 128 << 10}); err != nil && r.ContentLength > 0 {
			fail(w, r, err)
			return
		}
		data, _ = raw.(map[string]any)
	}
	if err := a.svc.Signal(r.Context(), r.PathValue("stack"), r.PathValue("resource"), r.PathValue("secret"), data); err != nil {
		fail(w, r, err)
		return
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, nil)
}

func (a *api) versions(w http.ResponseWriter, r *http.Request) {
	_ = httpapi.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []any{map[string]any{
		"id": "v1.0", "status": "CURRENT", "links": []any{map[string]any{"rel": "self", "href": httpapi.BaseURL(r) + "/v1/"}}}}})
}

func (a *api) base(r *http.Request) string {
	return httpapi.BaseURL(r) + "/v1/" + r.PathValue("project")
}

func (a *api) stackURL(r *http.Request, st *Stack) string {
	return a.base(r) + "/stacks/" + url.PathEscape(st.Name) + "/" + st.ID
}

func tstr(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(heatTime)
}

func (a *api) stackJSON(r *http.Request, st *Stack) map[string]any {
	var deleted any
	if st.Deleted != nil {
		deleted = tstr(*st.Deleted)
	}
	tags := any(nil)
	if len(st.Tags) > 0 {
		tags = st.Tags
	}
	return map[string]any{"id": st.ID, "stack_name": st.Name, "description": st.Description,
		"creation_time": tstr(st.Created), "updated_time": tstr(st.Updated), "deletion_time": deleted,
		"stack_status": st.StackStatus(), "stack_status_reason": st.StatusReason, "stack_owner": nil,
		"stack_user_project_id": st.ProjectID, "project": st.ProjectID, "parent": parentOf(st), "tags": tags,
		"links": []any{map[string]any{"href": a.stackURL(r, st), "rel": "self"}}}
}

// action is POST …/actions: cancel_update (rolling back) and
// cancel_without_rollback.
func (a *api) action(w http.ResponseWriter, r *http.Request, st *Stack) {
	var body map[string]any
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: 4 << 10}); err != nil {
		fail(w, r, err)
		return
	}
	if len(body) != 1 {
		fail(w, r, errdefs.Invalid("action", "the body must name one action"))
		return
	}
	var err error
	switch {
	case hasKey(body, "cancel_update"):
		err = a.svc.CancelUpdate(r.Context(), st.ID, true)
	case hasKey(body, "cancel_without_rollback"):
		err = a.svc.CancelUpdate(r.Context(), st.ID, false)
	default:
		for k := range body {
			err = errdefs.Wrap(errdefs.ErrUnsupported, errdefs.Invalid("action", "the stack action %q is not supported", k))
		}
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

func parentOf(st *Stack) any {
	if st.ParentID == "" {
		return nil
	}
	return st.ParentID
}

// signalResource is POST …/resources/{name}/signal with a token
// (openstack stack resource signal).
func (a *api) signalResource(w http.ResponseWriter, r *http.Request, st *Stack, name string) {
	var data map[string]any
	if r.ContentLength != 0 {
		var raw any
		if err := httpapi.DecodeJSON(w, r, &raw, httpapi.DecodeOptions{MaxBytes: 128 << 10}); err != nil && r.ContentLength > 0 {
			fail(w, r, err)
			return
		}
		data, _ = raw.(map[string]any)
	}
	if err := a.svc.SignalResource(r.Context(), st.ID, name, data); err != nil {
		fail(w, r, err)
		return
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, nil)
}

func (a *api) listStacks(w http.ResponseWriter, r *http.Request) {
	sts, err := a.svc.ListStacks(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	q := r.URL.Query()
	out := []any{}
	for _, st := range sts {
		if n := q.Get("stack_name"); n != "" && n != st.Name {
			continue
		}
		if s := q.Get("stack_status"); s != "" && s != st.StackStatus() {
			continue
		}
		out = append(out, a.stackJSON(r, st))
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"stacks": out})
}

type createRequest struct {
	StackName       string            `json:"stack_name"`
	Template        json.RawMessage   `json:"template"`
	TemplateURL     string            `json:"template_url"`
	Parameters      map[string]any    `json:"parameters"`
	Files           map[string]string `json:"files"`
	Environment     json.RawMessage   `json:"environment"`
	DisableRollback *bool             `json:"disable_rollback"`
	TimeoutMins     *int              `json:"timeout_mins"`
	Tags            string            `json:"tags"`
}

// templateBytes is the template of a request: a JSON document, or a
// string holding YAML or JSON.
func templateBytes(raw json.RawMessage, tmplURL string) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if tmplURL != "" {
			return nil, errdefs.Wrap(errdefs.ErrUnsupported, errdefs.Invalid("template_url", "template_url is not supported; send the template"))
		}
		return nil, errdefs.Invalid("template", "no template given")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s), nil
	}
	return raw, nil
}

// parseEnvironment decodes a request's environment: a JSON object with
// parameters, parameter_defaults and resource_registry (type to type or
// to a template of the files map).
func parseEnvironment(raw json.RawMessage) (*Environment, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var env struct {
		Parameters        map[string]any `json:"parameters"`
		ParameterDefaults map[string]any `json:"parameter_defaults"`
		ResourceRegistry  map[string]any `json:"resource_registry"`
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		// gophercloud sends the environment file's text (YAML or JSON).
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		var doc any
		if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
			return nil, errdefs.Invalid("environment", "not valid YAML or JSON: %s", trimErr(err))
		}
		doc, err := normalize(doc, 0, 32)
		if err != nil {
			return nil, errdefs.Invalid("environment", "nested too deep")
		}
		if raw, err = json.Marshal(doc); err != nil {
			return nil, errdefs.Invalid("environment", "the environment must be a map")
		}
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, errdefs.Invalid("environment", "the environment must be a map")
	}
	for k := range envKeys(raw) {
		if !slices.Contains([]string{"parameters", "parameter_defaults", "resource_registry", "event_sinks", "encrypted_param_names", "parameter_merge_strategies"}, k) {
			return nil, errdefs.Invalid("environment."+k, "%q is not a valid environment section", k)
		}
	}
	out := &Environment{Parameters: env.Parameters, ParameterDefaults: env.ParameterDefaults}
	if len(env.ResourceRegistry) > 200 {
		return nil, errdefs.Invalid("environment.resource_registry", "at most 200 entries")
	}
	for k, v := range env.ResourceRegistry {
		switch t := v.(type) {
		case string:
			if out.ResourceRegistry == nil {
				out.ResourceRegistry = map[string]string{}
			}
			out.ResourceRegistry[k] = t
		case map[string]any:
			if k == "resources" && len(t) == 0 {
				continue
			}
			return nil, errdefs.Wrap(errdefs.ErrUnsupported, errdefs.Invalid("environment.resource_registry."+k, "per-resource registry entries are not supported"))
		default:
			return nil, errdefs.Invalid("environment.resource_registry."+k, "must map a type to a type or a template file")
		}
	}
	if len(out.Parameters) == 0 && len(out.ParameterDefaults) == 0 && len(out.ResourceRegistry) == 0 {
		return nil, nil
	}
	return out, nil
}

func envKeys(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m
}

func (a *api) createStack(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := httpapi.DecodeJSON(w, r, &req, httpapi.DecodeOptions{MaxBytes: int64(8 * a.svc.limits.MaxTemplateBytes)}); err != nil {
		fail(w, r, err)
		return
	}
	tmpl, err := templateBytes(req.Template, req.TemplateURL)
	if err != nil {
		fail(w, r, err)
		return
	}
	env, err := parseEnvironment(req.Environment)
	if err != nil {
		fail(w, r, err)
		return
	}
	o := CreateStackOpts{Name: req.StackName, Template: tmpl, Files: req.Files, Parameters: req.Parameters, Environment: env}
	if req.DisableRollback != nil {
		o.DisableRollback = *req.DisableRollback
	}
	if req.TimeoutMins != nil {
		o.TimeoutMins = *req.TimeoutMins
	}
	if req.Tags != "" {
		o.Tags = strings.Split(req.Tags, ",")
	}
	st, err := a.svc.CreateStack(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	_ = httpapi.WriteJSON(w, http.StatusCreated, map[string]any{"stack": map[string]any{"id": st.ID,
		"links": []any{map[string]any{"href": a.stackURL(r, st), "rel": "self"}}}})
}

var subs = []string{"resources", "events", "template", "outputs", "environment", "files"}

// stack routes /stacks/{name}[/{id}[/…]].
func (a *api) stack(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(r.PathValue("rest"), "/"), "/")
	if len(seg) == 0 || seg[0] == "" {
		fail(w, r, httpapi.Errorf(http.StatusNotFound, "The resource could not be found."))
		return
	}
	ctx := r.Context()
	// /stacks/{name or id} and /stacks/{name}/{sub}: find the stack and
	// redirect to its canonical URL (Heat's 302).
	if len(seg) == 1 || len(seg) >= 2 && slices.Contains(subs, seg[1]) {
		st, err := a.svc.FindStack(ctx, seg[0])
		if err != nil {
			fail(w, r, err)
			return
		}
		if (r.Method == http.MethodPut || r.Method == http.MethodPatch) && len(seg) == 1 {
			a.updateStack(w, r, st, false)
			return
		}
		if r.Method == http.MethodDelete && len(seg) == 1 {
			if err := a.svc.DeleteStack(ctx, st.ID); err != nil {
				fail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		loc := a.stackURL(r, st)
		if len(seg) > 1 {
			loc += "/" + strings.Join(seg[1:], "/")
		}
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	st, err := a.svc.GetStack(ctx, seg[1])
	if err == nil && st.Name != seg[0] {
		err = notFound(seg[0] + "/" + seg[1])
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	rest := seg[2:]
	key := r.Method + " " + strings.Join(append([]string{""}, rest...), "/")
	switch {
	case key == "GET ":
		a.showStack(w, r, st)
	case key == "DELETE ":
		if err := a.svc.DeleteStack(ctx, st.ID); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case key == "PUT " || key == "PATCH ":
		a.updateStack(w, r, st, false)
	case key == "PUT /preview" || key == "PATCH /preview":
		a.updateStack(w, r, st, true)
	case key == "GET /template":
		t, err := a.svc.TemplateOf(ctx, st)
		if err != nil {
			fail(w, r, err)
			return
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, t)
	case key == "GET /environment":
		env := map[string]any{"parameters": st.Parameters, "parameter_defaults": map[string]any{},
			"resource_registry": map[string]any{"resources": map[string]any{}}, "event_sinks": []any{}, "encrypted_param_names": []any{}}
		if e := st.Environment; e != nil {
			if e.ParameterDefaults != nil {
				env["parameter_defaults"] = e.ParameterDefaults
			}
			reg := map[string]any{"resources": map[string]any{}}
			for k, v := range e.ResourceRegistry {
				reg[k] = v
			}
			env["resource_registry"] = reg
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, env)
	case key == "GET /files":
		files := st.Files
		if files == nil {
			files = map[string]string{}
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, files)
	case key == "GET /outputs":
		a.outputs(w, r, st, "")
	case len(rest) == 2 && key == "GET /outputs/"+rest[1]:
		a.outputs(w, r, st, rest[1])
	case key == "GET /resources":
		a.listResources(w, r, st)
	case len(rest) == 2 && key == "GET /resources/"+rest[1]:
		a.showResource(w, r, st, rest[1])
	case len(rest) == 3 && key == "GET /resources/"+rest[1]+"/metadata":
		res, err := a.svc.GetResource(ctx, st.ID, rest[1])
		if err != nil {
			fail(w, r, err)
			return
		}
		md := map[string]any{}
		if p, err := a.svc.planOf(ctx, st); err == nil && p.t.Resources[res.Name] != nil && p.t.Resources[res.Name].Metadata != nil {
			md = p.t.Resources[res.Name].Metadata
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"metadata": md})
	case key == "POST /actions":
		a.action(w, r, st)
	case len(rest) == 3 && key == "POST /resources/"+rest[1]+"/signal":
		a.signalResource(w, r, st, rest[1])
	case key == "GET /events":
		a.events(w, r, st, "")
	case len(rest) == 3 && key == "GET /resources/"+rest[1]+"/events":
		if _, err := a.svc.GetResource(ctx, st.ID, rest[1]); err != nil {
			fail(w, r, err)
			return
		}
		a.events(w, r, st, rest[1])
	case len(rest) == 4 && key == "GET /resources/"+rest[1]+"/events/"+rest[3]:
		a.event(w, r, st, rest[1], rest[3])
	default:
		fail(w, r, httpapi.Errorf(http.StatusNotFound, "The resource could not be found."))
	}
}

type updateRequest struct {
	createRequest
	ClearParameters []string `json:"clear_parameters"`
	Existing        bool     `json:"existing"`
}

// updateStack is PUT (or PATCH, existing) /stacks/{name}/{id}, and with
// preview its /preview.
func (a *api) updateStack(w http.ResponseWriter, r *http.Request, st *Stack, preview bool) {
	var req updateRequest
	if err := httpapi.DecodeJSON(w, r, &req, httpapi.DecodeOptions{MaxBytes: int64(8 * a.svc.limits.MaxTemplateBytes)}); err != nil {
		fail(w, r, err)
		return
	}
	o := UpdateStackOpts{Existing: r.Method == http.MethodPatch || req.Existing, Files: req.Files, Parameters: req.Parameters,
		ClearParameters: req.ClearParameters, DisableRollback: req.DisableRollback}
	if len(req.Template) > 0 && string(req.Template) != "null" || !o.Existing {
		tmpl, err := templateBytes(req.Template, req.TemplateURL)
		if err != nil {
			fail(w, r, err)
			return
		}
		o.Template = tmpl
	}
	env, err := parseEnvironment(req.Environment)
	if err != nil {
		fail(w, r, err)
		return
	}
	o.Environment = env
	if req.TimeoutMins != nil {
		o.TimeoutMins = *req.TimeoutMins
	}
	if req.Tags != "" {
		o.Tags = strings.Split(req.Tags, ",")
	}
	if preview {
		ch, err := a.svc.PreviewUpdate(r.Context(), st.ID, o)
		if err != nil {
			fail(w, r, err)
			return
		}
		list := func(l []*StackResource) []any {
			out := []any{}
			for _, res := range l {
				out = append(out, a.resourceJSON(r, st, res, nil))
			}
			return out
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"resource_changes": map[string]any{
			"added": list(ch.Added), "updated": list(ch.Updated), "replaced": list(ch.Replaced),
			"deleted": list(ch.Deleted), "unchanged": list(ch.Unchanged)}})
		return
	}
	if _, err := a.svc.UpdateStack(r.Context(), st.ID, o); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *api) showStack(w http.ResponseWriter, r *http.Request, st *Stack) {
	out := a.stackJSON(r, st)
	params := map[string]any{"OS::stack_id": st.ID, "OS::stack_name": st.Name, "OS::project_id": st.ProjectID}
	p, err := a.svc.planOf(r.Context(), st)
	if err != nil {
		fail(w, r, err)
		return
	}
	for k, v := range st.Parameters {
		if pp := p.t.Parameters[k]; pp != nil && pp.Hidden {
			params[k] = "******"
			continue
		}
		params[k] = textOf(v)
	}
	out["parameters"] = params
	out["disable_rollback"] = st.DisableRollback
	out["timeout_mins"] = st.TimeoutMins
	out["capabilities"] = []any{}
	out["notification_topics"] = []any{}
	out["template_description"] = st.Description
	if r.URL.Query().Get("resolve_outputs") != "False" && r.URL.Query().Get("resolve_outputs") != "false" {
		outs, err := a.svc.Outputs(r.Context(), st)
		if err != nil {
			fail(w, r, err)
			return
		}
		l := []any{}
		for _, o := range outs {
			l = append(l, outputJSON(o))
		}
		out["outputs"] = l
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"stack": out})
}

func outputJSON(o Output) map[string]any {
	m := map[string]any{"output_key": o.Key, "output_value": o.Value, "description": o.Description}
	if o.Error != "" {
		m["output_error"] = o.Error
	}
	return m
}

func (a *api) outputs(w http.ResponseWriter, r *http.Request, st *Stack, key string) {
	outs, err := a.svc.Outputs(r.Context(), st)
	if err != nil {
		fail(w, r, err)
		return
	}
	if key == "" {
		l := []any{}
		for _, o := range outs {
			l = append(l, map[string]any{"output_key": o.Key, "description": o.Description})
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"outputs": l})
		return
	}
	for _, o := range outs {
		if o.Key == key {
			_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"output": outputJSON(o)})
			return
		}
	}
	fail(w, r, fmt.Errorf("orchestration: the output %q: %w", key, errdefs.ErrNotFound))
}

func (a *api) resourceJSON(r *http.Request, st *Stack, res *StackResource, requiredBy []string) map[string]any {
	if requiredBy == nil {
		requiredBy = []string{}
	}
	return map[string]any{"resource_name": res.Name, "logical_resource_id": res.Name, "physical_resource_id": res.PhysicalID,
		"resource_type": res.Type, "resource_status": res.ResourceStatus(), "resource_status_reason": res.StatusReason,
		"creation_time": tstr(res.Created), "updated_time": tstr(res.Updated), "required_by": requiredBy,
		"links": []any{map[string]any{"href": a.stackURL(r, st) + "/resources/" + url.PathEscape(res.Name), "rel": "self"},
			map[string]any{"href": a.stackURL(r, st), "rel": "stack"}}}
}

func (a *api) listResources(w http.ResponseWriter, r *http.Request, st *Stack) {
	rs, err := a.svc.ListResources(r.Context(), st.ID)
	if err != nil {
		fail(w, r, err)
		return
	}
	p, _ := a.svc.planOf(r.Context(), st)
	l := []any{}
	for _, res := range rs {
		var rb []string
		if p != nil {
			rb = p.requiredBy[res.Name]
		}
		l = append(l, a.resourceJSON(r, st, res, rb))
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"resources": l})
}

func (a *api) showResource(w http.ResponseWriter, r *http.Request, st *Stack, name string) {
	res, err := a.svc.GetResource(r.Context(), st.ID, name)
	if err != nil {
		fail(w, r, err)
		return
	}
	p, _ := a.svc.planOf(r.Context(), st)
	var rb []string
	if p != nil {
		rb = p.requiredBy[res.Name]
	}
	out := a.resourceJSON(r, st, res, rb)
	out["attributes"] = a.svc.ResourceAttributes(r.Context(), st, res)
	out["description"] = ""
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"resource": out})
}

func (a *api) events(w http.ResponseWriter, r *http.Request, st *Stack, resource string) {
	evs, err := a.svc.ListEvents(r.Context(), st.ID, resource)
	if err != nil {
		fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if q.Get("sort_dir") == "desc" {
		slices.Reverse(evs)
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(evs, func(e *Event) bool { return e.ID == m })
		if i < 0 {
			fail(w, r, fmt.Errorf("orchestration: the event %q: %w", m, errdefs.ErrNotFound))
			return
		}
		evs = evs[i+1:]
	}
	if f := q.Get("resource_status"); f != "" {
		evs = slices.DeleteFunc(evs, func(e *Event) bool { return !strings.HasSuffix(e.Status, "_"+f) })
	}
	if f := q.Get("resource_action"); f != "" {
		evs = slices.DeleteFunc(evs, func(e *Event) bool { return !strings.HasPrefix(e.Status, f+"_") })
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			fail(w, r, errdefs.Invalid("limit", "must be a non-negative integer"))
			return
		}
		if n < len(evs) {
			evs = evs[:n]
		}
	}
	l := []any{}
	for _, e := range evs {
		l = append(l, a.eventJSON(r, st, e))
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"events": l})
}

func (a *api) eventJSON(r *http.Request, st *Stack, e *Event) map[string]any {
	su := a.stackURL(r, st)
	return map[string]any{"id": e.ID, "event_time": tstr(e.Time), "resource_name": e.ResourceName,
		"logical_resource_id": e.ResourceName, "physical_resource_id": e.PhysicalID, "resource_status": e.Status,
		"resource_status_reason": e.Reason, "resource_type": e.ResourceType,
		"links": []any{map[string]any{"href": su + "/resources/" + url.PathEscape(e.ResourceName) + "/events/" + e.ID, "rel": "self"},
			map[string]any{"href": su + "/resources/" + url.PathEscape(e.ResourceName), "rel": "resource"},
			map[string]any{"href": su, "rel": "stack"}}}
}

// event is GET …/resources/{name}/events/{id}.
func (a *api) event(w http.ResponseWriter, r *http.Request, st *Stack, resource, id string) {
	evs, err := a.svc.ListEvents(r.Context(), st.ID, resource)
	if err != nil {
		fail(w, r, err)
		return
	}
	for _, e := range evs {
		if e.ID == id {
			ev := a.eventJSON(r, st, e)
			ev["resource_properties"] = map[string]any{}
			_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"event": ev})
			return
		}
	}
	fail(w, r, fmt.Errorf("orchestration: the event %q: %w", id, errdefs.ErrNotFound))
}

var heatTypeNames = map[string]string{TypeString: "String", TypeNumber: "Number", TypeJSON: "Json", TypeList: "CommaDelimitedList", TypeBoolean: "Boolean"}

func (a *api) validate(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := httpapi.DecodeJSON(w, r, &req, httpapi.DecodeOptions{MaxBytes: int64(8 * a.svc.limits.MaxTemplateBytes)}); err != nil {
		fail(w, r, err)
		return
	}
	tmpl, err := templateBytes(req.Template, req.TemplateURL)
	if err != nil {
		fail(w, r, err)
		return
	}
	env, err := parseEnvironment(req.Environment)
	if err != nil {
		fail(w, r, err)
		return
	}
	var params map[string]any
	if env != nil || req.Parameters != nil {
		t, err := ParseTemplate(tmpl, a.svc.limits)
		if err != nil {
			fail(w, r, err)
			return
		}
		params = envParams(env, req.Parameters, t)
	}
	o := ValidateOpts{Template: tmpl, Files: req.Files, Environment: env}
	if len(params) > 0 {
		o.Parameters = params
	}
	t, err := a.svc.ValidateTemplate(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	ps := map[string]any{}
	for name, p := range t.Parameters {
		m := map[string]any{"Type": heatTypeNames[p.Type], "Description": p.Description, "Label": name, "NoEcho": strconv.FormatBool(p.Hidden)}
		if p.Label != "" {
			m["Label"] = p.Label
		}
		if p.HasDefault {
			m["Default"] = p.Default
		}
		if v, ok := params[name]; ok {
			m["Value"] = v
		}
		for _, c := range p.Constraints {
			switch {
			case c.AllowedValues != nil:
				m["AllowedValues"] = c.AllowedValues
			case c.AllowedPattern != "":
				m["AllowedPattern"] = c.AllowedPattern
			case c.IsRange:
				if c.Min != nil {
					m["MinValue"] = *c.Min
				}
				if c.Max != nil {
					m["MaxValue"] = *c.Max
				}
			case c.IsLength:
				if c.Min != nil {
					m["MinLength"] = *c.Min
				}
				if c.Max != nil {
					m["MaxLength"] = *c.Max
				}
			}
		}
		ps[name] = m
	}
	out := map[string]any{"Description": t.Description, "Parameters": ps}
	if len(t.ParameterGroups) > 0 {
		out["ParameterGroups"] = t.ParameterGroups
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *api) resourceTypes(w http.ResponseWriter, r *http.Request) {
	ts, err := a.svc.ResourceTypes(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	if r.URL.Query().Get("with_description") == "true" {
		l := []any{}
		for _, t := range ts {
			l = append(l, map[string]any{"resource_type": t, "description": a.svc.plugins[t].Schema().Description})
		}
		_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"resource_types": l})
		return
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"resource_types": ts})
}

func (a *api) resourceType(w http.ResponseWriter, r *http.Request) {
	sch, err := a.svc.ResourceTypeSchema(r.Context(), r.PathValue("type"))
	if err != nil {
		fail(w, r, err)
		return
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, sch)
}

func (a *api) templateVersions(w http.ResponseWriter, r *http.Request) {
	l := []any{}
	for _, v := range slices.Sorted(maps.Keys(Versions)) {
		if strings.HasPrefix(v, "2") {
			l = append(l, map[string]any{"version": "heat_template_version." + v, "type": "hot", "aliases": []any{}})
		}
	}
	_ = httpapi.WriteJSON(w, http.StatusOK, map[string]any{"template_versions": l})
}
