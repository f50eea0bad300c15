package orchestration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
)

func field(err error) string {
	var ve *errdefs.ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	return ""
}

func TestEveryTemplateVersion(t *testing.T) {
	for _, v := range slices.Sorted(maps.Keys(Versions)) {
		tm, err := ParseTemplate([]byte("heat_template_version: "+v+"\nresources: {}\n"), Limits{})
		if err != nil || tm.Date != Versions[v] {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, bad := range []string{"2012-12-12", "zed", "1"} {
		if _, err := ParseTemplate([]byte("heat_template_version: "+bad+"\n"), Limits{}); field(err) != "heat_template_version" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestLimitsBoundHostileTemplates(t *testing.T) {
	big := "heat_template_version: 2013-05-23\ndescription: " + strings.Repeat("x", 2000) + "\n"
	if _, err := ParseTemplate([]byte(big), Limits{MaxTemplateBytes: 1000}); field(err) != "template" || !strings.Contains(err.Error(), "limit of 1000") {
		t.Errorf("size: %v", err)
	}
	deep := "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: " +
		strings.Repeat("{list_join: [',', [", 40) + "x" + strings.Repeat("]]}", 40) + "}}\n"
	if _, err := ParseTemplate([]byte(deep), Limits{MaxDepth: 50}); err == nil || !strings.Contains(err.Error(), "nested more than 50") {
		t.Errorf("depth: %v", err)
	}
	var many strings.Builder
	many.WriteString("heat_template_version: 2013-05-23\nresources:\n")
	for i := range 11 {
		fmt.Fprintf(&many, "  r%d: {type: OS::Heat::None}\n", i)
	}
	if _, err := ParseTemplate([]byte(many.String()), Limits{MaxResources: 10}); field(err) != "resources" || !strings.Contains(err.Error(), "limit of 10") {
		t.Errorf("resources: %v", err)
	}
	// YAML aliases cannot multiply a small document into a huge one.
	laughs := "heat_template_version: 2013-05-23\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	start := time.Now()
	if _, err := ParseTemplate([]byte(laughs), Limits{}); err == nil {
		t.Error("laughs accepted")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("laughs took %v", d)
	}
	// repeat's product is bounded.
	rep := "heat_template_version: 2016-04-08\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: {list_join: [',', {repeat: {for_each: {x: [" +
		strings.Repeat("1,", 200) + "1], y: [" + strings.Repeat("1,", 200) + "1]}, template: x}}]}}}\n"
	s := newService(t, Config{})
	if _, err := s.CreateStack(member("p"), CreateStackOpts{Name: "rep", Template: []byte(rep), DisableRollback: true}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.FindStack(member("p"), "rep")
	if got := waitStack(t, s, member("p"), st.ID); got.StackStatus() != "CREATE_FAILED" || !strings.Contains(got.StatusReason, "more than 10000 items") {
		t.Errorf("repeat: %s %s", got.StackStatus(), got.StatusReason)
	}
}

// eval resolves one value in a template of the given version.
func eval(t *testing.T, version, value string, params map[string]any) (any, error) {
	t.Helper()
	src := "heat_template_version: " + version + "\nparameters:\n  p: {type: json, default: {}}\n  l: {type: comma_delimited_list, default: 'a, b'}\n" +
		"resources:\n  r: {type: OS::Heat::None}\noutputs:\n  o: {value: " + value + "}\n"
	tm, err := ParseTemplate([]byte(src), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"f.txt": "file body"}
	c := &checker{t: tm, files: files, lim: Limits{}.withDefaults(), deps: map[string]bool{}}
	if err := c.check("outputs.o", tm.Outputs["o"].Value, 0); err != nil {
		return nil, err
	}
	ps, err := tm.ResolveParameters(context.Background(), params, nil)
	if err != nil {
		return nil, err
	}
	ev := &evaluator{t: tm, params: ps, files: files, lim: Limits{}.withDefaults(), stackName: "st",
		ref:  func(n string) (any, error) { return "id-" + n, nil },
		attr: func(n, a string) (any, error) { return map[string]any{"k": []any{"v0", "v1"}}, nil }}
	return ev.resolve("outputs.o", tm.Outputs["o"].Value, 0)
}

func TestFunctions(t *testing.T) {
	js := map[string]any{"p": `{"a": {"b": [10, 20]}}`}
	cases := []struct {
		version, value string
		params         map[string]any
		want           any
	}{
		{"2013-05-23", "{get_param: [p, a, b, 1]}", js, 20},
		{"2013-05-23", "{get_param: OS::stack_name}", nil, "st"},
		{"2013-05-23", "{get_param: l}", nil, []any{"a", "b"}},
		{"2013-05-23", "{get_resource: r}", nil, "id-r"},
		{"2013-05-23", "{get_attr: [r, x, k, 1]}", nil, "v1"},
		{"2013-05-23", "{get_attr: [r, x, missing]}", nil, nil},
		{"2013-05-23", "{get_file: f.txt}", nil, "file body"},
		{"2013-05-23", "{str_replace: {template: 'ab abc $x', params: {ab: 1, abc: 2, $x: [1]}}}", nil, "1 2 [1]"},
		{"2013-05-23", "{list_join: ['-', [a, 1, {k: v}]]}", nil, `a-1-{"k":"v"}`},
		{"2015-10-15", "{list_join: [',', [a], [b, c]]}", nil, "a,b,c"},
		{"2015-10-15", "{str_split: [',', 'x,y,z']}", nil, []any{"x", "y", "z"}},
		{"2015-10-15", "{str_split: [',', 'x,y,z', 2]}", nil, "z"},
		{"2016-04-08", "{map_merge: [{a: 1, b: 1}, {b: 2}]}", nil, map[string]any{"a": 1, "b": 2}},
		{"2015-04-30", "{repeat: {for_each: {'%x%': [1, 2], '%y%': [a, b]}, template: '%x%%y%'}}", nil, []any{"1a", "1b", "2a", "2b"}},
		{"2016-10-14", "{repeat: {for_each: {'%x%': [1, 2], '%y%': [a, b]}, template: {k%x%: '%y%'}, permutations: false}}", nil,
			[]any{map[string]any{"k1": "a"}, map[string]any{"k2": "b"}}},
		{"2015-04-30", "{digest: [md5, abc]}", nil, "900150983cd24fb0d6963f7d28e17f72"},
		{"rocky", "{get_param: [p, a]}", js, map[string]any{"b": []any{10, 20}}},
	}
	for _, tc := range cases {
		got, err := eval(t, tc.version, tc.value, tc.params)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s = %#v, %v; want %#v", tc.version, tc.value, got, err, tc.want)
		}
	}
	bad := []struct{ version, value, want string }{
		{"2013-05-23", "{str_split: [',', 'a']}", "not available in template version 2013-05-23"},
		{"2015-04-30", "{map_merge: [{}]}", "needs 2016-04-08"},
		{"2021-04-16", "{get_parm: x}", `unknown function "get_parm"`},
		{"2021-04-16", "{yaql: {expression: x}}", "not supported yet"},
		{"2021-04-16", "{get_param: nope}", `"nope" is not defined`},
		{"2021-04-16", "{get_file: missing.txt}", `"missing.txt" is not in the files map`},
		{"2021-04-16", "{get_resource: ghost}", `"ghost" is not defined`},
		{"2021-04-16", "{digest: [crc32, x]}", `unknown algorithm "crc32"`},
		{"2021-04-16", "{str_split: [',', 'a', 5]}", "out of range"},
	}
	for _, tc := range bad {
		if _, err := eval(t, tc.version, tc.value, nil); err == nil || !strings.Contains(err.Error(), tc.want) || field(err) == "" {
			t.Errorf("%s %s: %v, want %q", tc.version, tc.value, err, tc.want)
		}
	}
}

func TestParameters(t *testing.T) {
	src := `heat_template_version: 2013-05-23
parameters:
  s: {type: string, constraints: [{length: {min: 2, max: 4}}, {allowed_pattern: "[a-z]+", description: lower case only}]}
  n: {type: number, default: 3, constraints: [{range: {min: 1, max: 5}}]}
  b: {type: boolean, default: "yes"}
  l: {type: comma_delimited_list, default: "x,y", constraints: [{allowed_values: [x, y, z]}]}
  j: {type: json, default: {a: 1}}
  f: {type: string, default: m1, constraints: [{custom_constraint: nova.flavor}]}
parameter_groups:
  - {label: main, parameters: [s, n]}
resources: {}
`
	tm, err := ParseTemplate([]byte(src), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	chk := checkerFunc(func(c, v string) error {
		if c == "nova.flavor" && v == "m1" {
			return nil
		}
		if c != "nova.flavor" {
			return errdefs.ErrUnsupported
		}
		return errdefs.ErrNotFound
	})
	ctx := context.Background()
	got, err := tm.ResolveParameters(ctx, map[string]any{"s": "abc", "n": "4.5", "b": "false", "l": "z", "j": `{"k": [1]}`}, chk)
	want := map[string]any{"s": "abc", "n": 4.5, "b": false, "l": []any{"z"}, "j": map[string]any{"k": []any{1}}, "f": "m1"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%#v %v", got, err)
	}
	for _, tc := range []struct {
		given map[string]any
		field string
		want  string
	}{
		{map[string]any{}, "parameters.s", `"s" was not provided`},
		{map[string]any{"s": "a"}, "parameters.s", "length must be between 2 and 4"},
		{map[string]any{"s": "ABC"}, "parameters.s", "lower case only"},
		{map[string]any{"s": "abc", "n": "9"}, "parameters.n", "9 is not between 1 and 5"},
		{map[string]any{"s": "abc", "n": "x"}, "parameters.n", "not a number"},
		{map[string]any{"s": "abc", "b": "maybe"}, "parameters.b", "not a boolean"},
		{map[string]any{"s": "abc", "l": "x,w"}, "parameters.l", "not one of the allowed values"},
		{map[string]any{"s": "abc", "j": "{"}, "parameters.j", "not valid JSON"},
		{map[string]any{"s": "abc", "f": "m9"}, "parameters.f", "nova.flavor was not found"},
		{map[string]any{"s": "abc", "zz": "1"}, "parameters.zz", "not defined in the template"},
	} {
		_, err := tm.ResolveParameters(ctx, tc.given, chk)
		if field(err) != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %s: %s", tc.given, err, tc.field, tc.want)
		}
	}
	if len(tm.ParameterGroups) != 1 || tm.ParameterGroups[0].Label != "main" {
		t.Errorf("groups %+v", tm.ParameterGroups)
	}
}

type checkerFunc func(constraint, value string) error

func (f checkerFunc) CheckConstraint(_ context.Context, c, v string) error { return f(c, v) }

func TestGraphFromReferences(t *testing.T) {
	src := `heat_template_version: 2013-05-23
resources:
  net: {type: OS::Heat::None}
  a: {type: OS::Heat::TestResource, properties: {value: {get_attr: [b, output]}}}
  b: {type: OS::Heat::TestResource, properties: {value: {get_resource: c}}}
  c: {type: OS::Heat::RandomString, depends_on: [net]}
  d: {type: OS::Heat::TestResource, properties: {value: {get_resource: a}}, depends_on: a}
`
	tm, _ := ParseTemplate([]byte(src), Limits{})
	p, err := analyze(context.Background(), tm, nil, nil, (&Service{}).builtins(), Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.deps["a"], []string{"b"}) || !reflect.DeepEqual(p.deps["c"], []string{"net"}) ||
		!reflect.DeepEqual(p.deps["d"], []string{"a"}) || !reflect.DeepEqual(p.requiredBy["c"], []string{"b"}) {
		t.Fatalf("deps %v requiredBy %v", p.deps, p.requiredBy)
	}
	self := "heat_template_version: 2013-05-23\nresources:\n  a: {type: OS::Heat::TestResource, properties: {value: {get_attr: [a, output]}}}\n"
	tm, _ = ParseTemplate([]byte(self), Limits{})
	if _, err := analyze(context.Background(), tm, nil, nil, (&Service{}).builtins(), Limits{}, nil); err == nil || !strings.Contains(err.Error(), "a -> a") {
		t.Fatalf("self reference: %v", err)
	}
}
