package orchestration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// thing is a plugin whose size changes in place and whose zone needs a
// replacement; it records what is live.
type thing struct {
	mu      sync.Mutex
	n       int
	live    map[string]map[string]any // physical id -> properties
	updates int
	// hang, while true, makes Update wait for its context to end.
	hang    bool
	started chan struct{}
}

func newThing() *thing { return &thing{live: map[string]map[string]any{}} }

func (p *thing) Schema() *TypeSchema {
	return &TypeSchema{Properties: map[string]*PropSchema{
		"size": {Type: PropInteger, Default: 1, UpdateAllowed: true},
		"zone": {Type: PropString, Default: "a"},
		"ref":  {Type: PropString},
		"fail": {Type: PropBoolean, UpdateAllowed: true},
	}, Attributes: map[string]string{"size": "s"}}
}

func (p *thing) Create(_ context.Context, r *Resource) (string, error) {
	if r.Bool("fail") {
		return "", errors.New("asked to fail")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	id := fmt.Sprintf("%s-%d", r.Name, p.n)
	p.live[id] = maps.Clone(r.Properties)
	return id, nil
}

func (p *thing) Update(ctx context.Context, r *Resource, _ map[string]any) error {
	if r.Bool("fail") {
		return errors.New("asked to fail")
	}
	p.mu.Lock()
	if p.hang {
		p.mu.Unlock()
		p.started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	defer p.mu.Unlock()
	if p.live[r.PhysicalID] == nil {
		return errors.New("updating a resource that is not there")
	}
	p.updates++
	p.live[r.PhysicalID] = maps.Clone(r.Properties)
	return nil
}

func (p *thing) Delete(_ context.Context, r *Resource) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, r.PhysicalID)
	return nil
}

func (p *thing) Attribute(_ context.Context, r *Resource, _ string) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live[r.PhysicalID]["size"], nil
}

func (p *thing) liveIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.live))
}

func physIDs(t *testing.T, s *Service, ctx context.Context, id string) map[string]string {
	t.Helper()
	rs, err := s.ListResources(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rs {
		out[r.Name] = r.PhysicalID
	}
	return out
}

const thingTmpl = `
heat_template_version: 2016-10-14
parameters:
  size: {type: number, default: 1}
  zone: {type: string, default: a}
  extra: {type: boolean, default: false}
conditions:
  want_extra: {equals: [{get_param: extra}, true]}
resources:
  a: {type: Test::Thing, properties: {size: {get_param: size}}}
  b: {type: Test::Thing, properties: {zone: {get_param: zone}}}
  c: {type: Test::Thing, properties: {ref: {get_resource: b}}}
  d: {type: Test::Thing}
  e: {type: Test::Thing, condition: want_extra, properties: {size: {if: [want_extra, 7, 1]}}}
outputs:
  a_size: {value: {get_attr: [a, size]}}
`

func TestUpdateInPlaceReplaceAddDeleteAndRollback(t *testing.T) {
	th := newThing()
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}})
	ctx := member("p1")
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "u", Template: []byte(thingTmpl)})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	before := physIDs(t, s, ctx, st.ID)
	if _, ok := before["e"]; ok || len(th.liveIDs()) != 4 {
		t.Fatalf("condition false yet e made: %v", before)
	}

	// Preview: a is updated in place, b replaced (and c with it, as its
	// ref changes), e added, d unchanged.
	o := UpdateStackOpts{Existing: true, Parameters: map[string]any{"size": "3", "zone": "b", "extra": "true"}}
	ch, err := s.PreviewUpdate(ctx, st.ID, o)
	if err != nil {
		t.Fatal(err)
	}
	names := func(l []*StackResource) string {
		var n []string
		for _, r := range l {
			n = append(n, r.Name)
		}
		return fmt.Sprint(n)
	}
	if names(ch.Updated) != "[a]" || names(ch.Replaced) != "[b c]" || names(ch.Added) != "[e]" || names(ch.Unchanged) != "[d]" {
		t.Fatalf("preview: updated %s replaced %s added %s unchanged %s", names(ch.Updated), names(ch.Replaced), names(ch.Added), names(ch.Unchanged))
	}
	if _, err := s.UpdateStack(ctx, st.ID, o); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "UPDATE_COMPLETE" {
		evs, _ := s.ListEvents(ctx, st.ID, "")
		for _, e := range evs {
			t.Log(e.ResourceName, e.Status, e.Reason)
		}
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	after := physIDs(t, s, ctx, st.ID)
	if after["a"] != before["a"] || after["d"] != before["d"] || after["b"] == before["b"] || after["c"] == before["c"] || after["e"] == "" {
		t.Fatalf("before %v after %v", before, after)
	}
	if got := th.liveIDs(); !slices.Equal(got, slices.Sorted(maps.Values(after))) {
		t.Fatalf("live %v, stack %v", got, after)
	}
	if th.live[after["a"]]["size"] != 3 || th.live[after["e"]]["size"] != 7 {
		t.Fatalf("a %v e %v", th.live[after["a"]], th.live[after["e"]])
	}
	st2, _ := s.GetStack(ctx, st.ID)
	outs, _ := s.Outputs(ctx, st2)
	if outs[0].Value != 3 {
		t.Fatalf("outputs %+v", outs)
	}

	// A failing update (a new resource fails, a changes size, b is
	// replaced) rolls back: the same physical resources as before it.
	badTmpl := []byte(thingTmpl[:len(thingTmpl)-len("outputs:\n  a_size: {value: {get_attr: [a, size]}}\n")] +
		"  f: {type: Test::Thing, depends_on: [a, b], properties: {fail: true}}\n")
	mid := physIDs(t, s, ctx, st.ID)
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Existing: true, Template: badTmpl,
		Parameters: map[string]any{"size": "5", "zone": "c"}}); err != nil {
		t.Fatal(err)
	}
	got := waitStack(t, s, ctx, st.ID)
	if got.StackStatus() != "ROLLBACK_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	if now := physIDs(t, s, ctx, st.ID); !maps.Equal(now, mid) {
		t.Fatalf("after rollback %v, before the update %v", now, mid)
	}
	if live := th.liveIDs(); !slices.Equal(live, slices.Sorted(maps.Values(mid))) {
		t.Fatalf("live %v, want %v", live, mid)
	}
	if th.live[mid["a"]]["size"] != 3 || got.Parameters["zone"] != "b" || got.Prev != nil {
		t.Fatalf("a %v params %v", th.live[mid["a"]], got.Parameters)
	}
	evs, _ := s.ListEvents(ctx, st.ID, "u")
	var seq []string
	for _, e := range evs {
		seq = append(seq, e.Status)
	}
	if !slices.Contains(seq, "UPDATE_FAILED") || seq[len(seq)-1] != "ROLLBACK_COMPLETE" {
		t.Fatalf("stack events %v", seq)
	}

	// The condition turning false at update deletes e, alone.
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Existing: true, Parameters: map[string]any{"extra": false}}); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "UPDATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	noE := maps.Clone(mid)
	delete(noE, "e")
	if now := physIDs(t, s, ctx, st.ID); !maps.Equal(now, noE) || th.live[mid["e"]] != nil {
		t.Fatalf("condition off: %v, want %v", now, noE)
	}

	// Removing resources deletes them; the stack deletes cleanly.
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Template: []byte("heat_template_version: 2016-10-14\nresources:\n  d: {type: Test::Thing}\n")}); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "UPDATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	if live := th.liveIDs(); !slices.Equal(live, []string{mid["d"]}) {
		t.Fatalf("live %v", live)
	}
	if err := s.DeleteStack(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" || len(th.liveIDs()) != 0 {
		t.Fatalf("%s, live %v", got.StackStatus(), th.liveIDs())
	}
}

// TestUpdateResumesAfterACrash stops the engine in the middle of an update
// (an in-place update hangs): another engine on the same store finishes
// it, with nothing leaked or made twice.
func TestUpdateResumesAfterACrash(t *testing.T) {
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	th := newThing()
	th.started = make(chan struct{}, 10)
	s1, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Thing": th}})
	if err := s1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := member("p1")
	stk, err := s1.CreateStack(ctx, CreateStackOpts{Name: "crash", Template: []byte(thingTmpl)})
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, s1, ctx, stk.ID)
	before := physIDs(t, s1, ctx, stk.ID)
	th.mu.Lock()
	th.hang = true
	th.mu.Unlock()
	if _, err := s1.UpdateStack(ctx, stk.ID, UpdateStackOpts{Existing: true, Parameters: map[string]any{"size": 2, "zone": "z", "extra": true}}); err != nil {
		t.Fatal(err)
	}
	<-th.started
	s1.Close() // the crash, mid-update
	th.mu.Lock()
	th.hang = false
	th.mu.Unlock()
	s2, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Thing": th}})
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := waitStack(t, s2, ctx, stk.ID); got.StackStatus() != "UPDATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	after := physIDs(t, s2, ctx, stk.ID)
	if after["a"] != before["a"] || after["b"] == before["b"] || th.live[after["a"]]["size"] != 2 || th.live[after["b"]]["zone"] != "z" {
		t.Fatalf("before %v after %v live %v", before, after, th.live)
	}
	if live := th.liveIDs(); !slices.Equal(live, slices.Sorted(maps.Values(after))) {
		t.Fatalf("live %v, stack %v", live, after)
	}
}

// TestCancelUpdateRollsBack cancels an update stuck in an in-place update:
// the stack rolls back to what it was.
func TestCancelUpdateRollsBack(t *testing.T) {
	th := newThing()
	th.started = make(chan struct{}, 10)
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}})
	ctx := member("p1")
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "c", Template: []byte(thingTmpl)})
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, s, ctx, st.ID)
	before := physIDs(t, s, ctx, st.ID)
	if err := s.CancelUpdate(ctx, st.ID, true); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("cancel with no update: %v", err)
	}
	th.mu.Lock()
	th.hang = true
	th.mu.Unlock()
	if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Existing: true, Parameters: map[string]any{"size": 9}}); err != nil {
		t.Fatal(err)
	}
	<-th.started
	th.mu.Lock()
	th.hang = false
	th.mu.Unlock()
	if err := s.CancelUpdate(member("p2"), st.ID, true); !errdefs.IsNotFound(err) {
		t.Fatalf("other project: %v", err)
	}
	if err := s.CancelUpdate(ctx, st.ID, true); err != nil {
		t.Fatal(err)
	}
	got := waitStack(t, s, ctx, st.ID)
	if got.StackStatus() != "ROLLBACK_COMPLETE" || got.Parameters["size"] != 1 {
		t.Fatalf("%s: %s (size %v)", got.StackStatus(), got.StatusReason, got.Parameters["size"])
	}
	if now := physIDs(t, s, ctx, st.ID); !maps.Equal(now, before) || th.live[before["a"]]["size"] != 1 {
		t.Fatalf("after the cancel %v (a %v), before %v", now, th.live[before["a"]], before)
	}
}

// TestBackToBackUpdates issues each update as soon as the previous one
// completed: every one gets an engine run (none is mistaken for the run
// that is finishing).
func TestBackToBackUpdates(t *testing.T) {
	th := newThing()
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}})
	ctx := member("p1")
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "b2b", Template: []byte(thingTmpl)})
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, s, ctx, st.ID)
	for i := 2; i < 40; i++ {
		if _, err := s.UpdateStack(ctx, st.ID, UpdateStackOpts{Existing: true, Parameters: map[string]any{"size": i}}); err != nil {
			t.Fatal(i, err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			cur, _ := s.GetStack(ctx, st.ID)
			if cur.Status != StatusInProgress {
				if cur.StackStatus() != "UPDATE_COMPLETE" {
					t.Fatalf("update %d: %s", i, cur.StackStatus())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("update %d never ran", i)
			}
			runtime.Gosched()
		}
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.updates != 38 {
		t.Fatalf("%d updates", th.updates)
	}
}
