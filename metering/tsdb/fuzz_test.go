package tsdb

import (
	"context"
	"testing"
	"time"
)

// FuzzDecodeCheckpoint feeds damaged and hostile checkpoint files to the
// decoder: it must return an error or series that encode back to the same
// bytes, never panic or allocate without bound.
func FuzzDecodeCheckpoint(f *testing.F) {
	db, err := Open(f.TempDir(), &Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	_ = db.Create(ctx, "a", testArchives)
	_ = db.Create(ctx, "b", []Archive{{Granularity: time.Second, Timespan: time.Minute}})
	for i := range 100 {
		_ = db.Write(ctx, []Measure{{"a", t0.Add(time.Duration(i) * 17 * time.Second), float64(i)}, {"b", t0.Add(time.Duration(i) * time.Second), float64(i) / 3}})
	}
	// The decoder's body, without the magic and the checksum that would
	// stop almost every mutation before it.
	body := func(b []byte) []byte { return b[len(ckptMagic) : len(b)-4] }
	f.Add(body(encodeCheckpoint(3, db.series)))
	f.Add(body(encodeCheckpoint(1, nil)))
	_ = db.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		gen, ss, err := decodeCheckpointBody(b)
		if err != nil {
			return
		}
		if again := encodeCheckpoint(gen, ss); string(body(again)) != string(b) {
			// Only the canonical encoding round-trips byte for byte; the
			// decoded series must at least decode again to the same.
			if _, ss2, err := decodeCheckpoint(again); err != nil || len(ss2) != len(ss) {
				t.Fatalf("re-encoded checkpoint does not decode: %v", err)
			}
		}
	})
}
