package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	good := map[string]Version{"2.1": {2, 1}, "2.61": {2, 61}, "3.0": {3, 0}, "10.100": {10, 100}}
	for s, want := range good {
		if got, err := ParseVersion(s); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v", s, got, err)
		}
		if got := want.String(); got != s {
			t.Errorf("String() = %q, want %q", got, s)
		}
	}
	for _, s := range []string{"", "2", "2.", ".1", "2.x", "v2.1", "2.1.1", "02.1", "2.01", "-2.1", "2.+1", " 2.1", "9999999999.1"} {
		if _, err := ParseVersion(s); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseVersion(%q) err = %v, want ErrInvalid", s, err)
		}
	}
	if !(Version{2, 9}).Less(Version{2, 10}) || (Version{3, 0}).Less(Version{2, 99}) || (Version{2, 1}).Less(Version{2, 1}) {
		t.Error("Less is wrong")
	}
	if !(Version{2, 61}).AtLeast(Version{2, 61}) || (Version{2, 60}).AtLeast(Version{2, 61}) {
		t.Error("AtLeast is wrong")
	}
}

var nova = Microversions{
	Service:      "compute",
	LegacyHeader: "X-OpenStack-Nova-API-Version",
	Min:          Version{2, 1},
	Max:          Version{2, 96},
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       Microversions
		headers map[string][]string
		want    Version
		status  int // 0: success
	}{
		{"absent is min", nova, nil, Version{2, 1}, 0},
		{"standard", nova, map[string][]string{"OpenStack-API-Version": {"compute 2.61"}}, Version{2, 61}, 0},
		{"service case", nova, map[string][]string{"OpenStack-API-Version": {"COMPUTE 2.61"}}, Version{2, 61}, 0},
		{"legacy", nova, map[string][]string{"X-OpenStack-Nova-API-Version": {"2.10"}}, Version{2, 10}, 0},
		{"standard wins", nova, map[string][]string{
			"OpenStack-API-Version":        {"compute 2.61"},
			"X-OpenStack-Nova-API-Version": {"2.10"},
		}, Version{2, 61}, 0},
		{"several services", nova, map[string][]string{"OpenStack-API-Version": {"volume 3.60, compute 2.73"}}, Version{2, 73}, 0},
		{"repeated header", nova, map[string][]string{"OpenStack-API-Version": {"volume 3.60", "compute 2.89"}}, Version{2, 89}, 0},
		{"other service only", nova, map[string][]string{"OpenStack-API-Version": {"volume 3.60"}}, Version{2, 1}, 0},
		{"other service falls back to legacy", nova, map[string][]string{
			"OpenStack-API-Version":        {"volume 3.60"},
			"X-OpenStack-Nova-API-Version": {"2.26"},
		}, Version{2, 26}, 0},
		{"latest", nova, map[string][]string{"OpenStack-API-Version": {"compute latest"}}, Version{2, 96}, 0},
		{"legacy latest", nova, map[string][]string{"X-OpenStack-Nova-API-Version": {"Latest"}}, Version{2, 96}, 0},
		{"min", nova, map[string][]string{"OpenStack-API-Version": {"compute 2.1"}}, Version{2, 1}, 0},
		{"max", nova, map[string][]string{"OpenStack-API-Version": {"compute 2.96"}}, Version{2, 96}, 0},
		{"malformed", nova, map[string][]string{"OpenStack-API-Version": {"compute 2.x"}}, Version{}, 400},
		{"missing version", nova, map[string][]string{"OpenStack-API-Version": {"compute"}}, Version{}, 400},
		{"legacy malformed", nova, map[string][]string{"X-OpenStack-Nova-API-Version": {"two"}}, Version{}, 400},
		{"above max", nova, map[string][]string{"OpenStack-API-Version": {"compute 2.200"}}, Version{}, 406},
		{"below min", nova, map[string][]string{"X-OpenStack-Nova-API-Version": {"2.0"}}, Version{}, 406},
		{"other major", nova, map[string][]string{"OpenStack-API-Version": {"compute 3.1"}}, Version{}, 406},
		{"cinder absent", Microversions{Service: "volume", Min: Version{3, 0}, Max: Version{3, 70}}, nil, Version{3, 0}, 0},
		{"cinder no legacy configured", Microversions{Service: "volume", Min: Version{3, 0}, Max: Version{3, 70}},
			map[string][]string{"X-OpenStack-Nova-API-Version": {"3.5"}}, Version{3, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			got, err := tt.m.Negotiate(r)
			if tt.status != 0 {
				if StatusOf(err) != tt.status {
					t.Fatalf("Negotiate = %v, %v; want status %d", got, err, tt.status)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Negotiate = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMicroversionHandler(t *testing.T) {
	t.Parallel()
	var seen Version
	h := nova.Handler(Nova, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = APIVersion(r.Context())
	}))

	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("OpenStack-API-Version", "compute 2.61")
	h.ServeHTTP(rec, r)
	if rec.Code != 200 || seen != (Version{2, 61}) {
		t.Fatalf("status %d, version in context %v", rec.Code, seen)
	}
	if got := rec.Header().Get("OpenStack-API-Version"); got != "compute 2.61" {
		t.Errorf("OpenStack-API-Version = %q", got)
	}
	if got := rec.Header().Get("X-OpenStack-Nova-API-Version"); got != "2.61" {
		t.Errorf("X-OpenStack-Nova-API-Version = %q", got)
	}
	if got, want := rec.Header().Values("Vary"), []string{"OpenStack-API-Version", "X-OpenStack-Nova-API-Version"}; !slices.Equal(got, want) {
		t.Errorf("Vary = %q, want %q", got, want)
	}

	rec = httptest.NewRecorder()
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-OpenStack-Nova-API-Version", "2.200")
	h.ServeHTTP(rec, r)
	if rec.Code != 406 {
		t.Fatalf("out of range: status %d", rec.Code)
	}
	jsonEqual(t, rec.Body.Bytes(), `{"computeFault":{"code":406,"message":"Version 2.200 is not supported by the API. Minimum is 2.1 and maximum is 2.96."}}`)
	if rec.Header().Get("Vary") == "" {
		t.Error("406 has no Vary")
	}

	rec = httptest.NewRecorder()
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("OpenStack-API-Version", "compute 2.x")
	h.ServeHTTP(rec, r)
	if rec.Code != 400 {
		t.Fatalf("malformed: status %d", rec.Code)
	}
	jsonEqual(t, rec.Body.Bytes(), `{"badRequest":{"code":400,"message":"invalid OpenStack-API-Version: API version \"2.x\" is of invalid format: want major.minor or latest"}}`)

	// Without the legacy header only the standard one is echoed.
	cinder := Microversions{Service: "volume", Min: Version{3, 0}, Max: Version{3, 70}}
	rec = httptest.NewRecorder()
	cinder.Handler(Cinder, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).
		ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Header().Get("OpenStack-API-Version"); got != "volume 3.0" {
		t.Errorf("cinder OpenStack-API-Version = %q", got)
	}
	if got := rec.Header().Values("Vary"); !slices.Equal(got, []string{"OpenStack-API-Version"}) {
		t.Errorf("cinder Vary = %q", got)
	}

	if got := APIVersion(t.Context()); got != (Version{}) {
		t.Errorf("APIVersion of a bare context = %v", got)
	}
	if got := APIVersion(WithAPIVersion(t.Context(), Version{2, 5})); got != (Version{2, 5}) {
		t.Errorf("WithAPIVersion round trip = %v", got)
	}
}
