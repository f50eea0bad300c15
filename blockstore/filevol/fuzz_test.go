package filevol_test

import (
	"testing"

	"github.com/stratuskit/stratus/blockstore/filevol"
)

// FuzzParseImageInfo: qemu-img's view of a user's image never panics the
// parser, and whatever it accepts names no backing or data file.
func FuzzParseImageInfo(f *testing.F) {
	f.Add([]byte(`{"virtual-size": 1073741824, "format": "qcow2"}`))
	f.Add([]byte(`{"virtual-size": 1, "backing-filename": "/etc/shadow"}`))
	f.Add([]byte(`{"format-specific": {"type": "qcow2", "data": {"data-file": "/dev/sda"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := filevol.ParseImageInfo(data)
		if err != nil {
			return
		}
		if info.BackingFilename != "" || info.FullBacking != "" || info.FormatSpecific.Data.DataFile != "" || info.VirtualSize < 0 {
			t.Fatalf("accepted unsafe image info %+v", info)
		}
	})
}
