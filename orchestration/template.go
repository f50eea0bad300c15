package orchestration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stratuskit/stratus/errdefs"
)

// Versions maps every heat_template_version this package accepts, dates and
// release names alike, to its date.
var Versions = map[string]string{
	"2013-05-23": "2013-05-23", "2014-10-16": "2014-10-16", "2015-04-30": "2015-04-30",
	"2015-10-15": "2015-10-15", "2016-04-08": "2016-04-08", "2016-10-14": "2016-10-14",
	"2017-02-24": "2017-02-24", "2017-09-01": "2017-09-01", "2018-03-02": "2018-03-02",
	"2018-08-31": "2018-08-31", "2021-04-16": "2021-04-16",
	"newton": "2016-10-14", "ocata": "2017-02-24", "pike": "2017-09-01", "queens": "2018-03-02",
	"rocky": "2018-08-31", "wallaby": "2021-04-16",
}

// Limits bound what a hostile template can make the engine do. The zero
// value of a field means its default.
type Limits struct {
	// MaxTemplateBytes is the largest template accepted (default 512 KiB,
	// Heat's max_template_size).
	MaxTemplateBytes int
	// MaxResources is the most resources a stack may have (default 1000,
	// Heat's max_resources_per_stack).
	MaxResources int
	// MaxDepth is the deepest nesting of maps, lists and functions in a
	// template (default 64).
	MaxDepth int
	// MaxValueBytes bounds any string or list a function produces
	// (default 1 MiB).
	MaxValueBytes int
	// MaxNestingDepth is how deep stacks may nest (default 5, Heat's
	// max_nested_stack_depth).
	MaxNestingDepth int
	// MaxGroupSize is the most members a ResourceGroup or
	// AutoScalingGroup may have (default 1000).
	MaxGroupSize int
	// MaxStacksPerProject bounds a project's live stacks, nested ones
	// included, so that groups of nested stacks cannot fan out without
	// end (default 1000).
	MaxStacksPerProject int
}

func (l Limits) withDefaults() Limits {
	if l.MaxTemplateBytes <= 0 {
		l.MaxTemplateBytes = 512 << 10
	}
	if l.MaxResources <= 0 {
		l.MaxResources = 1000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = 1 << 20
	}
	if l.MaxNestingDepth <= 0 {
		l.MaxNestingDepth = 5
	}
	if l.MaxGroupSize <= 0 {
		l.MaxGroupSize = 1000
	}
	if l.MaxStacksPerProject <= 0 {
		l.MaxStacksPerProject = 1000
	}
	return l
}

// Template is a parsed HOT template.
type Template struct {
	// Version is the heat_template_version as written; Date is its date.
	Version, Date string
	// Description is the template's description.
	Description string
	// Parameters are the template's parameters; ParamOrder lists their
	// names in the template's order.
	Parameters map[string]*Parameter
	ParamOrder []string
	// ParameterGroups are the template's parameter_groups.
	ParameterGroups []ParameterGroup
	// Resources are the template's resources by name.
	Resources map[string]*ResourceDef
	// Outputs are the template's outputs by name.
	Outputs map[string]*OutputDef
	// Conditions are the conditions section's expressions by name.
	Conditions map[string]any
	// Mappings are a CloudFormation template's Mappings (Fn::FindInMap).
	Mappings map[string]any
	// Raw is the whole document, as template show returns it.
	Raw map[string]any
}

// Parameter is one template parameter.
type Parameter struct {
	// Name is the parameter's name; Type one of the Type constants.
	Name, Type string
	// Label and Description are shown by validate.
	Label, Description string
	// Default is the converted default, when HasDefault.
	Default    any
	HasDefault bool
	// Hidden parameters are shown as ******; Immutable is kept for
	// updates (not used yet).
	Hidden, Immutable bool
	// Constraints are checked on every value, the default included.
	Constraints []Constraint
}

// ParameterGroup is one entry of parameter_groups.
type ParameterGroup struct {
	Label       string   `json:"label,omitempty"`
	Description string   `json:"description,omitempty"`
	Parameters  []string `json:"parameters"`
}

// Constraint is one parameter or property constraint.
type Constraint struct {
	// Description replaces the generated message when the value fails.
	Description string
	// Min and Max bound a length (IsLength) or a number (IsRange); nil
	// means unbounded.
	Min, Max *float64
	IsLength bool
	IsRange  bool
	// AllowedValues, if not nil, lists the values allowed.
	AllowedValues []any
	// AllowedPattern is a regular expression the whole value must match.
	AllowedPattern string
	pattern        *regexp.Regexp
	// Custom names a custom constraint such as nova.flavor.
	Custom string
}

// ResourceDef is one resource of a template.
type ResourceDef struct {
	// Name is the resource's name in the template; Type its type.
	Name, Type string
	// Properties and Metadata are as written (functions unresolved).
	Properties map[string]any
	Metadata   map[string]any
	// DependsOn lists the resources named by depends_on.
	DependsOn []string
	// DeletionPolicy is PolicyDelete or PolicyRetain.
	DeletionPolicy string
	// Condition, if not nil, is the condition (a name or an expression)
	// without which the resource is left out.
	Condition any
	// UpdatePolicy is the update_policy section, as written.
	UpdatePolicy map[string]any
}

// OutputDef is one template output.
type OutputDef struct {
	// Name is the output's key; Description its description.
	Name, Description string
	// Value is the output's value as written (functions unresolved).
	Value any
	// Condition, if not nil, is the condition without which the output's
	// value is null.
	Condition any
}

// Deletion policies.
const (
	PolicyDelete = "Delete"
	PolicyRetain = "Retain"
)

func invalid(field, format string, args ...any) error {
	return errdefs.Invalid(field, format, args...)
}

// ParseTemplate parses a HOT template in YAML or JSON and checks its
// structure (sections, parameters, resource and output shapes, depth and
// size). References, functions and types are checked by Validate.
func ParseTemplate(data []byte, lim Limits) (*Template, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxTemplateBytes {
		return nil, invalid("template", "template is %d bytes, larger than the limit of %d", len(data), lim.MaxTemplateBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid("template", "the template is empty")
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, invalid("template", "not valid YAML or JSON: %s", trimErr(err))
	}
	doc, err := normalize(doc, 0, lim.MaxDepth)
	if err != nil {
		return nil, err
	}
	return FromDocument(doc, lim)
}

func trimErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// normalize turns YAML's decoded values into JSON's (string keys only) and
// bounds the depth.
func normalize(v any, depth, maxDepth int) (any, error) {
	if depth > maxDepth {
		return nil, invalid("template", "nested more than %d levels deep", maxDepth)
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			n, err := normalize(e, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			n, err := normalize(e, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			m[ks] = n
		}
		return m, nil
	case []any:
		for i, e := range t {
			n, err := normalize(e, depth+1, maxDepth)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	case int:
		return t, nil
	case uint64:
		return float64(t), nil
	case int64:
		return int(t), nil
	case float64, string, bool, nil:
		return t, nil
	case time.Time:
		// YAML reads an unquoted 2013-05-23 as a timestamp.
		if t.Equal(t.Truncate(24 * time.Hour)) {
			return t.Format(time.DateOnly), nil
		}
		return t.Format(time.RFC3339), nil
	default:
		// Timestamps and the like: keep their text.
		return fmt.Sprint(t), nil
	}
}

var topSections = []string{"heat_template_version", "description", "parameter_groups", "parameters", "resources", "outputs", "conditions"}

// FromDocument builds a Template from a decoded JSON document.
func FromDocument(doc any, lim Limits) (*Template, error) {
	lim = lim.withDefaults()
	raw, ok := doc.(map[string]any)
	if !ok {
		return nil, invalid("template", "the template must be a map")
	}
	orig := raw
	var mappings map[string]any
	if _, ok := raw["AWSTemplateFormatVersion"]; ok {
		hot, err := fromCFN(raw)
		if err != nil {
			return nil, err
		}
		mappings, _ = hot["mappings"].(map[string]any)
		delete(hot, "mappings")
		raw = hot
	}
	ver, ok := raw["heat_template_version"].(string)
	if !ok {
		if v, isDate := raw["heat_template_version"]; isDate && v != nil {
			ver = fmt.Sprint(v)
		} else {
			return nil, invalid("heat_template_version", "the template has no heat_template_version")
		}
	}
	date, ok := Versions[ver]
	if !ok {
		return nil, invalid("heat_template_version", "%q is not a known template version", ver)
	}
	for k := range raw {
		if !slices.Contains(topSections, k) {
			return nil, invalid(k, "%q is not a valid template section", k)
		}
	}
	t := &Template{Version: ver, Date: date, Raw: orig, Mappings: mappings, Parameters: map[string]*Parameter{},
		Resources: map[string]*ResourceDef{}, Outputs: map[string]*OutputDef{}}
	conds, err := section(raw, "conditions")
	if err != nil {
		return nil, err
	}
	if len(conds) > 0 && date < "2016-10-14" {
		return nil, invalid("conditions", "conditions need heat_template_version 2016-10-14 or later")
	}
	t.Conditions = conds
	if d, ok := raw["description"]; ok && d != nil {
		if t.Description, ok = d.(string); !ok {
			return nil, invalid("description", "must be a string")
		}
	}
	if err := t.parseParameters(raw["parameters"]); err != nil {
		return nil, err
	}
	if err := t.parseGroups(raw["parameter_groups"]); err != nil {
		return nil, err
	}
	res, err := section(raw, "resources")
	if err != nil {
		return nil, err
	}
	if len(res) > lim.MaxResources {
		return nil, invalid("resources", "the template has %d resources, more than the limit of %d per stack", len(res), lim.MaxResources)
	}
	for name, v := range res {
		rd, err := parseResource(name, v)
		if err != nil {
			return nil, err
		}
		t.Resources[name] = rd
	}
	outs, err := section(raw, "outputs")
	if err != nil {
		return nil, err
	}
	for name, v := range outs {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("outputs."+name, "each output must be a map")
		}
		o := &OutputDef{Name: name, Value: m["value"]}
		o.Condition = m["condition"]
		for k := range m {
			if k != "value" && k != "description" && k != "condition" {
				return nil, invalid("outputs."+name+"."+k, "%q is not a valid output key", k)
			}
		}
		if _, ok := m["value"]; !ok {
			return nil, invalid("outputs."+name, "output %q has no value", name)
		}
		o.Description, _ = m["description"].(string)
		t.Outputs[name] = o
	}
	return t, nil
}

func section(raw map[string]any, name string) (map[string]any, error) {
	v, ok := raw[name]
	if !ok || v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(name, "the %s section must be a map", name)
	}
	return m, nil
}

var resourceKeys = []string{"type", "properties", "metadata", "depends_on", "deletion_policy", "update_policy", "condition", "external_id"}

var namePattern = regexp.MustCompile(`^[^/]{1,255}$`)

func parseResource(name string, v any) (*ResourceDef, error) {
	field := "resources." + name
	if !namePattern.MatchString(name) {
		return nil, invalid("resources", "resource name %q must be 1-255 characters without '/'", name)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(field, "resource %q must be a map", name)
	}
	for k := range m {
		if !slices.Contains(resourceKeys, k) {
			return nil, invalid(field+"."+k, "%q is not a valid resource key", k)
		}
	}
	if v, ok := m["external_id"]; ok && v != nil {
		return nil, errdefs.Wrap(errdefs.ErrUnsupported, invalid(field+".external_id", "external_id is not supported yet"))
	}
	rd := &ResourceDef{Name: name, DeletionPolicy: PolicyDelete, Condition: m["condition"]}
	if up, ok := m["update_policy"]; ok && up != nil {
		if rd.UpdatePolicy, ok = up.(map[string]any); !ok {
			return nil, invalid(field+".update_policy", "update_policy of %q must be a map", name)
		}
	}
	if rd.Type, ok = m["type"].(string); !ok || rd.Type == "" {
		return nil, invalid(field+".type", "resource %q has no type", name)
	}
	if p, ok := m["properties"]; ok && p != nil {
		if rd.Properties, ok = p.(map[string]any); !ok {
			return nil, invalid(field+".properties", "properties of %q must be a map", name)
		}
	}
	if p, ok := m["metadata"]; ok && p != nil {
		if rd.Metadata, ok = p.(map[string]any); !ok {
			return nil, invalid(field+".metadata", "metadata of %q must be a map", name)
		}
	}
	switch d := m["depends_on"].(type) {
	case nil:
	case string:
		rd.DependsOn = []string{d}
	case []any:
		for _, e := range d {
			s, ok := e.(string)
			if !ok {
				return nil, invalid(field+".depends_on", "depends_on of %q must list resource names", name)
			}
			rd.DependsOn = append(rd.DependsOn, s)
		}
	default:
		return nil, invalid(field+".depends_on", "depends_on of %q must be a name or a list of names", name)
	}
	if p, ok := m["deletion_policy"]; ok && p != nil {
		s, _ := p.(string)
		switch strings.ToLower(s) {
		case "delete":
			rd.DeletionPolicy = PolicyDelete
		case "retain":
			rd.DeletionPolicy = PolicyRetain
		default:
			return nil, invalid(field+".deletion_policy", "deletion_policy %q of %q: want Delete or Retain", s, name)
		}
	}
	return rd, nil
}

// Parameter types.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeJSON    = "json"
	TypeList    = "comma_delimited_list"
	TypeBoolean = "boolean"
)

var paramKeys = []string{"type", "label", "description", "default", "hidden", "constraints", "immutable", "tags"}

func (t *Template) parseParameters(v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return invalid("parameters", "the parameters section must be a map")
	}
	for name, pv := range m {
		field := "parameters." + name
		pm, ok := pv.(map[string]any)
		if !ok {
			return invalid(field, "parameter %q must be a map", name)
		}
		for k := range pm {
			if !slices.Contains(paramKeys, k) {
				return invalid(field+"."+k, "%q is not a valid parameter key", k)
			}
		}
		p := &Parameter{Name: name}
		p.Type, _ = pm["type"].(string)
		switch p.Type {
		case TypeString, TypeNumber, TypeJSON, TypeList, TypeBoolean:
		case "":
			return invalid(field+".type", "parameter %q has no type", name)
		default:
			return invalid(field+".type", "parameter %q has unknown type %q", name, p.Type)
		}
		p.Label, _ = pm["label"].(string)
		p.Description, _ = pm["description"].(string)
		p.Hidden, _ = pm["hidden"].(bool)
		p.Immutable, _ = pm["immutable"].(bool)
		cs, err := parseConstraints(field+".constraints", pm["constraints"])
		if err != nil {
			return err
		}
		p.Constraints = cs
		if d, ok := pm["default"]; ok {
			p.HasDefault = true
			if d != nil {
				cv, err := p.convert(d)
				if err != nil {
					return invalid(field+".default", "default of %q: %s", name, err)
				}
				p.Default = cv
			}
		}
		t.Parameters[name] = p
		t.ParamOrder = append(t.ParamOrder, name)
	}
	sort.Strings(t.ParamOrder)
	return nil
}

func (t *Template) parseGroups(v any) error {
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		return invalid("parameter_groups", "parameter_groups must be a list")
	}
	seen := map[string]bool{}
	for i, gv := range l {
		gm, ok := gv.(map[string]any)
		if !ok {
			return invalid("parameter_groups", "group %d must be a map", i)
		}
		g := ParameterGroup{}
		g.Label, _ = gm["label"].(string)
		g.Description, _ = gm["description"].(string)
		ps, _ := gm["parameters"].([]any)
		if len(ps) == 0 {
			return invalid("parameter_groups", "group %d lists no parameters", i)
		}
		for _, pv := range ps {
			s, _ := pv.(string)
			if _, ok := t.Parameters[s]; !ok {
				return invalid("parameter_groups", "group %d names %q, which is not a parameter", i, s)
			}
			if seen[s] {
				return invalid("parameter_groups", "parameter %q is in more than one group", s)
			}
			seen[s] = true
			g.Parameters = append(g.Parameters, s)
		}
		t.ParameterGroups = append(t.ParameterGroups, g)
	}
	return nil
}

func parseConstraints(field string, v any) ([]Constraint, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, invalid(field, "constraints must be a list")
	}
	var out []Constraint
	for _, cv := range l {
		cm, ok := cv.(map[string]any)
		if !ok {
			return nil, invalid(field, "each constraint must be a map")
		}
		c := Constraint{}
		c.Description, _ = cm["description"].(string)
		n := 0
		for k, a := range cm {
			switch k {
			case "description":
				continue
			case "range", "length", "modulo":
				if k == "modulo" {
					return nil, invalid(field, "the modulo constraint is not supported")
				}
				am, ok := a.(map[string]any)
				if !ok {
					return nil, invalid(field+"."+k, "%s must be a map with min and/or max", k)
				}
				var err error
				if c.Min, err = optNumber(am["min"]); err != nil {
					return nil, invalid(field+"."+k+".min", "must be a number")
				}
				if c.Max, err = optNumber(am["max"]); err != nil {
					return nil, invalid(field+"."+k+".max", "must be a number")
				}
				c.IsLength, c.IsRange = k == "length", k == "range"
			case "allowed_values":
				if c.AllowedValues, ok = a.([]any); !ok {
					return nil, invalid(field+".allowed_values", "must be a list")
				}
			case "allowed_pattern":
				s, ok := a.(string)
				if !ok || len(s) > 1024 {
					return nil, invalid(field+".allowed_pattern", "must be a regular expression of at most 1024 characters")
				}
				re, err := regexp.Compile(`^(?:` + s + `)$`)
				if err != nil {
					return nil, invalid(field+".allowed_pattern", "%q is not a valid regular expression", s)
				}
				c.AllowedPattern, c.pattern = s, re
			case "custom_constraint":
				if c.Custom, ok = a.(string); !ok || c.Custom == "" {
					return nil, invalid(field+".custom_constraint", "must name a constraint")
				}
			default:
				return nil, invalid(field+"."+k, "%q is not a known constraint", k)
			}
			n++
		}
		if n != 1 {
			return nil, invalid(field, "each constraint must have exactly one kind")
		}
		out = append(out, c)
	}
	return out, nil
}

func optNumber(v any) (*float64, error) {
	if v == nil {
		return nil, nil
	}
	f, err := toNumber(v)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

func toNumber(v any) (float64, error) {
	switch n := v.(type) {
	case int:
		return float64(n), nil
	case float64:
		return n, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(n), 64)
	case json.Number:
		return n.Float64()
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

// convert turns a given value into the parameter's type.
func (p *Parameter) convert(v any) (any, error) {
	switch p.Type {
	case TypeString:
		switch s := v.(type) {
		case string:
			return s, nil
		case int, float64, bool:
			return fmt.Sprint(s), nil
		}
		return nil, fmt.Errorf("value must be a string")
	case TypeNumber:
		f, err := toNumber(v)
		if err != nil {
			return nil, fmt.Errorf("value %s is not a number", short(v))
		}
		if f == float64(int(f)) {
			return int(f), nil
		}
		return f, nil
	case TypeBoolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			switch strings.ToLower(b) {
			case "true", "yes", "on", "t", "y", "1":
				return true, nil
			case "false", "no", "off", "f", "n", "0":
				return false, nil
			}
		case int:
			return b != 0, nil
		}
		return nil, fmt.Errorf("value %s is not a boolean", short(v))
	case TypeJSON:
		switch j := v.(type) {
		case string:
			var out any
			if err := json.Unmarshal([]byte(j), &out); err != nil {
				return nil, fmt.Errorf("value is not valid JSON")
			}
			return jsonNumbers(out), nil
		case map[string]any, []any:
			return j, nil
		}
		return nil, fmt.Errorf("value must be a map or a list")
	case TypeList:
		switch l := v.(type) {
		case string:
			if strings.TrimSpace(l) == "" {
				return []any{}, nil
			}
			var out []any
			for s := range strings.SplitSeq(l, ",") {
				out = append(out, strings.TrimSpace(s))
			}
			return out, nil
		case []any:
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = fmt.Sprint(e)
			}
			return out, nil
		}
		return nil, fmt.Errorf("value must be a comma-delimited list")
	}
	return v, nil
}

// jsonNumbers turns integral float64s from encoding/json into ints, as YAML
// decodes them.
func jsonNumbers(v any) any {
	switch t := v.(type) {
	case float64:
		if t == float64(int(t)) {
			return int(t)
		}
	case map[string]any:
		for k, e := range t {
			t[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = jsonNumbers(e)
		}
	}
	return v
}

func short(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// Checker checks custom constraints (nova.flavor, glance.image,
// neutron.network ...) against the cloud. Check returns an error of kind
// errdefs.ErrNotFound when the value names nothing, and
// errdefs.ErrUnsupported for a constraint it does not know.
type Checker interface {
	CheckConstraint(ctx context.Context, constraint, value string) error
}

// check applies the constraints to a converted value.
func checkConstraints(ctx context.Context, field, name string, cs []Constraint, v any, chk Checker) error {
	for _, c := range cs {
		msg := c.Description
		fail := func(format string, args ...any) error {
			if msg == "" {
				msg = fmt.Sprintf(format, args...)
			}
			return invalid(field, "%s: %s", name, msg)
		}
		switch {
		case c.IsLength:
			var n int
			switch t := v.(type) {
			case string:
				n = len([]rune(t))
			case []any:
				n = len(t)
			case map[string]any:
				n = len(t)
			default:
				continue
			}
			if c.Min != nil && float64(n) < *c.Min || c.Max != nil && float64(n) > *c.Max {
				return fail("length must be between %s and %s", bound(c.Min), bound(c.Max))
			}
		case c.IsRange:
			f, err := toNumber(v)
			if err != nil {
				continue
			}
			if c.Min != nil && f < *c.Min || c.Max != nil && f > *c.Max {
				return fail("%v is not between %s and %s", v, bound(c.Min), bound(c.Max))
			}
		case c.AllowedValues != nil:
			vals := []any{v}
			if l, ok := v.([]any); ok {
				vals = l
			}
			for _, e := range vals {
				if !slices.ContainsFunc(c.AllowedValues, func(a any) bool { return fmt.Sprint(a) == fmt.Sprint(e) }) {
					return fail("%s is not one of the allowed values %v", short(e), c.AllowedValues)
				}
			}
		case c.pattern != nil:
			vals := []any{v}
			if l, ok := v.([]any); ok {
				vals = l
			}
			for _, e := range vals {
				if !c.pattern.MatchString(fmt.Sprint(e)) {
					return fail("%s does not match pattern %q", short(e), c.AllowedPattern)
				}
			}
		case c.Custom != "":
			if chk == nil {
				return invalid(field, "%s: custom constraint %q cannot be checked here", name, c.Custom)
			}
			vals := []any{v}
			if l, ok := v.([]any); ok {
				vals = l
			}
			for _, e := range vals {
				if err := chk.CheckConstraint(ctx, c.Custom, fmt.Sprint(e)); err != nil {
					if errdefs.IsNotFound(err) {
						return fail("Error validating value %s: the %s was not found", short(e), c.Custom)
					}
					if errors.Is(err, errdefs.ErrUnsupported) {
						return invalid(field, "%s: unknown custom constraint %q", name, c.Custom)
					}
					return err
				}
			}
		}
	}
	return nil
}

func bound(f *float64) string {
	if f == nil {
		return "unbounded"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

// ResolveParameters converts the given values (strings from the CLI, or
// JSON values) into typed parameter values, applying defaults, and checks
// every constraint. A missing parameter or a violated constraint is a
// *errdefs.ValidationError naming the parameter.
func (t *Template) ResolveParameters(ctx context.Context, given map[string]any, chk Checker) (map[string]any, error) {
	for k := range given {
		if _, ok := t.Parameters[k]; !ok {
			return nil, invalid("parameters."+k, "the parameter %q is not defined in the template", k)
		}
	}
	out := make(map[string]any, len(t.Parameters))
	for _, name := range slices.Sorted(maps.Keys(t.Parameters)) {
		p := t.Parameters[name]
		field := "parameters." + name
		v, ok := given[name]
		if !ok {
			if !p.HasDefault {
				return nil, invalid(field, "the parameter %q was not provided", name)
			}
			v = p.Default
		} else {
			cv, err := p.convert(v)
			if err != nil {
				return nil, invalid(field, "%s: %s", name, err)
			}
			v = cv
		}
		if v == nil {
			switch p.Type {
			case TypeList:
				v = []any{}
			case TypeJSON:
				v = map[string]any{}
			case TypeString:
				v = ""
			}
		}
		if err := checkConstraints(ctx, field, name, p.Constraints, v, chk); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}
