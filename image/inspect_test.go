package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

// qcow2Header returns a qcow2 header of version v, virtual size size, with
// a backing file name at backingOff (0: none) and incompatible features.
func qcow2Header(v uint32, size uint64, backingOff uint64, incompat uint64) []byte {
	h := make([]byte, 4096)
	copy(h, "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(h[4:], v)
	be.PutUint64(h[8:], backingOff)
	if backingOff != 0 {
		be.PutUint32(h[16:], 9)
		copy(h[backingOff:], "/etc/passwd")
	}
	be.PutUint32(h[20:], 16)
	be.PutUint64(h[24:], size)
	be.PutUint64(h[72:], incompat)
	be.PutUint32(h[100:], 104)
	return h
}

// vmdkSparse returns a sparse VMDK header with an embedded descriptor.
func vmdkSparse(desc string) []byte {
	h := make([]byte, 64<<10)
	copy(h, "KDMV")
	le := binary.LittleEndian
	le.PutUint32(h[4:], 1)
	le.PutUint64(h[12:], 2048) // capacity in sectors: 1 MiB
	le.PutUint64(h[20:], 128)
	le.PutUint64(h[28:], 1)  // descriptor at sector 1
	le.PutUint64(h[36:], 20) // 20 sectors
	copy(h[512:], desc)
	return h
}

// mbr returns a boot sector with one partition of type typ.
func mbr(typ, boot byte, start uint32) []byte {
	b := make([]byte, 4096)
	b[446], b[446+4] = boot, typ
	binary.LittleEndian.PutUint32(b[446+8:], start)
	binary.LittleEndian.PutUint16(b[510:], 0xaa55)
	return b
}

// gptPMBR returns a GPT protective MBR.
func gptPMBR() []byte {
	b := mbr(0xee, 0, 1)
	b[446+1], b[446+2], b[446+3] = 0, 2, 0
	return b
}

const vmdkDesc = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"%s\"\n\n# Extent description\n%s\n"

func desc(createType, extents string) string {
	return strings.Replace(strings.Replace(vmdkDesc, "%s", createType, 1), "%s", extents, 1)
}

func TestInspect(t *testing.T) {
	iso := make([]byte, 0x8000+2048)
	iso[0x8000] = 1 // primary volume descriptor
	copy(iso[0x8001:], "CD001")
	binary.LittleEndian.PutUint32(iso[0x8000+80:], 100)
	binary.LittleEndian.PutUint16(iso[0x8000+128:], 2048)
	cases := []struct {
		name   string
		data   []byte
		format string
		vsize  int64
		unsafe string // part of the refusal, "" if accepted
	}{
		{"raw", []byte("plain bytes"), "raw", 0, ""},
		{"empty", nil, "raw", 0, ""},
		{"qcow2 v3", qcow2Header(3, 1<<30, 0, 0), "qcow2", 1 << 30, ""},
		{"qcow2 v2", qcow2Header(2, 5<<20, 0, 0), "qcow2", 5 << 20, ""},
		// OSSA-2024-001 (CVE-2024-32498): a backing file reads host files.
		{"qcow2 backing file", qcow2Header(3, 1<<30, 512, 0), "", 0, "backing file"},
		// OSSA-2024-001: an external data file does the same.
		{"qcow2 data file", qcow2Header(3, 1<<30, 0, qcow2IncompatDataFile), "", 0, "external data file"},
		{"qcow2 unknown feature", qcow2Header(3, 1<<30, 0, 1<<20), "", 0, "unknown incompatible"},
		{"qcow2 v4", qcow2Header(4, 1<<30, 0, 0), "", 0, "version"},
		{"qcow2 truncated", []byte("QFI\xfb\x00\x00\x00\x03"), "", 0, "truncated"},
		{"qed", []byte("QED\x00" + strings.Repeat("\x00", 100)), "", 0, "QED"},
		{"vmdk sparse", vmdkSparse(desc("monolithicSparse", `RW 2048 SPARSE "disk.vmdk"`)), "vmdk", 1 << 20, ""},
		{"vmdk stream", vmdkSparse(desc("streamOptimized", `RW 2048 SPARSE "disk.vmdk"`)), "vmdk", 1 << 20, ""},
		// OSSA-2024-002 / OSSA-2023-002: extents read arbitrary files.
		{"vmdk flat descriptor file", []byte(desc("monolithicFlat", `RW 2048 FLAT "/etc/shadow" 0`)), "", 0, "descriptor file"},
		{"vmdk descriptor, leading blank lines", []byte("\n\n" + desc("twoGbMaxExtentFlat", `RW 2048 FLAT "x" 0`)), "", 0, "descriptor file"},
		{"vmdk embedded monolithicFlat", vmdkSparse(desc("monolithicFlat", `RW 2048 FLAT "disk-flat.vmdk" 0`)), "", 0, "SPARSE"},
		{"vmdk embedded vmfs", vmdkSparse(desc("vmfs", `RW 2048 SPARSE "disk.vmdk"`)), "", 0, "createType"},
		{"vmdk embedded monolithicFlat, absolute", vmdkSparse(desc("monolithicFlat", `RW 2048 FLAT "/etc/shadow" 0`)), "", 0, "vmdk"},
		{"vmdk sparse extent with a path", vmdkSparse(desc("monolithicSparse", `RW 2048 SPARSE "../../etc/shadow"`)), "", 0, "path"},
		{"vmdk unknown descriptor line", vmdkSparse(desc("monolithicSparse", "RW 2048 SPARSE \"a\"\ninclude /etc/shadow")), "", 0, "invalid vmdk descriptor line"},
		{"vmdk descriptor elsewhere", func() []byte { b := vmdkSparse(desc("monolithicSparse", `RW 2048 SPARSE "a"`)); b[28] = 2; return b }(), "", 0, "sector 1"},
		{"mbr", mbr(0x83, 0x80, 2048), "raw", 0, ""},
		{"gpt", gptPMBR(), "raw", 0, ""},
		{"mbr bad boot flag (checked for disks only)", mbr(0x83, 0x12, 2048), "raw", 0, ""},
		{"vmdk sparse with a flat extent", vmdkSparse(desc("monolithicSparse", `RW 2048 FLAT "/etc/shadow" 0`)), "", 0, "SPARSE"},
		{"vmdk two extents", vmdkSparse(desc("monolithicSparse", "RW 2048 SPARSE \"a\"\nRW 2048 SPARSE \"/etc/shadow\"")), "", 0, "SPARSE"},
		{"iso", iso, "iso", 100 * 2048, ""},
		{"iso and qcow2", append(qcow2Header(3, 1, 0, 0)[:0x10], iso[0x10:]...), "", 0, "more than one"},
		{"vhdx", []byte("vhdxfile" + strings.Repeat("\x00", 100)), "vhdx", 0, ""},
		{"luks", []byte("LUKS\xba\xbe\x00\x01"), "luks", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ins, err := Inspect(c.data)
			if c.unsafe != "" {
				if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), c.unsafe) {
					t.Fatalf("Inspect = %+v, %v; want a refusal mentioning %q", ins, err, c.unsafe)
				}
				return
			}
			if err != nil || ins.Format != c.format || ins.VirtualSize != c.vsize {
				t.Fatalf("Inspect = %+v, %v; want %s of %d", ins, err, c.format, c.vsize)
			}
		})
	}
}

// TestVMDKFooter checks a streamOptimized VMDK whose grain directory is in
// a footer: qemu reads the footer's header fields, so they must repeat the
// header's.
func TestVMDKFooter(t *testing.T) {
	head := vmdkSparse(desc("streamOptimized", `RW 2048 SPARSE "a.vmdk"`))
	binary.LittleEndian.PutUint64(head[56:], vmdkGDAtEnd)
	ins, err := Inspect(head)
	if err != nil || !ins.footer {
		t.Fatalf("Inspect = %+v, %v", ins, err)
	}
	tail := make([]byte, vmdkTail)
	binary.LittleEndian.PutUint32(tail[12:], 3) // footer marker
	copy(tail[512:], head[:512])
	binary.LittleEndian.PutUint64(tail[512+56:], 128)
	if err := CheckTail(ins, head, tail); err != nil {
		t.Fatalf("good footer: %v", err)
	}
	for name, mutate := range map[string]func(b []byte){
		"other descriptor":  func(b []byte) { b[512+28] = 9 },
		"another footer":    func(b []byte) { binary.LittleEndian.PutUint64(b[512+56:], vmdkGDAtEnd) },
		"bad marker":        func(b []byte) { b[12] = 1 },
		"bad end of stream": func(b []byte) { b[1024+100] = 1 },
		"truncated":         func(b []byte) {},
	} {
		bad := bytes.Clone(tail)
		mutate(bad)
		if name == "truncated" {
			bad = bad[:1000]
		}
		if err := CheckTail(ins, head, bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: CheckTail = %v", name, err)
		}
	}
}

func TestCheckFormat(t *testing.T) {
	badBoot := must(Inspect(mbr(0x83, 0x12, 2048)))
	noParts := must(Inspect(mbr(0, 0, 0)))
	kernel := make([]byte, 4096) // a bzImage: a boot signature, no partition table
	copy(kernel, "MZ")
	for i := 446; i < 510; i++ {
		kernel[i] = 0xff
	}
	binary.LittleEndian.PutUint16(kernel[510:], 0xaa55)
	bz := must(Inspect(kernel))
	for _, c := range []struct {
		declared string
		ins      Inspection
		want     string
	}{
		{DiskRaw, badBoot, "boot flag"}, {DiskAMI, noParts, "no partitions"}, {DiskRaw, bz, "boot flag"},
		{DiskAKI, bz, ""}, {DiskARI, noParts, ""}, {DiskRaw, must(Inspect(gptPMBR())), ""},
	} {
		err := checkFormat(c.declared, c.ins)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("checkFormat(%s, MBR data) = %v, want %q", c.declared, err, c.want)
		}
	}
	raw := Inspection{Format: formatRaw}
	q := Inspection{Format: DiskQCOW2}
	for _, c := range []struct {
		declared string
		ins      Inspection
		ok       bool
	}{
		{DiskRaw, raw, true}, {DiskAMI, raw, true}, {DiskAKI, raw, true}, {DiskARI, raw, true},
		{DiskRaw, q, false}, // a qcow2 passed off as raw
		{DiskAMI, q, false}, {DiskQCOW2, q, true}, {DiskQCOW2, raw, false}, {DiskISO, raw, false},
		{DiskVMDK, q, false}, {DiskVHD, raw, true}, {DiskRaw, Inspection{Format: DiskISO}, false},
	} {
		if err := checkFormat(c.declared, c.ins); (err == nil) != c.ok {
			t.Errorf("checkFormat(%s, %s) = %v", c.declared, c.ins.Format, err)
		}
	}
}

// TestInspectQemuImg checks the inspector against images made by the real
// qemu-img (Debian package qemu-utils, in TEST_DEPS).
func TestInspectQemuImg(t *testing.T) {
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal("qemu-img is missing: apt-get install qemu-utils")
	}
	dir := t.TempDir()
	mk := func(name string, args ...string) []byte {
		t.Helper()
		p := filepath.Join(dir, name)
		out, err := exec.Command(qemu, append(append([]string{"create"}, args[:len(args)-1]...), p, args[len(args)-1])...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img create %s: %v: %s", name, err, out)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b[:min(len(b), InspectBytes)]
	}
	base := mk("base.qcow2", "-f", "qcow2", "64M")
	if ins, err := Inspect(base); err != nil || ins.Format != DiskQCOW2 || ins.VirtualSize != 64<<20 {
		t.Fatalf("plain qcow2: %+v, %v", ins, err)
	}
	for name, args := range map[string][]string{
		"backing.qcow2":  {"-f", "qcow2", "-F", "qcow2", "-b", filepath.Join(dir, "base.qcow2"), "64M"},
		"datafile.qcow2": {"-f", "qcow2", "-o", "data_file=" + filepath.Join(dir, "data.raw"), "64M"},
		"flat.vmdk":      {"-f", "vmdk", "-o", "subformat=monolithicFlat", "8M"},
		"split.vmdk":     {"-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "8M"},
	} {
		if ins, err := Inspect(mk(name, args...)); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: Inspect = %+v, %v; want a refusal", name, ins, err)
		}
	}
	for _, sub := range []string{"monolithicSparse", "streamOptimized"} {
		b := mk(sub+".vmdk", "-f", "vmdk", "-o", "subformat="+sub, "8M")
		ins, err := Inspect(b)
		if err != nil || ins.Format != DiskVMDK || ins.VirtualSize != 8<<20 {
			t.Errorf("%s: %+v, %v", sub, ins, err)
		}
		if err := CheckTail(ins, b, b); err != nil {
			t.Errorf("%s: CheckTail: %v", sub, err)
		}
	}
	if ins, err := Inspect(mk("disk.vdi", "-f", "vdi", "16M")); err != nil || ins.Format != DiskVDI || ins.VirtualSize != 16<<20 {
		t.Errorf("vdi: %+v, %v", ins, err)
	}
	if ins, err := Inspect(mk("disk.vhd", "-f", "vpc", "16M")); err != nil || ins.Format != DiskVHD || ins.VirtualSize < 16<<20 {
		t.Errorf("vhd: %+v, %v", ins, err)
	}
	if ins, err := Inspect(mk("disk.vhdx", "-f", "vhdx", "16M")); err != nil || ins.Format != DiskVHDX {
		t.Errorf("vhdx: %+v, %v", ins, err)
	}
	if !bytes.HasPrefix(base, []byte("QFI")) {
		t.Fatal("not a qcow2")
	}
}
