package metering

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/httpapi"
	"github.com/stratuskit/stratus/metering/tsdb"
)

// NewHandler returns the Gnocchi v1 API of svc (port 8777, catalog type
// "metric"), authenticated by v.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Generic)
	rt.HandleFunc("GET /{$}", a.versions)
	rt.HandleFunc("GET /v1/{$}", a.v1)
	rt.HandleFunc("GET /v1", a.v1)
	rt.HandleFunc("GET /v1/capabilities", a.capabilities)
	rt.HandleFunc("GET /v1/archive_policy", a.listPolicies)
	rt.HandleFunc("POST /v1/archive_policy", a.createPolicy)
	rt.HandleFunc("GET /v1/archive_policy/{name}", a.getPolicy)
	rt.HandleFunc("GET /v1/resource_type", a.listTypes)
	rt.HandleFunc("GET /v1/resource_type/{name}", a.getType)
	rt.HandleFunc("GET /v1/resource/{type}", a.listResources)
	rt.HandleFunc("POST /v1/search/resource/{type}", a.searchResources)
	rt.HandleFunc("GET /v1/resource/{type}/{id}", a.getResource)
	rt.HandleFunc("GET /v1/resource/{type}/{id}/metric/{name}", a.getResourceMetric)
	rt.HandleFunc("GET /v1/resource/{type}/{id}/metric/{name}/measures", a.resourceMeasures)
	rt.HandleFunc("POST /v1/resource/{type}/{id}/metric/{name}/measures", a.addResourceMeasures)
	rt.HandleFunc("GET /v1/metric", a.listMetrics)
	rt.HandleFunc("GET /v1/metric/{id}", a.getMetric)
	rt.HandleFunc("GET /v1/metric/{id}/measures", a.measures)
	rt.HandleFunc("POST /v1/metric/{id}/measures", a.addMeasures)
	rt.HandleFunc("POST /v1/batch/metrics/measures", a.batchMetrics)
	rt.HandleFunc("POST /v1/batch/resources/metrics/measures", a.batchResources)
	rt.HandleFunc("POST /v1/aggregates", a.aggregates)
	// gnocchiclient asks for collections with a trailing slash
	// (v1/archive_policy/, v1/metric/): route them as without.
	trim := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 4 && strings.HasSuffix(p, "/") && p != "/v1/" {
			r.URL.Path = strings.TrimRight(p, "/")
			r.URL.RawPath = ""
		}
		rt.ServeHTTP(w, r)
	})
	h := identity.Middleware(v, trim, &identity.MiddlewareOptions{ServiceType: "metric", Public: func(r *http.Request) bool {
		return r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	}})
	return httpapi.Wrap(h, httpapi.Generic, logger)
}

type api struct{ svc *Service }

func fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, httpapi.Generic, err)
}

func reply(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

func (a *api) versions(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"versions": []map[string]any{{
		"id": "v1.0", "status": "CURRENT", "updated": "2026-01-01T00:00:00Z",
		"links": []map[string]string{{"rel": "self", "href": httpapi.BaseURL(r) + "/v1/"}},
	}}})
}

func (a *api) v1(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"version": "1.0", "links": []map[string]string{
		{"rel": "self", "href": httpapi.BaseURL(r) + "/v1/"}}})
}

func (a *api) capabilities(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, map[string]any{"aggregation_methods": allMethods,
		"dynamic_aggregation_methods": []string{"aggregate", "metric"}})
}

// Gnocchi's wire formats: times in ISO 8601 with an offset, granularities
// as seconds, timespans as Python's timedelta prints them.
func wireTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-07:00") }

func wireTimeP(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000-07:00")
}

func timedelta(d time.Duration) string {
	days := int64(d / (24 * time.Hour))
	rest := d % (24 * time.Hour)
	hms := fmt.Sprintf("%d:%02d:%02d", int64(rest/time.Hour), int64(rest%time.Hour/time.Minute), int64(rest%time.Minute/time.Second))
	switch {
	case days == 1:
		return "1 day, " + hms
	case days > 1:
		return fmt.Sprintf("%d days, %s", days, hms)
	}
	return hms
}

func policyJSON(p *ArchivePolicy) map[string]any {
	var defs []map[string]any
	for _, d := range p.Definition {
		defs = append(defs, map[string]any{"granularity": timedelta(d.Granularity), "timespan": timedelta(d.Timespan), "points": d.Points()})
	}
	return map[string]any{"name": p.Name, "back_window": p.BackWindow, "definition": defs, "aggregation_methods": p.AggregationMethods}
}

func (a *api) listPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := a.svc.ListArchivePolicies(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, p := range ps {
		out = append(out, policyJSON(p))
	}
	reply(w, http.StatusOK, out)
}

func (a *api) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := a.svc.GetArchivePolicy(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, policyJSON(p))
}

// parseSpan reads a granularity or timespan: seconds, or a number with a
// unit (s, min, h, d), or Go's duration syntax.
func parseSpan(field, s string) (time.Duration, error) {
	d, ok := spanOf(strings.TrimSpace(s))
	if !ok || d < time.Second {
		return 0, errdefs.Invalid(field, "cannot read %q as a time span of at least a second", s)
	}
	return d, nil
}

func spanOf(s string) (time.Duration, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		// 1e9 s is 31 years; the comparison also refuses NaN.
		return time.Duration(f * float64(time.Second)), f > 0 && f <= 1e9
	}
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"days", day}, {"day", day}, {"d", day}, {"hours", time.Hour}, {"hour", time.Hour}, {"min", time.Minute}, {"minutes", time.Minute}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil && f > 0 && f*float64(u.d) <= 1e18 {
				return time.Duration(f * float64(u.d)), true
			}
		}
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

func (a *api) createPolicy(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name               string   `json:"name"`
		BackWindow         int      `json:"back_window"`
		AggregationMethods []string `json:"aggregation_methods"`
		Definition         []struct {
			Granularity any `json:"granularity"`
			Timespan    any `json:"timespan"`
			Points      int `json:"points"`
		} `json:"definition"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: 64 << 10}); err != nil {
		fail(w, r, err)
		return
	}
	p := ArchivePolicy{Name: body.Name, BackWindow: body.BackWindow, AggregationMethods: body.AggregationMethods}
	for _, d := range body.Definition {
		g, err := parseSpan("granularity", fmt.Sprint(d.Granularity))
		if err != nil {
			fail(w, r, err)
			return
		}
		var ts time.Duration
		if d.Timespan != nil {
			if ts, err = parseSpan("timespan", fmt.Sprint(d.Timespan)); err != nil {
				fail(w, r, err)
				return
			}
		} else {
			ts = g * time.Duration(d.Points)
		}
		p.Definition = append(p.Definition, tsdb.Archive{Granularity: g, Timespan: ts})
	}
	out, err := a.svc.CreateArchivePolicy(r.Context(), p)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusCreated, policyJSON(out))
}

func typeJSON(t ResourceType) map[string]any {
	attrs := map[string]any{}
	for _, n := range t.Attributes {
		attrs[n] = map[string]any{"type": "string", "required": false, "min_length": 0, "max_length": 255}
	}
	return map[string]any{"name": t.Name, "state": "active", "attributes": attrs}
}

func (a *api) listTypes(w http.ResponseWriter, r *http.Request) {
	if _, err := caller(r.Context()); err != nil {
		fail(w, r, err)
		return
	}
	var out []map[string]any
	for _, t := range resourceTypes {
		out = append(out, typeJSON(t))
	}
	reply(w, http.StatusOK, out)
}

func (a *api) getType(w http.ResponseWriter, r *http.Request) {
	if _, err := caller(r.Context()); err != nil {
		fail(w, r, err)
		return
	}
	for _, t := range resourceTypes {
		if t.Name == r.PathValue("name") {
			reply(w, http.StatusOK, typeJSON(t))
			return
		}
	}
	fail(w, r, notFound("resource type", r.PathValue("name")))
}

func resourceJSON(res *Resource, details bool) map[string]any {
	out := map[string]any{
		"id": res.ID, "type": res.Type, "project_id": res.ProjectID, "user_id": nullable(res.UserID),
		"original_resource_id": res.OriginalID, "started_at": wireTimeP(&res.StartedAt), "ended_at": wireTimeP(res.EndedAt),
		"revision_start": wireTimeP(&res.RevisionAt), "revision_end": nil,
		"creator": nullable(res.CreatorID), "created_by_project_id": "", "created_by_user_id": "",
		"metrics": res.Metrics,
	}
	if res.Metrics == nil {
		out["metrics"] = map[string]string{}
	}
	// Gnocchi lists a type's attributes at the top level; the generic list
	// shows them only with details.
	for _, t := range resourceTypes {
		if t.Name != res.Type || !details {
			continue
		}
		for _, k := range t.Attributes {
			out[k] = nullable(res.Attributes[k])
		}
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func listOpts(r *http.Request) (ListResourcesOpts, bool, error) {
	q := r.URL.Query()
	opts := ListResourcesOpts{Type: r.PathValue("type"), Marker: q.Get("marker")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return opts, false, errdefs.Invalid("limit", "must be a positive integer")
		}
		opts.Limit = n
	}
	for _, s := range q["sort"] {
		k, _, _ := strings.Cut(s, ":")
		opts.Sort = append(opts.Sort, k)
	}
	details := q.Get("details") == "true" || opts.Type != "" && opts.Type != TypeGeneric
	return opts, details, nil
}

func (a *api) listResources(w http.ResponseWriter, r *http.Request) {
	opts, details, err := listOpts(r)
	if err == nil {
		opts.Filter, err = ParseFilter(r.URL.Query().Get("filter"))
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	a.writeResources(w, r, opts, details)
}

func (a *api) writeResources(w http.ResponseWriter, r *http.Request, opts ListResourcesOpts, details bool) {
	rs, err := a.svc.ListResources(r.Context(), opts)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, res := range rs {
		out = append(out, resourceJSON(res, details))
	}
	reply(w, http.StatusOK, out)
}

func (a *api) searchResources(w http.ResponseWriter, r *http.Request) {
	opts, details, err := listOpts(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	if f := r.URL.Query().Get("filter"); f != "" {
		opts.Filter, err = ParseFilter(f)
	} else {
		var raw json.RawMessage
		if err = httpapi.DecodeJSON(w, r, &raw, httpapi.DecodeOptions{MaxBytes: 64 << 10}); err == nil && len(raw) > 0 && string(raw) != "{}" {
			opts.Filter, err = ParseFilterJSON(raw)
		}
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	a.writeResources(w, r, opts, details)
}

func (a *api) getResource(w http.ResponseWriter, r *http.Request) {
	res, err := a.svc.GetResource(r.Context(), r.PathValue("type"), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, resourceJSON(res, true))
}

func (a *api) metricJSON(r *http.Request, m *Metric) map[string]any {
	out := map[string]any{"id": m.ID, "name": m.Name, "unit": m.Unit, "resource_id": m.ResourceID,
		"creator": nil, "created_by_project_id": "", "created_by_user_id": "", "archive_policy_name": m.ArchivePolicyName}
	if p, err := a.svc.policy(m.ArchivePolicyName); err == nil {
		out["archive_policy"] = policyJSON(p)
	}
	return out
}

func (a *api) listMetrics(w http.ResponseWriter, r *http.Request) {
	ms, err := a.svc.ListMetrics(r.Context())
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, m := range ms {
		out = append(out, a.metricJSON(r, m))
	}
	reply(w, http.StatusOK, out)
}

func (a *api) getMetric(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetMetric(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, a.metricJSON(r, m))
}

func (a *api) getResourceMetric(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetResourceMetric(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, a.metricJSON(r, m))
}

// parseTime reads a Gnocchi timestamp: ISO 8601 (UTC when it has no
// offset) or seconds since the epoch.
func parseTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1e11 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errdefs.Invalid(field, "cannot read %q as a timestamp", s)
}

func measuresQuery(r *http.Request) (MeasuresQuery, error) {
	q := r.URL.Query()
	mq := MeasuresQuery{Aggregation: q.Get("aggregation")}
	var err error
	if g := q.Get("granularity"); g != "" {
		if mq.Granularity, err = parseSpan("granularity", g); err != nil {
			return mq, err
		}
	}
	if s := q.Get("start"); s != "" {
		if mq.Start, err = parseTime("start", s); err != nil {
			return mq, err
		}
	}
	if s := q.Get("stop"); s != "" {
		if mq.Stop, err = parseTime("stop", s); err != nil {
			return mq, err
		}
	}
	if q.Get("resample") != "" {
		return mq, fmt.Errorf("metering: resample: %w", errdefs.ErrUnsupported)
	}
	return mq, nil
}

// pyFloat is a float encoded as Python's json does, so that clients see
// 2.0, not 2, as Gnocchi sends.
type pyFloat float64

// MarshalJSON implements json.Marshaler.
func (f pyFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	b := strconv.AppendFloat(nil, v, 'g', -1, 64)
	if !strings.ContainsAny(string(b), ".e") {
		b = append(b, ".0"...)
	}
	return b, nil
}

func pointsJSON(ps []tsdb.Point) [][3]any {
	out := make([][3]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, [3]any{wireTime(p.Time), pyFloat(p.Granularity.Seconds()), pyFloat(p.Value)})
	}
	return out
}

func (a *api) writeMeasures(w http.ResponseWriter, r *http.Request, metricID string) {
	q, err := measuresQuery(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	ps, err := a.svc.Measures(r.Context(), metricID, q)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, pointsJSON(ps))
}

func (a *api) measures(w http.ResponseWriter, r *http.Request) {
	a.writeMeasures(w, r, r.PathValue("id"))
}

func (a *api) resourceMeasures(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetResourceMetric(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		fail(w, r, err)
		return
	}
	a.writeMeasures(w, r, m.ID)
}

type wireMeasure struct {
	Timestamp any     `json:"timestamp"`
	Value     float64 `json:"value"`
}

func decodeMeasures(field string, in []wireMeasure) ([]Measure, error) {
	out := make([]Measure, 0, len(in))
	for _, m := range in {
		t, err := parseTime(field, fmt.Sprint(m.Timestamp))
		if err != nil {
			return nil, err
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return nil, errdefs.Invalid(field, "value must be a finite number")
		}
		out = append(out, Measure{Time: t, Value: m.Value})
	}
	return out, nil
}

const maxMeasuresBody = 16 << 20

func (a *api) postMeasures(w http.ResponseWriter, r *http.Request, metricID string) {
	var body []wireMeasure
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: maxMeasuresBody}); err != nil {
		fail(w, r, err)
		return
	}
	ms, err := decodeMeasures("timestamp", body)
	if err == nil {
		err = a.svc.AddMeasures(r.Context(), metricID, ms)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *api) addMeasures(w http.ResponseWriter, r *http.Request) {
	a.postMeasures(w, r, r.PathValue("id"))
}

func (a *api) addResourceMeasures(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetResourceMetric(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		fail(w, r, err)
		return
	}
	a.postMeasures(w, r, m.ID)
}

func (a *api) batchMetrics(w http.ResponseWriter, r *http.Request) {
	var body map[string][]wireMeasure
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: maxMeasuresBody}); err != nil {
		fail(w, r, err)
		return
	}
	batch := map[string][]Measure{}
	for id, in := range body {
		ms, err := decodeMeasures("timestamp", in)
		if err != nil {
			fail(w, r, err)
			return
		}
		batch[id] = ms
	}
	if err := a.svc.BatchMeasures(r.Context(), batch); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *api) batchResources(w http.ResponseWriter, r *http.Request) {
	var body map[string]map[string]json.RawMessage
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: maxMeasuresBody}); err != nil {
		fail(w, r, err)
		return
	}
	batch := map[string][]Measure{}
	for resID, metrics := range body {
		for name, raw := range metrics {
			// Either a list of measures or {"measures": [...], ...}.
			var in []wireMeasure
			if err := json.Unmarshal(raw, &in); err != nil {
				var obj struct {
					Measures []wireMeasure `json:"measures"`
				}
				if err := json.Unmarshal(raw, &obj); err != nil {
					fail(w, r, errdefs.Invalid(resID+"."+name, "must be a list of measures"))
					return
				}
				in = obj.Measures
			}
			m, err := a.svc.GetResourceMetric(r.Context(), resID, name)
			if err != nil {
				fail(w, r, err)
				return
			}
			ms, err := decodeMeasures("timestamp", in)
			if err != nil {
				fail(w, r, err)
				return
			}
			batch[m.ID] = append(batch[m.ID], ms...)
		}
	}
	if err := a.svc.BatchMeasures(r.Context(), batch); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *api) aggregates(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Operations   json.RawMessage `json:"operations"`
		Search       json.RawMessage `json:"search"`
		ResourceType string          `json:"resource_type"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: 64 << 10}); err != nil {
		fail(w, r, err)
		return
	}
	mq, err := measuresQuery(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	q := AggregatesQuery{ResourceType: body.ResourceType, Granularity: mq.Granularity, Start: mq.Start, Stop: mq.Stop}
	for _, g := range r.URL.Query()["groupby"] {
		q.GroupBy = append(q.GroupBy, strings.Split(g, ",")...)
	}
	if q.Operations, err = ParseOperations(body.Operations); err != nil {
		fail(w, r, err)
		return
	}
	if len(body.Search) > 0 && string(body.Search) != "null" {
		var s string
		if json.Unmarshal(body.Search, &s) == nil {
			q.Search, err = ParseFilter(s)
		} else {
			q.Search, err = ParseFilterJSON(body.Search)
		}
		if err != nil {
			fail(w, r, err)
			return
		}
		q.SearchAll = q.Search == nil
	}
	groups, err := a.svc.Aggregates(r.Context(), q)
	if err != nil {
		fail(w, r, err)
		return
	}
	render := func(g AggregateGroup) map[string]any {
		root := map[string]any{}
		for _, s := range g.Series {
			node := root
			for _, k := range s.Keys[:len(s.Keys)-1] {
				next, ok := node[k].(map[string]any)
				if !ok {
					next = map[string]any{}
					node[k] = next
				}
				node = next
			}
			node[s.Keys[len(s.Keys)-1]] = pointsJSON(s.Points)
		}
		return map[string]any{"measures": root}
	}
	if len(q.GroupBy) > 0 {
		out := []map[string]any{}
		for _, g := range groups {
			out = append(out, map[string]any{"group": g.Group, "measures": render(g)})
		}
		reply(w, http.StatusOK, out)
		return
	}
	reply(w, http.StatusOK, render(groups[0]))
}
