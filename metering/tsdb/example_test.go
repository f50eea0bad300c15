package tsdb_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stratuskit/stratus/metering/tsdb"
)

// Example writes a counter's samples and reads its hourly increase.
func Example() {
	dir, _ := os.MkdirTemp("", "tsdb-example")
	defer os.RemoveAll(dir)
	db, err := tsdb.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()
	hourly := []tsdb.Archive{{Granularity: time.Hour, Timespan: 30 * 24 * time.Hour}}
	if err := db.Create(ctx, "cpu", hourly); err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// CPU nanoseconds every 30 minutes; the guest restarts at 01:30.
	var ms []tsdb.Measure
	for i, v := range []float64{0, 1e9, 2e9, 0.5e9, 1.5e9} {
		ms = append(ms, tsdb.Measure{Series: "cpu", Time: t0.Add(time.Duration(i) * 30 * time.Minute), Value: v})
	}
	if err := db.Write(ctx, ms); err != nil {
		panic(err)
	}
	ps, _ := db.Aggregate("cpu", tsdb.Query{Granularity: time.Hour, Method: tsdb.Last, Rate: true})
	for _, p := range ps {
		fmt.Println(p.Time.Format("15:04"), p.Value)
	}
	// Output:
	// 01:00 5e+08
	// 02:00 1e+09
}
