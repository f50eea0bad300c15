package network_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/stratuskit/stratus/network"
	"github.com/stratuskit/stratus/network/fakenet"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/boltstore"
)

// durable is a Service on a bbolt store in a temporary directory, with a
// /16 network whose project has no port quota.
type durable struct {
	st  *store.Store
	svc *Service
	net string
	ctx context.Context
}

func newDurable(tb testing.TB) *durable {
	tb.Helper()
	ctx := context.Background()
	b, err := boltstore.Open(ctx, filepath.Join(tb.TempDir(), "state.db"), &boltstore.Options{Preallocate: 64 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(ctx, b, Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	svc := must(New(Config{Store: st, Backend: fakenet.New()}))
	admin := adminCtx()
	must(svc.UpdateQuota(admin, "bench", Quota{"port": -1}))
	c := member("bench")
	n := must(svc.CreateNetwork(c, CreateNetworkOpts{Name: "big"}))
	must(svc.CreateSubnet(c, CreateSubnetOpts{NetworkID: n.ID, CIDR: "10.0.0.0/16"}))
	return &durable{st: st, svc: svc, net: n.ID, ctx: c}
}

// create makes n ports with callers concurrent callers and returns the
// time it took.
func (d *durable) create(tb testing.TB, n, callers int) time.Duration {
	tb.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := d.svc.CreatePort(d.ctx, CreatePortOpts{NetworkID: d.net}); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// fill creates n ports quickly, 1,000 to a transaction.
func (d *durable) fill(tb testing.TB, n int) {
	tb.Helper()
	for n > 0 {
		k := min(n, 1000)
		n -= k
		opts := make([]CreatePortOpts, k)
		for i := range opts {
			opts[i].NetworkID = d.net
		}
		must(d.svc.CreatePorts(d.ctx, opts))
	}
}

// commits makes n minimal durable writes (one event each) with callers
// concurrent callers: the store's group-commit rate, the baseline a port
// create is compared with.
func (d *durable) commits(tb testing.TB, n, callers int) time.Duration {
	tb.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := d.st.Update(d.ctx, func(tx *store.Txn) error { return tx.Emit("bench", "", "", nil) }); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkPortCreateDurable measures port creates (IPAM, MAC, quota,
// default security group, event; each durable in bbolt before it returns)
// by 16 concurrent callers on a /16, and beside them the store's group
// commit of minimal writes (one event each, 16 callers) on the same file:
// ports/writes is the share of the store's rate a port create reaches.
func BenchmarkPortCreateDurable(b *testing.B) {
	d := newDurable(b)
	b.ResetTimer()
	took := d.create(b, b.N, 16)
	b.StopTimer()
	n := max(b.N, 500)
	writes := float64(n) / d.commits(b, n, 16).Seconds()
	ports := float64(b.N) / took.Seconds()
	b.ReportMetric(ports, "ports/s")
	b.ReportMetric(writes, "writes/s")
	b.ReportMetric(ports/writes, "ports/writes")
}
