package storetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratuskit/stratus/store"
)

// Bench runs the store benchmarks on the backend: acknowledged transactions
// per second with one writer and with 16 concurrent writers (group
// commit), indexed lookups, and the time to reload every record on open
// (STRATUS_BENCH_RELOAD records, default 1,000,000).
func Bench(b *testing.B, cfg Config) {
	for _, w := range []int{1, 16} {
		b.Run(fmt.Sprintf("Commit/writers=%d", w), func(b *testing.B) { benchCommit(b, cfg, w) })
	}
	b.Run("Lookup", func(b *testing.B) { benchLookup(b, cfg) })
	b.Run("Reload", func(b *testing.B) { benchReload(b, cfg) })
}

func openBench(tb testing.TB, cfg Config, dir string) *store.Store {
	tb.Helper()
	ctx := context.Background()
	be, err := cfg.Open(ctx, dir)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(ctx, be, Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// commitN runs n single-record transactions spread over writers goroutines
// and returns how long they took.
func commitN(tb testing.TB, st *store.Store, writers, n int, prefix string) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				id := fmt.Sprintf("%s-%09d", prefix, i)
				err := st.Update(ctx, func(tx *store.Txn) error {
					return tx.Insert(widgets, &Widget{ID: id, Project: "bench", Name: id})
				})
				if err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchCommit measures acknowledged transactions per second with the given
// number of concurrent writers, each transaction inserting one record.
func BenchCommit(b *testing.B, cfg Config, writers int) { benchCommit(b, cfg, writers) }

func benchCommit(b *testing.B, cfg Config, writers int) {
	st := openBench(b, cfg, b.TempDir())
	defer st.Close()
	b.ResetTimer()
	d := commitN(b, st, writers, b.N, "c")
	b.ReportMetric(float64(b.N)/d.Seconds(), "tx/s")
}

// CommitRate measures acknowledged transactions per second with the given
// number of concurrent writers over about d, on a fresh store.
func CommitRate(tb testing.TB, cfg Config, writers int, d time.Duration) float64 {
	st := openBench(tb, cfg, tb.TempDir())
	defer st.Close()
	// Calibrate: run batches until d has passed.
	total, elapsed := 0, time.Duration(0)
	for n := 50 * writers; elapsed < d; n *= 2 {
		elapsed += commitN(tb, st, writers, n, fmt.Sprintf("r%d", total))
		total += n
	}
	return float64(total) / elapsed.Seconds()
}

func benchLookup(b *testing.B, cfg Config) {
	st := openBench(b, cfg, b.TempDir())
	defer st.Close()
	const n = 10000
	err := st.Update(context.Background(), func(tx *store.Txn) error {
		for i := range n {
			id := fmt.Sprintf("w%06d", i)
			if err := tx.Insert(widgets, &Widget{ID: id, Project: fmt.Sprintf("p%d", i%100), Name: "name-" + id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		tx := st.Snapshot()
		name := fmt.Sprintf("name-w%06d", i%n)
		if _, err := store.First[Widget](nil, tx, widgets, "name", name); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lookups/s")
}

func benchReload(b *testing.B, cfg Config) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("STRATUS_BENCH_RELOAD")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	st := openBench(b, cfg, dir)
	const chunk = 10000
	for done := 0; done < n; done += chunk {
		err := st.Update(context.Background(), func(tx *store.Txn) error {
			for i := done; i < min(done+chunk, n); i++ {
				id := fmt.Sprintf("w%09d", i)
				if err := tx.Insert(widgets, &Widget{ID: id, Project: fmt.Sprintf("p%d", i%1000), Name: id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		st := openBench(b, cfg, dir)
		total += time.Since(start)
		b.StopTimer()
		_ = st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "records")
	b.ReportMetric((total / time.Duration(b.N)).Seconds(), "s/reload")
}
