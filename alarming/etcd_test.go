package alarming

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratuskit/stratus/internal/etcdtest"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/etcdstore"
)

// countingMetrics answers every rule with one breaching bucket and counts
// the calls.
type countingMetrics struct{ calls atomic.Int64 }

func (c *countingMetrics) Aggregates(_ context.Context, q metering.AggregatesQuery) ([]metering.AggregateGroup, error) {
	c.calls.Add(1)
	return []metering.AggregateGroup{{Series: []metering.AggregateSeries{{Keys: []string{"aggregated"},
		Points: []tsdb.Point{{Time: q.Stop.Add(-time.Minute), Granularity: q.Granularity, Value: 500}}}}}}, nil
}

// TestEtcdOneEvaluator: two controllers share an etcd store; only the one
// that leads "alarming.evaluator" evaluates; when it stops, the other
// takes over.
func TestEtcdOneEvaluator(t *testing.T) {
	cl, err := etcdtest.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	open := func(m *countingMetrics) *Service {
		b, err := etcdstore.Open(t.Context(), cl.Endpoints(), &etcdstore.Options{Prefix: "/alarming"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(t.Context(), b, Tables(), &store.Options{CompactInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := New(Config{Store: st, Metrics: m, EvaluationInterval: 10 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ma, mb := &countingMetrics{}, &countingMetrics{}
	a, b := open(ma), open(mb)
	al := memAlarm("x")
	al.Rule.EvaluationPeriods = 1
	created, err := a.CreateAlarm(member("u1", "p1"), al)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("a to evaluate", func() bool { return ma.calls.Load() > 3 })
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	time.Sleep(200 * time.Millisecond)
	if n := mb.calls.Load(); n != 0 {
		t.Fatalf("the second controller evaluated %d times while the first led", n)
	}
	a.Close()
	waitFor("b to take over", func() bool { return mb.calls.Load() > 3 })
	// Both wrote through the shared store: the state is alarm, reached once.
	waitFor("b to see the state", func() bool {
		got, err := b.GetAlarm(member("u1", "p1"), created.ID)
		return err == nil && got.State == StateAlarm
	})
	hs, err := b.History(member("u1", "p1"), created.ID)
	if err != nil || len(hs) != 2 {
		t.Fatalf("history: %d entries (%v), want creation and one transition", len(hs), err)
	}
}
