package network

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// ListQuery is a parsed Neutron list query: attribute filters (any
// attribute, several values meaning "any of"), tag filters, sorting,
// fields and paging.
type ListQuery struct {
	Filters    map[string][]string
	Tags       []string // all of
	TagsAny    []string
	NotTags    []string // not all of
	NotTagsAny []string // none of
	SortKeys   []string
	SortDirs   []string
	Fields     []string
}

// reserved query parameters that are not attribute filters.
var reserved = map[string]bool{"fields": true, "sort_key": true, "sort_dir": true, "limit": true, "marker": true,
	"page_reverse": true, "tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true}

// ParseListQuery parses and bounds a list query.
func ParseListQuery(q url.Values) (*ListQuery, error) {
	if len(q) > 64 {
		return nil, errdefs.Invalid("query", "more than 64 parameters")
	}
	lq := &ListQuery{Filters: map[string][]string{}}
	total := 0
	for k, vs := range q {
		total += len(vs)
		if total > 1000 {
			return nil, errdefs.Invalid("query", "more than 1000 values")
		}
		if len(k) > 255 {
			return nil, errdefs.Invalid("query", "parameter name longer than 255 characters")
		}
		for _, v := range vs {
			if len(v) > 4096 {
				return nil, errdefs.Invalid(k, "value longer than 4096 bytes")
			}
		}
		if !reserved[k] {
			lq.Filters[k] = vs
		}
	}
	splitTags := func(name string) ([]string, error) {
		var out []string
		for _, v := range q[name] {
			for t := range strings.SplitSeq(v, ",") {
				if t == "" {
					return nil, errdefs.Invalid(name, "empty tag")
				}
				out = append(out, t)
			}
		}
		return out, nil
	}
	var err error
	if lq.Tags, err = splitTags("tags"); err != nil {
		return nil, err
	}
	if lq.TagsAny, err = splitTags("tags-any"); err != nil {
		return nil, err
	}
	if lq.NotTags, err = splitTags("not-tags"); err != nil {
		return nil, err
	}
	if lq.NotTagsAny, err = splitTags("not-tags-any"); err != nil {
		return nil, err
	}
	lq.SortKeys, lq.SortDirs = q["sort_key"], q["sort_dir"]
	for _, k := range lq.SortKeys {
		if k == "" {
			return nil, errdefs.Invalid("sort_key", "empty")
		}
	}
	for _, d := range lq.SortDirs {
		if d != "asc" && d != "desc" {
			return nil, errdefs.Invalid("sort_dir", "%q is not asc or desc", d)
		}
	}
	if len(lq.SortDirs) > len(lq.SortKeys) {
		return nil, errdefs.Invalid("sort_dir", "more sort_dir than sort_key values")
	}
	for _, f := range q["fields"] {
		for x := range strings.SplitSeq(f, ",") {
			if x != "" {
				lq.Fields = append(lq.Fields, x)
			}
		}
	}
	return lq, nil
}

// Match reports whether a rendered resource passes the filters.
func (lq *ListQuery) Match(m map[string]any) bool {
	for k, vs := range lq.Filters {
		v, ok := m[k]
		if !ok {
			continue // unknown attributes are ignored, as Neutron does without filter-validation
		}
		if !slices.ContainsFunc(vs, func(want string) bool { return valueMatches(v, want) }) {
			return false
		}
	}
	if len(lq.Tags)+len(lq.TagsAny)+len(lq.NotTags)+len(lq.NotTagsAny) > 0 {
		var tags []string
		if ts, ok := m["tags"].([]any); ok {
			for _, t := range ts {
				if s, ok := t.(string); ok {
					tags = append(tags, s)
				}
			}
		}
		has := func(t string) bool { return slices.Contains(tags, t) }
		all := func(ts []string) bool {
			for _, t := range ts {
				if !has(t) {
					return false
				}
			}
			return true
		}
		if len(lq.Tags) > 0 && !all(lq.Tags) {
			return false
		}
		if len(lq.TagsAny) > 0 && !slices.ContainsFunc(lq.TagsAny, has) {
			return false
		}
		if len(lq.NotTags) > 0 && all(lq.NotTags) {
			return false
		}
		if slices.ContainsFunc(lq.NotTagsAny, has) {
			return false
		}
	}
	return true
}

func valueMatches(v any, want string) bool {
	switch v := v.(type) {
	case nil:
		return want == "" || want == "None" || want == "null"
	case string:
		return v == want
	case bool:
		b, err := strconv.ParseBool(want)
		return err == nil && b == v
	case float64:
		f, err := strconv.ParseFloat(want, 64)
		return err == nil && f == v
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				// fixed_ips=subnet_id=X or fixed_ips=ip_address=Y
				k, val, ok := strings.Cut(want, "=")
				if ok && valueMatches(m[k], val) {
					return true
				}
				continue
			}
			if valueMatches(e, want) {
				return true
			}
		}
	}
	return false
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return cmp.Compare(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	}
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// Sort orders items by the sort keys (stable; ties keep id order).
func (lq *ListQuery) Sort(items []map[string]any) {
	if len(lq.SortKeys) == 0 {
		return
	}
	slices.SortStableFunc(items, func(a, b map[string]any) int {
		for i, k := range lq.SortKeys {
			c := compareValues(a[k], b[k])
			if i < len(lq.SortDirs) && lq.SortDirs[i] == "desc" {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// Select keeps only the requested fields of m.
func (lq *ListQuery) Select(m map[string]any) map[string]any {
	if len(lq.Fields) == 0 {
		return m
	}
	out := make(map[string]any, len(lq.Fields))
	for _, f := range lq.Fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return out
}

// list filters, sorts, pages and answers rendered items as {coll: […]}
// with a next link when paged.
func (a *api) list(w http.ResponseWriter, r *http.Request, coll string, items []map[string]any, paged bool) {
	lq, err := ParseListQuery(r.URL.Query())
	if err != nil {
		fail(w, r, err)
		return
	}
	kept := items[:0]
	for _, m := range items {
		if lq.Match(m) {
			kept = append(kept, m)
		}
	}
	lq.Sort(kept)
	page, err := httpapi.ParsePage(r, httpapi.PageOptions{MaxLimit: 100000})
	if err != nil {
		fail(w, r, err)
		return
	}
	var links []httpapi.Link
	if paged {
		id := func(m map[string]any) string { s, _ := m["id"].(string); return s }
		var more bool
		kept, more, err = httpapi.PageSlice(kept, page, id)
		if err != nil {
			fail(w, r, err)
			return
		}
		if len(kept) > 0 {
			links = httpapi.PageLinks(r, page, more, id(kept[len(kept)-1]))
		}
	}
	out := make([]map[string]any, 0, len(kept))
	for _, m := range kept {
		out = append(out, lq.Select(m))
	}
	reply(w, http.StatusOK, httpapi.ListBody(coll, out, links))
}

// show answers one rendered item, honouring fields.
func (a *api) show(w http.ResponseWriter, r *http.Request, key string, m map[string]any, status int) {
	lq, err := ParseListQuery(url.Values{"fields": r.URL.Query()["fields"]})
	if err != nil {
		fail(w, r, err)
		return
	}
	reply(w, status, map[string]any{key: lq.Select(m)})
}
