package orchestration

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Plugin implements one resource type (OS::Nova::Server ...). The engine
// calls Create once per resource and records the physical id it returns
// before anything else; Delete must succeed when the physical resource is
// already gone. Optional capabilities are the Waiter, Finder and
// Referencer interfaces.
type Plugin interface {
	// Schema describes the type's properties and attributes.
	Schema() *TypeSchema
	// Create makes the physical resource from r.Properties and returns its
	// id. It may set r.Data, which the engine stores with the resource.
	Create(ctx context.Context, r *Resource) (physicalID string, err error)
	// Delete removes the physical resource r.PhysicalID and returns once
	// it is gone.
	Delete(ctx context.Context, r *Resource) error
	// Attribute returns the attribute name of a created resource.
	Attribute(ctx context.Context, r *Resource, name string) (any, error)
}

// Waiter is a Plugin whose resources take time to become ready (servers,
// volumes): the engine polls Ready after Create until it is true or fails.
type Waiter interface {
	Ready(ctx context.Context, r *Resource) (bool, error)
}

// Finder is a Plugin that can find what an interrupted Create made, by the
// resource's deterministic r.PhysicalName (or its properties), so that a
// restarted engine adopts it instead of leaking it. It returns "" when
// there is nothing.
type Finder interface {
	Find(ctx context.Context, r *Resource) (string, error)
}

// Referencer is a Plugin whose get_resource value is not the physical id
// (a key pair's name, a random string's value).
type Referencer interface {
	RefID(r *Resource) string
}

// TypeSchema describes a resource type as GET /resource_types/{type}
// shows it.
type TypeSchema struct {
	Description string
	Properties  map[string]*PropSchema
	// Attributes are the attribute names with their descriptions; every
	// type also has "show".
	Attributes map[string]string
}

// Property types.
const (
	PropString  = "string"
	PropInteger = "integer"
	PropNumber  = "number"
	PropBoolean = "boolean"
	PropList    = "list"
	PropMap     = "map"
	PropAny     = "any"
)

// PropSchema describes one property.
type PropSchema struct {
	Type          string
	Description   string
	Required      bool
	Default       any
	UpdateAllowed bool
	Constraints   []Constraint
}

// Resource is one resource of a stack as a plugin sees it.
type Resource struct {
	// Name is the resource's name in the template, Type its type.
	Name, Type string
	// StackID and StackName name its stack.
	StackID, StackName string
	// PhysicalName is the deterministic name a plugin gives what it creates
	// (stack-resource-suffix), so that Find can recover it.
	PhysicalName string
	// PhysicalID is what Create returned.
	PhysicalID string
	// Properties are the resolved properties, defaults applied.
	Properties map[string]any
	// Data is the plugin's own state, stored with the resource.
	Data map[string]string
}

// Str returns a string property, or "".
func (r *Resource) Str(name string) string {
	switch v := r.Properties[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return textOf(v)
	}
}

// Int returns an integer property, or 0.
func (r *Resource) Int(name string) int {
	f, err := toNumber(r.Properties[name])
	if err != nil {
		return 0
	}
	return int(f)
}

// Bool returns a boolean property.
func (r *Resource) Bool(name string) bool {
	b, _ := r.Properties[name].(bool)
	return b
}

// List returns a list property.
func (r *Resource) List(name string) []any {
	l, _ := r.Properties[name].([]any)
	return l
}

// Map returns a map property.
func (r *Resource) Map(name string) map[string]any {
	m, _ := r.Properties[name].(map[string]any)
	return m
}

// StrMap returns a map property with every value as text.
func (r *Resource) StrMap(name string) map[string]string {
	m := r.Map(name)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = textOf(v)
	}
	return out
}

// checkProperties validates the names of given properties statically and
// the types and constraints of those that hold no function, or, with
// resolved set, of all of them; it applies defaults into the result.
func checkProperties(ctx context.Context, field string, sch *TypeSchema, props map[string]any, resolved bool, chk Checker) (map[string]any, error) {
	out := make(map[string]any, len(sch.Properties))
	for k := range props {
		if _, ok := sch.Properties[k]; !ok {
			return nil, invalid(field+"."+k, "unknown property %q", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sch.Properties)) {
		ps := sch.Properties[k]
		v, ok := props[k]
		if !ok || v == nil {
			if ps.Required {
				return nil, invalid(field+"."+k, "the property %q is required", k)
			}
			if ps.Default != nil {
				out[k] = ps.Default
			}
			continue
		}
		if !resolved && hasFunc(v) {
			out[k] = v
			continue
		}
		cv, err := convertProp(ps.Type, v)
		if err != nil {
			return nil, invalid(field+"."+k, "property %q: %s", k, err)
		}
		// Custom constraints need the cloud: checked when there is a
		// Checker (create, validate), not when a restarted engine reloads.
		if resolved || chk != nil || !hasCustom(ps.Constraints) {
			if err := checkConstraints(ctx, field+"."+k, k, ps.Constraints, cv, chk); err != nil {
				return nil, err
			}
		}
		out[k] = cv
	}
	return out, nil
}

func hasCustom(cs []Constraint) bool {
	return slices.ContainsFunc(cs, func(c Constraint) bool { return c.Custom != "" })
}

func hasFunc(v any) bool {
	if _, _, ok := asFunc(v); ok {
		return true
	}
	switch t := v.(type) {
	case map[string]any:
		for _, x := range t {
			if hasFunc(x) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(t, hasFunc)
	}
	return false
}

func convertProp(typ string, v any) (any, error) {
	switch typ {
	case PropString:
		switch t := v.(type) {
		case string:
			return t, nil
		case int, float64, bool:
			return fmt.Sprint(t), nil
		}
		return nil, fmt.Errorf("value must be a string")
	case PropInteger:
		f, err := toNumber(v)
		if err != nil || f != float64(int(f)) {
			return nil, fmt.Errorf("value %s is not an integer", short(v))
		}
		return int(f), nil
	case PropNumber:
		f, err := toNumber(v)
		if err != nil {
			return nil, fmt.Errorf("value %s is not a number", short(v))
		}
		return f, nil
	case PropBoolean:
		switch t := v.(type) {
		case bool:
			return t, nil
		case string:
			switch strings.ToLower(t) {
			case "true", "yes", "on", "1":
				return true, nil
			case "false", "no", "off", "0":
				return false, nil
			}
		}
		return nil, fmt.Errorf("value %s is not a boolean", short(v))
	case PropList:
		switch t := v.(type) {
		case []any:
			return t, nil
		case string:
			var out []any
			for s := range strings.SplitSeq(t, ",") {
				out = append(out, strings.TrimSpace(s))
			}
			return out, nil
		}
		return nil, fmt.Errorf("value must be a list")
	case PropMap:
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
		return nil, fmt.Errorf("value must be a map")
	}
	return v, nil
}

// schemaJSON is a type's schema as Heat's resource_types API shows it.
func schemaJSON(typ string, sch *TypeSchema) map[string]any {
	props := map[string]any{}
	for k, p := range sch.Properties {
		pm := map[string]any{"type": p.Type, "required": p.Required, "update_allowed": p.UpdateAllowed,
			"immutable": false, "description": p.Description}
		if p.Default != nil {
			pm["default"] = p.Default
		}
		var cs []any
		for _, c := range p.Constraints {
			cs = append(cs, constraintJSON(c))
		}
		if cs != nil {
			pm["constraints"] = cs
		}
		props[k] = pm
	}
	attrs := map[string]any{"show": map[string]any{"description": "Detailed information about resource.", "type": "map"}}
	for k, d := range sch.Attributes {
		attrs[k] = map[string]any{"description": d}
	}
	return map[string]any{"resource_type": typ, "properties": props, "attributes": attrs,
		"support_status": map[string]any{"status": "SUPPORTED", "version": nil, "message": nil, "previous_status": nil},
		"description":    sch.Description}
}

func constraintJSON(c Constraint) map[string]any {
	out := map[string]any{}
	if c.Description != "" {
		out["description"] = c.Description
	}
	switch {
	case c.IsLength || c.IsRange:
		b := map[string]any{}
		if c.Min != nil {
			b["min"] = *c.Min
		}
		if c.Max != nil {
			b["max"] = *c.Max
		}
		if c.IsLength {
			out["length"] = b
		} else {
			out["range"] = b
		}
	case c.AllowedValues != nil:
		out["allowed_values"] = c.AllowedValues
	case c.AllowedPattern != "":
		out["allowed_pattern"] = c.AllowedPattern
	case c.Custom != "":
		out["custom_constraint"] = c.Custom
	}
	return out
}
