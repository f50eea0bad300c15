package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
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
	// footer is set for a VMDK whose grain directory is in a footer at the
	// end: CheckTail must check the end of the data too.
	footer bool
	// mbr is set when the data starts with a master boot record (or a
	// GPT's protective one); badMBR says why its partition table is
	// invalid, if it is. A Linux kernel (bzImage) carries the boot
	// signature of an MBR without a partition table.
	mbr    bool
	badMBR error
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
	gpt := isMBR(head)
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
		{DiskISO, isISO},
		{formatLUKS, func(b []byte) bool { return bytes.HasPrefix(b, []byte("LUKS\xba\xbe")) }},
	} {
		if f.match(head) {
			found = append(found, f.name)
		}
	}
	switch len(found) {
	case 0:
		ins := Inspection{Format: formatRaw, mbr: gpt}
		if gpt {
			ins.badMBR = checkMBR(head)
		}
		return ins, nil
	case 1: // an ISO may also carry an MBR or GPT (bootable ISOs)
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
		return sized(f, binary.BigEndian.Uint64(head[48:]))
	case DiskVDI:
		if len(head) < 0x178 {
			return Inspection{}, unsafe("truncated vdi header")
		}
		return sized(f, binary.LittleEndian.Uint64(head[0x170:]))
	case DiskISO:
		if len(head) < 0x8000+132 {
			return Inspection{}, unsafe("truncated iso primary volume descriptor")
		}
		pvd := head[0x8000:]
		if pvd[0] != 1 { // not a primary volume descriptor: size unknown
			return Inspection{Format: f}, nil
		}
		blocks := int64(binary.LittleEndian.Uint32(pvd[80:]))
		bs := int64(binary.LittleEndian.Uint16(pvd[128:]))
		return Inspection{Format: f, VirtualSize: blocks * bs}, nil
	default:
		return Inspection{Format: f}, nil
	}
}

// sized returns an inspection of format f with a declared virtual size,
// refusing sizes no disk has.
func sized(f string, size uint64) (Inspection, error) {
	if size > 1<<62 {
		return Inspection{}, unsafe("%s virtual size out of range", f)
	}
	return Inspection{Format: f, VirtualSize: int64(size)}, nil
}

// qcow2 incompatible feature bits (qemu docs/interop/qcow2.txt).
const (
	qcow2IncompatDataFile = 1 << 2
	qcow2IncompatKnown    = 1<<4 - 1 // dirty, corrupt, data file, compression (as Glance)
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

var vmdkExtent = regexp.MustCompile(`^(rw|rdonly|noaccess)\s+(\d+)\s+(\S+)`)

func isVMDKDescriptor(b []byte) bool {
	b = bytes.TrimLeft(b[:min(len(b), 1024)], " \t\r\n")
	return bytes.HasPrefix(b, []byte("# Disk DescriptorFile"))
}

// VMDK layout facts (qemu's vmdk.c, Glance's format inspector).
const (
	vmdkDescOffset = 0x200
	vmdkDescMax    = 1<<20 - 1
	vmdkGDAtEnd    = 0xffffffffffffffff
	vmdkTail       = 1536 // footer marker, footer, end-of-stream marker
)

func inspectVMDK(h []byte) (Inspection, error) {
	if len(h) < 512 {
		return Inspection{}, unsafe("truncated vmdk header")
	}
	le := binary.LittleEndian
	if v := le.Uint32(h[4:]); v < 1 || v > 3 {
		return Inspection{}, unsafe("unsupported vmdk version %d", v)
	}
	capacity := le.Uint64(h[12:])
	descOff, descSize := le.Uint64(h[28:]), le.Uint64(h[36:])
	if descOff*512 != vmdkDescOffset || descSize == 0 {
		return Inspection{}, unsafe("a vmdk without its descriptor at sector 1 is refused")
	}
	end := uint64(vmdkDescOffset) + min(descSize*512, vmdkDescMax)
	if descSize > vmdkDescMax || end > uint64(len(h)) {
		return Inspection{}, unsafe("the vmdk descriptor lies beyond the first %d bytes", len(h))
	}
	if err := checkVMDKDescriptor(h[vmdkDescOffset:end]); err != nil {
		return Inspection{}, err
	}
	if capacity > 1<<53 {
		return Inspection{}, unsafe("vmdk capacity out of range")
	}
	return Inspection{Format: DiskVMDK, VirtualSize: int64(capacity) * 512, footer: le.Uint64(h[56:]) == vmdkGDAtEnd}, nil
}

// checkVMDKDescriptor accepts only a monolithicSparse or streamOptimized
// descriptor whose every line is a comment, a ddb entry, a header field or
// its one SPARSE extent, with no path in the extent.
func checkVMDKDescriptor(desc []byte) error {
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	for _, c := range desc {
		if c >= 0x80 {
			return unsafe("the vmdk descriptor is not ASCII")
		}
	}
	createType, extents := "", 0
	for line := range strings.SplitSeq(strings.ToLower(string(desc)), "\n") {
		line = strings.TrimSpace(line)
		key, value, isField := strings.Cut(line, "=")
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "ddb"):
		case isField && !strings.ContainsAny(strings.TrimSpace(key), " \t"):
			if strings.TrimSpace(key) == "createtype" {
				createType = strings.Trim(strings.TrimSpace(value), `"`)
			}
		case vmdkExtent.MatchString(line):
			m := vmdkExtent.FindStringSubmatch(line)
			if m[3] != "sparse" || strings.ContainsAny(line, "/\\") {
				return unsafe("a vmdk extent must be SPARSE and name no path: %q", truncate(line, 80))
			}
			extents++
		default:
			return unsafe("invalid vmdk descriptor line %q", truncate(line, 80))
		}
	}
	if createType != "monolithicsparse" && createType != "streamoptimized" {
		return unsafe("vmdk createType %q is refused: only monolithicSparse and streamOptimized are safe", truncate(createType, 64))
	}
	if extents != 1 {
		return unsafe("a vmdk must have exactly one SPARSE extent, not %d", extents)
	}
	return nil
}

// CheckTail checks what Inspect could not see in the leading bytes: the
// footer of a streamOptimized VMDK, which must repeat the header's
// descriptor location and end with valid markers (qemu trusts the
// footer over the header). tail is the last bytes of the image, at least
// 1536 of them when there are that many.
func CheckTail(ins Inspection, head, tail []byte) error {
	if !ins.footer {
		return nil
	}
	if len(tail) < vmdkTail || len(head) < 64 {
		return unsafe("the vmdk footer is truncated")
	}
	tail = tail[len(tail)-vmdkTail:]
	le := binary.LittleEndian
	marker, footer, eos := tail[:512], tail[512:1024], tail[1024:]
	for i := 0; i < 44; i++ { // magic, version, flags, capacity, grain, descriptor offset and size
		if i >= 8 && i < 12 {
			continue // flags may differ
		}
		if footer[i] != head[i] {
			return unsafe("the vmdk footer does not match its header")
		}
	}
	if le.Uint64(footer[56:]) == vmdkGDAtEnd {
		return unsafe("the vmdk footer announces another footer")
	}
	zero := func(b []byte) bool { return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) }
	if le.Uint32(marker[8:]) != 0 || le.Uint32(marker[12:]) != 3 || !zero(marker[16:]) {
		return unsafe("the vmdk footer marker is invalid")
	}
	if !zero(eos[:12]) || le.Uint32(eos[12:]) != 0 || !zero(eos[16:]) {
		return unsafe("the vmdk end-of-stream marker is invalid")
	}
	return nil
}

// isISO matches an ISO 9660 or UDF volume descriptor at 32 KiB.
func isISO(b []byte) bool {
	if len(b) < 0x8006 {
		return false
	}
	sig := string(b[0x8001:0x8006])
	return sig == "CD001" || sig == "NSR02" || sig == "NSR03"
}

// isMBR matches a master boot record (GPT disks carry a protective one),
// but not the boot sector of a FAT file system, which looks like one.
func isMBR(b []byte) bool {
	if len(b) < 512 || binary.LittleEndian.Uint16(b[510:]) != 0xaa55 {
		return false
	}
	fat := b[0x10] == 2 && b[0x15] == 0xf8
	return !fat
}

// checkMBR refuses an MBR whose partition table is invalid, as Glance's
// GPT inspector does.
func checkMBR(b []byte) error {
	var used []int
	gpt := false
	for i := range 4 {
		pte := b[446+16*i : 446+16*(i+1)]
		if pte[0] != 0 && pte[0] != 0x80 {
			return unsafe("MBR partition %d has an invalid boot flag", i)
		}
		if pte[4] == 0 {
			continue
		}
		used = append(used, i)
		if pte[4] == 0xee {
			gpt = true
			if pte[1] != 0 || pte[2] != 2 || pte[3] != 0 || binary.LittleEndian.Uint32(pte[8:]) != 1 {
				return unsafe("the GPT protective MBR is invalid")
			}
		}
	}
	if gpt && !slices.Equal(used, []int{0}) {
		return unsafe("the GPT protective MBR defines other partitions")
	}
	if len(used) == 0 {
		return unsafe("the MBR defines no partitions")
	}
	return nil
}

// checkFormat reports whether data detected as ins may be stored as an
// image of disk format declared. Formats with a signature must match it;
// raw and the formats without one (aki, ari, ami, ploop) must not look
// like any other format, so that a qcow2 cannot pass as raw. A disk image
// (raw, ami) that starts with an MBR must have a valid partition table, as
// Glance's GPT inspector requires; kernels and ramdisks are not disks. A
// vhd whose copy of the footer is not at the start (a fixed vhd) is
// accepted as raw data.
func checkFormat(declared string, ins Inspection) error {
	switch declared {
	case DiskRaw, DiskAKI, DiskARI, DiskAMI, DiskPloop:
		if ins.Format != formatRaw {
			return unsafe("image data is %s, not %s", ins.Format, declared)
		}
		if ins.badMBR != nil && (declared == DiskRaw || declared == DiskAMI) {
			return ins.badMBR
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
