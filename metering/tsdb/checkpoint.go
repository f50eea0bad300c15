package tsdb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// The checkpoint file: a magic line, the first log generation it does not
// cover, then every series with its newest measure and its archives. Each
// archive's buckets are stored column by column: bucket numbers (start /
// granularity) and the offsets of their last measures as delta-of-delta
// varints, count, sum, min, max and last as value columns (encode.go). A
// CRC-32C of everything before it ends the file.
func encodeCheckpoint(nextGen uint64, ss map[string]*series) []byte {
	ids := make([]string, 0, len(ss))
	for id := range ss {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := []byte(ckptMagic)
	b = appendUvarint(b, nextGen)
	b = appendUvarint(b, uint64(len(ids)))
	var ts []int64
	var col []float64
	for _, id := range ids {
		s := ss[id]
		b = appendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		if s.hasLast {
			b = append(b, 1)
			b = appendVarint(b, s.lastT)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.lastV))
		} else {
			b = append(b, 0)
		}
		b = appendArchives(b, s.defs())
		for _, a := range s.archives {
			g := int64(a.Granularity)
			b = appendUvarint(b, uint64(len(a.buckets)))
			ts = ts[:0]
			for _, k := range a.buckets {
				ts = append(ts, k.t/g)
			}
			b = appendInts(b, ts)
			ts = ts[:0]
			for _, k := range a.buckets {
				ts = append(ts, k.lastT-k.t)
			}
			b = appendInts(b, ts)
			for _, f := range []func(*bucket) float64{
				func(k *bucket) float64 { return k.count },
				func(k *bucket) float64 { return k.sum },
				func(k *bucket) float64 { return k.min },
				func(k *bucket) float64 { return k.max },
				func(k *bucket) float64 { return k.last },
			} {
				col = col[:0]
				for i := range a.buckets {
					col = append(col, f(&a.buckets[i]))
				}
				b = appendFloats(b, col)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeCheckpoint reads a checkpoint file. It never panics on hostile or
// damaged input, and checks what the archives rely on: bucket starts
// aligned, increasing and within int64, counts positive.
func decodeCheckpoint(b []byte) (nextGen uint64, ss map[string]*series, err error) {
	if len(b) < len(ckptMagic)+4 || string(b[:len(ckptMagic)]) != ckptMagic {
		return 0, nil, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return decodeCheckpointBody(body[len(ckptMagic):])
}

// decodeCheckpointBody reads what the magic and the checksum enclose.
func decodeCheckpointBody(b []byte) (nextGen uint64, ss map[string]*series, err error) {
	r := &reader{b: b}
	nextGen = r.uvarint()
	n := r.count(4)
	ss = make(map[string]*series, n)
	for range n {
		id := r.string()
		s := &series{id: id}
		switch r.byte() {
		case 0:
		case 1:
			s.hasLast, s.lastT, s.lastV = true, r.varint(), r.float64()
		default:
			r.fail()
		}
		as := readArchives(r)
		if r.err != nil {
			break
		}
		s = mergeLast(newSeries(id, as), s)
		for _, a := range s.archives {
			if err := readBuckets(r, a); err != nil {
				return 0, nil, err
			}
		}
		if r.err != nil {
			break
		}
		if _, dup := ss[id]; dup {
			return 0, nil, fmt.Errorf("%w: series %q twice", errCorrupt, id)
		}
		ss[id] = s
	}
	if err := r.done(); err != nil {
		return 0, nil, err
	}
	return nextGen, ss, nil
}

func mergeLast(s, last *series) *series {
	s.hasLast, s.lastT, s.lastV = last.hasLast, last.lastT, last.lastV
	return s
}

func readBuckets(r *reader, a *archive) error {
	n := r.count(7)
	if r.err != nil {
		return r.err
	}
	if int64(n) > a.Points()+1 {
		return fmt.Errorf("%w: %d buckets in an archive of %d", errCorrupt, n, a.Points())
	}
	ts := make([]int64, n)
	offs := make([]int64, n)
	r.ints(ts)
	r.ints(offs)
	cols := make([][]float64, 5)
	for i := range cols {
		cols[i] = make([]float64, n)
		r.floats(cols[i])
	}
	if r.err != nil {
		return r.err
	}
	g := int64(a.Granularity)
	a.buckets = make([]bucket, n)
	for i := range n {
		if ts[i] > math.MaxInt64/g || ts[i] < math.MinInt64/g || (i > 0 && ts[i] <= ts[i-1]) {
			return fmt.Errorf("%w: bucket times out of order", errCorrupt)
		}
		if offs[i] < 0 || offs[i] >= g || !(cols[0][i] >= 1) {
			return fmt.Errorf("%w: bad bucket", errCorrupt)
		}
		t := ts[i] * g
		a.buckets[i] = bucket{t: t, lastT: t + offs[i], count: cols[0][i], sum: cols[1][i],
			min: cols[2][i], max: cols[3][i], last: cols[4][i]}
	}
	return nil
}
