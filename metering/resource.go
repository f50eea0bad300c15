package metering

import (
	"cmp"
	"context"
	"crypto/sha1" //nolint:gosec // a name-based UUID (RFC 9562 version 5), not a security use
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
)

const (
	resourceTableName = "metering.resources"
	metricTableName   = "metering.metrics"
)

// Resource is a thing measured (a server, one of its disks or NICs, a
// volume, an image, an object-store account, a floating IP) and the
// metrics measured on it, by name.
type Resource struct {
	store.Meta
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	ProjectID  string            `json:"project_id"`
	UserID     string            `json:"user_id"`
	StartedAt  time.Time         `json:"started_at"`
	EndedAt    *time.Time        `json:"ended_at"`
	RevisionAt time.Time         `json:"revision_start"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Metrics    map[string]string `json:"metrics"`
	OriginalID string            `json:"original_resource_id"`
	CreatorID  string            `json:"creator"`
}

// StoreKey implements store.Record.
func (r *Resource) StoreKey() string { return r.ID }

// Metric is one meter's series on one resource.
type Metric struct {
	store.Meta
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Unit              string    `json:"unit"`
	ResourceID        string    `json:"resource_id"`
	ProjectID         string    `json:"project_id"`
	ArchivePolicyName string    `json:"archive_policy_name"`
	Created           time.Time `json:"created"`
}

// StoreKey implements store.Record.
func (m *Metric) StoreKey() string { return m.ID }

func resourceTable() store.Table {
	return store.Table{Name: resourceTableName, New: func() store.Record { return new(Resource) },
		Indexes: []*memdb.IndexSchema{{Name: "project", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}}}}
}

func metricTable() store.Table {
	return store.Table{Name: metricTableName, New: func() store.Record { return new(Metric) },
		Indexes: []*memdb.IndexSchema{{Name: "resource", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ResourceID"}}}}
}

// metricID is the metric's id: a name-based UUID of its resource and name,
// so that a series created before a crash is found again after it.
func metricID(resourceID, name string) string {
	h := sha1.Sum([]byte("stratus-metric\x00" + resourceID + "\x00" + name)) //nolint:gosec // see import
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Sample is one measurement of a meter on a resource, with what is known
// of the resource.
type Sample struct {
	Meter        string
	ResourceID   string
	ResourceType string // default: the meter's
	ProjectID    string
	UserID       string
	Time         time.Time
	Value        float64
	// Attributes are the resource's attributes, kept up to date.
	Attributes map[string]string
}

func validID(field, id string) error {
	if id == "" || len(id) > 255 || strings.ContainsAny(id, "/\x00") {
		return errdefs.Invalid(field, "must be 1 to 255 characters without '/'")
	}
	return nil
}

// Record stores samples: the resources and metrics they name are created
// (or their attributes updated) first, then the measures are written in
// one durable batch. It is the pollsters' and the events' way in and does
// not check the caller.
func (s *Service) Record(ctx context.Context, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	for i := range samples {
		sm := &samples[i]
		m, ok := meterByName(sm.Meter)
		if !ok {
			return errdefs.Invalid("meter", "unknown meter %q", sm.Meter)
		}
		if sm.ResourceType == "" {
			sm.ResourceType = m.ResourceType
		}
		if err := validID("resource_id", sm.ResourceID); err != nil {
			return err
		}
	}
	if err := s.ensureMetrics(ctx, samples); err != nil {
		return err
	}
	ms := make([]tsdb.Measure, len(samples))
	for i, sm := range samples {
		ms[i] = tsdb.Measure{Series: metricID(sm.ResourceID, sm.Meter), Time: sm.Time, Value: sm.Value}
	}
	return s.db.Write(ctx, ms)
}

// ensureMetrics creates the resources and metrics samples need that do not
// exist yet, and updates changed attributes. Series are created in the DB
// before their metric records, so a metric record always has its series.
func (s *Service) ensureMetrics(ctx context.Context, samples []Sample) error {
	tx := s.st.Snapshot()
	var todo []Sample
	for _, sm := range samples {
		r, err := store.Get[Resource](nil, tx, resourceTableName, sm.ResourceID)
		if err != nil || r.Metrics[sm.Meter] == "" || attrsChanged(r.Attributes, sm.Attributes) {
			todo = append(todo, sm)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	policy, err := s.policy(s.cfg.DefaultPolicy)
	if err != nil {
		return err
	}
	for _, sm := range todo {
		id := metricID(sm.ResourceID, sm.Meter)
		if !s.db.Has(id) {
			if err := s.db.Create(ctx, id, policy.Definition); err != nil && !errdefsIsConflict(err) {
				return err
			}
		}
	}
	now := s.now()
	return s.st.Update(ctx, func(tx *store.Txn) error {
		for _, sm := range todo {
			r, err := store.Get[Resource](nil, tx, resourceTableName, sm.ResourceID)
			if err != nil {
				if !errdefs.IsNotFound(err) {
					return err
				}
				r = &Resource{ID: sm.ResourceID, OriginalID: sm.ResourceID, Type: sm.ResourceType, ProjectID: sm.ProjectID,
					UserID: sm.UserID, StartedAt: cmp.Or(sm.Time, now).UTC(), RevisionAt: now, Metrics: map[string]string{}}
			}
			changed := r.Revision == 0
			if attrsChanged(r.Attributes, sm.Attributes) {
				if r.Attributes == nil {
					r.Attributes = map[string]string{}
				}
				maps.Copy(r.Attributes, sm.Attributes)
				r.RevisionAt, changed = now, true
			}
			if r.Metrics[sm.Meter] == "" {
				m, _ := meterByName(sm.Meter)
				met := &Metric{ID: metricID(sm.ResourceID, sm.Meter), Name: sm.Meter, Unit: m.Unit, ResourceID: r.ID,
					ProjectID: r.ProjectID, ArchivePolicyName: policy.Name, Created: now}
				if err := tx.Put(metricTableName, met); err != nil {
					return err
				}
				r.Metrics = maps.Clone(r.Metrics)
				r.Metrics[sm.Meter] = met.ID
				changed = true
			}
			if changed {
				if err := tx.Put(resourceTableName, r); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func errdefsIsConflict(err error) bool { return errdefs.IsConflict(err) }

func attrsChanged(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return true
		}
	}
	return false
}

// ListResourcesOpts filters ListResources.
type ListResourcesOpts struct {
	// Type is a resource type; "" or "generic" is every type.
	Type string
	// Filter keeps the resources it matches; nil keeps all.
	Filter *Filter
	// Sort is the attributes to order by, then the id.
	Sort []string
	// Limit and Marker page the list.
	Limit  int
	Marker string
}

// ListResources returns the resources the caller may see, by id.
func (s *Service) ListResources(ctx context.Context, opts ListResourcesOpts) ([]*Resource, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Type != "" && !knownType(opts.Type) {
		return nil, notFound("resource type", opts.Type)
	}
	tx := s.st.Snapshot()
	var it func(func(*Resource) bool)
	if c.admin {
		it, err = store.List[Resource](nil, tx, resourceTableName, store.IDIndex)
	} else {
		it, err = store.List[Resource](nil, tx, resourceTableName, "project", c.project)
	}
	if err != nil {
		return nil, err
	}
	var out []*Resource
	for r := range it {
		if opts.Type != "" && opts.Type != TypeGeneric && r.Type != opts.Type {
			continue
		}
		if !c.sees(r.ProjectID) || !opts.Filter.Match(r) {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *Resource) int {
		for _, k := range opts.Sort {
			if d := strings.Compare(a.attr(k), b.attr(k)); d != 0 {
				return d
			}
		}
		return strings.Compare(a.ID, b.ID)
	})
	if opts.Marker != "" {
		i := slices.IndexFunc(out, func(r *Resource) bool { return r.ID == opts.Marker })
		if i < 0 {
			return nil, errdefs.Invalid("marker", "no resource %q", opts.Marker)
		}
		out = out[i+1:]
	}
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// attr returns a resource's attribute or field by its Gnocchi name.
func (r *Resource) attr(k string) string {
	switch k {
	case "id":
		return r.ID
	case "type":
		return r.Type
	case "project_id":
		return r.ProjectID
	case "user_id":
		return r.UserID
	case "original_resource_id":
		return r.OriginalID
	case "started_at":
		return r.StartedAt.Format(time.RFC3339Nano)
	case "ended_at":
		if r.EndedAt == nil {
			return ""
		}
		return r.EndedAt.Format(time.RFC3339Nano)
	}
	return r.Attributes[k]
}

// GetResource returns a resource the caller may see. typ is its type, or
// "" or "generic" for any.
func (s *Service) GetResource(ctx context.Context, typ, id string) (*Resource, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := store.Get[Resource](nil, s.st.Snapshot(), resourceTableName, id)
	if err != nil || !c.sees(r.ProjectID) || (typ != "" && typ != TypeGeneric && r.Type != typ) {
		return nil, notFound("resource", id)
	}
	return r, nil
}

// GetMetric returns a metric the caller may see.
func (s *Service) GetMetric(ctx context.Context, id string) (*Metric, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m, err := store.Get[Metric](nil, s.st.Snapshot(), metricTableName, id)
	if err != nil || !c.sees(m.ProjectID) {
		return nil, notFound("metric", id)
	}
	return m, nil
}

// GetResourceMetric returns the metric called name of a resource.
func (s *Service) GetResourceMetric(ctx context.Context, resourceID, name string) (*Metric, error) {
	r, err := s.GetResource(ctx, "", resourceID)
	if err != nil {
		return nil, err
	}
	id, ok := r.Metrics[name]
	if !ok {
		return nil, notFound("metric", resourceID+"/"+name)
	}
	return s.GetMetric(ctx, id)
}

// ListMetrics returns the metrics the caller may see, by id.
func (s *Service) ListMetrics(ctx context.Context) ([]*Metric, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := store.List[Metric](nil, s.st.Snapshot(), metricTableName, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*Metric
	for m := range it {
		if c.sees(m.ProjectID) {
			out = append(out, m)
		}
	}
	return out, nil
}

// MeasuresQuery selects a metric's measures.
type MeasuresQuery struct {
	// Aggregation is mean, min, max, sum, count, last or rate:<one of
	// them>; default mean.
	Aggregation string
	// Granularity picks one archive; zero is every archive.
	Granularity time.Duration
	// Start and Stop bound the buckets, [Start, Stop).
	Start, Stop time.Time
}

func (q MeasuresQuery) tsdb() (tsdb.Query, error) {
	agg := cmp.Or(q.Aggregation, "mean")
	m, rate := strings.CutPrefix(agg, "rate:")
	if !slices.Contains(tsdb.Methods, tsdb.Method(m)) {
		return tsdb.Query{}, errdefs.Invalid("aggregation", "unknown aggregation method %q", agg)
	}
	return tsdb.Query{Granularity: q.Granularity, Method: tsdb.Method(m), Rate: rate, Start: q.Start, Stop: q.Stop}, nil
}

// Measures returns a metric's aggregated measures: coarsest granularity
// first, oldest first within each.
func (s *Service) Measures(ctx context.Context, metricID string, q MeasuresQuery) ([]tsdb.Point, error) {
	m, err := s.GetMetric(ctx, metricID)
	if err != nil {
		return nil, err
	}
	tq, err := q.tsdb()
	if err != nil {
		return nil, err
	}
	ps, err := s.db.Aggregate(m.ID, tq)
	if err != nil && errdefs.IsNotFound(err) && q.Granularity != 0 {
		return nil, errdefs.Invalid("granularity", "metric %s has no granularity %s", m.ID, q.Granularity)
	}
	return ps, err
}

// Measure is one value written to a metric through AddMeasures.
type Measure struct {
	Time  time.Time
	Value float64
}

// AddMeasures writes measures to a metric (cloud admins only).
func (s *Service) AddMeasures(ctx context.Context, metricID string, ms []Measure) error {
	return s.BatchMeasures(ctx, map[string][]Measure{metricID: ms})
}

// BatchMeasures writes measures to several metrics in one durable batch
// (cloud admins only); nothing is written if a metric is missing.
func (s *Service) BatchMeasures(ctx context.Context, batch map[string][]Measure) error {
	c, err := caller(ctx)
	if err != nil {
		return err
	}
	if err := c.writer(ctx, "add measures"); err != nil {
		return err
	}
	var out []tsdb.Measure
	for id, ms := range batch {
		if _, err := s.GetMetric(ctx, id); err != nil {
			return err
		}
		for _, m := range ms {
			out = append(out, tsdb.Measure{Series: id, Time: m.Time, Value: m.Value})
		}
	}
	return s.db.Write(ctx, out)
}

// Latest is a metric's newest measure.
type Latest struct {
	Metric   *Metric
	Resource *Resource
	Time     time.Time
	Value    float64
}

// LatestAll returns the newest measure of every metric of every resource
// (for Prometheus; it does not check a caller: the listener is the
// operator's).
func (s *Service) LatestAll() ([]Latest, error) {
	tx := s.st.Snapshot()
	it, err := store.List[Resource](nil, tx, resourceTableName, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []Latest
	for r := range it {
		for _, name := range slices.Sorted(maps.Keys(r.Metrics)) {
			m, err := store.Get[Metric](nil, tx, metricTableName, r.Metrics[name])
			if err != nil {
				continue
			}
			if l, ok := s.db.Latest(m.ID); ok {
				out = append(out, Latest{Metric: m, Resource: r, Time: l.Time, Value: l.Value})
			}
		}
	}
	return out, nil
}
