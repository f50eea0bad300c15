package objectstore

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNames checks name validation: whatever is accepted is bounded,
// valid UTF-8 and free of NUL (and, for containers, of '/').
func FuzzNames(f *testing.F) {
	for _, s := range []string{"c", "..", ".", "a/b", "\x00", "\xff", strings.Repeat("x", 1025), "é🌩", "%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkObjectName(s) == nil {
			if s == "" || len(s) > MaxObjectNameLength || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("object name %q accepted", s)
			}
		}
		if checkContainerName(s) == nil {
			if s == "" || s == "." || s == ".." || len(s) > MaxContainerNameLength || !utf8.ValidString(s) || strings.ContainsAny(s, "/\x00") {
				t.Fatalf("container name %q accepted", s)
			}
		}
		if checkAccountName(s) == nil && (!strings.HasPrefix(s, AccountPrefix) || strings.ContainsAny(s, "/\x00")) {
			t.Fatalf("account name %q accepted", s)
		}
	})
}

// FuzzListing checks Scan against a brute-force model for any options
// over a fixed set of names.
func FuzzListing(f *testing.F) {
	names := []string{"a", "a-", "a/b", "a/b/c", "a/c", "b", "b/", "b//c", "é", "é/x"} // sorted
	f.Add("", "", "", "", 0, false)
	f.Add("a/", "/", "a/b", "", 2, true)
	f.Add("", "/", "", "b", 0, false)
	f.Fuzz(func(t *testing.T, prefix, delim, marker, end string, limit int, reverse bool) {
		if limit < 0 || limit > 20 {
			limit = 0
		}
		o := ListOptions{Prefix: prefix, Delimiter: delim, Marker: marker, EndMarker: end, Limit: limit, Reverse: reverse}
		var got []string
		Scan(&SliceCursor{Names: names}, o, func(n string, sub bool) bool {
			got = append(got, n)
			return len(got) < 100
		})
		want := modelListing(names, o)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%+v: got %q want %q", o, got, want)
		}
	})
}

func modelListing(all []string, o ListOptions) []string {
	var out []string
	seen := map[string]bool{}
	order := append([]string(nil), all...)
	if o.Reverse {
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
	}
	for _, n := range order {
		if !strings.HasPrefix(n, o.Prefix) {
			continue
		}
		if o.Reverse {
			if o.Marker != "" && n >= o.Marker || o.EndMarker != "" && n <= o.EndMarker {
				continue
			}
		} else if o.Marker != "" && n <= o.Marker || o.EndMarker != "" && n >= o.EndMarker {
			continue
		}
		entry := n
		if o.Delimiter != "" {
			if i := strings.Index(n[len(o.Prefix):], o.Delimiter); i >= 0 {
				sub := n[:len(o.Prefix)+i+len(o.Delimiter)]
				if seen[sub] || sub == o.Marker {
					continue
				}
				seen[sub] = true
				entry = sub
			}
		}
		out = append(out, entry)
		if o.Limit > 0 && len(out) == o.Limit {
			break
		}
	}
	return out
}

// FuzzRange checks that a parsed range always lies inside the object.
func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-5", "bytes=5-", "bytes=1-2,3-4", "bytes=9-1", "bytes=-0", "bytes=99999999999999999999-"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		start, end, partial, err := parseRange(h, size)
		if err != nil || !partial {
			return
		}
		if start < 0 || end < start || end >= size {
			t.Fatalf("range %q on %d bytes gave %d-%d", h, size, start, end)
		}
	})
}
