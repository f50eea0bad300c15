package orchestration

import (
	"maps"
	"slices"
)

// condFuncs are the condition functions: they may appear in the
// conditions section and in the first argument of if.
var condFuncs = []string{"equals", "not", "and", "or", "contains"}

// evalConditions evaluates every condition of the template's conditions
// section against the parameter values (nil: each parameter's default).
func (t *Template) evalConditions(params map[string]any) (map[string]bool, error) {
	out := map[string]bool{}
	if len(t.Conditions) == 0 {
		return out, nil
	}
	if params == nil {
		params = map[string]any{}
		for k, p := range t.Parameters {
			params[k] = p.Default
		}
	}
	c := &condEval{t: t, params: params, done: out, busy: map[string]bool{}}
	for _, name := range slices.Sorted(maps.Keys(t.Conditions)) {
		if _, err := c.named("conditions."+name, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type condEval struct {
	t      *Template
	params map[string]any
	done   map[string]bool
	busy   map[string]bool
}

func (c *condEval) named(field, name string) (bool, error) {
	if v, ok := c.done[name]; ok {
		return v, nil
	}
	def, ok := c.t.Conditions[name]
	if !ok {
		return false, invalid(field, "the condition %q is not defined", name)
	}
	if c.busy[name] {
		return false, invalid(field, "the condition %q refers to itself", name)
	}
	c.busy[name] = true
	v, err := c.eval("conditions."+name, def, 0)
	if err != nil {
		return false, err
	}
	c.done[name] = v
	return v, nil
}

// eval evaluates a condition: a boolean, the name of another condition, or
// one of the condition functions.
func (c *condEval) eval(field string, v any, depth int) (bool, error) {
	if depth > 32 {
		return false, invalid(field, "the condition is nested too deep")
	}
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		switch t {
		case "true", "True":
			return true, nil
		case "false", "False":
			return false, nil
		}
		return c.named(field, t)
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, invalid(field, "a condition must be a boolean, a condition name or one of %v", condFuncs)
	}
	for name, arg := range m {
		switch name {
		case "not":
			b, err := c.eval(field, arg, depth+1)
			return !b, err
		case "and", "or":
			l, ok := arg.([]any)
			if !ok || len(l) < 2 || len(l) > 10 {
				return false, invalid(field, "%s: the argument must be a list of 2 to 10 conditions", name)
			}
			res := name == "and"
			for _, x := range l {
				b, err := c.eval(field, x, depth+1)
				if err != nil {
					return false, err
				}
				if name == "and" {
					res = res && b
				} else {
					res = res || b
				}
			}
			return res, nil
		case "equals":
			l, ok := arg.([]any)
			if !ok || len(l) != 2 {
				return false, invalid(field, "equals: the argument must be a list of two values")
			}
			a, err := c.value(field, l[0], depth+1)
			if err != nil {
				return false, err
			}
			b, err := c.value(field, l[1], depth+1)
			if err != nil {
				return false, err
			}
			return textOf(a) == textOf(b), nil
		case "contains":
			l, ok := arg.([]any)
			if !ok || len(l) != 2 {
				return false, invalid(field, "contains: the argument must be [value, list]")
			}
			a, err := c.value(field, l[0], depth+1)
			if err != nil {
				return false, err
			}
			seq, err := c.value(field, l[1], depth+1)
			if err != nil {
				return false, err
			}
			sl, ok := seq.([]any)
			if !ok {
				return false, invalid(field, "contains: the second argument must be a list")
			}
			return slices.ContainsFunc(sl, func(x any) bool { return textOf(x) == textOf(a) }), nil
		default:
			return false, invalid(field, "%q is not a condition function (want one of %v)", name, condFuncs)
		}
	}
	return false, nil
}

// value resolves an argument of equals or contains: a literal or
// get_param (the only function a condition may use on its values).
func (c *condEval) value(field string, v any, depth int) (any, error) {
	if depth > 32 {
		return nil, invalid(field, "the condition is nested too deep")
	}
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 1 {
			if arg, ok := t["get_param"]; ok {
				path := []any{arg}
				if l, ok := arg.([]any); ok && len(l) > 0 {
					path = l
				}
				pn, _ := path[0].(string)
				pv, ok := c.params[pn]
				if !ok {
					return nil, invalid(field, "get_param: the parameter %q is not defined", pn)
				}
				return walkPath(pv, path[1:]), nil
			}
			for k := range t {
				if _, _, isFn := asFunc(t); isFn {
					return nil, invalid(field, "the function %q cannot be used in a condition", k)
				}
			}
		}
		out := map[string]any{}
		for k, x := range t {
			r, err := c.value(field, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			r, err := c.value(field, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// withConditions is the template as the parameters make it: resources
// and outputs whose condition is false are left out, depends_on on them
// dropped. It returns the conditions' values, which if uses.
func (t *Template) withConditions(params map[string]any) (*Template, map[string]bool, error) {
	conds, err := t.evalConditions(params)
	if err != nil {
		return nil, nil, err
	}
	hasCond := false
	for _, rd := range t.Resources {
		hasCond = hasCond || rd.Condition != nil
	}
	for _, o := range t.Outputs {
		hasCond = hasCond || o.Condition != nil
	}
	if !hasCond {
		return t, conds, nil
	}
	c := &condEval{t: t, params: params, done: conds, busy: map[string]bool{}}
	out := *t
	out.Resources = map[string]*ResourceDef{}
	for name, rd := range t.Resources {
		if rd.Condition != nil {
			ok, err := c.eval("resources."+name+".condition", rd.Condition, 0)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				continue
			}
		}
		out.Resources[name] = rd
	}
	for name, rd := range out.Resources {
		if slices.ContainsFunc(rd.DependsOn, func(d string) bool { return out.Resources[d] == nil && t.Resources[d] != nil }) {
			cp := *rd
			cp.DependsOn = slices.DeleteFunc(slices.Clone(rd.DependsOn), func(d string) bool { return out.Resources[d] == nil && t.Resources[d] != nil })
			out.Resources[name] = &cp
		}
	}
	out.Outputs = map[string]*OutputDef{}
	for name, o := range t.Outputs {
		if o.Condition != nil {
			ok, err := c.eval("outputs."+name+".condition", o.Condition, 0)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				cp := *o
				cp.Value = nil
				out.Outputs[name] = &cp
				continue
			}
		}
		out.Outputs[name] = o
	}
	return &out, conds, nil
}

// ifBranch picks the branch of if's argument [condition, then, else].
func ifBranch(field string, arg any, conds map[string]bool, t *Template, params map[string]any) (any, error) {
	l, ok := arg.([]any)
	if !ok || len(l) < 2 || len(l) > 3 {
		return nil, invalid(field, "if: the arguments must be [condition, value_if_true, value_if_false]")
	}
	c := &condEval{t: t, params: params, done: maps.Clone(conds), busy: map[string]bool{}}
	if c.done == nil {
		c.done = map[string]bool{}
	}
	b, err := c.eval(field, l[0], 0)
	if err != nil {
		return nil, err
	}
	if b {
		return l[1], nil
	}
	if len(l) == 3 {
		return l[2], nil
	}
	return nil, nil
}
