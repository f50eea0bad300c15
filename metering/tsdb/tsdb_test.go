package tsdb

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

var testArchives = []Archive{
	{Granularity: time.Minute, Timespan: time.Hour},
	{Granularity: time.Hour, Timespan: 30 * 24 * time.Hour},
}

func openT(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func values(ps []Point) []float64 {
	var out []float64
	for _, p := range ps {
		out = append(out, p.Value)
	}
	return out
}

func eq(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRollups(t *testing.T) {
	ctx := context.Background()
	db := openT(t, t.TempDir())
	if err := db.Create(ctx, "m", testArchives); err != nil {
		t.Fatal(err)
	}
	// Two measures a minute for 3 hours: value = minute index, and +0.5 on
	// the second, written out of order within each batch.
	var ms []Measure
	for i := range 180 {
		ms = append(ms, Measure{"m", t0.Add(time.Duration(i)*time.Minute + 30*time.Second), float64(i) + 0.5},
			Measure{"m", t0.Add(time.Duration(i) * time.Minute), float64(i)})
	}
	if err := db.Write(ctx, ms); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q    Query
		want []float64
	}{
		{Query{Granularity: time.Hour, Method: Mean}, []float64{29.75, 89.75, 149.75}},
		{Query{Granularity: time.Hour, Method: Min}, []float64{0, 60, 120}},
		{Query{Granularity: time.Hour, Method: Max}, []float64{59.5, 119.5, 179.5}},
		{Query{Granularity: time.Hour, Method: Count}, []float64{120, 120, 120}},
		{Query{Granularity: time.Hour, Method: Last}, []float64{59.5, 119.5, 179.5}},
		{Query{Granularity: time.Hour, Method: Sum, Start: t0.Add(time.Hour), Stop: t0.Add(2 * time.Hour)}, []float64{120 * 89.75}},
		// Minute archive keeps one hour behind the newest bucket (2:59).
		{Query{Granularity: time.Minute, Method: Last, Start: t0.Add(178 * time.Minute)}, []float64{178.5, 179.5}},
		{Query{Granularity: time.Hour, Method: Last, Rate: true}, []float64{60, 60}},
	}
	for _, c := range cases {
		ps, err := db.Aggregate("m", c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := values(ps); !eq(got, c.want) {
			t.Errorf("%+v: got %v, want %v", c.q, got, c.want)
		}
	}
	all, _ := db.Aggregate("m", Query{Granularity: time.Minute})
	if len(all) != 60 || !all[0].Time.Equal(t0.Add(120*time.Minute)) {
		t.Fatalf("minute archive: %d points from %v, want 60 from 2:00 (retention)", len(all), all[0].Time)
	}
	both, _ := db.Aggregate("m", Query{})
	if len(both) != 63 || both[0].Granularity != time.Hour {
		t.Fatalf("every archive: %d points, first %s; want 63, coarsest first", len(both), both[0].Granularity)
	}
	if l, ok := db.Latest("m"); !ok || l.Value != 179.5 {
		t.Fatalf("latest = %v %v", l, ok)
	}
	// A late measure inside the retention lands in its bucket; one past it
	// is dropped.
	if err := db.Write(ctx, []Measure{{"m", t0.Add(150 * time.Minute), 1000}, {"m", t0.Add(10 * time.Minute), -5}}); err != nil {
		t.Fatal(err)
	}
	ps, _ := db.Aggregate("m", Query{Granularity: time.Minute, Method: Max, Start: t0.Add(150 * time.Minute), Stop: t0.Add(151 * time.Minute)})
	if got := values(ps); !eq(got, []float64{1000}) {
		t.Fatalf("late measure: %v", got)
	}
	ps, _ = db.Aggregate("m", Query{Granularity: time.Hour, Method: Min})
	if got := values(ps); !eq(got, []float64{-5, 60, 120}) {
		t.Fatalf("late measure in hour archive: %v", got)
	}
}

func TestRateSurvivesCounterReset(t *testing.T) {
	ctx := context.Background()
	db := openT(t, t.TempDir())
	if err := db.Create(ctx, "c", []Archive{{Granularity: time.Minute, Timespan: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	// 100, 250, 400, then the guest restarts: 30, 90.
	for i, v := range []float64{100, 250, 400, 30, 90} {
		if err := db.Write(ctx, []Measure{{"c", t0.Add(time.Duration(i) * time.Minute), v}}); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := db.Aggregate("c", Query{Granularity: time.Minute, Method: Last, Rate: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := values(ps); !eq(got, []float64{150, 150, 30, 60}) {
		t.Fatalf("rate = %v", got)
	}
	// A window starting mid-series takes its base from the bucket before.
	ps, _ = db.Aggregate("c", Query{Granularity: time.Minute, Method: Last, Rate: true, Start: t0.Add(2 * time.Minute)})
	if got := values(ps); !eq(got, []float64{150, 30, 60}) {
		t.Fatalf("windowed rate = %v", got)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	db := openT(t, t.TempDir())
	if err := db.Create(ctx, "a", testArchives); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(ctx, "a", testArchives); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("create twice: %v", err)
	}
	if err := db.Create(ctx, "b", []Archive{{Granularity: time.Minute, Timespan: 90 * time.Second}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad timespan: %v", err)
	}
	if err := db.Write(ctx, []Measure{{"a", t0, 1}, {"nope", t0, 1}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown series: %v", err)
	}
	if ps, _ := db.Aggregate("a", Query{}); len(ps) != 0 {
		t.Errorf("a failed write added %v", ps)
	}
	if _, err := db.Aggregate("a", Query{Granularity: time.Second}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing granularity: %v", err)
	}
	if _, err := db.Aggregate("a", Query{Method: "median"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown method: %v", err)
	}
	if err := db.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

// TestReopen writes from many goroutines, closes (checkpoint), reopens,
// writes more without a checkpoint, and reopens again from the log.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := db.Create(ctx, id, testArchives); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := db.Write(ctx, []Measure{{"a", t0.Add(time.Duration(w*50+i) * time.Second), 1}, {"b", t0, float64(w)}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB, wantA float64) {
		t.Helper()
		ps, err := db.Aggregate("a", Query{Granularity: time.Hour, Method: Count})
		if err != nil || len(ps) != 1 || ps[0].Value != wantA {
			t.Fatalf("a count = %v, %v; want %v", ps, err, wantA)
		}
		ps, _ = db.Aggregate("b", Query{Granularity: time.Hour, Method: Sum})
		if len(ps) != 1 || ps[0].Value != 50*(0+1+2+3+4+5+6+7) {
			t.Fatalf("b sum = %v", ps)
		}
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	check(db, 400)
	if err := db.Write(ctx, []Measure{{"a", t0.Add(time.Minute), 1}}); err != nil {
		t.Fatal(err)
	}
	// Abandon db without Close, as a crash would (its log is complete).
	db2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	check(db2, 401)
	_ = db.wal.Close()
}

// TestTornTail cuts the log at every byte of its last record, as a crash in
// the middle of a write would leave it: every acknowledged write is there,
// the torn one is not, and the DB keeps working.
func TestTornTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, &Options{CheckpointBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Create(ctx, "m", testArchives); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := db.Write(ctx, []Measure{{"m", t0.Add(time.Duration(i) * time.Minute), float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	wal := db.walPath(db.walGen)
	before, _ := os.ReadFile(wal)
	if err := db.Write(ctx, []Measure{{"m", t0.Add(10 * time.Minute), 10}, {"m", t0.Add(11 * time.Minute), 11}}); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(wal)
	_ = db.wal.Close() // the crash: no checkpoint
	for cut := len(before); cut < len(full); cut++ {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, filepath.Base(wal)), full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		re, err := Open(d, nil)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		ps, _ := re.Aggregate("m", Query{Granularity: time.Hour, Method: Count})
		if len(ps) != 1 || ps[0].Value != 10 {
			t.Fatalf("cut at %d: count %v, want the 10 acknowledged", cut, ps)
		}
		if err := re.Write(ctx, []Measure{{"m", t0.Add(20 * time.Minute), 20}}); err != nil {
			t.Fatal(err)
		}
		_ = re.wal.Close()
		again, err := Open(d, nil)
		if err != nil {
			t.Fatalf("cut at %d, reopened after a write: %v", cut, err)
		}
		ps, _ = again.Aggregate("m", Query{Granularity: time.Hour, Method: Sum})
		if len(ps) != 1 || ps[0].Value != 45+20 {
			t.Fatalf("cut at %d: sum %v after the torn record and one more write", cut, ps)
		}
		_ = again.Close()
	}
	// A damaged byte in the middle of a log is corruption, not a tear.
	d := t.TempDir()
	bad := append([]byte(nil), before...)
	bad[len(bad)/2] ^= 0xff
	_ = os.WriteFile(filepath.Join(d, walPrefix+"0000000000000001"), bad, 0o600)
	_ = os.WriteFile(filepath.Join(d, walPrefix+"0000000000000002"), nil, 0o600)
	if _, err := Open(d, nil); err == nil {
		t.Fatal("corrupt older log opened without error")
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := openT(t, t.TempDir())
	_ = db.Create(ctx, "ints", testArchives)
	_ = db.Create(ctx, "floats", testArchives)
	_ = db.Create(ctx, "empty", testArchives)
	var ms []Measure
	for i := range 500 {
		ts := t0.Add(time.Duration(i) * 37 * time.Second)
		ms = append(ms, Measure{"ints", ts, float64(i * 1000)}, Measure{"floats", ts, math.Sin(float64(i))})
	}
	_ = db.Write(ctx, ms)
	b := encodeCheckpoint(7, db.series)
	gen, ss, err := decodeCheckpoint(b)
	if err != nil || gen != 7 || len(ss) != 3 {
		t.Fatalf("decode: %v gen %d, %d series", err, gen, len(ss))
	}
	for id, s := range db.series {
		got := ss[id]
		if got.hasLast != s.hasLast || got.lastT != s.lastT || got.lastV != s.lastV || len(got.archives) != len(s.archives) {
			t.Fatalf("%s: header differs", id)
		}
		for i, a := range s.archives {
			if !equalBuckets(a.buckets, got.archives[i].buckets) {
				t.Fatalf("%s archive %s differs", id, a.Granularity)
			}
		}
	}
	if again := encodeCheckpoint(7, ss); string(again) != string(b) {
		t.Fatal("re-encoding differs")
	}
}

func equalBuckets(a, b []bucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
