package alarming

import (
	"encoding/json"
	"errors"
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
)

// NewHandler returns the Aodh v2 API of svc (/v2/alarms…; catalog type
// "alarming"), authenticated by v. The all-in-one serves it on the
// metering port beside Gnocchi's /v1.
func NewHandler(svc *Service, v identity.TokenValidator, logger *slog.Logger) http.Handler {
	h := identity.Middleware(v, routes(svc), &identity.MiddlewareOptions{ServiceType: "alarming"})
	return httpapi.Wrap(h, httpapi.Generic, logger)
}

// routes is the API behind authentication.
func routes(svc *Service) http.Handler {
	a := &api{svc: svc}
	rt := httpapi.NewRouter(httpapi.Generic)
	rt.HandleFunc("GET /v2/capabilities", a.capabilities)
	rt.HandleFunc("GET /v2/alarms", a.list)
	rt.HandleFunc("POST /v2/alarms", a.create)
	rt.HandleFunc("GET /v2/alarms/{id}", a.show)
	rt.HandleFunc("PUT /v2/alarms/{id}", a.update)
	rt.HandleFunc("DELETE /v2/alarms/{id}", a.delete)
	rt.HandleFunc("GET /v2/alarms/{id}/state", a.getState)
	rt.HandleFunc("PUT /v2/alarms/{id}/state", a.putState)
	rt.HandleFunc("GET /v2/alarms/{id}/history", a.history)
	rt.HandleFunc("POST /v2/query/alarms", a.query)
	return rt
}

type api struct{ svc *Service }

// fail answers an error in Aodh's body ({"error_message": {"faultstring":
// …}}, which aodhclient prints); internal errors keep httpapi's generic
// message.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpapi.HTTPError
	status := httpapi.StatusOf(err)
	if status >= 500 || (errdefs.Kind(err) == nil && !errors.As(err, &he)) {
		httpapi.WriteError(w, r, httpapi.Generic, err)
		return
	}
	reply(w, status, map[string]any{"error_message": map[string]any{"faultstring": err.Error(), "faultcode": "Client", "debug": nil}})
}

func reply(w http.ResponseWriter, status int, v any) { _ = httpapi.WriteJSON(w, status, v) }

// aodhTime is Aodh's timestamp format (UTC, no offset).
func aodhTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func (a *api) alarmJSON(al *Alarm) map[string]any {
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	tcs := []map[string]any{}
	for _, tc := range al.TimeConstraints {
		tcs = append(tcs, map[string]any{"name": tc.Name, "description": tc.Description, "start": tc.Start,
			"duration": tc.Duration, "timezone": tc.Timezone})
	}
	rule := map[string]any{"metric": al.Rule.Metric, "resource_type": al.Rule.ResourceType,
		"aggregation_method": al.Rule.AggregationMethod, "granularity": al.Rule.Granularity,
		"threshold": pyFloat(al.Rule.Threshold), "comparison_operator": al.Rule.ComparisonOperator,
		"evaluation_periods": al.Rule.EvaluationPeriods}
	if al.Type == TypeResourcesThreshold {
		rule["resource_id"] = al.Rule.ResourceID
	} else {
		rule["query"] = al.Rule.Query
	}
	return map[string]any{"alarm_id": al.ID, "name": al.Name, "description": al.Description, "type": al.Type,
		"project_id": al.ProjectID, "user_id": al.UserID, "enabled": al.Enabled, "state": al.State,
		"state_reason": al.StateReason, "state_timestamp": aodhTime(al.StateTimestamp), "timestamp": aodhTime(al.Timestamp),
		"severity": al.Severity, "repeat_actions": al.RepeatActions, "alarm_actions": nz(al.AlarmActions),
		"ok_actions": nz(al.OKActions), "insufficient_data_actions": nz(al.InsufficientDataActions),
		"time_constraints": tcs, al.Type + "_rule": rule, "webhook_secret": a.svc.Secret(al.ID)}
}

// wireAlarm is an alarm as clients send it.
type wireAlarm struct {
	Name                    string           `json:"name"`
	Description             string           `json:"description"`
	Type                    string           `json:"type"`
	ProjectID               string           `json:"project_id"`
	UserID                  string           `json:"user_id"`
	Enabled                 *bool            `json:"enabled"`
	State                   string           `json:"state"`
	Severity                string           `json:"severity"`
	RepeatActions           bool             `json:"repeat_actions"`
	AlarmActions            []string         `json:"alarm_actions"`
	OKActions               []string         `json:"ok_actions"`
	InsufficientDataActions []string         `json:"insufficient_data_actions"`
	TimeConstraints         []wireConstraint `json:"time_constraints"`
	ResourcesRule           *wireRule        `json:"gnocchi_resources_threshold_rule"`
	AggregationRule         *wireRule        `json:"gnocchi_aggregation_by_resources_threshold_rule"`
}

// wireConstraint is a time constraint as clients send it (aodhclient
// sends the duration as a string).
type wireConstraint struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Start       string     `json:"start"`
	Duration    flexNumber `json:"duration"`
	Timezone    string     `json:"timezone"`
}

type wireRule struct {
	Metric             string      `json:"metric"`
	ResourceType       string      `json:"resource_type"`
	ResourceID         string      `json:"resource_id"`
	Query              string      `json:"query"`
	AggregationMethod  string      `json:"aggregation_method"`
	Granularity        *flexNumber `json:"granularity"`
	Threshold          *float64    `json:"threshold"`
	ComparisonOperator string      `json:"comparison_operator"`
	EvaluationPeriods  int         `json:"evaluation_periods"`
}

func (wa *wireAlarm) alarm() (Alarm, error) {
	al := Alarm{Name: wa.Name, Description: wa.Description, Type: wa.Type, ProjectID: wa.ProjectID, UserID: wa.UserID,
		Enabled: wa.Enabled == nil || *wa.Enabled, State: wa.State, Severity: wa.Severity, RepeatActions: wa.RepeatActions,
		AlarmActions: wa.AlarmActions, OKActions: wa.OKActions, InsufficientDataActions: wa.InsufficientDataActions}
	for _, tc := range wa.TimeConstraints {
		d := float64(tc.Duration)
		if d != float64(int(d)) || d < 1 || d > 7*86400 {
			return al, errdefs.Invalid("time_constraints", "%s: duration must be 1 second to 7 days", tc.Name)
		}
		al.TimeConstraints = append(al.TimeConstraints, TimeConstraint{Name: tc.Name, Description: tc.Description,
			Start: tc.Start, Duration: int(d), Timezone: tc.Timezone})
	}
	wr := wa.ResourcesRule
	if wa.Type == TypeAggregationByResourcesThresho {
		wr = wa.AggregationRule
	}
	if wr == nil {
		if wa.Type == TypeResourcesThreshold || wa.Type == TypeAggregationByResourcesThresho {
			return al, errdefs.Invalid(wa.Type+"_rule", "required")
		}
		return al, errdefs.Invalid("type", "must be %s or %s", TypeResourcesThreshold, TypeAggregationByResourcesThresho)
	}
	if wr.Threshold == nil {
		return al, errdefs.Invalid(wa.Type+"_rule.threshold", "required")
	}
	al.Rule = Rule{Metric: wr.Metric, ResourceType: wr.ResourceType, ResourceID: wr.ResourceID, Query: wr.Query,
		AggregationMethod: wr.AggregationMethod, Threshold: *wr.Threshold, ComparisonOperator: wr.ComparisonOperator,
		EvaluationPeriods: wr.EvaluationPeriods}
	if wr.Granularity != nil {
		g := float64(*wr.Granularity)
		if g != float64(int(g)) || g < 1 || g > 366*86400 {
			return al, errdefs.Invalid(wa.Type+"_rule.granularity", "must be a whole number of seconds, at most a year")
		}
		al.Rule.Granularity = int(g)
	}
	return al, nil
}

// pyFloat marshals as Python prints a float (1.0, not 1), as Aodh does.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return []byte("null"), nil
	}
	b := strconv.AppendFloat(nil, v, 'g', -1, 64)
	if !strings.ContainsAny(string(b), ".e") {
		b = append(b, ".0"...)
	}
	return b, nil
}

// flexNumber is a number sent as a JSON number or a string (aodhclient
// sends the granularity as a string).
type flexNumber float64

func (f *flexNumber) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		b = []byte(s)
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("must be a number")
	}
	*f = flexNumber(v)
	return nil
}

func (a *api) capabilities(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, map[string]any{"api": map[string]bool{"alarms:query:simple": true, "alarms:history:query:simple": true},
		"alarm_storage": map[string]bool{"storage:production_ready": true}})
}

// list answers GET /v2/alarms with Aodh's simple query
// (q.field=name&q.op=eq&q.value=x, repeated) and limit/marker.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	qs := r.URL.Query()
	fields, ops, values := qs["q.field"], qs["q.op"], qs["q.value"]
	if len(fields) != len(values) || len(fields) > 16 {
		fail(w, r, errdefs.Invalid("q", "each q.field needs a q.value (at most 16)"))
		return
	}
	var o ListAlarmsOpts
	for i, f := range fields {
		if i < len(ops) && ops[i] != "" && ops[i] != "eq" {
			fail(w, r, errdefs.Invalid("q.op", "only eq is supported"))
			return
		}
		if err := o.set("q", f, values[i]); err != nil {
			fail(w, r, err)
			return
		}
	}
	als, err := a.svc.ListAlarms(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	if m := qs.Get("marker"); m != "" {
		i := 0
		for i < len(als) && als[i].ID != m {
			i++
		}
		if i == len(als) {
			fail(w, r, errdefs.Invalid("marker", "no alarm %q", m))
			return
		}
		als = als[i+1:]
	}
	if l := qs.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			fail(w, r, errdefs.Invalid("limit", "must be a positive integer"))
			return
		}
		if n < len(als) {
			als = als[:n]
		}
	}
	out := []map[string]any{}
	for _, al := range als {
		out = append(out, a.alarmJSON(al))
	}
	reply(w, http.StatusOK, out)
}

// set sets one equality filter.
func (o *ListAlarmsOpts) set(field, k, v string) error {
	switch k {
	case "name":
		o.Name = v
	case "type":
		o.Type = v
	case "state":
		o.State = v
	case "severity":
		o.Severity = v
	case "project_id", "project":
		o.ProjectID = v
	case "user_id", "user":
		o.UserID = v
	case "enabled":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errdefs.Invalid(field, "enabled must be true or false")
		}
		o.Enabled = &b
	default:
		return errdefs.Invalid(field, "unknown field %q", k)
	}
	return nil
}

// query answers POST /v2/query/alarms for equality filters, alone or
// joined with "and" ({"and": [{"=": {"name": "x"}}, …]}), as aodhclient
// uses to find an alarm by name.
func (a *api) query(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Filter string `json:"filter"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.DecodeOptions{MaxBytes: 16 << 10}); err != nil {
		fail(w, r, err)
		return
	}
	var o ListAlarmsOpts
	if body.Filter != "" {
		var f map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body.Filter), &f); err != nil || len(f) != 1 {
			fail(w, r, errdefs.Invalid("filter", "must be a JSON object with one operator"))
			return
		}
		conds := []json.RawMessage{[]byte(body.Filter)}
		if and, ok := f["and"]; ok {
			if err := json.Unmarshal(and, &conds); err != nil || len(conds) > 16 {
				fail(w, r, errdefs.Invalid("filter", "and takes a list of at most 16 conditions"))
				return
			}
		}
		for _, c := range conds {
			var eq map[string]map[string]any
			if err := json.Unmarshal(c, &eq); err != nil || len(eq) != 1 || eq["="] == nil {
				fail(w, r, errdefs.Invalid("filter", "only = conditions (and their and) are supported"))
				return
			}
			for k, v := range eq["="] {
				if err := o.set("filter", k, fmt.Sprint(v)); err != nil {
					fail(w, r, err)
					return
				}
			}
		}
	}
	als, err := a.svc.ListAlarms(r.Context(), o)
	if err != nil {
		fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, al := range als {
		out = append(out, a.alarmJSON(al))
	}
	reply(w, http.StatusOK, out)
}

func (a *api) decode(w http.ResponseWriter, r *http.Request) (Alarm, bool) {
	var wa wireAlarm
	if err := httpapi.DecodeJSON(w, r, &wa, httpapi.DecodeOptions{MaxBytes: 64 << 10}); err != nil {
		fail(w, r, err)
		return Alarm{}, false
	}
	al, err := wa.alarm()
	if err != nil {
		fail(w, r, err)
		return Alarm{}, false
	}
	return al, true
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	al, ok := a.decode(w, r)
	if !ok {
		return
	}
	out, err := a.svc.CreateAlarm(r.Context(), al)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusCreated, a.alarmJSON(out))
}

func (a *api) show(w http.ResponseWriter, r *http.Request) {
	al, err := a.svc.GetAlarm(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, a.alarmJSON(al))
}

func (a *api) update(w http.ResponseWriter, r *http.Request) {
	al, ok := a.decode(w, r)
	if !ok {
		return
	}
	out, err := a.svc.UpdateAlarm(r.Context(), r.PathValue("id"), al)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, a.alarmJSON(out))
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteAlarm(r.Context(), r.PathValue("id")); err != nil {
		fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) getState(w http.ResponseWriter, r *http.Request) {
	al, err := a.svc.GetAlarm(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, al.State)
}

func (a *api) putState(w http.ResponseWriter, r *http.Request) {
	var state string
	if err := httpapi.DecodeJSON(w, r, &state, httpapi.DecodeOptions{MaxBytes: 1 << 10}); err != nil {
		fail(w, r, err)
		return
	}
	al, err := a.svc.SetState(r.Context(), r.PathValue("id"), state)
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, http.StatusOK, al.State)
}

func (a *api) history(w http.ResponseWriter, r *http.Request) {
	hs, err := a.svc.History(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, r, err)
		return
	}
	if l := r.URL.Query().Get("limit"); l != "" {
		if n, err := strconv.Atoi(l); err == nil && n > 0 && n < len(hs) {
			hs = hs[:n]
		}
	}
	out := []map[string]any{}
	for _, h := range hs {
		out = append(out, map[string]any{"event_id": h.EventID, "alarm_id": h.AlarmID, "type": h.Type,
			"detail": h.Detail, "project_id": h.ProjectID, "user_id": h.UserID, "on_behalf_of": h.OnBehalfOf,
			"severity": h.Severity, "timestamp": aodhTime(h.Timestamp)})
	}
	reply(w, http.StatusOK, out)
}
