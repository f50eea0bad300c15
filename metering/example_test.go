package metering_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// volumes is a pollster source: one volume that grows.
type volumes struct{ size int }

func (v *volumes) Volumes(context.Context) ([]metering.VolumeUsage, error) {
	return []metering.VolumeUsage{{ID: "vol-1", ProjectID: "p1", SizeGB: v.size}}, nil
}

// Example polls a volume's size and reads its hourly mean.
func Example() {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	st, _ := store.Open(ctx, memstore.New(), metering.Tables(), &store.Options{CompactInterval: -1})
	defer st.Close()
	dir, _ := os.MkdirTemp("", "metering-example")
	defer os.RemoveAll(dir)
	db, _ := tsdb.Open(dir, nil)
	defer db.Close()
	svc, err := metering.New(metering.Config{Store: st, DB: db, Clock: func() time.Time { return now }, PollInterval: -1})
	if err != nil {
		panic(err)
	}
	src := &volumes{size: 1}
	svc.Use(metering.Sources{Volumes: src})
	if err := svc.Start(ctx); err != nil {
		panic(err)
	}
	defer svc.Close()
	for i := range 12 { // an hour, every 5 minutes; 3 GB from 00:30
		now = t0.Add(time.Duration(i) * 5 * time.Minute)
		if i == 6 {
			src.size = 3
		}
		_ = svc.Poll(ctx)
	}
	admin := identity.WithCredentials(ctx, identity.SystemAdmin())
	m, _ := svc.GetResourceMetric(admin, "vol-1", "volume.size")
	ps, _ := svc.Measures(admin, m.ID, metering.MeasuresQuery{Granularity: time.Hour})
	fmt.Println(m.Unit, ps[0].Time.Format("15:04"), ps[0].Value)
	// Output: GB 00:00 2
}
