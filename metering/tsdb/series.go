package tsdb

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Method is an aggregation method an archive answers with.
type Method string

// The aggregation methods. Every archive keeps count, sum, min, max and last
// for each of its buckets, so it answers all of them; mean is sum/count.
const (
	Mean  Method = "mean"
	Min   Method = "min"
	Max   Method = "max"
	Sum   Method = "sum"
	Count Method = "count"
	Last  Method = "last"
)

// Methods lists every aggregation method.
var Methods = []Method{Mean, Min, Max, Sum, Count, Last}

// Archive is one level of an archive policy: buckets of Granularity, kept
// for Timespan behind the series' newest measure.
type Archive struct {
	Granularity time.Duration `json:"granularity"`
	Timespan    time.Duration `json:"timespan"`
}

// Points is how many buckets the archive keeps.
func (a Archive) Points() int64 { return int64(a.Timespan / a.Granularity) }

// Validate checks that the archive is usable.
func (a Archive) Validate() error {
	switch {
	case a.Granularity < time.Second || a.Granularity%time.Second != 0:
		return fmt.Errorf("tsdb: granularity %s is not a whole number of seconds", a.Granularity)
	case a.Timespan < a.Granularity || a.Timespan%a.Granularity != 0:
		return fmt.Errorf("tsdb: timespan %s is not a multiple of granularity %s", a.Timespan, a.Granularity)
	case a.Points() > 1<<20:
		return fmt.Errorf("tsdb: archive of %d points is too large", a.Points())
	}
	return nil
}

// ValidateArchives checks a series' archives: each valid, at most 8, with
// distinct granularities.
func ValidateArchives(as []Archive) error {
	if len(as) == 0 || len(as) > 8 {
		return fmt.Errorf("tsdb: %d archives: want 1 to 8", len(as))
	}
	seen := map[time.Duration]bool{}
	for _, a := range as {
		if err := a.Validate(); err != nil {
			return err
		}
		if seen[a.Granularity] {
			return fmt.Errorf("tsdb: granularity %s twice", a.Granularity)
		}
		seen[a.Granularity] = true
	}
	return nil
}

// Measure is one sample of a series.
type Measure struct {
	Series string
	Time   time.Time
	Value  float64
}

// Point is one aggregated bucket: the bucket's start, its granularity and
// the aggregate's value.
type Point struct {
	Time        time.Time
	Granularity time.Duration
	Value       float64
}

// bucket holds the aggregates of the measures whose time falls in
// [t, t+granularity).
type bucket struct {
	t                   int64 // unix ns of the start
	count               float64
	sum, min, max, last float64
	lastT               int64 // time of the measure last holds
}

func (b *bucket) add(t int64, v float64) {
	if b.count == 0 {
		b.min, b.max, b.last, b.lastT = v, v, v, t
	} else {
		b.min = math.Min(b.min, v)
		b.max = math.Max(b.max, v)
		if t >= b.lastT {
			b.last, b.lastT = v, t
		}
	}
	b.count++
	b.sum += v
}

func (b *bucket) value(m Method) float64 {
	switch m {
	case Mean:
		return b.sum / b.count
	case Min:
		return b.min
	case Max:
		return b.max
	case Sum:
		return b.sum
	case Count:
		return b.count
	default:
		return b.last
	}
}

// archive is an Archive's buckets, oldest first.
type archive struct {
	Archive
	buckets []bucket
}

func (a *archive) add(t int64, v float64) {
	g := int64(a.Granularity)
	start := t - mod(t, g)
	n := len(a.buckets)
	if n == 0 || a.buckets[n-1].t < start {
		a.buckets = append(a.buckets, bucket{t: start})
		a.buckets[n].add(t, v)
		a.trim()
		return
	}
	if a.buckets[n-1].t == start {
		a.buckets[n-1].add(t, v)
		return
	}
	// A late measure: find or insert its bucket, unless it is already
	// past the archive's retention.
	if start <= a.buckets[n-1].t-int64(a.Timespan) {
		return
	}
	i := sort.Search(n, func(i int) bool { return a.buckets[i].t >= start })
	if i < n && a.buckets[i].t == start {
		a.buckets[i].add(t, v)
		return
	}
	a.buckets = slices.Insert(a.buckets, i, bucket{t: start})
	a.buckets[i].add(t, v)
}

// trim drops the buckets that fell out of the timespan behind the newest.
func (a *archive) trim() {
	n := len(a.buckets)
	cut := a.buckets[n-1].t - int64(a.Timespan)
	i := sort.Search(n, func(i int) bool { return a.buckets[i].t > cut })
	if i > 0 {
		// Copy down once the dropped prefix is large, so that the slice does
		// not grow without bound and trimming stays amortised O(1).
		if i >= n/2 || i > 1024 {
			a.buckets = append(a.buckets[:0:0], a.buckets[i:]...)
		} else {
			a.buckets = a.buckets[i:]
		}
	}
}

// query returns the buckets in [start, stop) (stop <= start: no bound).
func (a *archive) query(start, stop int64) []bucket {
	lo := sort.Search(len(a.buckets), func(i int) bool { return a.buckets[i].t >= start })
	hi := len(a.buckets)
	if stop > start {
		hi = sort.Search(len(a.buckets), func(i int) bool { return a.buckets[i].t >= stop })
	}
	return a.buckets[lo:hi]
}

func mod(t, g int64) int64 {
	m := t % g
	if m < 0 {
		m += g
	}
	return m
}

// series is one metric's archives and its newest measure.
type series struct {
	id       string
	archives []*archive
	hasLast  bool
	lastT    int64
	lastV    float64
}

func newSeries(id string, as []Archive) *series {
	s := &series{id: id}
	for _, a := range as {
		s.archives = append(s.archives, &archive{Archive: a})
	}
	slices.SortFunc(s.archives, func(a, b *archive) int { return int(a.Granularity - b.Granularity) })
	return s
}

func (s *series) add(t int64, v float64) {
	for _, a := range s.archives {
		a.add(t, v)
	}
	if !s.hasLast || t >= s.lastT {
		s.hasLast, s.lastT, s.lastV = true, t, v
	}
}

func (s *series) defs() []Archive {
	out := make([]Archive, len(s.archives))
	for i, a := range s.archives {
		out[i] = a.Archive
	}
	return out
}
