package metering

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzQueryParsers feeds hostile text to the parsers of what API callers
// send: aggregate operations (s-expressions and JSON), search filters
// (strings and JSON), time spans and timestamps. They must answer or
// refuse, never panic, and stay bounded.
func FuzzQueryParsers(f *testing.F) {
	for _, s := range []string{
		"(aggregate mean (metric cpu mean))", "(metric (cpu rate:last) (memory max))", "((((", ")", `"(metric a b)"`,
		`["aggregate","sum",["metric","vcpus","mean"]]`, "project_id=abc and type!=\"x\"", `{"and":[{"=":{"id":"a"}},{"in":{"type":["x","y"]}}]}`,
		"300", "1 day", "2026-11-02T00:00:00+00:00", "1.5e9", "-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ops, err := parseSexpr(s); err == nil && len(ops) > 0 {
			if _, err := metricRefs(ops); err != nil {
				_ = err
			}
		}
		_, _ = ParseOperations(json.RawMessage(s))
		if f, err := ParseFilter(s); err == nil && f != nil && len(f.Conds) > maxConds {
			t.Fatalf("%d conditions", len(f.Conds))
		}
		if f, err := ParseFilterJSON(json.RawMessage(s)); err == nil && f != nil {
			_ = f.Match(&Resource{ID: "x", Attributes: map[string]string{"a": "b"}})
		}
		if d, err := parseSpan("granularity", s); err == nil && d < time.Second {
			t.Fatalf("span %q = %s", s, d)
		}
		_, _ = parseTime("start", s)
	})
}
