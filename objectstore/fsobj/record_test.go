package fsobj

import (
	"reflect"
	"testing"
	"time"

	"github.com/stratuskit/stratus/objectstore"
)

// FuzzDecodeRecord decodes arbitrary index values: never a panic, and
// what decodes survives a round trip through encodeRecord unchanged.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&record{ID: "0123456789abcdef0123456789abcdef", Info: objectstore.ObjectInfo{Size: 5, ETag: "e", LastModified: time.Unix(1, 2), ContentType: "text/plain"}}))
	f.Add(encodeRecord(&record{Info: objectstore.ObjectInfo{Size: 3, Headers: map[string]string{"X-Object-Meta-A": "b"}}, Data: []byte("abc"), CRC: 7}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(v, true)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(r), true)
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip of %x: %+v, %v; was %+v", v, again, err, r)
		}
	})
}
