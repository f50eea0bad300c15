package fsobj

import (
	"encoding/binary"
	"errors"
	"time"
)

// recordVersion begins every encoded record.
const recordVersion = 1

// encodeRecord encodes r compactly: listings decode one record per object,
// so the format is binary rather than JSON. The name is the index key and
// is not repeated.
func encodeRecord(r *record) []byte {
	i := &r.Info
	b := make([]byte, 0, 96+len(i.ContentType)+len(r.Data))
	b = append(b, recordVersion)
	b = appendString(b, r.ID)
	b = binary.AppendUvarint(b, uint64(i.Size))
	b = appendString(b, i.ETag)
	b = binary.AppendVarint(b, i.LastModified.UnixNano())
	b = binary.AppendVarint(b, i.DeleteAt)
	b = appendString(b, i.ContentType)
	b = binary.AppendUvarint(b, uint64(len(i.Headers)))
	for k, v := range i.Headers {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	if r.ID == "" {
		b = binary.BigEndian.AppendUint32(b, r.CRC)
		b = append(b, r.Data...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errBadRecord = errors.New("malformed index record")

// decodeRecord decodes an encoded record; the inline data is copied only
// if withData.
func decodeRecord(v []byte, withData bool) (*record, error) {
	d := decoder{b: v}
	if d.byte() != recordVersion {
		return nil, errBadRecord
	}
	r := &record{ID: d.string()}
	r.Info.Size = int64(d.uvarint())
	r.Info.ETag = d.string()
	r.Info.LastModified = time.Unix(0, d.varint()).UTC()
	r.Info.DeleteAt = d.varint()
	r.Info.ContentType = d.string()
	if n := d.uvarint(); n > 0 && n < 1<<16 {
		r.Info.Headers = make(map[string]string, n)
		for range n {
			k := d.string()
			r.Info.Headers[k] = d.string()
		}
	}
	if r.ID == "" {
		if len(d.b) < 4 {
			return nil, errBadRecord
		}
		r.CRC = binary.BigEndian.Uint32(d.b)
		if int64(len(d.b)-4) != r.Info.Size {
			return nil, errBadRecord
		}
		if withData {
			r.Data = append([]byte(nil), d.b[4:]...)
		}
		d.b = nil
	}
	if d.err || len(d.b) != 0 {
		return nil, errBadRecord
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
