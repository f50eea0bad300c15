package httpapi

import (
	"net/http"
	"strconv"

	"github.com/stratuskit/stratus/errdefs"
)

// DefaultMaxLimit is the largest page [ParsePage] allows when
// [PageOptions.MaxLimit] is zero. It is Nova's osapi_max_limit.
const DefaultMaxLimit = 1000

// PageOptions configures [ParsePage]. The zero value is the default.
type PageOptions struct {
	// DefaultLimit is the page size when the request gives no limit; zero
	// means MaxLimit.
	DefaultLimit int
	// MaxLimit is the largest page; zero means DefaultMaxLimit.
	MaxLimit int
	// RejectOverMax makes a limit above MaxLimit a 400 error. By default it
	// is lowered to MaxLimit, as Nova, Cinder and Neutron do, so that a
	// client asking for a huge page gets a full page and a next link.
	RejectOverMax bool
}

// Page is a parsed limit and marker.
type Page struct {
	// Limit is the page size, between 0 and the maximum.
	Limit int
	// Marker is the id of the last item of the previous page, or "".
	Marker string
}

// ParsePage reads the limit and marker query parameters. A limit that is not
// a non-negative integer (or, with RejectOverMax, is above the maximum) is an
// *errdefs.ValidationError naming "limit".
func ParsePage(r *http.Request, opts PageOptions) (Page, error) {
	maxLimit := opts.MaxLimit
	if maxLimit <= 0 {
		maxLimit = DefaultMaxLimit
	}
	q := r.URL.Query()
	p := Page{Limit: opts.DefaultLimit, Marker: q.Get("marker")}
	if p.Limit <= 0 || p.Limit > maxLimit {
		p.Limit = maxLimit
	}
	if !q.Has("limit") {
		return p, nil
	}
	s := q.Get("limit")
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s[0] == '+' {
		return Page{}, errdefs.Invalid("limit", "must be a non-negative integer, not %q", s)
	}
	if n > maxLimit {
		if opts.RejectOverMax {
			return Page{}, errdefs.Invalid("limit", "must be at most %d", maxLimit)
		}
		n = maxLimit
	}
	p.Limit = n
	return p, nil
}

// PageSlice returns the page of items, which must be sorted in the list's
// order, that follows p.Marker, with at most p.Limit items; more reports
// whether items remain after it. id returns an item's id.
//
// A marker that matches no item is an *errdefs.ValidationError (400 "marker
// not found"), as in Nova, Cinder and Glance. Swift markers are names
// compared as strings, not ids, and need no match: Swift lists use their
// own search instead.
func PageSlice[T any](items []T, p Page, id func(T) string) (page []T, more bool, err error) {
	start := 0
	if p.Marker != "" {
		start = -1
		for i, it := range items {
			if id(it) == p.Marker {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, false, errdefs.Invalid("marker", "marker %q not found", p.Marker)
		}
	}
	rest := items[start:]
	if len(rest) <= p.Limit {
		return rest, false, nil
	}
	return rest[:p.Limit], true, nil
}

// Link is a hyperlink in an OpenStack body.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Type string `json:"type,omitempty"`
}

// PageLinks returns the value of a "<collection>_links" key, such as
// "servers_links": a single "next" link to the page after lastID when more
// is true, nil otherwise. The link repeats the request's URL and query
// parameters with limit and marker replaced.
func PageLinks(r *http.Request, p Page, more bool, lastID string) []Link {
	if !more || p.Limit == 0 || lastID == "" {
		return nil
	}
	q := r.URL.Query()
	q.Set("limit", strconv.Itoa(p.Limit))
	q.Set("marker", lastID)
	return []Link{{Rel: "next", Href: BaseURL(r) + r.URL.EscapedPath() + "?" + q.Encode()}}
}

// ListBody returns a list response body: {collection: items} plus
// "<collection>_links" when links is not empty, as Nova, Cinder and Neutron
// answer.
func ListBody(collection string, items any, links []Link) map[string]any {
	body := map[string]any{collection: items}
	if len(links) > 0 {
		body[collection+"_links"] = links
	}
	return body
}

// BaseURL returns the scheme and host the client used to reach the server,
// such as "http://127.0.0.1:8774", for building absolute links. The scheme is
// https when the connection is TLS.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
