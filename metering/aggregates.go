package metering

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/metering/tsdb"
)

// AggregatesQuery is a Gnocchi aggregates request.
type AggregatesQuery struct {
	// Operations is the operation tree, such as
	// (aggregate mean (metric cpu mean)) as ParseOperations reads it.
	// Stratus answers (metric REF AGG), (metric (REF AGG) ...) and
	// (aggregate METHOD (metric ...)).
	Operations []any
	// Search, when set, makes REF a metric name looked up on every
	// resource of ResourceType that Search matches (the caller's own
	// resources only, unless admin); otherwise REF is a metric id.
	Search       *Filter
	SearchAll    bool // search every resource (an empty search)
	ResourceType string
	// GroupBy groups the resources by these attributes (search only).
	GroupBy []string
	// Granularity picks one archive; zero is every granularity the
	// metrics have in common.
	Granularity time.Duration
	Start, Stop time.Time
}

// AggregateSeries is one series of an aggregates answer. Keys name it:
// ["aggregated"], [metric id, aggregation] or [resource id, metric name,
// aggregation].
type AggregateSeries struct {
	Keys   []string
	Points []tsdb.Point
}

// AggregateGroup is the answer for one group of resources (one group with
// no Group when there is no GroupBy).
type AggregateGroup struct {
	Group  map[string]string
	Series []AggregateSeries
}

// ParseOperations reads Gnocchi's operations: a string in its
// s-expression syntax or a JSON list.
func ParseOperations(raw json.RawMessage) ([]any, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return parseSexpr(s)
	}
	var ops []any
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, errdefs.Invalid("operations", "must be a string or a list")
	}
	return ops, nil
}

func parseSexpr(s string) ([]any, error) {
	toks := strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(s))
	if len(toks) > 4096 {
		return nil, errdefs.Invalid("operations", "too long")
	}
	pos := 0
	var parse func(depth int) ([]any, error)
	parse = func(depth int) ([]any, error) {
		if depth > 16 {
			return nil, errdefs.Invalid("operations", "nested too deep")
		}
		if pos >= len(toks) || toks[pos] != "(" {
			return nil, errdefs.Invalid("operations", "expected '('")
		}
		pos++
		var out []any
		for pos < len(toks) && toks[pos] != ")" {
			if toks[pos] == "(" {
				sub, err := parse(depth + 1)
				if err != nil {
					return nil, err
				}
				out = append(out, sub)
				continue
			}
			out = append(out, strings.Trim(toks[pos], `"'`))
			pos++
		}
		if pos >= len(toks) {
			return nil, errdefs.Invalid("operations", "missing ')'")
		}
		pos++
		return out, nil
	}
	ops, err := parse(0)
	if err != nil {
		return nil, err
	}
	if pos != len(toks) {
		return nil, errdefs.Invalid("operations", "text after the expression")
	}
	return ops, nil
}

type ref struct{ name, agg string }

// metricRefs reads a (metric ...) node.
func metricRefs(node []any) ([]ref, error) {
	if len(node) < 2 || node[0] != "metric" {
		return nil, errdefs.Invalid("operations", "expected (metric ...)")
	}
	if name, ok := node[1].(string); ok {
		if len(node) != 3 {
			return nil, errdefs.Invalid("operations", "(metric NAME AGGREGATION)")
		}
		agg, ok := node[2].(string)
		if !ok {
			return nil, errdefs.Invalid("operations", "(metric NAME AGGREGATION)")
		}
		return []ref{{name, agg}}, nil
	}
	var out []ref
	for _, n := range node[1:] {
		pair, ok := n.([]any)
		if !ok || len(pair) != 2 {
			return nil, errdefs.Invalid("operations", "(metric (NAME AGGREGATION) ...)")
		}
		name, ok1 := pair[0].(string)
		agg, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			return nil, errdefs.Invalid("operations", "(metric (NAME AGGREGATION) ...)")
		}
		out = append(out, ref{name, agg})
	}
	return out, nil
}

// Aggregates answers an aggregates request.
func (s *Service) Aggregates(ctx context.Context, q AggregatesQuery) ([]AggregateGroup, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ops := q.Operations
	if len(ops) == 0 {
		return nil, errdefs.Invalid("operations", "required")
	}
	aggregate := ""
	node := ops
	if ops[0] == "aggregate" {
		if len(ops) != 3 {
			return nil, errdefs.Invalid("operations", "(aggregate METHOD (metric ...))")
		}
		m, _ := ops[1].(string)
		if !slices.Contains(tsdb.Methods, tsdb.Method(m)) {
			return nil, errdefs.Invalid("operations", "unknown aggregation method %q", m)
		}
		aggregate = m
		sub, ok := ops[2].([]any)
		if !ok {
			return nil, errdefs.Invalid("operations", "(aggregate METHOD (metric ...))")
		}
		node = sub
	}
	refs, err := metricRefs(node)
	if err != nil {
		return nil, err
	}
	if q.Search == nil && !q.SearchAll {
		var series []target
		for _, r := range refs {
			m, err := s.GetMetric(ctx, r.name)
			if err != nil {
				return nil, err
			}
			series = append(series, target{keys: []string{m.ID, r.agg}, metric: m, agg: r.agg})
		}
		g, err := s.evaluate(series, aggregate, q)
		if err != nil {
			return nil, err
		}
		return []AggregateGroup{g}, nil
	}
	typ := q.ResourceType
	if typ == "" {
		typ = TypeGeneric
	}
	rs, err := s.ListResources(ctx, ListResourcesOpts{Type: typ, Filter: q.Search, Sort: q.GroupBy})
	if err != nil {
		return nil, err
	}
	var out []AggregateGroup
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && sameGroup(rs[i], rs[j], q.GroupBy) {
			j++
		}
		var series []target
		for _, r := range rs[i:j] {
			for _, rf := range refs {
				id, ok := r.Metrics[rf.name]
				if !ok || !c.sees(r.ProjectID) {
					continue
				}
				m, err := s.GetMetric(ctx, id)
				if err != nil {
					continue
				}
				series = append(series, target{keys: []string{r.ID, rf.name, rf.agg}, metric: m, agg: rf.agg})
			}
		}
		if len(series) > 0 {
			g, err := s.evaluate(series, aggregate, q)
			if err != nil {
				return nil, err
			}
			if len(q.GroupBy) > 0 {
				g.Group = map[string]string{}
				for _, k := range q.GroupBy {
					g.Group[k] = rs[i].attr(k)
				}
			}
			out = append(out, g)
		}
		i = j
	}
	if len(out) == 0 && len(q.GroupBy) == 0 {
		return nil, errdefs.Invalid("operations", "no resource has the metrics named")
	}
	return out, nil
}

func sameGroup(a, b *Resource, by []string) bool {
	for _, k := range by {
		if a.attr(k) != b.attr(k) {
			return false
		}
	}
	return true
}

type target struct {
	keys   []string
	metric *Metric
	agg    string
}

// evaluate reads every target at the granularities they share and, with
// aggregate set, combines them bucket by bucket.
func (s *Service) evaluate(ts []target, aggregate string, q AggregatesQuery) (AggregateGroup, error) {
	grans, err := s.commonGranularities(ts, q.Granularity)
	if err != nil {
		return AggregateGroup{}, err
	}
	var g AggregateGroup
	var all []AggregateSeries
	for _, t := range ts {
		as := AggregateSeries{Keys: t.keys}
		for _, gr := range grans {
			tq, err := MeasuresQuery{Aggregation: t.agg, Granularity: gr, Start: q.Start, Stop: q.Stop}.tsdb()
			if err != nil {
				return g, err
			}
			as.Points, err = s.db.AppendAggregate(as.Points, t.metric.ID, tq)
			if err != nil {
				return g, err
			}
		}
		all = append(all, as)
	}
	if aggregate == "" {
		g.Series = all
		return g, nil
	}
	// Combine: per (granularity, time), the method over the values present.
	type key struct {
		g time.Duration
		t int64
	}
	vals := map[key][]float64{}
	var keys []key
	for _, as := range all {
		for _, p := range as.Points {
			k := key{p.Granularity, p.Time.UnixNano()}
			if _, ok := vals[k]; !ok {
				keys = append(keys, k)
			}
			vals[k] = append(vals[k], p.Value)
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.g != b.g {
			return int(b.g - a.g)
		}
		return int(a.t - b.t)
	})
	out := AggregateSeries{Keys: []string{"aggregated"}}
	for _, k := range keys {
		out.Points = append(out.Points, tsdb.Point{Time: time.Unix(0, k.t).UTC(), Granularity: k.g, Value: combine(aggregate, vals[k])})
	}
	g.Series = []AggregateSeries{out}
	return g, nil
}

func combine(method string, vs []float64) float64 {
	switch tsdb.Method(method) {
	case tsdb.Count:
		return float64(len(vs))
	case tsdb.Min:
		return slices.Min(vs)
	case tsdb.Max:
		return slices.Max(vs)
	case tsdb.Last:
		return vs[len(vs)-1]
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	if tsdb.Method(method) == tsdb.Sum {
		return sum
	}
	return sum / float64(len(vs))
}

func (s *Service) commonGranularities(ts []target, want time.Duration) ([]time.Duration, error) {
	count := map[time.Duration]int{}
	for _, t := range ts {
		as, err := s.db.Archives(t.metric.ID)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			count[a.Granularity]++
		}
	}
	if want != 0 {
		if count[want] != len(ts) {
			return nil, errdefs.Invalid("granularity", "not every metric has granularity %s", want)
		}
		return []time.Duration{want}, nil
	}
	var out []time.Duration
	for g, n := range count {
		if n == len(ts) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, errdefs.Invalid("granularity", "the metrics have no granularity in common")
	}
	slices.SortFunc(out, func(a, b time.Duration) int { return int(b - a) })
	return out, nil
}
