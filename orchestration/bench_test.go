package orchestration

import (
	"fmt"
	"strings"
	"testing"
)

// bigTemplate is a stack of n control-plane resources: RandomStrings and
// TestResources in chains of four (each needs the one before), so that
// the engine has both parallel width and depth.
func bigTemplate(n int) []byte { return latencyTemplate(n, 0) }

// latencyTemplate is bigTemplate with TestResources that each take wait
// seconds, as a service call would.
func latencyTemplate(n int, wait float64) []byte {
	var b strings.Builder
	b.WriteString("heat_template_version: 2018-08-31\nresources:\n")
	for i := range n {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  r%d: {type: OS::Heat::RandomString, properties: {length: 16}}\n", i)
		default:
			fmt.Fprintf(&b, "  r%d: {type: OS::Heat::TestResource, properties: {wait_secs: %g, value: {get_attr: [r%d, %s]}}}\n", i, wait, i-1,
				map[bool]string{true: "value", false: "output"}[(i-1)%4 == 0])
		}
	}
	return []byte(b.String())
}

func benchStacks(b *testing.B, n, concurrency int) { benchTemplate(b, bigTemplate(n), n, concurrency) }

func benchTemplate(b *testing.B, tmpl []byte, n, concurrency int) {
	s := newService(b, Config{Concurrency: concurrency, Limits: Limits{MaxResources: 1000}})
	ctx := member("p1")
	b.ResetTimer()
	for i := range b.N {
		st, err := s.CreateStack(ctx, CreateStackOpts{Name: fmt.Sprintf("s%d", i), Template: tmpl})
		if err != nil {
			b.Fatal(err)
		}
		if got := waitStack(b, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
			b.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
		}
		if err := s.DeleteStack(ctx, st.ID); err != nil {
			b.Fatal(err)
		}
		if got := waitStack(b, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" {
			b.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
		}
	}
	b.ReportMetric(float64(n), "resources/stack")
}

// BenchmarkStackCreateDelete creates and deletes stacks of 100 and 1,000
// resources, serially (concurrency 1) and with the default concurrency.
func BenchmarkStackCreateDelete(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, c := range []int{1, 16} {
			b.Run(fmt.Sprintf("N=%d/concurrency=%d", n, c), func(b *testing.B) { benchStacks(b, n, c) })
		}
	}
	// Resources that each take 2 ms, as service calls do: where the
	// engine's parallelism pays.
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("N=200/wait=2ms/concurrency=%d", c), func(b *testing.B) { benchTemplate(b, latencyTemplate(200, 0.002), 200, c) })
	}
}

// BenchmarkStackUpdate updates a stack of 200 resources: with nothing
// changed (the per-resource diff alone) and with every TestResource's
// value changed in place, against creating the same stack.
func BenchmarkStackUpdate(b *testing.B) {
	const n = 200
	tmpl := bigTemplate(n)
	changed := []byte(strings.ReplaceAll(string(tmpl), "heat_template_version: 2018-08-31\n", "heat_template_version: 2018-08-31\nparameters: {p: {type: string, default: x}}\n"))
	changed = []byte(strings.ReplaceAll(string(changed), "properties: {wait_secs: 0, value: ", "properties: {wait_secs: 0, value: {list_join: ['-', [{get_param: p}, "))
	changed = []byte(strings.ReplaceAll(string(changed), "]}}}\n", "]}]]}}}\n"))
	for _, c := range []struct {
		name string
		next []byte
	}{{"unchanged", tmpl}, {"all-in-place", changed}} {
		b.Run(c.name, func(b *testing.B) {
			s := newService(b, Config{Limits: Limits{MaxResources: 1000}})
			ctx := member("p1")
			st, err := s.CreateStack(ctx, CreateStackOpts{Name: "u", Template: tmpl})
			if err != nil {
				b.Fatal(err)
			}
			waitStack(b, s, ctx, st.ID)
			b.ResetTimer()
			for i := range b.N {
				next := c.next
				if i%2 == 1 {
					next = tmpl
				}
				if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Template: next}); err != nil {
					b.Fatal(err)
				}
				if got := waitStack(b, s, ctx, st.ID); got.StackStatus() != "UPDATE_COMPLETE" {
					b.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
				}
			}
			b.ReportMetric(n, "resources/stack")
		})
	}
	b.Run("create-baseline", func(b *testing.B) { benchStacks(b, n, 16) })
}
