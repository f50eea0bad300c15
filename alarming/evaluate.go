package alarming

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/store"
)

// leaderName is the store election the evaluators campaign in.
const leaderName = "alarming.evaluator"

// evalLoop campaigns for the evaluator's leadership and, while it leads,
// evaluates every alarm each EvaluationInterval. A lost leadership (an etcd
// partition, a stall) sends it back to campaigning; the state it wrote is
// in the store, so the next leader carries on from it.
func (s *Service) evalLoop(ctx context.Context) {
	for ctx.Err() == nil {
		lead, err := s.st.Campaign(ctx, leaderName)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("alarming: campaign", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		s.lead(ctx, lead)
		_ = lead.Resign(context.WithoutCancel(ctx))
	}
}

func (s *Service) lead(ctx context.Context, lead *store.Leader) {
	t := time.NewTicker(s.cfg.EvaluationInterval)
	defer t.Stop()
	for {
		if err := s.evaluate(ctx, lead.Update); err != nil && ctx.Err() == nil {
			s.log.Warn("alarming: evaluate", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-lead.Lost():
			return
		case <-t.C:
		}
	}
}

// Evaluate evaluates every enabled alarm once, now (tests and hosts that
// run no loop call it; the loop calls it under the leadership).
func (s *Service) Evaluate(ctx context.Context) error { return s.evaluate(ctx, s.st.Update) }

type updater func(ctx context.Context, fn func(*store.Txn) error) error

func (s *Service) evaluate(ctx context.Context, update updater) error {
	it, err := store.List[Alarm](nil, s.st.Snapshot(), alarmTableName, store.IDIndex)
	if err != nil {
		return err
	}
	now := s.now()
	var errs []error
	for a := range it {
		if !a.Enabled || !active(a, now) {
			continue
		}
		if err := s.evaluateOne(ctx, update, a, now); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("alarm %s: %w", a.ID, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("alarming: %d alarms failed, first: %w", len(errs), errs[0])
	}
	return nil
}

// verdict is an evaluation's outcome.
type verdict struct {
	state  string // "" keeps the current state
	reason string
	values []float64
}

// judge reads the last EvaluationPeriods buckets of the rule's aggregate
// (Aodh's gnocchi evaluators): all breaching is alarm, none breaching is
// ok, too few buckets is insufficient data, a mix keeps the state.
func (s *Service) judge(ctx context.Context, a *Alarm, now time.Time) (verdict, error) {
	r := a.Rule
	gran := time.Duration(r.Granularity) * time.Second
	q := metering.AggregatesQuery{ResourceType: r.ResourceType, Granularity: gran,
		Start: now.Add(-gran * time.Duration(r.EvaluationPeriods+1)), Stop: now}
	if a.Type == TypeResourcesThreshold {
		q.Operations = []any{"metric", r.Metric, r.AggregationMethod}
		q.Search = &metering.Filter{Conds: []metering.Cond{{Attr: "id", Values: []string{r.ResourceID}}}}
	} else {
		m, _ := strings.CutPrefix(r.AggregationMethod, "rate:")
		q.Operations = []any{"aggregate", m, []any{"metric", r.Metric, r.AggregationMethod}}
		f, err := queryFilter(r.Query)
		if err != nil {
			return verdict{}, err
		}
		q.Search, q.SearchAll = f, f == nil
	}
	// The alarm reads with its project's credentials: its own resources.
	actx := identity.WithCredentials(ctx, &identity.Credentials{UserID: a.UserID, ProjectID: a.ProjectID, Roles: []string{identity.RoleMember}})
	groups, err := s.cfg.Metrics.Aggregates(actx, q)
	if err != nil && !errors.Is(err, errdefs.ErrInvalid) && !errdefs.IsNotFound(err) {
		return verdict{}, err
	}
	var vals []float64
	if len(groups) > 0 && len(groups[0].Series) > 0 {
		for _, p := range groups[0].Series[0].Points {
			if p.Granularity == gran && !p.Time.Before(q.Start) && p.Time.Before(now) {
				vals = append(vals, p.Value)
			}
		}
	}
	n := r.EvaluationPeriods
	if len(vals) < n {
		return verdict{state: StateInsufficientData, values: vals,
			reason: fmt.Sprintf("%d datapoints are unknown", n-len(vals))}, nil
	}
	vals = vals[len(vals)-n:]
	op := operators[r.ComparisonOperator]
	breach := 0
	for _, v := range vals {
		if op(v, r.Threshold) {
			breach++
		}
	}
	switch breach {
	case n:
		return verdict{state: StateAlarm, values: vals, reason: fmt.Sprintf(
			"Transition to alarm due to %d samples outside threshold, most recent: %g", n, vals[n-1])}, nil
	case 0:
		return verdict{state: StateOK, values: vals, reason: fmt.Sprintf(
			"Transition to ok due to %d samples inside threshold, most recent: %g", n, vals[n-1])}, nil
	}
	return verdict{values: vals, reason: "samples on both sides of the threshold"}, nil
}

func (s *Service) evaluateOne(ctx context.Context, update updater, a *Alarm, now time.Time) error {
	v, err := s.judge(ctx, a, now)
	if err != nil {
		return err
	}
	if v.state == "" {
		return nil
	}
	changed := v.state != a.State
	if !changed && !a.RepeatActions {
		return nil
	}
	prev := a.State
	var cur *Alarm
	if changed {
		err = update(ctx, func(tx *store.Txn) error {
			x, err := store.Get[Alarm](nil, tx, alarmTableName, a.ID)
			if err != nil {
				return err
			}
			if x.State != prev || !x.Enabled { // changed meanwhile: the next pass decides
				cur = nil
				return nil
			}
			x.State, x.StateTimestamp, x.StateReason = v.state, now, v.reason
			if err := recordTxn(tx, x, "state transition", "", now, map[string]any{"state": v.state,
				"transition_reason": v.reason}); err != nil {
				return err
			}
			cur = x
			return tx.Update(alarmTableName, x)
		})
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil
			}
			return err
		}
		if cur == nil {
			return nil
		}
	} else {
		cur = a
	}
	s.fire(cur, prev, v)
	return nil
}

// actionsFor returns the actions of state.
func actionsFor(a *Alarm, state string) []string {
	switch state {
	case StateAlarm:
		return slices.Clone(a.AlarmActions)
	case StateOK:
		return slices.Clone(a.OKActions)
	}
	return slices.Clone(a.InsufficientDataActions)
}
