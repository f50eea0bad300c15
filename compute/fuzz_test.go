package compute_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/compute"
	"github.com/stratuskit/stratus/errdefs"
)

// FuzzUserData: any input either decodes, bounded, or is a validation
// error naming user_data; valid base64 round-trips.
func FuzzUserData(f *testing.F) {
	f.Add("aGVsbG8=")
	f.Add("")
	f.Add("!!!")
	f.Add(strings.Repeat("QUJD", 20000))
	f.Add("aGVs\nbG8=")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := compute.CheckUserData(s)
		if err != nil {
			var ve *errdefs.ValidationError
			if !errors.As(err, &ve) || ve.Field != "user_data" {
				t.Fatalf("error %v does not name user_data", err)
			}
			return
		}
		if len(s) > compute.MaxUserData {
			t.Fatalf("accepted %d bytes", len(s))
		}
		// Decoding is stable: the canonical encoding decodes to the same bytes.
		again, err := compute.CheckUserData(base64.StdEncoding.EncodeToString(b))
		if err != nil || string(again) != string(b) {
			t.Fatalf("re-encoding %q: %q %v", s, again, err)
		}
	})
}

// FuzzNameFilter: hostile regular expressions compile in bounded time or
// are refused naming "name", and never panic when matched.
func FuzzNameFilter(f *testing.F) {
	for _, s := range []string{"^web-[0-9]+$", "(a+)+$", "[", "\\", strings.Repeat("a*", 200), "(?i)WEB", ""} {
		f.Add(s, "web-1")
	}
	f.Fuzz(func(t *testing.T, expr, name string) {
		re, err := compute.CompileNameFilter(expr)
		if err != nil {
			var ve *errdefs.ValidationError
			if !errors.As(err, &ve) || ve.Field != "name" {
				t.Fatalf("error %v does not name the field", err)
			}
			return
		}
		if len(expr) > 255 {
			t.Fatalf("accepted a %d-byte filter", len(expr))
		}
		_ = re.MatchString(name)
	})
}

// FuzzSchedulerHints: any JSON is a valid hint set of uuids or a
// validation error.
func FuzzSchedulerHints(f *testing.F) {
	f.Add(`{"group":"11111111-2222-4333-8444-555555555555"}`)
	f.Add(`{"same_host":"11111111-2222-4333-8444-555555555555"}`)
	f.Add(`{"different_host":["11111111-2222-4333-8444-555555555555","x"]}`)
	f.Add(`{"same_host":[1,2]}`)
	f.Add(`[]`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := compute.ParseHints(json.RawMessage(raw))
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error %v is not a validation error", err)
			}
			return
		}
		if compute.CheckHints(h) != nil {
			t.Fatalf("ParseHints accepted invalid hints %+v", h)
		}
		if len(h.SameHost)+len(h.DifferentHost) > 100 {
			t.Fatalf("unbounded hints: %d", len(h.SameHost)+len(h.DifferentHost))
		}
	})
}

// FuzzMetadata: metadata is accepted within Nova's bounds or refused
// naming the field, and accepted metadata renders as meta_data.json.
func FuzzMetadata(f *testing.F) {
	f.Add("role", "web")
	f.Add("", "x")
	f.Add("a/b", "c")
	f.Add(strings.Repeat("k", 300), "v")
	f.Add("k", strings.Repeat("v", 300))
	f.Add("k\x00", "v")
	f.Fuzz(func(t *testing.T, k, v string) {
		md := map[string]string{k: v}
		if err := compute.CheckMetadata("metadata", md, 128); err != nil {
			var ve *errdefs.ValidationError
			if !errors.As(err, &ve) || ve.Field != "metadata" {
				t.Fatalf("error %v does not name metadata", err)
			}
			return
		}
		if k == "" || len(k) > 255 || len(v) > 255 || strings.Contains(k, "/") {
			t.Fatalf("accepted %q=%q", k, v)
		}
		doc, err := json.Marshal(compute.MetaData(&compute.Server{ID: "x", Metadata: md}))
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		if err := json.Unmarshal(doc, &back); err != nil {
			t.Fatal(err)
		}
	})
}
