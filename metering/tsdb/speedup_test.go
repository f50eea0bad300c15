//go:build !race

package tsdb

import (
	"testing"
	"time"
)

// TestSpeedupTSDB checks the targets, best of three: at least
// 200,000 measures/s ingested in batches, at most 4 bytes on disk per
// measure after a checkpoint, a 30-day aggregate over 1,000 series in at
// most 100 ms.
func TestSpeedupTSDB(t *testing.T) {
	best := 0.0
	ids := seriesIDs(1000)
	for range 3 {
		db, err := Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		createAll(t, db, ids, lowPolicy)
		best = max(best, ingest(t, db, ids, 50, 10000, t0))
		_ = db.Close()
	}
	t.Logf("ingest: %.0f measures/s", best)
	if best < 200000 {
		t.Errorf("ingest: %.0f measures/s, want >= 200,000", best)
	}

	per, ratio := bytesPerMeasure(t)
	t.Logf("disk: %.2f bytes/measure (%.1fx smaller than the log)", per, ratio)
	if per > 4 {
		t.Errorf("disk: %.2f bytes/measure, want <= 4", per)
	}

	db, qids := fill30Days(t, 1000)
	defer db.Close()
	fastest := time.Hour
	for range 3 {
		d, _ := query30Days(t, db, qids)
		fastest = min(fastest, d)
	}
	t.Logf("30-day aggregate over 1,000 series: %s", fastest)
	if fastest > 100*time.Millisecond {
		t.Errorf("30-day aggregate: %s, want <= 100ms", fastest)
	}
}
