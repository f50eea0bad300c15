package orchestration

import (
	"context"
	"testing"
)

// FuzzTemplate parses and validates hostile templates: no panic, no
// unbounded work, and every failure is a typed error.
func FuzzTemplate(f *testing.F) {
	f.Add([]byte("heat_template_version: 2013-05-23\nresources: {a: {type: OS::Heat::None}}\n"))
	f.Add([]byte("heat_template_version: rocky\nparameters: {p: {type: json}}\nresources:\n  a: {type: OS::Heat::RandomString, properties: {length: {get_param: [p, k, 0]}}}\noutputs: {o: {value: {repeat: {for_each: {x: [1,2]}, template: {str_replace: {template: x, params: {x: {get_attr: [a, value]}}}}}}}}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("heat_template_version: 2016-10-14\nparameters: {e: {type: string, default: x}}\nconditions: {c: {and: [{equals: [{get_param: e}, x]}, {not: d}]}, d: {or: [false, {contains: [a, [a]]}]}}\nresources: {a: {type: OS::Heat::None, condition: c}}\noutputs: {o: {value: {if: [c, 1, 2]}, condition: d}}\n"))
	f.Add([]byte(`{"AWSTemplateFormatVersion": "2010-09-09", "Parameters": {"P": {"Type": "String", "Default": "a"}}, "Mappings": {"M": {"a": {"k": "v"}}}, "Conditions": {"C": {"Fn::Equals": [{"Ref": "P"}, "a"]}}, "Resources": {"R": {"Type": "OS::Heat::None", "Condition": "C"}}, "Outputs": {"O": {"Value": {"Fn::Join": [",", [{"Fn::FindInMap": ["M", {"Ref": "P"}, "k"]}, {"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]}, {"Fn::If": ["C", {"Ref": "R"}, "n"]}]]}}}}`))
	plugins := (&Service{}).builtins()
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := ParseTemplate(data, Limits{MaxDepth: 32, MaxResources: 50})
		if err != nil {
			return
		}
		p, err := analyze(context.Background(), tm, nil, nil, plugins, Limits{MaxDepth: 32}, nil)
		if err != nil {
			return
		}
		params, err := tm.ResolveParameters(context.Background(), nil, nil)
		if err != nil {
			return
		}
		ev := &evaluator{t: tm, params: params, lim: Limits{MaxDepth: 32}.withDefaults(),
			ref:  func(string) (any, error) { return "id", nil },
			attr: func(string, string) (any, error) { return map[string]any{"k": []any{"v"}}, nil }}
		for _, o := range p.t.Outputs {
			_, _ = ev.resolve("outputs", o.Value, 0)
		}
	})
}
