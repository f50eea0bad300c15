package orchestration

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// nested makes, updates and deletes nested stacks: the engine of
// OS::Heat::Stack, template resources, OS::Heat::ResourceGroup and
// OS::Heat::AutoScalingGroup. A nested stack is a stack of its own (its
// own engine run, events and resources) whose ParentID is the stack of
// the resource, hidden from the stack list.
type nested struct{ s *Service }

func (nested) nestedStack() {}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// childName is the nested stack's name: the resource's physical name,
// made a valid stack name.
func childName(r *Resource) string {
	n := unsafeName.ReplaceAllString(r.PhysicalName, "-")
	if n == "" || (n[0] < 'a' || n[0] > 'z') && (n[0] < 'A' || n[0] > 'Z') {
		n = "s" + n
	}
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

func (n nested) parent(r *Resource) (*Stack, error) {
	return store.Get[Stack](nil, n.s.st.Snapshot(), stackTable, r.StackID)
}

// childEnv is what a nested stack inherits of its parent's environment:
// the registry and the parameter defaults.
func childEnv(p *Stack) *Environment {
	if p.Environment == nil {
		return nil
	}
	return &Environment{ParameterDefaults: p.Environment.ParameterDefaults, ResourceRegistry: p.Environment.ResourceRegistry}
}

func (n nested) create(ctx context.Context, r *Resource, tmpl []byte, params map[string]any) (string, error) {
	p, err := n.parent(r)
	if err != nil {
		return "", err
	}
	if p.Depth+1 > n.s.limits.MaxNestingDepth {
		return "", invalid("resources."+r.Name, "nested stacks are more than %d levels deep (the limit)", n.s.limits.MaxNestingDepth)
	}
	st, err := n.s.CreateStack(ctx, CreateStackOpts{Name: childName(r), Template: tmpl, Files: p.Files, Parameters: params,
		Environment: childEnv(p), DisableRollback: true, TimeoutMins: p.TimeoutMins,
		parentID: p.ID, parentResource: r.Name, depth: p.Depth + 1, trustID: p.TrustID})
	if err != nil {
		return "", err
	}
	return st.ID, nil
}

func (n nested) update(ctx context.Context, r *Resource, tmpl []byte, params map[string]any) error {
	p, err := n.parent(r)
	if err != nil {
		return err
	}
	no := true
	_, err = n.s.UpdateStack(ctx, r.PhysicalID, UpdateStackOpts{Template: tmpl, Files: p.Files, Parameters: params,
		Environment: childEnv(p), DisableRollback: &no})
	return err
}

// Find is the nested stack a crashed create may have made.
func (n nested) Find(ctx context.Context, r *Resource) (string, error) {
	st, err := n.s.FindStack(ctx, childName(r))
	if errdefs.IsNotFound(err) || err == nil && st.Deleted != nil {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return st.ID, nil
}

// Ready is true once the nested stack's create or update completed.
func (n nested) Ready(_ context.Context, r *Resource) (bool, error) {
	st, err := store.Get[Stack](nil, n.s.st.Snapshot(), stackTable, r.PhysicalID)
	if err != nil {
		return false, err
	}
	switch {
	case st.Status == StatusInProgress:
		return false, nil
	case st.Status == StatusComplete && (st.Action == ActionCreate || st.Action == ActionUpdate):
		return true, nil
	}
	return false, fmt.Errorf("the nested stack %s is %s: %s", st.Name, st.StackStatus(), st.StatusReason)
}

// Delete deletes the nested stack and waits for it to be gone.
func (n nested) Delete(ctx context.Context, r *Resource) error {
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, n.s.cfg.PollInterval) {
		st, err := store.Get[Stack](nil, n.s.st.Snapshot(), stackTable, r.PhysicalID)
		if errdefs.IsNotFound(err) || err == nil && st.Deleted != nil {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case st.Action == ActionDelete && st.Status == StatusFailed:
			return fmt.Errorf("the nested stack %s: %s", st.Name, st.StatusReason)
		case st.Action != ActionDelete:
			if err := n.s.DeleteStack(ctx, st.ID); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// outputs are the nested stack's outputs by key.
func (n nested) outputs(ctx context.Context, id string) (map[string]any, error) {
	st, err := store.Get[Stack](nil, n.s.st.Snapshot(), stackTable, id)
	if err != nil {
		return nil, err
	}
	outs, err := n.s.Outputs(ctx, st)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	for _, o := range outs {
		m[o.Key] = o.Value
	}
	return m, nil
}

// memberAttr is the attribute of a resource of the nested stack id (its
// reference when attr is "").
func (n nested) memberAttr(ctx context.Context, id, member, attr string) (any, error) {
	st, err := store.Get[Stack](nil, n.s.st.Snapshot(), stackTable, id)
	if err != nil {
		return nil, err
	}
	p, err := n.s.planOf(ctx, st)
	if err != nil {
		return nil, err
	}
	ev := n.s.evaluator(n.s.engineCtx(ctx, st), st, p, nil)
	if attr == "" {
		return ev.ref(member)
	}
	return ev.attr(member, attr)
}

// templatePlugin is a template resource: a type that the environment's
// resource_registry maps to a template of the files map. Its properties
// are the template's parameters, its attributes the template's outputs.
type templatePlugin struct {
	nested
	file   string
	body   []byte
	schema *TypeSchema
}

var paramPropTypes = map[string]string{TypeString: PropString, TypeNumber: PropNumber, TypeJSON: PropAny,
	TypeList: PropList, TypeBoolean: PropBoolean}

// templatePlugin makes the type of a template resource; its properties
// are required when their parameter has no default, in the template or in
// the environment's parameter_defaults.
func (s *Service) templatePlugin(file, body string, defaults map[string]any) (*templatePlugin, error) {
	t, err := ParseTemplate([]byte(body), s.limits)
	if err != nil {
		return nil, invalid("files."+file, "the template resource %s: %s", file, errText(err))
	}
	sch := &TypeSchema{Description: "The template " + file + ".", Properties: map[string]*PropSchema{}, Attributes: map[string]string{}}
	for name, p := range t.Parameters {
		_, dflt := defaults[name]
		sch.Properties[name] = &PropSchema{Type: paramPropTypes[p.Type], Description: p.Description, Required: !p.HasDefault && !dflt, UpdateAllowed: true}
	}
	for name, o := range t.Outputs {
		sch.Attributes[name] = o.Description
	}
	return &templatePlugin{nested: nested{s}, file: file, body: []byte(body), schema: sch}, nil
}

func (p *templatePlugin) Schema() *TypeSchema { return p.schema }

// OpenAttributes: the template's outputs, and whatever a nested resource
// shows.
func (p *templatePlugin) OpenAttributes() bool { return true }

func given(r *Resource) map[string]any {
	out := map[string]any{}
	for k, v := range r.Properties {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

func (p *templatePlugin) Create(ctx context.Context, r *Resource) (string, error) {
	return p.create(ctx, r, p.body, given(r))
}

func (p *templatePlugin) Update(ctx context.Context, r *Resource, _ map[string]any) error {
	return p.update(ctx, r, p.body, given(r))
}

func (p *templatePlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	outs, err := p.outputs(ctx, r.PhysicalID)
	if err != nil {
		return nil, err
	}
	if name == "show" {
		return outs, nil
	}
	return outs[name], nil
}

// stackPlugin is OS::Heat::Stack: a nested stack from a template given
// as a property.
type stackPlugin struct{ nested }

func (stackPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A nested stack.",
		Properties: map[string]*PropSchema{
			"template":     {Type: PropString, Required: true, UpdateAllowed: true, Description: "The nested stack's template."},
			"parameters":   {Type: PropMap, UpdateAllowed: true, Description: "The nested stack's parameters."},
			"timeout":      {Type: PropInteger, UpdateAllowed: true, Description: "Timeout in minutes."},
			"context":      {Type: PropMap, Description: "Unused here."},
			"outputs":      {Type: PropList, Description: "Unused here."},
			"stack_name":   str("Unused here."),
			"stack_status": str("Unused here."),
		},
		Attributes: map[string]string{"outputs": "The nested stack's outputs.", "stack_name": "The nested stack's name."},
	}
}

func (p stackPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	return p.create(ctx, r, []byte(r.Str("template")), r.Map("parameters"))
}

func (p stackPlugin) Update(ctx context.Context, r *Resource, _ map[string]any) error {
	return p.update(ctx, r, []byte(r.Str("template")), r.Map("parameters"))
}

func (p stackPlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "stack_name":
		return childName(r), nil
	case "outputs", "show":
		return p.outputs(ctx, r.PhysicalID)
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

// groupPlugin is OS::Heat::ResourceGroup: count copies of resource_def in
// a nested stack, named 0, 1, ...; %index% in the definition is each
// member's index. Scaling down removes the members the removal policies
// name first, then the highest indexes; removed indexes are not reused.
type groupPlugin struct{ nested }

func (groupPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A group of identical resources.",
		Properties: map[string]*PropSchema{
			"count":            {Type: PropInteger, Default: 1, UpdateAllowed: true, Constraints: []Constraint{{IsRange: true, Min: ptr(0)}}, Description: "Number of members."},
			"resource_def":     {Type: PropMap, Required: true, UpdateAllowed: true, Description: "The members' definition: type, properties, metadata."},
			"removal_policies": {Type: PropList, Default: []any{}, UpdateAllowed: true, Description: "Maps with resource_list: members to remove first."},
			"removal_policies_mode": {Type: PropString, Default: "append", UpdateAllowed: true,
				Constraints: []Constraint{{AllowedValues: []any{"append", "update"}}}},
			"index_var": {Type: PropString, Default: "%index%", UpdateAllowed: true, Description: "The text replaced by each member's index."},
		},
		Attributes: map[string]string{"refs": "The members' references, in order.", "refs_map": "The members' references by name.",
			"removed_rsrc_list": "The members removed so far.", "attributes": "An attribute of every member."},
	}
}

// OpenAttributes: any other name is that attribute of every member.
func (groupPlugin) OpenAttributes() bool { return true }

// members picks the member names for count: the current ones, less those
// the removal policies name and then the highest, plus new indexes after
// every index used before.
func members(cur, removed []string, count int, policies []any) (keep, gone []string) {
	drop := map[string]bool{}
	for _, p := range policies {
		m, _ := p.(map[string]any)
		l, _ := m["resource_list"].([]any)
		for _, x := range l {
			drop[textOf(x)] = true
		}
	}
	next := 0
	for _, n := range append(slices.Clone(cur), removed...) {
		if i, err := strconv.Atoi(n); err == nil && i >= next {
			next = i + 1
		}
	}
	for _, n := range cur {
		if drop[n] {
			gone = append(gone, n)
		} else {
			keep = append(keep, n)
		}
	}
	if len(keep) > count {
		gone = append(gone, keep[count:]...)
		keep = keep[:count]
	}
	for len(keep) < count {
		keep = append(keep, strconv.Itoa(next))
		next++
	}
	return keep, gone
}

func (p groupPlugin) template(r *Resource, names []string) ([]byte, error) {
	def := r.Map("resource_def")
	typ, _ := def["type"].(string)
	if typ == "" {
		return nil, invalid("resource_def.type", "the group's resource_def needs a type")
	}
	for k := range def {
		if k != "type" && k != "properties" && k != "metadata" {
			return nil, invalid("resource_def."+k, "%q is not a resource_def key (type, properties, metadata)", k)
		}
	}
	iv := r.Str("index_var")
	res := map[string]any{}
	for _, n := range names {
		m := map[string]any{"type": typ}
		if props, ok := def["properties"]; ok && props != nil {
			m["properties"] = substitute(props, strings.NewReplacer(iv, n))
		}
		if md, ok := def["metadata"]; ok && md != nil {
			m["metadata"] = md
		}
		res[n] = m
	}
	return json.Marshal(map[string]any{"heat_template_version": "2016-10-14", "resources": res})
}

func (p groupPlugin) checkCount(r *Resource, n int) error {
	if n > p.s.limits.MaxGroupSize {
		return invalid("resources."+r.Name+".properties.count", "a group of %d members is more than the limit of %d", n, p.s.limits.MaxGroupSize)
	}
	if n < 0 {
		return invalid("resources."+r.Name+".properties.count", "count must not be negative")
	}
	return nil
}

func (p groupPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	if err := p.checkCount(r, r.Int("count")); err != nil {
		return "", err
	}
	keep, _ := members(nil, nil, r.Int("count"), nil)
	tmpl, err := p.template(r, keep)
	if err != nil {
		return "", err
	}
	r.Data["members"] = strings.Join(keep, ",")
	return p.create(ctx, r, tmpl, nil)
}

func (p groupPlugin) Update(ctx context.Context, r *Resource, _ map[string]any) error {
	if err := p.checkCount(r, r.Int("count")); err != nil {
		return err
	}
	cur := splitList(r.Data["members"])
	removed := splitList(r.Data["removed"])
	keep, gone := members(cur, removed, r.Int("count"), r.List("removal_policies"))
	tmpl, err := p.template(r, keep)
	if err != nil {
		return err
	}
	if err := p.update(ctx, r, tmpl, nil); err != nil {
		return err
	}
	r.Data["members"] = strings.Join(keep, ",")
	r.Data["removed"] = strings.Join(append(removed, gone...), ",")
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (p groupPlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	names := splitList(r.Data["members"])
	switch name {
	case "removed_rsrc_list":
		return anyStrings(splitList(r.Data["removed"])), nil
	case "refs", "refs_map":
		refs := make([]any, 0, len(names))
		m := map[string]any{}
		for _, n := range names {
			v, err := p.memberAttr(ctx, r.PhysicalID, n, "")
			if err != nil {
				return nil, err
			}
			refs = append(refs, v)
			m[n] = v
		}
		if name == "refs_map" {
			return m, nil
		}
		return refs, nil
	case "show":
		return map[string]any{"members": anyStrings(names)}, nil
	}
	out := make([]any, 0, len(names))
	for _, n := range names {
		v, err := p.memberAttr(ctx, r.PhysicalID, n, name)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func anyStrings(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}
