package orchestration

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

func member(project string) context.Context {
	return identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "u-" + project, ProjectID: project,
		Roles: []string{identity.RoleMember, identity.RoleReader}})
}

func newService(t testing.TB, cfg Config) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); st.Close() })
	return s
}

// waitStack waits until the stack is no longer in progress.
func waitStack(t testing.TB, s *Service, ctx context.Context, id string) *Stack {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.GetStack(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != StatusInProgress {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack %s still %s", st.Name, st.StackStatus())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder is a plugin that records creates and deletes, for order and
// leak checks.
type recorder struct {
	mu      sync.Mutex
	live    map[string]bool
	order   []string
	created int
}

func (p *recorder) Schema() *TypeSchema {
	return &TypeSchema{Properties: map[string]*PropSchema{"after": {Type: PropAny}, "fail": {Type: PropBoolean}}, Attributes: map[string]string{"name": "n"}}
}

func (p *recorder) Create(_ context.Context, r *Resource) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Bool("fail") {
		return "", errors.New("boom")
	}
	p.live[r.Name] = true
	p.created++
	p.order = append(p.order, "+"+r.Name)
	return "id-" + r.Name, nil
}

func (p *recorder) Delete(_ context.Context, r *Resource) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, strings.TrimPrefix(r.PhysicalID, "id-"))
	p.order = append(p.order, "-"+strings.TrimPrefix(r.PhysicalID, "id-"))
	return nil
}

func (p *recorder) Attribute(_ context.Context, r *Resource, _ string) (any, error) {
	return r.Name, nil
}

func TestCreateDeleteOrderAndOutputs(t *testing.T) {
	rec := &recorder{live: map[string]bool{}}
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Rec": rec}})
	ctx := member("p1")
	tmpl := `
heat_template_version: rocky
parameters:
  len: {type: number, default: 8, constraints: [{range: {min: 4, max: 64}}]}
resources:
  pw: {type: OS::Heat::RandomString, properties: {length: {get_param: len}}}
  a: {type: Test::Rec}
  b: {type: Test::Rec, properties: {after: {get_attr: [a, name]}}}
  c: {type: Test::Rec, depends_on: [b]}
  t: {type: OS::Heat::TestResource, properties: {value: {str_replace: {template: "x-$P-$Q", params: {$P: {get_resource: pw}, $Q: {get_attr: [b, name]}}}}}}
outputs:
  pw: {value: {get_attr: [pw, value]}}
  t: {value: {get_attr: [t, output]}}
  joined: {value: {list_join: [",", [{get_resource: a}, {get_resource: c}]]}}
`
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "s1", Template: []byte(tmpl), Parameters: map[string]any{"len": "12"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("status %s: %s", got.StackStatus(), got.StatusReason)
	}
	outs, err := s.Outputs(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	for _, o := range outs {
		vals[o.Key] = o.Value
	}
	pw, _ := vals["pw"].(string)
	if len(pw) != 12 || vals["t"] != "x-"+pw+"-b" || vals["joined"] != "id-a,id-c" {
		t.Fatalf("outputs %v", vals)
	}
	// b after a, c after b.
	idx := func(s string) int {
		for i, o := range rec.order {
			if o == s {
				return i
			}
		}
		return -1
	}
	if idx("+a") > idx("+b") || idx("+b") > idx("+c") {
		t.Fatalf("create order %v", rec.order)
	}
	evs, _ := s.ListEvents(ctx, st.ID, "")
	if evs[0].Status != "CREATE_IN_PROGRESS" || evs[0].ResourceName != "s1" || evs[len(evs)-1].Status != "CREATE_COMPLETE" || evs[len(evs)-1].ResourceName != "s1" {
		t.Fatalf("events %+v ... %+v", evs[0], evs[len(evs)-1])
	}
	if err := s.DeleteStack(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" {
		t.Fatalf("status %s: %s", got.StackStatus(), got.StatusReason)
	}
	if len(rec.live) != 0 || idx("-c") > idx("-b") || idx("-b") > idx("-a") {
		t.Fatalf("live %v order %v", rec.live, rec.order)
	}
	if l, _ := s.ListStacks(ctx); len(l) != 0 {
		t.Fatalf("deleted stack listed: %v", l)
	}
}

func TestRollbackDeletesWhatWasCreated(t *testing.T) {
	rec := &recorder{live: map[string]bool{}}
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Rec": rec}})
	ctx := member("p1")
	tmpl := `
heat_template_version: 2015-04-30
resources:
  a: {type: Test::Rec}
  b: {type: Test::Rec, depends_on: a}
  bad: {type: OS::Heat::TestResource, depends_on: b, properties: {fail: true}}
  never: {type: Test::Rec, depends_on: bad}
`
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "rb", Template: []byte(tmpl)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitStack(t, s, ctx, st.ID)
	if got.StackStatus() != "ROLLBACK_COMPLETE" {
		t.Fatalf("status %s: %s", got.StackStatus(), got.StatusReason)
	}
	if rec.created != 2 || len(rec.live) != 0 {
		t.Fatalf("created %d live %v", rec.created, rec.live)
	}
	all, _ := s.ListEvents(ctx, st.ID, "rb")
	var seq []string
	for _, e := range all {
		seq = append(seq, e.Status)
	}
	if strings.Join(seq, " ") != "CREATE_IN_PROGRESS CREATE_FAILED ROLLBACK_IN_PROGRESS ROLLBACK_COMPLETE" {
		t.Fatalf("stack events %v", seq)
	}
	bad, _ := s.ListEvents(ctx, st.ID, "bad")
	if len(bad) < 2 || bad[1].Status != "CREATE_FAILED" || !strings.Contains(bad[1].Reason, "test resource failed") {
		t.Fatalf("events of bad %+v", bad)
	}
	if !strings.Contains(all[1].Reason, "resources.bad") {
		t.Fatalf("stack reason %q", all[1].Reason)
	}

	// disable_rollback keeps what was made, and the stack deletes after.
	st2, err := s.CreateStack(ctx, CreateStackOpts{Name: "nrb", Template: []byte(tmpl), DisableRollback: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st2.ID); got.StackStatus() != "CREATE_FAILED" || !strings.Contains(got.StatusReason, "resources.bad") {
		t.Fatalf("status %s: %s", got.StackStatus(), got.StatusReason)
	}
	if len(rec.live) != 2 {
		t.Fatalf("live %v", rec.live)
	}
	_ = s.DeleteStack(ctx, st2.ID)
	waitStack(t, s, ctx, st2.ID)
	if len(rec.live) != 0 {
		t.Fatalf("live after delete %v", rec.live)
	}
}

func TestRetainAndTimeout(t *testing.T) {
	rec := &recorder{live: map[string]bool{}}
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Rec": rec}})
	ctx := member("p1")
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "keep", Template: []byte(`
heat_template_version: 2013-05-23
resources:
  kept: {type: Test::Rec, deletion_policy: Retain}
  gone: {type: Test::Rec}
`)})
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, s, ctx, st.ID)
	_ = s.DeleteStack(ctx, st.ID)
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" || !rec.live["kept"] || rec.live["gone"] {
		t.Fatalf("%s live %v", got.StackStatus(), rec.live)
	}
}

func TestCrossProjectIsNotFound(t *testing.T) {
	s := newService(t, Config{})
	ctx := member("p1")
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "mine", Template: []byte("heat_template_version: 2013-05-23\nresources: {n: {type: OS::Heat::None}}\n")})
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, s, ctx, st.ID)
	other := member("p2")
	admin := identity.WithCredentials(context.Background(), &identity.Credentials{ProjectID: "p3", Roles: []string{identity.RoleAdmin, identity.RoleMember, identity.RoleReader}})
	for _, c := range []context.Context{other, admin} {
		if _, err := s.GetStack(c, st.ID); !errdefs.IsNotFound(err) {
			t.Fatalf("get: %v", err)
		}
		if _, err := s.FindStack(c, "mine"); !errdefs.IsNotFound(err) {
			t.Fatalf("find: %v", err)
		}
		if err := s.DeleteStack(c, st.ID); !errdefs.IsNotFound(err) {
			t.Fatalf("delete: %v", err)
		}
		if _, err := s.ListResources(c, st.ID); !errdefs.IsNotFound(err) {
			t.Fatalf("resources: %v", err)
		}
		if _, err := s.ListEvents(c, st.ID, ""); !errdefs.IsNotFound(err) {
			t.Fatalf("events: %v", err)
		}
		if l, _ := s.ListStacks(c); len(l) != 0 {
			t.Fatalf("list: %v", l)
		}
	}
}

// slowMaker makes its resource, then hangs until cancelled, as a create
// interrupted by a crash after the service acted; Find finds what it made.
type slowMaker struct {
	mu      sync.Mutex
	made    map[string]string // physical name -> id
	creates int
	hang    bool
}

func (p *slowMaker) Schema() *TypeSchema { return &TypeSchema{Properties: map[string]*PropSchema{}} }

func (p *slowMaker) Create(ctx context.Context, r *Resource) (string, error) {
	p.mu.Lock()
	p.creates++
	p.made[r.PhysicalName] = "made-" + r.Name
	hang := p.hang
	p.mu.Unlock()
	if hang {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return "made-" + r.Name, nil
}

func (p *slowMaker) Find(_ context.Context, r *Resource) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.made[r.PhysicalName], nil
}

func (p *slowMaker) Delete(_ context.Context, r *Resource) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.made {
		if v == r.PhysicalID {
			delete(p.made, k)
		}
	}
	return nil
}

func (p *slowMaker) Attribute(context.Context, *Resource, string) (any, error) { return nil, nil }

func TestResumeAdoptsWhatACrashLeft(t *testing.T) {
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := &slowMaker{made: map[string]string{}, hang: true}
	s1, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Slow": mk}})
	if err := s1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := member("p1")
	stk, err := s1.CreateStack(ctx, CreateStackOpts{Name: "crash", Template: []byte("heat_template_version: 2018-08-31\nresources:\n  a: {type: Test::Slow}\n  b: {type: Test::Slow, depends_on: a}\n")})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		mk.mu.Lock()
		n := mk.creates
		mk.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("create never called")
		}
	}
	s1.Close() // the "crash": a's create was issued, its id never recorded
	if r, _ := s1.GetResource(ctx, stk.ID, "a"); r.ResourceStatus() != "CREATE_IN_PROGRESS" || r.PhysicalID != "" {
		t.Fatalf("a after the crash: %s %q", r.ResourceStatus(), r.PhysicalID)
	}
	mk.mu.Lock()
	mk.hang = false
	mk.mu.Unlock()
	s2, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Slow": mk}})
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := waitStack(t, s2, ctx, stk.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	if a, _ := s2.GetResource(ctx, stk.ID, "a"); a.PhysicalID != "made-a" || mk.creates != 2 || len(mk.made) != 2 {
		t.Fatalf("a %q, %d creates, made %v: a was not adopted", a.PhysicalID, mk.creates, mk.made)
	}
	_ = s2.DeleteStack(ctx, stk.ID)
	waitStack(t, s2, ctx, stk.ID)
	if len(mk.made) != 0 {
		t.Fatalf("leaked %v", mk.made)
	}
}

// TestOneEngineLeads runs two services on one store, as two controllers:
// one engine drives every stack, whichever service took the request, and
// the other takes over the stacks in progress when the first closes.
func TestOneEngineLeads(t *testing.T) {
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{live: map[string]bool{}}
	mk := func() *Service {
		s, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Rec": rec}})
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1 := mk()
	time.Sleep(10 * time.Millisecond) // s1 campaigns first
	s2 := mk()
	defer s2.Close()
	ctx := member("p1")
	tmpl := []byte("heat_template_version: 2018-08-31\nresources:\n  a: {type: Test::Rec}\n  slow: {type: OS::Heat::TestResource, depends_on: a, properties: {wait_secs: 0.3}}\n  b: {type: Test::Rec, depends_on: slow}\n")
	stk, err := s2.CreateStack(ctx, CreateStackOpts{Name: "two", Template: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r, _ := s2.GetResource(ctx, stk.ID, "slow")
		if r.ResourceStatus() == "CREATE_IN_PROGRESS" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slow never started")
		}
	}
	s1.Close() // the leader goes; s2 resumes the stack
	if got := waitStack(t, s2, ctx, stk.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	if rec.created != 2 {
		t.Fatalf("%d creates, want 2", rec.created)
	}
}

func TestDeletedStacksArePurged(t *testing.T) {
	s := newService(t, Config{DeletedRetention: 50 * time.Millisecond})
	ctx := member("p1")
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "old", Template: []byte("heat_template_version: 2013-05-23\nresources: {n: {type: OS::Heat::None}}\n")})
	if err != nil {
		t.Fatal(err)
	}
	waitStack(t, s, ctx, st.ID)
	_ = s.DeleteStack(ctx, st.ID)
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "DELETE_COMPLETE" {
		t.Fatal(got.StackStatus())
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := s.GetStack(ctx, st.ID); errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted stack never purged")
		}
	}
	it, _ := store.List[Event](nil, s.st.Snapshot(), eventTable, stackIndex, st.ID)
	for e := range it {
		t.Fatalf("event left: %+v", e)
	}
}

// TestTimeout: a stack whose timeout passes (here while no engine ran)
// fails its create with "timed out" and rolls back.
func TestTimeout(t *testing.T) {
	st, err := store.Open(context.Background(), memstore.New(), Tables(), &store.Options{CompactInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{live: map[string]bool{}}
	s1, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Rec": rec}})
	_ = s1.Start(context.Background())
	ctx := member("p1")
	stk, err := s1.CreateStack(ctx, CreateStackOpts{Name: "slow", TimeoutMins: 1, Template: []byte(
		"heat_template_version: 2018-08-31\nresources:\n  a: {type: Test::Rec}\n  w: {type: OS::Heat::TestResource, depends_on: a, properties: {wait_secs: 600}}\n")})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if r, _ := s1.GetResource(ctx, stk.ID, "w"); r.ResourceStatus() == "CREATE_IN_PROGRESS" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("w never started")
		}
	}
	s1.Close()
	// Two minutes pass.
	err = st.Update(context.Background(), func(tx *store.Txn) error {
		cur, err := store.Get[Stack](nil, tx, stackTable, stk.ID)
		if err != nil {
			return err
		}
		cur.Created = cur.Created.Add(-2 * time.Minute)
		return tx.Update(stackTable, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := New(Config{Store: st, Plugins: map[string]Plugin{"Test::Rec": rec}})
	_ = s2.Start(context.Background())
	defer s2.Close()
	if got := waitStack(t, s2, ctx, stk.ID); got.StackStatus() != "ROLLBACK_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	evs, _ := s2.ListEvents(ctx, stk.ID, "slow")
	if len(evs) < 2 || evs[1].Status != "CREATE_FAILED" || !strings.Contains(evs[1].Reason, "timed out") {
		t.Fatalf("stack events %+v", evs)
	}
	if len(rec.live) != 0 {
		t.Fatalf("left %v", rec.live)
	}
}

// flavorRes is a resource with a custom-constrained property.
type flavorRes struct{ recorder }

func (p *flavorRes) Schema() *TypeSchema {
	return &TypeSchema{Properties: map[string]*PropSchema{"flavor": {Type: PropString, Constraints: []Constraint{{Custom: "nova.flavor"}}}}}
}

func TestCustomConstraintsOnProperties(t *testing.T) {
	chk := checkerFunc(func(c, v string) error {
		if v == "m1" {
			return nil
		}
		return errdefs.ErrNotFound
	})
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Flavored": &flavorRes{recorder{live: map[string]bool{}}}}})
	s.Use(Deps{Checker: chk})
	ctx := member("p1")
	_, err := s.CreateStack(ctx, CreateStackOpts{Name: "bad", Template: []byte("heat_template_version: 2013-05-23\nresources:\n  r: {type: Test::Flavored, properties: {flavor: m9}}\n")})
	if field(err) != "resources.r.properties.flavor" || !strings.Contains(err.Error(), "nova.flavor was not found") {
		t.Fatalf("literal: %v", err)
	}
	// Through a parameter, the value is checked at create time, as the
	// resource's failure.
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "late", DisableRollback: true, Parameters: map[string]any{"f": "m9"},
		Template: []byte("heat_template_version: 2013-05-23\nparameters: {f: {type: string}}\nresources:\n  r: {type: Test::Flavored, properties: {flavor: {get_param: f}}}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_FAILED" || !strings.Contains(got.StatusReason, "nova.flavor was not found") {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
}
