package alarming

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
)

const (
	alarmTableName   = "alarming.alarms"
	historyTableName = "alarming.history"
)

// The alarm types Stratus evaluates, with Aodh's names.
const (
	TypeResourcesThreshold            = "gnocchi_resources_threshold"
	TypeAggregationByResourcesThresho = "gnocchi_aggregation_by_resources_threshold"
)

// Alarm states, as Aodh spells them.
const (
	StateOK               = "ok"
	StateAlarm            = "alarm"
	StateInsufficientData = "insufficient data"
)

var states = []string{StateOK, StateAlarm, StateInsufficientData}

var severities = []string{"low", "moderate", "critical"}

var operators = map[string]func(v, t float64) bool{
	"lt": func(v, t float64) bool { return v < t },
	"le": func(v, t float64) bool { return v <= t },
	"eq": func(v, t float64) bool { return v == t },
	"ne": func(v, t float64) bool { return v != t },
	"ge": func(v, t float64) bool { return v >= t },
	"gt": func(v, t float64) bool { return v > t },
}

// Rule is a threshold rule: the aggregate of a metric over a resource
// (gnocchi_resources_threshold) or over the resources a query matches,
// aggregated across them (gnocchi_aggregation_by_resources_threshold),
// compared with Threshold over the last EvaluationPeriods buckets of
// Granularity seconds.
type Rule struct {
	Metric             string  `json:"metric"`
	ResourceType       string  `json:"resource_type"`
	ResourceID         string  `json:"resource_id,omitempty"`
	Query              string  `json:"query,omitempty"`
	AggregationMethod  string  `json:"aggregation_method"`
	Granularity        int     `json:"granularity"`
	Threshold          float64 `json:"threshold"`
	ComparisonOperator string  `json:"comparison_operator"`
	EvaluationPeriods  int     `json:"evaluation_periods"`
}

// TimeConstraint limits evaluation to the windows of Duration seconds that
// start at the times Start (a cron expression: minute hour day-of-month
// month day-of-week) names in Timezone.
type TimeConstraint struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Start       string `json:"start"`
	Duration    int    `json:"duration"`
	Timezone    string `json:"timezone,omitempty"`
}

// Alarm is a threshold alarm and its state.
type Alarm struct {
	store.Meta
	ID                      string           `json:"alarm_id"`
	Name                    string           `json:"name"`
	Description             string           `json:"description"`
	Type                    string           `json:"type"`
	ProjectID               string           `json:"project_id"`
	UserID                  string           `json:"user_id"`
	Enabled                 bool             `json:"enabled"`
	State                   string           `json:"state"`
	StateReason             string           `json:"state_reason"`
	StateTimestamp          time.Time        `json:"state_timestamp"`
	Timestamp               time.Time        `json:"timestamp"`
	Severity                string           `json:"severity"`
	RepeatActions           bool             `json:"repeat_actions"`
	AlarmActions            []string         `json:"alarm_actions"`
	OKActions               []string         `json:"ok_actions"`
	InsufficientDataActions []string         `json:"insufficient_data_actions"`
	TimeConstraints         []TimeConstraint `json:"time_constraints"`
	Rule                    Rule             `json:"rule"`
	// TrustID is the trust trust+http(s) actions act through.
	TrustID string `json:"trust_id,omitempty"`
}

// StoreKey implements store.Record.
func (a *Alarm) StoreKey() string { return a.ID }

// Change is one entry of an alarm's history.
type Change struct {
	store.Meta
	EventID    string    `json:"event_id"`
	AlarmID    string    `json:"alarm_id"`
	Type       string    `json:"type"` // creation, rule change, state transition, deletion
	Detail     string    `json:"detail"`
	ProjectID  string    `json:"project_id"`
	UserID     string    `json:"user_id"`
	OnBehalfOf string    `json:"on_behalf_of"`
	Severity   string    `json:"severity"`
	Timestamp  time.Time `json:"timestamp"`
}

// StoreKey implements store.Record.
func (c *Change) StoreKey() string { return c.EventID }

func alarmTable() store.Table {
	return store.Table{Name: alarmTableName, New: func() store.Record { return new(Alarm) },
		Indexes: []*memdb.IndexSchema{{Name: "project", Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}}}}
}

func historyTable() store.Table {
	return store.Table{Name: historyTableName, New: func() store.Record { return new(Change) },
		Indexes: []*memdb.IndexSchema{{Name: "alarm", Indexer: &memdb.StringFieldIndex{Field: "AlarmID"}}}}
}

// validate checks an alarm a caller wrote and fills defaults.
func (s *Service) validate(a *Alarm) error {
	if a.Name == "" || len(a.Name) > 255 || strings.ContainsAny(a.Name, "\x00") {
		return errdefs.Invalid("name", "must be 1 to 255 characters")
	}
	if len(a.Description) > 1024 {
		return errdefs.Invalid("description", "at most 1024 characters")
	}
	if a.Type != TypeResourcesThreshold && a.Type != TypeAggregationByResourcesThresho {
		return errdefs.Invalid("type", "must be %s or %s", TypeResourcesThreshold, TypeAggregationByResourcesThresho)
	}
	a.Severity = cmp.Or(a.Severity, "low")
	if !slices.Contains(severities, a.Severity) {
		return errdefs.Invalid("severity", "must be low, moderate or critical")
	}
	a.State = cmp.Or(a.State, StateInsufficientData)
	if !slices.Contains(states, a.State) {
		return errdefs.Invalid("state", "must be ok, alarm or insufficient data")
	}
	r := &a.Rule
	field := a.Type + "_rule"
	if r.Metric == "" || len(r.Metric) > 255 {
		return errdefs.Invalid(field+".metric", "required, at most 255 characters")
	}
	r.ResourceType = cmp.Or(r.ResourceType, metering.TypeGeneric)
	if len(r.ResourceType) > 255 {
		return errdefs.Invalid(field+".resource_type", "at most 255 characters")
	}
	if a.Type == TypeResourcesThreshold {
		if r.ResourceID == "" || len(r.ResourceID) > 255 {
			return errdefs.Invalid(field+".resource_id", "required, at most 255 characters")
		}
		r.Query = ""
	} else {
		if len(r.Query) > 8<<10 {
			return errdefs.Invalid(field+".query", "at most 8 KiB")
		}
		if _, err := queryFilter(r.Query); err != nil {
			return errdefs.Invalid(field+".query", "%s", errMsg(err))
		}
		r.ResourceID = ""
	}
	r.AggregationMethod = cmp.Or(r.AggregationMethod, "mean")
	m, _ := strings.CutPrefix(r.AggregationMethod, "rate:")
	if !slices.Contains(tsdb.Methods, tsdb.Method(m)) {
		return errdefs.Invalid(field+".aggregation_method", "unknown method %q", r.AggregationMethod)
	}
	if r.Granularity == 0 {
		r.Granularity = 60
	}
	if r.Granularity < 1 || r.Granularity > 366*86400 {
		return errdefs.Invalid(field+".granularity", "must be 1 second to a year")
	}
	r.ComparisonOperator = cmp.Or(r.ComparisonOperator, "eq")
	if operators[r.ComparisonOperator] == nil {
		return errdefs.Invalid(field+".comparison_operator", "must be lt, le, eq, ne, ge or gt")
	}
	if r.EvaluationPeriods == 0 {
		r.EvaluationPeriods = 1
	}
	if r.EvaluationPeriods < 1 || r.EvaluationPeriods > 1000 {
		return errdefs.Invalid(field+".evaluation_periods", "must be 1 to 1000")
	}
	if len(a.TimeConstraints) > 20 {
		return errdefs.Invalid("time_constraints", "at most 20")
	}
	for i := range a.TimeConstraints {
		tc := &a.TimeConstraints[i]
		if tc.Name == "" || len(tc.Name) > 255 {
			return errdefs.Invalid("time_constraints", "each needs a name of at most 255 characters")
		}
		if _, err := parseCron(tc.Start); err != nil {
			return errdefs.Invalid("time_constraints", "%s: start: %s", tc.Name, errMsg(err))
		}
		if tc.Duration < 1 || tc.Duration > 7*86400 {
			return errdefs.Invalid("time_constraints", "%s: duration must be 1 second to 7 days", tc.Name)
		}
		if tc.Timezone != "" {
			if _, err := time.LoadLocation(tc.Timezone); err != nil || len(tc.Timezone) > 64 {
				return errdefs.Invalid("time_constraints", "%s: unknown timezone %q", tc.Name, tc.Timezone)
			}
		}
	}
	for _, f := range []struct {
		name string
		urls []string
	}{{"alarm_actions", a.AlarmActions}, {"ok_actions", a.OKActions}, {"insufficient_data_actions", a.InsufficientDataActions}} {
		if len(f.urls) > 10 {
			return errdefs.Invalid(f.name, "at most 10 actions")
		}
		for _, u := range f.urls {
			if err := s.checkAction(u); err != nil {
				return errdefs.Invalid(f.name, "%s", err)
			}
		}
	}
	return nil
}

func errMsg(err error) string { return err.Error() }

// queryFilter reads a rule's query: Gnocchi's JSON search ({"=":
// {"server_group": "x"}}); empty matches every resource of the type.
func queryFilter(q string) (*metering.Filter, error) {
	if strings.TrimSpace(q) == "" {
		return nil, nil
	}
	return metering.ParseFilterJSON(json.RawMessage(q))
}

// checkAction refuses an action URL Stratus will not call: only http,
// https, trust+http and trust+https, to loopback or allowed hosts.
func (s *Service) checkAction(raw string) error {
	if len(raw) > 2048 {
		return fmt.Errorf("action URL longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("action %q is not a URL", raw)
	}
	switch u.Scheme {
	case "http", "https":
	case "trust+http", "trust+https":
		if s.cfg.Trusts == nil {
			return fmt.Errorf("action %q: trust actions are not enabled in this cloud", raw)
		}
	default:
		return fmt.Errorf("action %q: scheme must be http, https, trust+http or trust+https", raw)
	}
	if u.User != nil {
		return fmt.Errorf("action %q: no user information in action URLs", raw)
	}
	if !s.hostAllowed(u.Host) {
		return fmt.Errorf("action %q: host %q is not allowed (loopback and the cloud's allowed hosts only)", raw, u.Hostname())
	}
	return nil
}

func (s *Service) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return false
	}
	if !s.cfg.DenyLoopback {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return true
		}
		if strings.EqualFold(host, "localhost") {
			return true
		}
	}
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(a, hostport) || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

func hasTrustAction(a *Alarm) bool {
	for _, u := range slices.Concat(a.AlarmActions, a.OKActions, a.InsufficientDataActions) {
		if strings.HasPrefix(u, "trust+") {
			return true
		}
	}
	return false
}

// CreateAlarm creates an alarm in the caller's project (an admin may name
// another project). Its state starts as given (default insufficient
// data); a trust is made for trust+http(s) actions.
func (s *Service) CreateAlarm(ctx context.Context, a Alarm) (*Alarm, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if a.ProjectID == "" || !c.admin {
		if a.ProjectID != "" && a.ProjectID != c.project {
			return nil, fmt.Errorf("alarming: create an alarm in another project: %w", errdefs.ErrForbidden)
		}
		a.ProjectID = c.project
	}
	if a.UserID == "" || !c.admin {
		a.UserID = c.user
	}
	if err := s.validate(&a); err != nil {
		return nil, err
	}
	now := s.now()
	a.Meta = store.Meta{}
	a.ID = newUUID()
	a.Timestamp, a.StateTimestamp = now, now
	a.StateReason = "Not evaluated yet"
	a.TrustID = ""
	if hasTrustAction(&a) {
		if a.TrustID, err = s.cfg.Trusts.Delegate(ctx); err != nil {
			return nil, fmt.Errorf("alarming: trust for the alarm's actions: %w", err)
		}
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		it, err := store.List[Alarm](nil, tx, alarmTableName, "project", a.ProjectID)
		if err != nil {
			return err
		}
		n := 0
		for range it {
			n++
		}
		if n >= s.cfg.MaxAlarmsPerProject {
			return fmt.Errorf("alarming: project %s has %d alarms, the most allowed: %w", a.ProjectID, n, errdefs.ErrQuotaExceeded)
		}
		if err := tx.Insert(alarmTableName, &a); err != nil {
			return err
		}
		return recordTxn(tx, &a, "creation", c.user, now, alarmDetail(&a))
	})
	if err != nil {
		if a.TrustID != "" {
			_ = s.cfg.Trusts.Revoke(ctx, a.TrustID)
		}
		return nil, err
	}
	return s.get(a.ID)
}

func alarmDetail(a *Alarm) map[string]any {
	return map[string]any{"name": a.Name, "type": a.Type, "enabled": a.Enabled, "state": a.State, "severity": a.Severity,
		"rule": a.Rule, "alarm_actions": a.AlarmActions, "ok_actions": a.OKActions,
		"insufficient_data_actions": a.InsufficientDataActions, "repeat_actions": a.RepeatActions,
		"time_constraints": a.TimeConstraints, "description": a.Description}
}

func recordTxn(tx *store.Txn, a *Alarm, typ, user string, now time.Time, detail any) error {
	d, _ := json.Marshal(detail)
	return tx.Insert(historyTableName, &Change{EventID: newUUID(), AlarmID: a.ID, Type: typ, Detail: string(d),
		ProjectID: a.ProjectID, UserID: cmp.Or(user, a.UserID), OnBehalfOf: a.ProjectID, Severity: a.Severity, Timestamp: now})
}

func (s *Service) get(id string) (*Alarm, error) {
	a, err := store.Get[Alarm](nil, s.st.Snapshot(), alarmTableName, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, notFound(id)
		}
		return nil, err
	}
	return a, nil
}

// GetAlarm returns an alarm the caller may see.
func (s *Service) GetAlarm(ctx context.Context, id string) (*Alarm, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.get(id)
	if err != nil || !c.sees(a.ProjectID) {
		return nil, notFound(id)
	}
	return a, nil
}

// ListAlarmsOpts filters ListAlarms: each non-empty field must equal the
// alarm's.
type ListAlarmsOpts struct {
	Name, Type, State, Severity, ProjectID, UserID string
	Enabled                                        *bool
}

// ListAlarms returns the alarms the caller may see, oldest first.
func (s *Service) ListAlarms(ctx context.Context, o ListAlarmsOpts) ([]*Alarm, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tx := s.st.Snapshot()
	var it func(func(*Alarm) bool)
	if c.admin {
		it, err = store.List[Alarm](nil, tx, alarmTableName, store.IDIndex)
	} else {
		it, err = store.List[Alarm](nil, tx, alarmTableName, "project", c.project)
	}
	if err != nil {
		return nil, err
	}
	eq := func(want, have string) bool { return want == "" || want == have }
	var out []*Alarm
	for a := range it {
		if c.sees(a.ProjectID) && eq(o.Name, a.Name) && eq(o.Type, a.Type) && eq(o.State, a.State) && eq(o.Severity, a.Severity) &&
			eq(o.ProjectID, a.ProjectID) && eq(o.UserID, a.UserID) && (o.Enabled == nil || *o.Enabled == a.Enabled) {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(x, y *Alarm) int {
		return cmp.Or(x.Timestamp.Compare(y.Timestamp), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// UpdateAlarm replaces an alarm's definition with a's (Aodh's PUT): its
// id, project, state history and trust are kept; a state given that
// differs from the current one is a state transition.
func (s *Service) UpdateAlarm(ctx context.Context, id string, a Alarm) (*Alarm, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	old, err := s.GetAlarm(ctx, id)
	if err != nil {
		return nil, err
	}
	a.ProjectID, a.UserID = old.ProjectID, old.UserID
	if a.State == "" {
		a.State = old.State
	}
	if err := s.validate(&a); err != nil {
		return nil, err
	}
	now := s.now()
	trust := old.TrustID
	if hasTrustAction(&a) && trust == "" {
		if trust, err = s.cfg.Trusts.Delegate(ctx); err != nil {
			return nil, fmt.Errorf("alarming: trust for the alarm's actions: %w", err)
		}
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[Alarm](nil, tx, alarmTableName, id)
		if err != nil {
			return notFound(id)
		}
		n := a
		n.Meta, n.ID, n.Timestamp, n.TrustID = cur.Meta, id, now, trust
		n.StateTimestamp, n.StateReason = cur.StateTimestamp, cur.StateReason
		if n.State != cur.State {
			n.StateTimestamp, n.StateReason = now, "Manually set via the alarm update"
			if err := recordTxn(tx, &n, "state transition", c.user, now, map[string]string{"state": n.State}); err != nil {
				return err
			}
		}
		if err := recordTxn(tx, &n, "rule change", c.user, now, alarmDetail(&n)); err != nil {
			return err
		}
		return tx.Update(alarmTableName, &n)
	})
	if err != nil {
		return nil, err
	}
	return s.get(id)
}

// DeleteAlarm deletes an alarm (its history stays, with a deletion entry,
// as in Aodh) and revokes its trust.
func (s *Service) DeleteAlarm(ctx context.Context, id string) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	a, err := s.GetAlarm(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		if err := tx.Delete(alarmTableName, id); err != nil {
			return err
		}
		return recordTxn(tx, a, "deletion", c.user, now, alarmDetail(a))
	})
	if err != nil {
		return err
	}
	if a.TrustID != "" && s.cfg.Trusts != nil {
		if err := s.cfg.Trusts.Revoke(ctx, a.TrustID); err != nil {
			s.log.Warn("alarming: revoke trust", "alarm", id, "err", err)
		}
	}
	return nil
}

// SetState sets an alarm's state by hand (Aodh's PUT .../state), recorded
// in its history. The next evaluation may change it again.
func (s *Service) SetState(ctx context.Context, id, state string) (*Alarm, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(states, state) {
		return nil, errdefs.Invalid("state", "must be ok, alarm or insufficient data")
	}
	if _, err := s.GetAlarm(ctx, id); err != nil {
		return nil, err
	}
	now := s.now()
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		a, err := store.Get[Alarm](nil, tx, alarmTableName, id)
		if err != nil {
			return notFound(id)
		}
		if a.State == state {
			return nil
		}
		a.State, a.StateTimestamp, a.StateReason = state, now, "Manually set via the API"
		if err := recordTxn(tx, a, "state transition", c.user, now, map[string]string{"state": state}); err != nil {
			return err
		}
		return tx.Update(alarmTableName, a)
	})
	if err != nil {
		return nil, err
	}
	return s.get(id)
}

// History returns an alarm's changes the caller may see, newest first.
// The history of a deleted alarm stays readable.
func (s *Service) History(ctx context.Context, id string) ([]*Change, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := store.List[Change](nil, s.st.Snapshot(), historyTableName, "alarm", id)
	if err != nil {
		return nil, err
	}
	var out []*Change
	for ch := range it {
		if c.sees(ch.ProjectID) {
			out = append(out, ch)
		}
	}
	if len(out) == 0 {
		return nil, notFound(id)
	}
	slices.SortStableFunc(out, func(x, y *Change) int {
		return cmp.Or(y.Timestamp.Compare(x.Timestamp), cmp.Compare(y.Revision, x.Revision))
	})
	return out, nil
}
