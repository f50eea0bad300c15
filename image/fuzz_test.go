package image

import (
	"encoding/binary"
	"encoding/json"
	"testing"
)

// FuzzInspect feeds hostile headers to the format inspector: it must never
// panic, and whatever it accepts must be safe.
func FuzzInspect(f *testing.F) {
	f.Add([]byte("plain"))
	f.Add(qcow2Header(3, 1<<30, 0, 0))
	f.Add(qcow2Header(2, 1<<20, 512, 0))
	f.Add(qcow2Header(3, 1<<30, 0, qcow2IncompatDataFile))
	f.Add(vmdkSparse(desc("monolithicSparse", `RW 2048 SPARSE "a.vmdk"`))[:4096])
	f.Add(vmdkSparse(desc("monolithicFlat", `RW 2048 FLAT "/etc/shadow" 0`))[:4096])
	f.Add([]byte(desc("monolithicFlat", `RW 2048 FLAT "/etc/shadow" 0`)))
	f.Add([]byte("conectix" + string(make([]byte, 600))))
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, err := Inspect(b)
		if err != nil {
			return
		}
		switch ins.Format {
		case DiskQCOW2:
			if binary.BigEndian.Uint64(b[8:]) != 0 {
				t.Fatal("accepted a qcow2 with a backing file")
			}
			if binary.BigEndian.Uint32(b[4:]) == 3 && binary.BigEndian.Uint64(b[72:])&qcow2IncompatDataFile != 0 {
				t.Fatal("accepted a qcow2 with a data file")
			}
		case formatVMDKDescriptor, formatQED:
			t.Fatalf("accepted %s", ins.Format)
		}
		if ins.VirtualSize < 0 {
			t.Fatalf("negative virtual size %d for %s", ins.VirtualSize, ins.Format)
		}
	})
}

// FuzzParsePatch feeds hostile JSON-patch bodies to the parser: no panic,
// and what it accepts is well formed and survives a round trip.
func FuzzParsePatch(f *testing.F) {
	f.Add([]byte(`[{"op":"replace","path":"/name","value":"x"}]`))
	f.Add([]byte(`[{"op":"remove","path":"/a~1b"}]`))
	f.Add([]byte(`[{"op":"add","path":"/locations/-","value":{}}]`))
	f.Add([]byte(`{"op":"add"}`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := ParsePatch(b)
		if err != nil {
			return
		}
		var again []map[string]any
		for _, op := range ops {
			if op.Path == "" || (op.Op != "add" && op.Op != "replace" && op.Op != "remove") {
				t.Fatalf("accepted %+v", op)
			}
			if op.Op != "remove" && op.Value == nil {
				t.Fatalf("%s without a value", op.Op)
			}
			m := map[string]any{"op": op.Op, "path": "/" + escapePointer(op.Path)}
			if op.Op != "remove" {
				m["value"] = op.Value
			}
			again = append(again, m)
		}
		raw, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		ops2, err := ParsePatch(raw)
		if err != nil || len(ops2) != len(ops) {
			t.Fatalf("round trip of %s: %v", raw, err)
		}
		for i := range ops {
			if ops[i].Op != ops2[i].Op || ops[i].Path != ops2[i].Path {
				t.Fatalf("round trip changed %+v into %+v", ops[i], ops2[i])
			}
		}
	})
}

func escapePointer(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
