package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// APIVersionHeader is the standard microversion header, whose value is
// "<service type> <version>", for example "compute 2.61".
const APIVersionHeader = "OpenStack-API-Version"

// Version is an API microversion such as 2.61.
type Version struct {
	Major, Minor int
}

// ParseVersion parses "major.minor", each a decimal number without leading
// zeros (the microversion-parse rule), such as "2.61" or "3.0".
func ParseVersion(s string) (Version, error) {
	majS, minS, ok := strings.Cut(s, ".")
	if ok {
		a, aok := versionPart(majS)
		b, bok := versionPart(minS)
		if aok && bok {
			return Version{Major: a, Minor: b}, nil
		}
	}
	return Version{}, errdefs.Invalid("version", "%q is not a version of the form major.minor", s)
}

// versionPart parses one decimal component without sign or leading zeros.
func versionPart(s string) (int, bool) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// String returns "major.minor".
func (v Version) String() string {
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor)
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || (v.Major == o.Major && v.Minor < o.Minor)
}

// AtLeast reports whether v is o or newer, the usual test in a handler:
//
//	if httpapi.APIVersion(r.Context()).AtLeast(httpapi.Version{Major: 2, Minor: 61}) { … }
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

// Microversions describes the microversions a service supports and the
// headers that carry them.
type Microversions struct {
	// Service is the service type as it appears in OpenStack-API-Version,
	// for example "compute", "volume" or "identity".
	Service string
	// LegacyHeader is an older header that holds the bare version, such as
	// "X-OpenStack-Nova-API-Version" or "X-OpenStack-Volume-API-Version",
	// or "" for none.
	LegacyHeader string
	// Min and Max bound the supported versions. A request without a
	// version gets Min.
	Min, Max Version
}

// Negotiate returns the version r asks for. OpenStack-API-Version wins over
// the legacy header; in it, entries for other services are ignored. "latest"
// means Max and no version means Min. A malformed version is an
// *errdefs.ValidationError (400); one outside [Min, Max] is an [*HTTPError]
// with status 406.
func (m Microversions) Negotiate(r *http.Request) (Version, error) {
	raw, header, found := m.requested(r.Header)
	if !found {
		return m.Min, nil
	}
	if strings.EqualFold(raw, "latest") {
		return m.Max, nil
	}
	v, err := ParseVersion(raw)
	if err != nil {
		return Version{}, errdefs.Invalid(header, "API version %q is of invalid format: want major.minor or latest", raw)
	}
	if v.Less(m.Min) || m.Max.Less(v) {
		return Version{}, Errorf(http.StatusNotAcceptable,
			"Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, m.Min, m.Max)
	}
	return v, nil
}

// requested finds the raw version string and the header it came from.
func (m Microversions) requested(h http.Header) (raw, header string, found bool) {
	for _, line := range h.Values(APIVersionHeader) {
		for entry := range strings.SplitSeq(line, ",") {
			svc, ver, _ := strings.Cut(strings.TrimSpace(entry), " ")
			if strings.EqualFold(svc, m.Service) {
				return strings.TrimSpace(ver), APIVersionHeader, true
			}
		}
	}
	if m.LegacyHeader != "" {
		if v := strings.TrimSpace(h.Get(m.LegacyHeader)); v != "" {
			return v, m.LegacyHeader, true
		}
	}
	return "", "", false
}

// SetHeaders sets the response headers that echo version v:
// OpenStack-API-Version "<service> <v>", the legacy header when configured,
// and Vary naming both.
func (m Microversions) SetHeaders(h http.Header, v Version) {
	h.Set(APIVersionHeader, m.Service+" "+v.String())
	h.Add("Vary", APIVersionHeader)
	if m.LegacyHeader != "" {
		h.Set(m.LegacyHeader, v.String())
		h.Add("Vary", m.LegacyHeader)
	}
}

// Handler negotiates the version of every request to next. On success it
// sets the response headers ([Microversions.SetHeaders]) and stores the
// version for [APIVersion]; on failure it answers 400 or 406 in the family's
// error body.
func (m Microversions) Handler(fam Family, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := m.Negotiate(r)
		if err != nil {
			w.Header().Add("Vary", APIVersionHeader)
			if m.LegacyHeader != "" {
				w.Header().Add("Vary", m.LegacyHeader)
			}
			WriteError(w, r, fam, err)
			return
		}
		m.SetHeaders(w.Header(), v)
		next.ServeHTTP(w, r.WithContext(WithAPIVersion(r.Context(), v)))
	})
}

type versionKey struct{}

// WithAPIVersion returns a copy of ctx holding v, for tests and for code
// that negotiates without [Microversions.Handler].
func WithAPIVersion(ctx context.Context, v Version) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// APIVersion returns the version negotiated for the request, or the zero
// Version when none was.
func APIVersion(ctx context.Context) Version {
	v, _ := ctx.Value(versionKey{}).(Version)
	return v
}
