package metering

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
)

const policyTableName = "metering.archive_policies"

// ArchivePolicy says what a metric keeps: buckets of each granularity for
// a timespan, answering the aggregation methods listed.
type ArchivePolicy struct {
	store.Meta
	Name               string         `json:"name"`
	BackWindow         int            `json:"back_window"`
	Definition         []tsdb.Archive `json:"definition"`
	AggregationMethods []string       `json:"aggregation_methods"`
}

// StoreKey implements store.Record.
func (p *ArchivePolicy) StoreKey() string { return p.Name }

func policyTable() store.Table {
	return store.Table{Name: policyTableName, New: func() store.Record { return new(ArchivePolicy) }}
}

// allMethods are the aggregation methods of the default policies, as
// Gnocchi lists them (rate:<method> is derived from each).
var allMethods = []string{"mean", "min", "max", "sum", "count", "last",
	"rate:mean", "rate:min", "rate:max", "rate:sum", "rate:count", "rate:last"}

const day = 24 * time.Hour

// DefaultPolicies are the archive policies Start creates, with Gnocchi's
// and Ceilometer's names and definitions.
func DefaultPolicies() []ArchivePolicy {
	p := func(name string, as ...tsdb.Archive) ArchivePolicy {
		return ArchivePolicy{Name: name, Definition: as, AggregationMethods: slices.Clone(allMethods)}
	}
	a := func(g, ts time.Duration) tsdb.Archive { return tsdb.Archive{Granularity: g, Timespan: ts} }
	return []ArchivePolicy{
		p("low", a(5*time.Minute, 30*day)),
		p("medium", a(time.Minute, 7*day), a(time.Hour, 365*day)),
		p("high", a(time.Second, time.Hour), a(time.Minute, 7*day), a(time.Hour, 365*day)),
		p("ceilometer-low", a(5*time.Minute, 30*day)),
		p("ceilometer-high", a(time.Second, time.Hour), a(time.Minute, day), a(time.Hour, 365*day)),
		p("stratus", a(5*time.Minute, day), a(time.Hour, 30*day), a(day, 365*day)),
	}
}

func (s *Service) ensurePolicies(ctx context.Context) error {
	return s.st.Update(ctx, func(tx *store.Txn) error {
		for _, p := range DefaultPolicies() {
			if _, err := store.Get[ArchivePolicy](nil, tx, policyTableName, p.Name); err == nil {
				continue
			}
			if err := tx.Insert(policyTableName, &p); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Service) policy(name string) (*ArchivePolicy, error) {
	p, err := store.Get[ArchivePolicy](nil, s.st.Snapshot(), policyTableName, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, notFound("archive policy", name)
		}
		return nil, err
	}
	return p, nil
}

// GetArchivePolicy returns the archive policy called name.
func (s *Service) GetArchivePolicy(ctx context.Context, name string) (*ArchivePolicy, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	return s.policy(name)
}

// ListArchivePolicies returns every archive policy, by name.
func (s *Service) ListArchivePolicies(ctx context.Context) ([]*ArchivePolicy, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	it, err := store.List[ArchivePolicy](nil, s.st.Snapshot(), policyTableName, store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []*ArchivePolicy
	for p := range it {
		out = append(out, p)
	}
	return out, nil
}

// CreateArchivePolicy adds an archive policy (cloud admins only).
func (s *Service) CreateArchivePolicy(ctx context.Context, p ArchivePolicy) (*ArchivePolicy, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		return nil, fmt.Errorf("metering: create archive policy: %w", errdefs.ErrForbidden)
	}
	if p.Name == "" || len(p.Name) > 255 || strings.ContainsAny(p.Name, "/\x00") {
		return nil, errdefs.Invalid("name", "must be 1 to 255 characters without '/'")
	}
	if err := tsdb.ValidateArchives(p.Definition); err != nil {
		return nil, errdefs.Invalid("definition", "%s", strings.TrimPrefix(err.Error(), "tsdb: "))
	}
	if len(p.AggregationMethods) == 0 {
		p.AggregationMethods = slices.Clone(allMethods)
	}
	for _, m := range p.AggregationMethods {
		if !slices.Contains(allMethods, m) {
			return nil, errdefs.Invalid("aggregation_methods", "unknown method %q", m)
		}
	}
	p.Meta = store.Meta{}
	err = s.st.Update(ctx, func(tx *store.Txn) error { return tx.Insert(policyTableName, &p) })
	if errors.Is(err, errdefs.ErrConflict) {
		return nil, fmt.Errorf("metering: archive policy %q exists: %w", p.Name, errdefs.ErrConflict)
	}
	if err != nil {
		return nil, err
	}
	return s.policy(p.Name)
}
