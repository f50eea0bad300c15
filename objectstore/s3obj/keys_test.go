package s3obj

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// randomName draws names from an alphabet chosen to hit every escape
// class, the chunk boundaries and shared prefixes.
func randomName(r *rand.Rand, maxLen int) string {
	alpha := []string{"a", "z", "0", "9", "/", ".", "-", "_", "A", "Z", "~", "é", "\x01", "(", "!", "\"", "\xff"}
	var sb strings.Builder
	n := 1 + r.IntN(maxLen)
	for sb.Len() < n {
		sb.WriteString(alpha[r.IntN(len(alpha))])
	}
	return sb.String()
}

func TestSegmentOrderAndPrefix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		maxLen := 8
		if i%10 == 0 {
			maxLen = 700 // across chunk boundaries
		}
		a, b := randomName(r, maxLen), randomName(r, maxLen)
		if i%3 == 0 {
			b = a + b // prefixes
		}
		sa, sb := segment(a, false), segment(b, false)
		if (a < b) != (sa < sb) || (a == b) != (sa == sb) {
			t.Fatalf("order: %q<%q is %v, segments %q<%q is %v", a, b, a < b, sa, sb, sa < sb)
		}
		if got, ok := unsegment(sa); !ok || got != a {
			t.Fatalf("unsegment(segment(%q)) = %q, %v", a, got, ok)
		}
		if strings.HasPrefix(b, a) != strings.HasPrefix(sb, segment(a, true)) {
			t.Fatalf("prefix: %q of %q differs from its segment", a, b)
		}
		for _, comp := range strings.Split(sa, "/") {
			if comp == "" || comp == "." || comp == ".." || len(comp) > chunkLen {
				t.Fatalf("segment %q has component %q", sa, comp)
			}
		}
	}
}

func TestUnsegmentRejects(t *testing.T) {
	for _, s := range []string{"", "abc", "ab!c!", "(2!", "(zz!", "(41!", "_2F!", "A!", strings.Repeat("a", chunkLen+1) + "!"} {
		if got, ok := unsegment(s); ok {
			t.Errorf("unsegment(%q) = %q, want rejection", s, got)
		}
	}
}

// TestObjectKeys: every key fits S3's 1024 bytes, and keys sort as names
// do except within a long-name group (which the cursor sorts).
func TestObjectKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	containers := []string{"c", strings.Repeat("é", 128), "AUTH_x/../c"}
	for i := range 3000 {
		cont := containers[i%len(containers)]
		a, b := randomName(r, 1024), randomName(r, 1024)
		if len(a) > 1024 {
			a = a[:1024]
		}
		if len(b) > 1024 {
			b = b[:1024]
		}
		ka, longA := objectKey("AUTH_0123456789abcdef0123456789abcdef", cont, a)
		kb, longB := objectKey("AUTH_0123456789abcdef0123456789abcdef", cont, b)
		for _, k := range []string{ka, kb} {
			if len(k) > maxKey {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
		ga, _ := longGroup(ka)
		gb, _ := longGroup(kb)
		if longA && longB && ga == gb {
			continue
		}
		if a != b && (a < b) != (ka < kb) {
			t.Fatalf("names %q<%q is %v, keys say %v (long %v %v)", a, b, a < b, ka < kb, longA, longB)
		}
	}
}

func TestExpiryKey(t *testing.T) {
	p := objectKeyParts{"AUTH_a", "c/..", "x/y!z"}
	k := expiryKey(4102444800, p)
	if !strings.HasPrefix(k, expiryNS+"04102444800/") {
		t.Fatalf("expiry key %q", k)
	}
	at, got, ok := parseExpiryKey(k)
	if !ok || at != 4102444800 || got != p {
		t.Fatalf("parseExpiryKey(%q) = %d %+v %v", k, at, got, ok)
	}
	long := objectKeyParts{"AUTH_a", "c", strings.Repeat("n", 1024)}
	if at, _, ok := parseExpiryKey(expiryKey(7, long)); ok || at != 7 {
		t.Fatalf("a long name's entry parsed: %d %v", at, ok)
	}
}

func FuzzSegment(f *testing.F) {
	for _, s := range []string{"", "a", "a/b", "..", "é", "\xff\x00", strings.Repeat("x/", 300)} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, sb := segment(a, false), segment(b, false)
		if (a < b) != (sa < sb) {
			t.Fatalf("order of %q and %q not kept", a, b)
		}
		if got, ok := unsegment(sa); !ok || got != a {
			t.Fatalf("round trip of %q: %q %v", a, got, ok)
		}
		if strings.HasPrefix(b, a) != strings.HasPrefix(sb, segment(a, true)) {
			t.Fatalf("prefix %q of %q not kept", a, b)
		}
		_, _ = unsegment(b) // hostile keys do not panic
	})
}
