package orchestration

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// plan is a validated template: its dependency graph.
type plan struct {
	t *Template
	// conds are the values of the template's conditions; gen is the
	// stack generation the plan is for.
	conds map[string]bool
	gen   int
	// plugins are the resource types the stack sees (its environment's
	// registry included).
	plugins map[string]Plugin
	// deps[r] are the resources r needs; requiredBy[r] those that need r.
	deps, requiredBy map[string][]string
}

// analyze validates a template against the plugins (types, property
// names, functions, references) and builds its dependency graph from
// depends_on and from get_resource and get_attr, refusing cycles.
func analyze(ctx context.Context, t *Template, params map[string]any, files map[string]string, plugins map[string]Plugin, lim Limits, chk Checker) (*plan, error) {
	lim = lim.withDefaults()
	t, conds, err := t.withConditions(params)
	if err != nil {
		return nil, err
	}
	p := &plan{t: t, conds: conds, plugins: plugins, deps: map[string][]string{}, requiredBy: map[string][]string{}}
	names := slices.Sorted(maps.Keys(t.Resources))
	for _, name := range names {
		rd := t.Resources[name]
		field := "resources." + name
		pl, ok := plugins[rd.Type]
		if !ok {
			return nil, invalid(field+".type", "the resource type %q of %q is unknown", rd.Type, name)
		}
		c := &checker{t: t, files: files, lim: lim, deps: map[string]bool{}, conds: conds, params: params}
		if err := c.check(field+".properties", anyMap(rd.Properties), 1); err != nil {
			return nil, err
		}
		if err := c.check(field+".metadata", anyMap(rd.Metadata), 1); err != nil {
			return nil, err
		}
		if _, err := checkProperties(ctx, field+".properties", pl.Schema(), rd.Properties, false, chk); err != nil {
			return nil, err
		}
		for _, d := range rd.DependsOn {
			if _, ok := t.Resources[d]; !ok {
				return nil, invalid(field+".depends_on", "%q depends on %q, which is not a resource of the template", name, d)
			}
			c.deps[d] = true
		}
		if c.deps[name] {
			return nil, invalid(field, "circular dependency: %s -> %s", name, name)
		}
		p.deps[name] = slices.Sorted(maps.Keys(c.deps))
		for _, d := range p.deps[name] {
			p.requiredBy[d] = append(p.requiredBy[d], name)
		}
	}
	implicitSubnetDeps(t, p)
	for _, name := range slices.Sorted(maps.Keys(t.Outputs)) {
		c := &checker{t: t, files: files, lim: lim, deps: map[string]bool{}, conds: conds, params: params}
		if err := c.check("outputs."+name, t.Outputs[name].Value, 1); err != nil {
			return nil, err
		}
	}
	if cyc := findCycle(names, p.deps); cyc != nil {
		return nil, invalid("resources", "circular dependency: %s", strings.Join(cyc, " -> "))
	}
	return p, nil
}

func anyMap(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// implicitSubnetDeps makes whatever uses a network of the template (a
// port, a server, a router interface) wait for the subnets of that
// network, as Heat does: an address needs a subnet to come from.
func implicitSubnetDeps(t *Template, p *plan) {
	subnetsOf := map[string][]string{}
	for name, rd := range t.Resources {
		if rd.Type != "OS::Neutron::Subnet" {
			continue
		}
		for _, d := range p.deps[name] {
			if t.Resources[d].Type == "OS::Neutron::Net" {
				subnetsOf[d] = append(subnetsOf[d], name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Resources)) {
		if t.Resources[name].Type == "OS::Neutron::Subnet" {
			continue
		}
		deps := p.deps[name]
		for _, d := range deps {
			for _, sub := range subnetsOf[d] {
				if sub != name && !slices.Contains(p.deps[name], sub) {
					p.deps[name] = append(p.deps[name], sub)
					p.requiredBy[sub] = append(p.requiredBy[sub], name)
				}
			}
		}
		slices.Sort(p.deps[name])
	}
}

// findCycle returns a cycle of the graph as its path (first == last), or
// nil.
func findCycle(names []string, deps map[string][]string) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps[n] {
			switch color[d] {
			case grey:
				i := slices.Index(stack, d)
				cycle = append(slices.Clone(stack[i:]), d)
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range names {
		if color[n] == white && visit(n) {
			return cycle
		}
	}
	return nil
}

// ValidateTemplate parses and validates a template with the given
// parameters and files, as POST /validate does, without creating anything.
func (s *Service) ValidateTemplate(ctx context.Context, opts ValidateOpts) (*Template, error) {
	if _, err := s.caller(ctx, "stacks:validate_template", ""); err != nil {
		return nil, err
	}
	t, err := ParseTemplate(opts.Template, s.limits)
	if err != nil {
		return nil, err
	}
	var params map[string]any
	if opts.Parameters != nil {
		if params, err = t.ResolveParameters(ctx, opts.Parameters, s.deps.Checker); err != nil {
			return nil, err
		}
	}
	plugins, err := s.pluginsFor(opts.Environment, opts.Files)
	if err != nil {
		return nil, err
	}
	if _, err := analyze(ctx, t, params, opts.Files, plugins, s.limits, s.deps.Checker); err != nil {
		return nil, err
	}
	return t, nil
}

// ValidateOpts is a template to validate.
type ValidateOpts struct {
	Template []byte
	Files    map[string]string
	// Parameters, if not nil, are checked against the template's
	// parameters (presence, types, constraints).
	Parameters map[string]any
	// Environment's resource_registry adds types.
	Environment *Environment
}

var _ = errdefs.ErrNotFound
