package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// InspectBytes is how many leading bytes of an image the format inspector
// reads before any byte is stored: enough for every header it knows and for
// a VMDK's embedded descriptor.
const InspectBytes = 1 << 20

// Detected formats that are not disk formats of their own.
const (
	formatRaw            = "raw"
	formatQED            = "qed"
	formatLUKS           = "luks"
	formatVMDKDescriptor = "vmdk-descriptor"
)

// Inspection is what the format inspector learned from an image's leading
// bytes.
type Inspection struct {
	// Format is the detected format: a DiskFormat value, or "raw" when the
	// bytes match no known signature.
	Format string
	// VirtualSize is the guest-visible size the header declares, or 0 when
	// the format does not say (raw: its size; vhdx: not parsed).
	VirtualSize int64
}

// Inspect detects the format of an image from its leading bytes (at most
// InspectBytes; fewer if the image is shorter) and checks that it is safe
// to hand to qemu-img or QEMU, as Glance's format_inspector does. It
// refuses, with an error matching errdefs.ErrInvalid:
//   - a qcow2 with a backing file, an external data file or unknown
//     incompatible features (OSSA-2024-001, the class of CVE-2024-32498);
//   - a VMDK that is a text descriptor or whose embedded descriptor is not
//     monolithicSparse or streamOptimized with one SPARSE extent, since
//     other kinds reference files by name (OSSA-2024-002, OSSA-2023-002);
//   - QED, which no service supports;
//   - bytes that match more than one format's signature;
//   - a header that is truncated or inconsistent.
func Inspect(head []byte) (Inspection, error) {
	var found []string
	for _, f := range []struct {
		name  string
		match func([]byte) bool
	}{
		{DiskQCOW2, func(b []byte) bool { return bytes.HasPrefix(b, []byte("QFI\xfb")) }},
		{formatQED, func(b []byte) bool { return bytes.HasPrefix(b, []byte("QED\x00")) }},
		{DiskVMDK, func(b []byte) bool { return bytes.HasPrefix(b, []byte("KDMV")) }},
		{formatVMDKDescriptor, isVMDKDescriptor},
		{DiskVHD, func(b []byte) bool { return bytes.HasPrefix(b, []byte("conectix")) }},
		{DiskVHDX, func(b []byte) bool { return bytes.HasPrefix(b, []byte("vhdxfile")) }},
		{DiskVDI, func(b []byte) bool { return len(b) >= 0x44 && binary.LittleEndian.Uint32(b[0x40:]) == 0xbeda107f }},
		{DiskISO, func(b []byte) bool { return len(b) >= 0x8006 && string(b[0x8001:0x8006]) == "CD001" }},
		{formatLUKS, func(b []byte) bool { return bytes.HasPrefix(b, []byte("LUKS\xba\xbe")) }},
	} {
		if f.match(head) {
			found = append(found, f.name)
		}
	}
	switch len(found) {
	case 0:
		return Inspection{Format: formatRaw}, nil
	case 1:
	default:
		return Inspection{}, unsafe("image data matches more than one format (%s)", strings.Join(found, ", "))
	}
	switch f := found[0]; f {
	case DiskQCOW2:
		return inspectQCOW2(head)
	case DiskVMDK:
		return inspectVMDK(head)
	case formatVMDKDescriptor:
		return Inspection{}, unsafe("a VMDK descriptor file references extents in other files and is refused")
	case formatQED:
		return Inspection{}, unsafe("QED images are not supported")
	case DiskVHD:
		if len(head) < 512 {
			return Inspection{}, unsafe("truncated vhd footer")
		}
		return Inspection{Format: f, VirtualSize: int64(binary.BigEndian.Uint64(head[48:]))}, nil
	case DiskVDI:
		if len(head) < 0x178 {
			return Inspection{}, unsafe("truncated vdi header")
		}
		return Inspection{Format: f, VirtualSize: int64(binary.LittleEndian.Uint64(head[0x170:]))}, nil
	case DiskISO:
		if len(head) < 0x8000+132 {
			return Inspection{}, unsafe("truncated iso primary volume descriptor")
		}
		pvd := head[0x8000:]
		blocks := int64(binary.LittleEndian.Uint32(pvd[80:]))
		bs := int64(binary.LittleEndian.Uint16(pvd[128:]))
		return Inspection{Format: f, VirtualSize: blocks * bs}, nil
	default:
		return Inspection{Format: f}, nil
	}
}

// qcow2 incompatible feature bits (qemu docs/interop/qcow2.txt).
const (
	qcow2IncompatDataFile = 1 << 2
	qcow2IncompatKnown    = 1<<5 - 1 // dirty, corrupt, data file, compression, extended L2
)

func inspectQCOW2(h []byte) (Inspection, error) {
	if len(h) < 72 {
		return Inspection{}, unsafe("truncated qcow2 header")
	}
	be := binary.BigEndian
	version := be.Uint32(h[4:])
	if version != 2 && version != 3 {
		return Inspection{}, unsafe("unsupported qcow2 version %d", version)
	}
	if be.Uint64(h[8:]) != 0 || be.Uint32(h[16:]) != 0 {
		return Inspection{}, unsafe("a qcow2 image with a backing file is refused")
	}
	if cb := be.Uint32(h[20:]); cb < 9 || cb > 21 {
		return Inspection{}, unsafe("qcow2 cluster_bits %d out of range", cb)
	}
	if version == 3 {
		if len(h) < 104 {
			return Inspection{}, unsafe("truncated qcow2 header")
		}
		incompat := be.Uint64(h[72:])
		if incompat&qcow2IncompatDataFile != 0 {
			return Inspection{}, unsafe("a qcow2 image with an external data file is refused")
		}
		if incompat&^qcow2IncompatKnown != 0 {
			return Inspection{}, unsafe("qcow2 image has unknown incompatible features %#x", incompat&^qcow2IncompatKnown)
		}
	}
	size := be.Uint64(h[24:])
	if size > 1<<62 {
		return Inspection{}, unsafe("qcow2 virtual size out of range")
	}
	return Inspection{Format: DiskQCOW2, VirtualSize: int64(size)}, nil
}

var (
	vmdkCreateType = regexp.MustCompile(`(?m)^\s*createType\s*=\s*"([^"]*)"`)
	vmdkExtent     = regexp.MustCompile(`(?m)^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\S+)`)
)

func isVMDKDescriptor(b []byte) bool {
	b = bytes.TrimLeft(b[:min(len(b), 1024)], " \t\r\n")
	return bytes.HasPrefix(b, []byte("# Disk DescriptorFile"))
}

func inspectVMDK(h []byte) (Inspection, error) {
	if len(h) < 512 {
		return Inspection{}, unsafe("truncated vmdk header")
	}
	le := binary.LittleEndian
	capacity := le.Uint64(h[12:])
	descOff, descSize := le.Uint64(h[28:]), le.Uint64(h[36:])
	if descOff == 0 || descSize == 0 {
		return Inspection{}, unsafe("a vmdk without an embedded descriptor is refused")
	}
	if descOff > uint64(len(h))/512 || descSize > uint64(len(h))/512 || (descOff+descSize)*512 > uint64(len(h)) {
		return Inspection{}, unsafe("the vmdk descriptor lies beyond the first %d bytes", len(h))
	}
	desc := h[descOff*512 : (descOff+descSize)*512]
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	m := vmdkCreateType.FindSubmatch(desc)
	if m == nil {
		return Inspection{}, unsafe("the vmdk descriptor has no createType")
	}
	if ct := string(m[1]); ct != "monolithicSparse" && ct != "streamOptimized" {
		return Inspection{}, unsafe("vmdk createType %q is refused: only monolithicSparse and streamOptimized are safe", ct)
	}
	extents := vmdkExtent.FindAllSubmatch(desc, -1)
	if len(extents) != 1 || string(extents[0][3]) != "SPARSE" {
		return Inspection{}, unsafe("a vmdk must have exactly one SPARSE extent")
	}
	if capacity > 1<<53 {
		return Inspection{}, unsafe("vmdk capacity out of range")
	}
	return Inspection{Format: DiskVMDK, VirtualSize: int64(capacity) * 512}, nil
}

// checkFormat reports whether data detected as ins may be stored as an
// image of disk format declared. Formats with a signature must match it;
// raw and the formats without one (aki, ari, ami, ploop) must not look
// like any other format, so that a qcow2 cannot pass as raw. A vhd whose
// copy of the footer is not at the start (a fixed vhd) is accepted as raw
// data.
func checkFormat(declared string, ins Inspection) error {
	switch declared {
	case DiskRaw, DiskAKI, DiskARI, DiskAMI, DiskPloop:
		if ins.Format != formatRaw {
			return unsafe("image data is %s, not %s", ins.Format, declared)
		}
	case DiskVHD:
		if ins.Format != DiskVHD && ins.Format != formatRaw {
			return unsafe("image data is %s, not %s", ins.Format, declared)
		}
	default:
		if ins.Format != declared {
			return unsafe("image data is %s, not %s", ins.Format, declared)
		}
	}
	return nil
}

func unsafe(format string, args ...any) error {
	return &errdefs.ValidationError{Field: "data", Reason: fmt.Sprintf(format, args...)}
}
