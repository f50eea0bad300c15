package compute

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// placer is a Service with many hosts, for measuring and stressing
// placement (scheduler + claim committed in the store) alone.
type placer struct {
	s      *Service
	flavor Flavor
}

func newPlacer(tb testing.TB, hosts, vcpus int, opts SchedulerOptions) *placer {
	tb.Helper()
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	s, err := New(Config{Store: st, Scheduler: opts, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	// Hosts in bulk: one transaction per 1,000, one cache refresh.
	for i := 0; i < hosts; i += 1000 {
		err := st.Update(context.Background(), func(tx *store.Txn) error {
			for j := i; j < min(i+1000, hosts); j++ {
				id := fmt.Sprintf("h%05d", j)
				if err := tx.Insert(hostTable, &Host{ID: id, Name: id, AZ: "nova", VCPUs: vcpus, RAMMB: vcpus * 1024,
					DiskGB: vcpus * 10, CPURatio: 1, RAMRatio: 1, DiskRatio: 1, Enabled: true, HypervisorType: "fake"}); err != nil {
					return err
				}
				if err := tx.Insert(usageTable, &HostUsage{HostID: id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	s.mu.Lock()
	for i := range hosts {
		id := fmt.Sprintf("h%05d", i)
		s.beats[id] = time.Now().Add(time.Hour)
	}
	s.mu.Unlock()
	s.sched.refresh()
	return &placer{s: s, flavor: Flavor{ID: "f", Name: "f", VCPUs: 1, RAMMB: 1024, DiskGB: 10}}
}

// newServers writes n servers waiting for scheduling.
func (p *placer) newServers(tb testing.TB, n int) []*Server {
	tb.Helper()
	out := make([]*Server, 0, n)
	for i := 0; i < n; i += 1000 {
		var batch []*Server
		for range min(1000, n-i) {
			batch = append(batch, &Server{ID: newUUID(), Name: "b", ProjectID: "p", Flavor: p.flavor, VMState: VMBuilding, TaskState: TaskScheduling})
		}
		err := p.s.st.Update(context.Background(), func(tx *store.Txn) error {
			for _, v := range batch {
				if err := tx.Insert(serverTable, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, batch...)
	}
	return out
}

// placeOne schedules one server and commits its claim.
func (p *placer) placeOne(v *Server) (string, error) {
	return p.s.place(context.Background(), v)
}

// checkNoOvercommit verifies every host's usage against its claims and
// capacity.
func (p *placer) checkNoOvercommit(tb testing.TB) int {
	tb.Helper()
	tx := p.s.st.Snapshot()
	claims := map[string]int{}
	it, _ := store.List[Claim](nil, tx, claimTable, store.IDIndex)
	n := 0
	for c := range it {
		claims[c.HostID] += c.VCPUs
		n++
	}
	hit, _ := store.List[Host](nil, tx, hostTable, store.IDIndex)
	for h := range hit {
		u, _ := store.Get[HostUsage](nil, tx, usageTable, h.ID)
		if u.VCPUs != claims[h.ID] {
			tb.Fatalf("host %s usage %d vcpus, claims %d", h.ID, u.VCPUs, claims[h.ID])
		}
		if u.VCPUs > h.VCPUs {
			tb.Fatalf("host %s overcommitted: %d of %d vcpus", h.ID, u.VCPUs, h.VCPUs)
		}
	}
	return n
}

// TestConcurrentSchedulersNeverOvercommit runs 8 schedulers against the
// same small cloud until it is full: every claim fits, the hosts end
// exactly full, and the losers get no valid host.
func TestConcurrentSchedulersNeverOvercommit(t *testing.T) {
	p := newPlacer(t, 20, 4, SchedulerOptions{})
	const want = 20 * 4
	servers := p.newServers(t, want+40)
	var placed, refused atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(servers) {
					return
				}
				if _, err := p.placeOne(servers[i]); err != nil {
					refused.Add(1)
					continue
				}
				placed.Add(1)
			}
		})
	}
	wg.Wait()
	if placed.Load() != want || refused.Load() != 40 {
		t.Fatalf("placed %d, refused %d; want %d and 40", placed.Load(), refused.Load(), want)
	}
	if n := p.checkNoOvercommit(t); n != want {
		t.Fatalf("%d claims", n)
	}
}

func benchPlace(b *testing.B, hosts int, opts SchedulerOptions, parallel int) {
	p := newPlacer(b, hosts, 256, opts)
	servers := p.newServers(b, b.N)
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(servers) {
					return
				}
				if _, err := p.placeOne(servers[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "placements/s")
	p.checkNoOvercommit(b)
}

// claimOnly commits the claims of servers round-robin over the hosts with
// no scheduling: the store's floor under placement.
func benchClaimOnly(b *testing.B, hosts, parallel int) {
	p := newPlacer(b, hosts, 256, SchedulerOptions{})
	servers := p.newServers(b, b.N)
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(servers) {
					return
				}
				host := fmt.Sprintf("h%05d", i%hosts)
				if err := p.s.st.Update(context.Background(), func(tx *store.Txn) error {
					_, err := claimTxn(tx, servers[i], host)
					return err
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "placements/s")
}

// BenchmarkPlace measures placements per second with the claim committed
// (capacity rechecked inside the claim's store transaction), scanning
// every host or sampling, with 1 and 8 schedulers.
func BenchmarkPlace(b *testing.B) {
	for _, hosts := range []int{1000, 10000} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("hosts=%d/baseline-claim-only/schedulers=%d", hosts, par), func(b *testing.B) { benchClaimOnly(b, hosts, par) })
		}
		for _, mode := range []struct {
			name string
			opts SchedulerOptions
		}{{"scan", SchedulerOptions{}}, {"sample64", SchedulerOptions{Limit: 64}}} {
			for _, par := range []int{1, 8} {
				b.Run(fmt.Sprintf("hosts=%d/%s/schedulers=%d", hosts, mode.name, par), func(b *testing.B) {
					benchPlace(b, hosts, mode.opts, par)
				})
			}
		}
	}
}
