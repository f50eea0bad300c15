package tsdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// lowPolicy is Ceilometer's default archive policy ("ceilometer-low"): five
// minute buckets for 30 days.
var lowPolicy = []Archive{{Granularity: 5 * time.Minute, Timespan: 30 * 24 * time.Hour}}

func seriesIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("metric-%04d", i)
	}
	return ids
}

func createAll(tb testing.TB, db *DB, ids []string, as []Archive) {
	tb.Helper()
	for _, id := range ids {
		if err := db.Create(context.Background(), id, as); err != nil {
			tb.Fatal(err)
		}
	}
}

// ingest writes rounds of one measure per series, batch measures per Write,
// and returns the measures written per second.
func ingest(tb testing.TB, db *DB, ids []string, rounds, batch int, start time.Time) float64 {
	tb.Helper()
	ctx := context.Background()
	ms := make([]Measure, 0, batch)
	n := 0
	t := time.Now()
	for r := range rounds {
		ts := start.Add(time.Duration(r) * 10 * time.Second)
		for i, id := range ids {
			ms = append(ms, Measure{id, ts, float64(r*1000 + i)})
			if len(ms) == batch {
				if err := db.Write(ctx, ms); err != nil {
					tb.Fatal(err)
				}
				n += len(ms)
				ms = ms[:0]
			}
		}
	}
	if len(ms) > 0 {
		if err := db.Write(ctx, ms); err != nil {
			tb.Fatal(err)
		}
		n += len(ms)
	}
	return float64(n) / time.Since(t).Seconds()
}

// BenchmarkIngest reports measures/s written in batches of 10,000 (fsync per
// batch) and the ratio to writing them one per Write.
func BenchmarkIngest(b *testing.B) {
	ids := seriesIDs(1000)
	for range b.N {
		db, err := Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		createAll(b, db, ids, lowPolicy)
		batched := ingest(b, db, ids, 50, 10000, t0)
		single := ingest(b, db, ids[:100], 2, 1, t0.Add(time.Hour))
		b.ReportMetric(batched, "measures/s")
		b.ReportMetric(single, "single-measures/s")
		b.ReportMetric(batched/single, "x-vs-single")
		_ = db.Close()
	}
}

// fillDay writes one day of a minute-by-minute mix like the meters
// Stratus polls: cumulative counters (CPU nanoseconds, steady with 3%
// jitter), integral gauges that move (memory.usage in MB, a random walk),
// gauges that rarely move (vcpus, volume.size: constant), and a fourth of
// float gauges (a load figure with two decimals), and returns the number of
// measures.
func fillDay(tb testing.TB, db *DB, n int) int {
	tb.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	ids := seriesIDs(n)
	createAll(tb, db, ids, lowPolicy)
	state := make([]float64, n)
	count := 0
	var ms []Measure
	for m := range 24 * 60 {
		ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(rng.IntN(500))*time.Millisecond)
		for i, id := range ids {
			switch i % 4 {
			case 0:
				state[i] += float64(60e9 + rng.IntN(2e9))
			case 1:
				state[i] = max(0, state[i]+float64(rng.IntN(9)-4))
			case 2:
				state[i] = float64(1 + i%8)
			case 3:
				state[i] = float64(rng.IntN(400)) / 100
			}
			ms = append(ms, Measure{id, ts, state[i]})
		}
		if len(ms) >= 10000 {
			if err := db.Write(ctx, ms); err != nil {
				tb.Fatal(err)
			}
			count += len(ms)
			ms = ms[:0]
		}
	}
	if err := db.Write(ctx, ms); err != nil {
		tb.Fatal(err)
	}
	return count + len(ms)
}

func bytesPerMeasure(tb testing.TB) (perMeasure, rawRatio float64) {
	db, err := Open(tb.TempDir(), &Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	n := fillDay(tb, db, 60)
	before, _ := db.DiskSize()
	if err := db.Checkpoint(); err != nil {
		tb.Fatal(err)
	}
	after, err := db.DiskSize()
	if err != nil {
		tb.Fatal(err)
	}
	return float64(after) / float64(n), float64(before) / float64(after)
}

// BenchmarkBytesPerMeasure reports the bytes on disk per measure ingested
// after a checkpoint, for a day of minute samples kept by ceilometer-low,
// and how much smaller that is than the log the measures arrived in.
func BenchmarkBytesPerMeasure(b *testing.B) {
	for range b.N {
		per, ratio := bytesPerMeasure(b)
		b.ReportMetric(per, "bytes/measure")
		b.ReportMetric(ratio, "x-smaller-than-log")
	}
}

// fill30Days gives n series 30 days of hourly buckets, one measure each.
func fill30Days(tb testing.TB, n int) (*DB, []string) {
	tb.Helper()
	db, err := Open(tb.TempDir(), &Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	ids := seriesIDs(n)
	createAll(tb, db, ids, []Archive{{Granularity: 5 * time.Minute, Timespan: 24 * time.Hour}, {Granularity: time.Hour, Timespan: 30 * 24 * time.Hour}})
	ctx := context.Background()
	ms := make([]Measure, 0, 30*24)
	for i, id := range ids {
		ms = ms[:0]
		for h := range 30 * 24 {
			ms = append(ms, Measure{id, t0.Add(time.Duration(h) * time.Hour), float64(i + h)})
		}
		if err := db.Write(ctx, ms); err != nil {
			tb.Fatal(err)
		}
	}
	return db, ids
}

// query30Days sums the hourly means of every series over 30 days, as the
// aggregates API does for a group of resources, and returns how long it
// took and the result's first value.
func query30Days(tb testing.TB, db *DB, ids []string) (time.Duration, float64) {
	tb.Helper()
	start := time.Now()
	var buf []Point
	total := map[int64]float64{}
	for _, id := range ids {
		var err error
		buf, err = db.AppendAggregate(buf[:0], id, Query{Granularity: time.Hour, Method: Mean, Start: t0, Stop: t0.Add(30 * 24 * time.Hour)})
		if err != nil {
			tb.Fatal(err)
		}
		for _, p := range buf {
			total[p.Time.UnixNano()] += p.Value
		}
	}
	return time.Since(start), total[t0.UnixNano()]
}

// BenchmarkQuery30Days reports a 30-day hourly aggregate over 1,000 series.
func BenchmarkQuery30Days(b *testing.B) {
	db, ids := fill30Days(b, 1000)
	defer db.Close()
	b.ResetTimer()
	for range b.N {
		d, first := query30Days(b, db, ids)
		if first != 999*1000/2 {
			b.Fatalf("first hour sums to %v", first)
		}
		b.ReportMetric(float64(d.Microseconds())/1000, "ms/query")
	}
}

// BenchmarkQueryRollupVsFine reports how much faster a 30-day query reads
// the hourly rollup than the 5-minute buckets of the same measures (what
// it would read without rollups), over 100 series of 30 days of 5-minute
// samples.
func BenchmarkQueryRollupVsFine(b *testing.B) {
	db, err := Open(b.TempDir(), &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ids := seriesIDs(100)
	createAll(b, db, ids, []Archive{{Granularity: 5 * time.Minute, Timespan: 30 * 24 * time.Hour}, {Granularity: time.Hour, Timespan: 30 * 24 * time.Hour}})
	ctx := context.Background()
	ms := make([]Measure, 0, 30*288)
	for i, id := range ids {
		ms = ms[:0]
		for k := range 30 * 288 {
			ms = append(ms, Measure{id, t0.Add(time.Duration(k) * 5 * time.Minute), float64(i + k%7)})
		}
		if err := db.Write(ctx, ms); err != nil {
			b.Fatal(err)
		}
	}
	read := func(g time.Duration) time.Duration {
		start := time.Now()
		var buf []Point
		for _, id := range ids {
			buf, _ = db.AppendAggregate(buf[:0], id, Query{Granularity: g, Method: Mean, Start: t0, Stop: t0.Add(30 * 24 * time.Hour)})
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for range b.N {
		coarse, fine := read(time.Hour), read(5*time.Minute)
		b.ReportMetric(float64(coarse.Microseconds())/1000, "ms/hourly-query")
		b.ReportMetric(float64(fine)/float64(coarse), "x-faster-than-5min")
	}
}
