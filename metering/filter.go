package metering

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// Filter is a resource search: conditions on attributes, all of which must
// hold. It is the subset of Gnocchi's search language Stratus answers:
// "attr=value and attr!=value" as a string, or {"=": {"attr": value}},
// {"!=": …}, {"in": {"attr": [values]}} and {"and": [...]} as JSON.
type Filter struct {
	Conds []Cond
}

// Cond is one condition: the attribute's value equals (or, with Not, does
// not equal) one of Values.
type Cond struct {
	Attr   string
	Not    bool
	Values []string
}

// Match reports whether r satisfies every condition; a nil filter matches
// everything.
func (f *Filter) Match(r *Resource) bool {
	if f == nil {
		return true
	}
	for _, c := range f.Conds {
		v := r.attr(c.Attr)
		hit := false
		for _, want := range c.Values {
			if v == want {
				hit = true
				break
			}
		}
		if hit == c.Not {
			return false
		}
	}
	return true
}

// maxConds bounds a filter.
const maxConds = 32

// ParseFilter reads a query string such as `project_id=abc and type="instance"`.
func ParseFilter(q string) (*Filter, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	f := &Filter{}
	for _, part := range splitAnd(q) {
		part = strings.TrimSpace(part)
		var c Cond
		var attr, val string
		switch {
		case strings.Contains(part, "!="):
			attr, val, _ = strings.Cut(part, "!=")
			c.Not = true
		case strings.Contains(part, "=="):
			attr, val, _ = strings.Cut(part, "==")
		case strings.Contains(part, "="):
			attr, val, _ = strings.Cut(part, "=")
		default:
			return nil, errdefs.Invalid("filter", "cannot read %q: only =, != and 'and' are supported", part)
		}
		c.Attr = strings.TrimSpace(attr)
		c.Values = []string{strings.Trim(strings.TrimSpace(val), `"'`)}
		if c.Attr == "" {
			return nil, errdefs.Invalid("filter", "missing attribute in %q", part)
		}
		f.Conds = append(f.Conds, c)
		if len(f.Conds) > maxConds {
			return nil, errdefs.Invalid("filter", "more than %d conditions", maxConds)
		}
	}
	return f, nil
}

func splitAnd(q string) []string {
	var out []string
	start := 0
	// Byte by byte: lowering the string first would move the offsets of
	// invalid UTF-8.
	for i := 0; i+5 <= len(q); i++ {
		if q[i] == ' ' && q[i+4] == ' ' && strings.EqualFold(q[i+1:i+4], "and") {
			out = append(out, q[start:i])
			start = i + 5
			i += 4
		}
	}
	return append(out, q[start:])
}

// ParseFilterJSON reads Gnocchi's JSON search form.
func ParseFilterJSON(raw json.RawMessage) (*Filter, error) {
	f := &Filter{}
	if err := f.addJSON(raw, 0); err != nil {
		return nil, err
	}
	if len(f.Conds) == 0 {
		return nil, nil
	}
	return f, nil
}

func (f *Filter) addJSON(raw json.RawMessage, depth int) error {
	if depth > 8 {
		return errdefs.Invalid("search", "nested too deep")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return errdefs.Invalid("search", "must be an object")
	}
	for op, arg := range m {
		switch strings.ToLower(op) {
		case "and", "∧":
			var subs []json.RawMessage
			if err := json.Unmarshal(arg, &subs); err != nil {
				return errdefs.Invalid("search", "and takes a list")
			}
			for _, sub := range subs {
				if err := f.addJSON(sub, depth+1); err != nil {
					return err
				}
			}
		case "=", "==", "eq", "!=", "ne", "≠", "in":
			var kv map[string]any
			if err := json.Unmarshal(arg, &kv); err != nil || len(kv) != 1 {
				return errdefs.Invalid("search", "%s takes one attribute", op)
			}
			for k, v := range kv {
				c := Cond{Attr: k, Not: op == "!=" || op == "ne" || op == "≠"}
				if vs, ok := v.([]any); ok && op == "in" {
					for _, x := range vs {
						c.Values = append(c.Values, scalar(x))
					}
				} else {
					c.Values = []string{scalar(v)}
				}
				f.Conds = append(f.Conds, c)
			}
		default:
			return errdefs.Invalid("search", "operator %q is not supported", op)
		}
		if len(f.Conds) > maxConds {
			return errdefs.Invalid("search", "more than %d conditions", maxConds)
		}
	}
	return nil
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}
