package orchestration

import (
	"maps"
	"strings"
)

// pluginsFor returns the resource types a stack with this environment
// and these files sees: the service's, plus the environment's
// resource_registry, which maps a type to another type (an alias) or to a
// template in the files map (a template resource, made as a nested
// stack).
func (s *Service) pluginsFor(env *Environment, files map[string]string) (map[string]Plugin, error) {
	if env == nil || len(env.ResourceRegistry) == 0 {
		return s.plugins, nil
	}
	out := maps.Clone(s.plugins)
	for typ, to := range env.ResourceRegistry {
		field := "environment.resource_registry." + typ
		if typ == "" || len(typ) > 255 || strings.ContainsAny(typ, "*") {
			return nil, invalid(field, "%q is not a resource type this registry can map", typ)
		}
		if pl, ok := s.plugins[to]; ok {
			out[typ] = pl
			continue
		}
		body, ok := files[to]
		if !ok {
			return nil, invalid(field, "%q maps to %q, which is neither a resource type nor a template in the files map", typ, to)
		}
		tp, err := s.templatePlugin(to, body, env.ParameterDefaults)
		if err != nil {
			return nil, err
		}
		out[typ] = tp
	}
	return out, nil
}

// openAttributes reports whether a plugin takes any attribute name (a
// template resource's are its template's outputs).
func openAttributes(pl Plugin) bool {
	o, ok := pl.(interface{ OpenAttributes() bool })
	return ok && o.OpenAttributes()
}
