package orchestration

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// funcSince is the first template version of each intrinsic function
// implemented here.
var funcSince = map[string]string{
	"get_param": "2013-05-23", "get_resource": "2013-05-23", "get_attr": "2013-05-23",
	"get_file": "2013-05-23", "str_replace": "2013-05-23", "list_join": "2013-05-23",
	"digest": "2015-04-30", "repeat": "2015-04-30", "str_split": "2015-10-15",
	"map_merge": "2016-04-08", "if": "2016-10-14",
	"Fn::Select": "2013-05-23", "Fn::Base64": "2013-05-23", "Fn::FindInMap": "2013-05-23",
}

// notYet are Heat functions that this package does not implement yet:
// naming one is an Unsupported error rather than "unknown function".
var notYet = []string{"resource_facade", "yaql", "map_replace",
	"filter", "make_url", "list_concat", "list_concat_unique", "str_replace_strict",
	"str_replace_vstrict", "get_resource_facade"}

// asFunc reports whether v is a function call: a one-key map whose key is
// a function name, or looks like one (get_*, str_*, list_*, map_*, Fn::*).
func asFunc(v any) (name string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if _, known := funcSince[k]; known || slices.Contains(notYet, k) || strings.HasPrefix(k, "Fn::") || k == "Ref" {
			return k, a, true
		}
		for _, p := range []string{"get_", "str_", "list_", "map_"} {
			if strings.HasPrefix(k, p) {
				return k, a, true
			}
		}
	}
	return "", nil, false
}

// checker validates a template's functions statically and collects the
// resources each value refers to.
type checker struct {
	t     *Template
	files map[string]string
	lim   Limits
	deps  map[string]bool
	// conds, when set, are the conditions' values: if is checked on the
	// branch it takes only. params are the parameter values.
	conds  map[string]bool
	params map[string]any
}

func (c *checker) check(field string, v any, depth int) error {
	if depth > c.lim.MaxDepth {
		return invalid(field, "functions and values nested more than %d levels deep", c.lim.MaxDepth)
	}
	if name, arg, ok := asFunc(v); ok {
		if err := c.checkFunc(field, name, arg); err != nil {
			return err
		}
		if name == "if" {
			l, _ := arg.([]any)
			if c.conds != nil {
				b, err := ifBranch(field, arg, c.conds, c.t, c.params)
				if err != nil {
					return err
				}
				return c.check(field, b, depth+1)
			}
			return c.check(field, anyList(l[1:]), depth+1)
		}
		return c.check(field, arg, depth+1)
	}
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if err := c.check(field+"."+k, t[k], depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := c.check(field+"["+strconv.Itoa(i)+"]", e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) checkFunc(field, name string, arg any) error {
	since, ok := funcSince[name]
	if !ok {
		if slices.Contains(notYet, name) {
			return errdefs.Wrap(errdefs.ErrUnsupported, invalid(field, "the function %q is not supported yet", name))
		}
		return invalid(field, "unknown function %q", name)
	}
	if c.t.Date < since {
		return invalid(field, "the function %q is not available in template version %s (it needs %s or later)", name, c.t.Version, since)
	}
	switch name {
	case "get_param":
		p := arg
		if l, ok := arg.([]any); ok && len(l) > 0 {
			p = l[0]
		}
		if s, ok := p.(string); ok {
			if _, ok := c.t.Parameters[s]; !ok && !strings.HasPrefix(s, "OS::") {
				return invalid(field, "get_param: the parameter %q is not defined", s)
			}
		}
	case "get_resource":
		s, ok := arg.(string)
		if !ok {
			if _, _, isFn := asFunc(arg); isFn {
				return invalid(field, "get_resource: the argument must be a resource name")
			}
			return invalid(field, "get_resource: the argument must be a resource name")
		}
		if _, ok := c.t.Resources[s]; !ok {
			return invalid(field, "get_resource: the resource %q is not defined", s)
		}
		c.deps[s] = true
	case "get_attr":
		l, ok := arg.([]any)
		if !ok || len(l) < 2 {
			return invalid(field, "get_attr: the arguments must be [resource, attribute, path...]")
		}
		s, ok := l[0].(string)
		if !ok {
			return invalid(field, "get_attr: the first argument must be a resource name")
		}
		if _, ok := c.t.Resources[s]; !ok {
			return invalid(field, "get_attr: the resource %q is not defined", s)
		}
		c.deps[s] = true
	case "get_file":
		s, ok := arg.(string)
		if !ok {
			return invalid(field, "get_file: the argument must be a file name")
		}
		if _, ok := c.files[s]; !ok {
			return invalid(field, "get_file: the file %q is not in the files map", s)
		}
	case "digest":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return invalid(field, "digest: the arguments must be [algorithm, value]")
		}
		if s, ok := l[0].(string); ok && newHash(s) == nil {
			return invalid(field, "digest: unknown algorithm %q", s)
		}
	case "str_replace":
		m, ok := arg.(map[string]any)
		if !ok || m["template"] == nil || m["params"] == nil {
			return invalid(field, "str_replace: the argument must be a map with template and params")
		}
	case "if":
		l, ok := arg.([]any)
		if !ok || len(l) < 2 || len(l) > 3 {
			return invalid(field, "if: the arguments must be [condition, value_if_true, value_if_false]")
		}
		if s, ok := l[0].(string); ok && c.t.Conditions[s] == nil && s != "true" && s != "false" {
			return invalid(field, "if: the condition %q is not defined", s)
		}
	case "repeat":
		m, ok := arg.(map[string]any)
		if !ok || m["for_each"] == nil || m["template"] == nil {
			return invalid(field, "repeat: the argument must be a map with for_each and template")
		}
	}
	return nil
}

func anyList(l []any) any { return l }

func newHash(alg string) hash.Hash {
	switch alg {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	case "sha224":
		return sha256.New224()
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// evaluator resolves functions against a stack.
type evaluator struct {
	t         *Template
	params    map[string]any
	files     map[string]string
	lim       Limits
	stackName string
	stackID   string
	projectID string
	// conds are the conditions' values, for if.
	conds map[string]bool
	// ref answers get_resource; attr answers get_attr.
	ref  func(name string) (any, error)
	attr func(name, attr string) (any, error)
}

func (e *evaluator) resolve(field string, v any, depth int) (any, error) {
	if depth > e.lim.MaxDepth {
		return nil, invalid(field, "functions and values nested more than %d levels deep", e.lim.MaxDepth)
	}
	if name, arg, ok := asFunc(v); ok {
		return e.call(field, name, arg, depth)
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			r, err := e.resolve(field+"."+k, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			r, err := e.resolve(field, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

func (e *evaluator) call(field, name string, rawArg any, depth int) (any, error) {
	if _, ok := funcSince[name]; !ok || e.t.Date < funcSince[name] {
		c := &checker{t: e.t, files: e.files, lim: e.lim, deps: map[string]bool{}}
		if err := c.checkFunc(field, name, rawArg); err != nil {
			return nil, err
		}
	}
	if name == "if" {
		b, err := ifBranch(field, rawArg, e.conds, e.t, e.params)
		if err != nil {
			return nil, err
		}
		return e.resolve(field, b, depth+1)
	}
	var arg any
	var err error
	if name != "repeat" {
		if arg, err = e.resolve(field, rawArg, depth+1); err != nil {
			return nil, err
		}
	}
	fail := func(format string, args ...any) (any, error) {
		return nil, invalid(field, name+": "+format, args...)
	}
	switch name {
	case "get_param":
		path := []any{arg}
		if l, ok := arg.([]any); ok {
			path = l
		}
		if len(path) == 0 {
			return fail("no parameter named")
		}
		pn, ok := path[0].(string)
		if !ok {
			return fail("the parameter name must be a string")
		}
		var v any
		switch pn {
		case "OS::stack_name":
			v = e.stackName
		case "OS::stack_id":
			v = e.stackID
		case "OS::project_id":
			v = e.projectID
		default:
			if v, ok = e.params[pn]; !ok {
				return fail("the parameter %q is not defined", pn)
			}
		}
		return walkPath(v, path[1:]), nil
	case "get_resource":
		s, ok := arg.(string)
		if !ok {
			return fail("the argument must be a resource name")
		}
		if _, ok := e.t.Resources[s]; !ok {
			return fail("the resource %q is not defined", s)
		}
		return e.ref(s)
	case "get_attr":
		l, ok := arg.([]any)
		if !ok || len(l) < 2 {
			return fail("the arguments must be [resource, attribute, path...]")
		}
		res, ok1 := l[0].(string)
		at, ok2 := l[1].(string)
		if !ok1 || !ok2 {
			return fail("the resource and attribute must be strings")
		}
		if _, ok := e.t.Resources[res]; !ok {
			return fail("the resource %q is not defined", res)
		}
		v, err := e.attr(res, at)
		if err != nil {
			return nil, err
		}
		return walkPath(v, l[2:]), nil
	case "get_file":
		s, _ := arg.(string)
		f, ok := e.files[s]
		if !ok {
			return fail("the file %q is not in the files map", s)
		}
		return f, nil
	case "str_replace":
		m, ok := arg.(map[string]any)
		if !ok {
			return fail("the argument must be a map with template and params")
		}
		tmpl, ok := m["template"].(string)
		if !ok {
			return fail("template must be a string")
		}
		ps, ok := m["params"].(map[string]any)
		if !ok {
			return fail("params must be a map")
		}
		keys := slices.Collect(maps.Keys(ps))
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return strings.Compare(a, b)
		})
		var pairs []string
		for _, k := range keys {
			if k == "" {
				continue
			}
			pairs = append(pairs, k, textOf(ps[k]))
		}
		out := strings.NewReplacer(pairs...).Replace(tmpl)
		if len(out) > e.lim.MaxValueBytes {
			return fail("the result is larger than %d bytes", e.lim.MaxValueBytes)
		}
		return out, nil
	case "str_split":
		l, ok := arg.([]any)
		if !ok || len(l) < 2 || len(l) > 3 {
			return fail("the arguments must be [delimiter, string] or [delimiter, string, index]")
		}
		d, ok1 := l[0].(string)
		s, ok2 := l[1].(string)
		if !ok1 || !ok2 {
			return fail("the delimiter and string must be strings")
		}
		parts := strings.Split(s, d)
		if d == "" {
			return fail("the delimiter must not be empty")
		}
		if len(l) == 2 {
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return out, nil
		}
		i, err := toNumber(l[2])
		if err != nil || i < 0 || int(i) >= len(parts) {
			return fail("index %v is out of range", l[2])
		}
		return parts[int(i)], nil
	case "list_join":
		l, ok := arg.([]any)
		if !ok || len(l) < 2 {
			return fail("the arguments must be [delimiter, list, ...]")
		}
		d, ok := l[0].(string)
		if !ok {
			return fail("the delimiter must be a string")
		}
		var strs []string
		size := 0
		for _, x := range l[1:] {
			xl, ok := x.([]any)
			if !ok {
				return fail("each argument after the delimiter must be a list")
			}
			for _, s := range xl {
				t := textOf(s)
				size += len(t) + len(d)
				if size > e.lim.MaxValueBytes {
					return fail("the result is larger than %d bytes", e.lim.MaxValueBytes)
				}
				strs = append(strs, t)
			}
		}
		return strings.Join(strs, d), nil
	case "map_merge":
		l, ok := arg.([]any)
		if !ok {
			return fail("the argument must be a list of maps")
		}
		out := map[string]any{}
		for _, x := range l {
			m, ok := x.(map[string]any)
			if !ok && x != nil {
				return fail("each item must be a map")
			}
			maps.Copy(out, m)
		}
		return out, nil
	case "digest":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return fail("the arguments must be [algorithm, value]")
		}
		alg, _ := l[0].(string)
		h := newHash(alg)
		if h == nil {
			return fail("unknown algorithm %q", alg)
		}
		s, ok := l[1].(string)
		if !ok {
			return fail("the value must be a string")
		}
		h.Write([]byte(s))
		return hex.EncodeToString(h.Sum(nil)), nil
	case "repeat":
		return e.repeat(field, rawArg, depth)
	case "Fn::Select", "Fn::Base64", "Fn::FindInMap":
		return e.cfnCall(field, name, arg)
	}
	return fail("is not implemented")
}

func (e *evaluator) repeat(field string, rawArg any, depth int) (any, error) {
	m, ok := rawArg.(map[string]any)
	if !ok {
		return nil, invalid(field, "repeat: the argument must be a map with for_each and template")
	}
	fe, err := e.resolve(field, m["for_each"], depth+1)
	if err != nil {
		return nil, err
	}
	forEach, ok := fe.(map[string]any)
	if !ok || len(forEach) == 0 {
		return nil, invalid(field, "repeat: for_each must be a map of variables to lists")
	}
	tmpl, err := e.resolve(field, m["template"], depth+1)
	if err != nil {
		return nil, err
	}
	perm := true
	if p, ok := m["permutations"].(bool); ok {
		perm = p
	}
	vars := slices.Sorted(maps.Keys(forEach))
	lists := make([][]any, len(vars))
	total := 1
	for i, k := range vars {
		l, ok := forEach[k].([]any)
		if !ok {
			return nil, invalid(field, "repeat: for_each.%s must be a list", k)
		}
		lists[i] = l
		if perm {
			total *= len(l)
		} else if i > 0 && len(l) != len(lists[0]) {
			return nil, invalid(field, "repeat: without permutations every list must have the same length")
		} else {
			total = len(l)
		}
		if total > 10000 {
			return nil, invalid(field, "repeat: more than 10000 items")
		}
	}
	var combos [][]any
	if perm {
		combos = [][]any{{}}
		for _, l := range lists {
			var next [][]any
			for _, c := range combos {
				for _, x := range l {
					next = append(next, append(slices.Clone(c), x))
				}
			}
			combos = next
		}
	} else {
		for j := range total {
			c := make([]any, len(lists))
			for i := range lists {
				c[i] = lists[i][j]
			}
			combos = append(combos, c)
		}
	}
	out := make([]any, 0, len(combos))
	size := 0
	for _, c := range combos {
		var pairs []string
		for i, k := range vars {
			pairs = append(pairs, k, textOf(c[i]))
		}
		r := strings.NewReplacer(pairs...)
		v := substitute(tmpl, r)
		size += len(textOf(v))
		if size > e.lim.MaxValueBytes {
			return nil, invalid(field, "repeat: the result is larger than %d bytes", e.lim.MaxValueBytes)
		}
		out = append(out, v)
	}
	return out, nil
}

func substitute(v any, r *strings.Replacer) any {
	switch t := v.(type) {
	case string:
		return r.Replace(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[r.Replace(k)] = substitute(x, r)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = substitute(x, r)
		}
		return out
	}
	return v
}

// textOf is a value as str_replace and list_join insert it: strings as
// they are, numbers and booleans as text, maps and lists as JSON.
func textOf(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case int, float64, bool:
		return fmt.Sprint(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// walkPath follows get_attr's and get_param's path of keys and indexes;
// a path that leads nowhere gives nil, as Heat does.
func walkPath(v any, path []any) any {
	for _, p := range path {
		switch t := v.(type) {
		case map[string]any:
			v = t[textOf(p)]
		case []any:
			i, err := toNumber(p)
			if err != nil || i < 0 || int(i) >= len(t) {
				return nil
			}
			v = t[int(i)]
		default:
			return nil
		}
	}
	return v
}
