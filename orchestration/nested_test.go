package orchestration

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

func TestResourceGroupScalesDownByExactlyTheRemoved(t *testing.T) {
	th := newThing()
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}})
	ctx := member("p1")
	tmpl := `
heat_template_version: 2016-10-14
parameters:
  n: {type: number, default: 5}
resources:
  g:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: n}
      resource_def: {type: Test::Thing, properties: {zone: "z%index%"}}
outputs:
  refs: {value: {get_attr: [g, refs]}}
  sizes: {value: {get_attr: [g, size]}}
`
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "grp", Template: []byte(tmpl)})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	five := th.liveIDs()
	if len(five) != 5 || th.live[five[0]]["zone"] != "z0" {
		t.Fatalf("live %v", th.live)
	}
	if l, _ := s.ListStacks(ctx); len(l) != 1 {
		t.Fatalf("nested stacks listed: %d", len(l))
	}
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Existing: true, Parameters: map[string]any{"n": 3}}); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "UPDATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	three := th.liveIDs()
	gone := slices.DeleteFunc(slices.Clone(five), func(id string) bool { return slices.Contains(three, id) })
	if len(three) != 3 || len(gone) != 2 {
		t.Fatalf("5 -> 3: live %v gone %v", three, gone)
	}
	for _, id := range three {
		if !slices.Contains(five, id) {
			t.Fatalf("a member was replaced: %v -> %v", five, three)
		}
	}
	st2, _ := s.GetStack(ctx, st.ID)
	outs, _ := s.Outputs(ctx, st2)
	if refs, _ := outs[0].Value.([]any); len(refs) != 3 {
		t.Fatalf("outputs %+v", outs)
	}
	// Limits: a group larger than MaxGroupSize fails the update.
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Existing: true, Parameters: map[string]any{"n": 5000}}); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "ROLLBACK_COMPLETE" || !strings.Contains(got.StatusReason+firstFailure(s, st.ID), "limit of 1000") {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	// The rollback updated the group back in place: the same members.
	if live := th.liveIDs(); !slices.Equal(live, three) {
		t.Fatalf("after the rollback %v, before %v", live, three)
	}
	if err := s.DeleteStack(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" || len(th.liveIDs()) != 0 {
		t.Fatalf("%s live %v", got.StackStatus(), th.liveIDs())
	}
}

func firstFailure(s *Service, id string) string {
	rs, _ := s.resources(id)
	var out []string
	for _, r := range rs {
		out = append(out, r.StatusReason)
	}
	evs, _ := s.ListEvents(member("p1"), id, "")
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return strings.Join(out, "; ")
}

func TestTemplateResourceFromRegistryAndNestingLimit(t *testing.T) {
	th := newThing()
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}, Limits: Limits{MaxNestingDepth: 2}})
	ctx := member("p1")
	inner := `
heat_template_version: 2016-10-14
parameters:
  size: {type: number}
  zone: {type: string, default: q}
resources:
  t: {type: Test::Thing, properties: {size: {get_param: size}, zone: {get_param: zone}}}
outputs:
  id: {value: {get_resource: t}}
`
	outer := `
heat_template_version: 2016-10-14
resources:
  m: {type: My::Thing, properties: {size: 4}}
  s: {type: OS::Heat::Stack, properties: {template: {get_file: inner.yaml}, parameters: {size: 2}}}
outputs:
  id: {value: {get_attr: [m, id]}}
  sid: {value: {get_attr: [s, outputs, id]}}
`
	env := &Environment{ResourceRegistry: map[string]string{"My::Thing": "file:///x/inner.yaml"}, ParameterDefaults: map[string]any{"zone": "pd"}}
	files := map[string]string{"file:///x/inner.yaml": inner, "inner.yaml": inner}
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "tr", Template: []byte(outer), Files: files, Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s / %s", got.StackStatus(), got.StatusReason, firstFailure(s, st.ID))
	}
	outs, _ := s.Outputs(ctx, st)
	id, _ := outs[0].Value.(string)
	if th.live[id]["size"] != 4 || th.live[id]["zone"] != "pd" {
		t.Fatalf("outputs %+v live %v", outs, th.live)
	}
	if sid, _ := outs[1].Value.(string); th.live[sid]["size"] != 2 {
		t.Fatalf("outputs %+v live %v", outs, th.live)
	}
	// An unknown registry target is refused naming it.
	_, err = s.CreateStack(ctx, CreateStackOpts{Name: "bad", Template: []byte(outer), Files: files,
		Environment: &Environment{ResourceRegistry: map[string]string{"My::Thing": "nope.yaml"}}})
	if field(err) != "environment.resource_registry.My::Thing" {
		t.Fatalf("bad registry: %v", err)
	}
	// Three levels is more than the limit of 2.
	deep := strings.ReplaceAll(strings.ReplaceAll(outer, "{get_file: inner.yaml}, parameters: {size: 2}", "{get_file: mid.yaml}"), "  sid: {value: {get_attr: [s, outputs, id]}}\n", "")
	files["mid.yaml"] = "heat_template_version: 2016-10-14\nresources:\n  x: {type: OS::Heat::Stack, properties: {template: {get_file: inner2.yaml}}}\n"
	files["inner2.yaml"] = "heat_template_version: 2016-10-14\nresources:\n  y: {type: OS::Heat::Stack, properties: {template: {get_file: leaf.yaml}}}\n"
	files["leaf.yaml"] = "heat_template_version: 2016-10-14\nresources:\n  z: {type: Test::Thing}\n"
	st2, err := s.CreateStack(ctx, CreateStackOpts{Name: "deep", Template: []byte(deep), Files: files, Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st2.ID); got.StackStatus() != "ROLLBACK_COMPLETE" || !strings.Contains(firstFailure(s, st2.ID), "levels deep (the limit)") {
		t.Fatalf("%s: %s", got.StackStatus(), firstFailure(s, st2.ID))
	}
	for _, id := range []string{st.ID, st2.ID} {
		if err := s.DeleteStack(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitStack(t, s, ctx, id)
	}
	if len(th.liveIDs()) != 0 {
		t.Fatalf("left %v", th.liveIDs())
	}
}

func TestGroupMembersAndRemovalPolicies(t *testing.T) {
	pol := func(names ...any) []any { return []any{map[string]any{"resource_list": names}} }
	for _, c := range []struct {
		cur, removed []string
		count        int
		policies     []any
		keep, gone   string
	}{
		{nil, nil, 3, nil, "[0 1 2]", "[]"},
		{[]string{"0", "1", "2", "3", "4"}, nil, 3, nil, "[0 1 2]", "[3 4]"},
		// The named members go first, then the highest; new indexes are
		// never reused.
		{[]string{"0", "1", "2", "3", "4"}, nil, 3, pol("1", 2), "[0 3 4]", "[1 2]"},
		{[]string{"0", "3", "4"}, []string{"1", "2"}, 5, nil, "[0 3 4 5 6]", "[]"},
		{[]string{"0", "1"}, nil, 2, pol("0"), "[1 2]", "[0]"},
	} {
		keep, gone := members(c.cur, c.removed, c.count, c.policies)
		if fmt.Sprint(keep) != c.keep || fmt.Sprint(append([]string{}, gone...)) != c.gone {
			t.Errorf("%v -%v x%d %v: keep %v gone %v", c.cur, c.removed, c.count, c.policies, keep, gone)
		}
	}
}

func TestNestedStacksCountTowardsTheProjectLimit(t *testing.T) {
	s := newService(t, Config{Limits: Limits{MaxStacksPerProject: 4}})
	ctx := member("p1")
	tmpl := "heat_template_version: 2016-10-14\nresources:\n  g: {type: OS::Heat::ResourceGroup, properties: {count: 2, resource_def: {type: OS::Heat::Stack, properties: {template: 'heat_template_version: 2016-10-14'}}}}\n"
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "fan", Template: []byte(tmpl), DisableRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	// fan, its group's stack and two members: 4 stacks, the limit.
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), firstFailure(s, st.ID))
	}
	if _, err := s.CreateStack(ctx, CreateStackOpts{Name: "more", Template: []byte("heat_template_version: 2016-10-14\n")}); !errors.Is(err, errdefs.ErrQuotaExceeded) {
		t.Fatalf("fifth stack: %v", err)
	}
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Template: []byte(strings.Replace(tmpl, "count: 2", "count: 3", 1))}); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "UPDATE_FAILED" || !strings.Contains(firstFailure(s, st.ID), "the limit") {
		t.Fatalf("%s: %s", got.StackStatus(), firstFailure(s, st.ID))
	}
}
