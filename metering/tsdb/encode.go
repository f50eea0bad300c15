package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// errCorrupt is returned by the decoders for input they cannot read.
var errCorrupt = errors.New("tsdb: corrupt data")

// Column encodings. A column of float64 values is stored in one of two
// forms, chosen per column: integral values (counters, byte counts, sizes)
// as zig-zag varints of their delta-of-delta; other values as the XOR of
// each value with the previous one, with the zero bytes at both ends left
// out (Gorilla's idea at byte granularity).
const (
	colInt   = 0
	colFloat = 1
)

// maxExact is the largest integer a float64 holds exactly.
const maxExact = 1 << 53

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

// appendInts appends vs as delta-of-delta varints.
func appendInts(b []byte, vs []int64) []byte {
	var prev, prevDelta int64
	for i, v := range vs {
		switch i {
		case 0:
			b = appendVarint(b, v)
		default:
			d := v - prev
			b = appendVarint(b, d-prevDelta)
			prevDelta = d
		}
		prev = v
	}
	return b
}

// pow10 are the decimal scales a column may use.
var pow10 = [...]float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6}

// decimalScale returns the smallest k such that every value is an integer
// of at most 2^53 after multiplying by 10^k and comes back exactly after
// dividing, or -1.
func decimalScale(vs []float64) int {
	k := 0
	for _, v := range vs {
		for ; k < len(pow10); k++ {
			x := math.Round(v * pow10[k])
			if math.Abs(x) <= maxExact && x/pow10[k] == v && !(v == 0 && math.Signbit(v)) {
				break
			}
		}
		if k == len(pow10) {
			return -1
		}
	}
	// A larger scale found late must hold for the earlier values too.
	for _, v := range vs {
		x := math.Round(v * pow10[k])
		if math.Abs(x) > maxExact || x/pow10[k] != v {
			return -1
		}
	}
	return k
}

// appendFloats appends a column of values in the smaller of its forms:
// decimals (integers after scaling by 10^k) as delta-of-delta varints,
// anything else XORed.
func appendFloats(b []byte, vs []float64) []byte {
	if k := decimalScale(vs); k >= 0 {
		b = append(b, colInt, byte(k))
		var prev, prevDelta int64
		for i, f := range vs {
			v := int64(math.Round(f * pow10[k]))
			if i == 0 {
				b = appendVarint(b, v)
			} else {
				d := v - prev
				b = appendVarint(b, d-prevDelta)
				prevDelta = d
			}
			prev = v
		}
		return b
	}
	b = append(b, colFloat)
	var prev uint64
	for _, f := range vs {
		x := math.Float64bits(f) ^ prev
		prev = math.Float64bits(f)
		if x == 0 {
			b = append(b, 0)
			continue
		}
		lz, tz := bits.LeadingZeros64(x)/8, bits.TrailingZeros64(x)/8
		b = append(b, byte(lz<<4|tz|0x80))
		for i := 7 - lz; i >= tz; i-- {
			b = append(b, byte(x>>(8*i)))
		}
	}
	return b
}

// reader reads the encodings above, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// count reads a length that must fit in what is left (each element takes at
// least min bytes), so that hostile input cannot make us allocate.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)/max(minSize, 1)) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) float64() float64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// ints reads n delta-of-delta varints into dst.
func (r *reader) ints(dst []int64) {
	var prev, prevDelta int64
	for i := range dst {
		if i == 0 {
			prev = r.varint()
		} else {
			prevDelta += r.varint()
			prev += prevDelta
		}
		dst[i] = prev
	}
}

// floats reads a column of len(dst) values.
func (r *reader) floats(dst []float64) {
	switch r.byte() {
	case colInt:
		k := int(r.byte())
		if k >= len(pow10) {
			r.fail()
			return
		}
		var prev, prevDelta int64
		for i := range dst {
			if i == 0 {
				prev = r.varint()
			} else {
				prevDelta += r.varint()
				prev += prevDelta
			}
			dst[i] = float64(prev) / pow10[k]
		}
	case colFloat:
		var prev uint64
		for i := range dst {
			h := r.byte()
			var x uint64
			if h != 0 {
				lz, tz := int(h>>4&7), int(h&15)
				if h&0x80 == 0 || tz > 7 || lz+tz > 7 {
					r.fail()
					return
				}
				for j := 7 - lz; j >= tz; j-- {
					x |= uint64(r.byte()) << (8 * j)
				}
			}
			prev ^= x
			dst[i] = math.Float64frombits(prev)
		}
	default:
		r.fail()
	}
}

func (r *reader) done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return nil
}
