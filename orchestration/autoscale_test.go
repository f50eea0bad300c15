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
)

// fakeTrusts delegates to a trust that keeps the trustor's credentials
// until revoked.
type fakeTrusts struct {
	mu    sync.Mutex
	by    map[string]*identity.Credentials
	calls int
}

func (f *fakeTrusts) Delegate(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *identity.CredentialsFrom(ctx)
	id := newUUID()
	f.by[id] = &c
	return id, nil
}

func (f *fakeTrusts) Credentials(_ context.Context, id string) (*identity.Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	c, ok := f.by[id]
	if !ok {
		return nil, errdefs.ErrUnauthenticated
	}
	cp := *c
	return &cp, nil
}

func (f *fakeTrusts) Revoke(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.by, id)
	return nil
}

func secretOf(t *testing.T, s *Service, ctx context.Context, stackID, res string) string {
	t.Helper()
	r, err := s.GetResource(ctx, stackID, res)
	if err != nil {
		t.Fatal(err)
	}
	return r.Data["secret"]
}

func TestAutoScalingThroughSignalsWithCooldown(t *testing.T) {
	th := newThing()
	trusts := &fakeTrusts{by: map[string]*identity.Credentials{}}
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}, PublicURL: "http://heat.example:8004/"})
	s.Use(Deps{Trusts: trusts})
	ctx := member("p1")
	tmpl := `
heat_template_version: 2016-10-14
resources:
  asg:
    type: OS::Heat::AutoScalingGroup
    properties: {min_size: 1, max_size: 3, resource: {type: Test::Thing, properties: {zone: "m"}}}
  out:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity, scaling_adjustment: 1, cooldown: 3600}
  in:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: percent_change_in_capacity, scaling_adjustment: -10}
outputs:
  url: {value: {get_attr: [out, alarm_url]}}
  size: {value: {get_attr: [asg, current_size]}}
`
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "as", Template: []byte(tmpl)})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" || got.TrustID == "" {
		t.Fatalf("%s: %s (trust %q)", got.StackStatus(), got.StatusReason, got.TrustID)
	}
	outs, _ := s.Outputs(ctx, st)
	url, _ := outs[1].Value.(string)
	if !strings.HasPrefix(url, "http://heat.example:8004/signal/"+st.ID+"/out/") || outs[0].Value != 1 {
		t.Fatalf("outputs %+v", outs)
	}
	secret := url[strings.LastIndex(url, "/")+1:]
	// No credentials in ctx: the URL's secret is the credential.
	bg := context.Background()
	if err := s.Signal(bg, st.ID, "out", "wrong", nil); !errdefs.IsNotFound(err) {
		t.Fatalf("wrong secret: %v", err)
	}
	size := func() int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, _ := s.GetResource(ctx, st.ID, "asg")
			child, err := s.GetStack(ctx, g.PhysicalID)
			if err != nil {
				t.Fatal(err)
			}
			if child.Status != StatusInProgress {
				return len(th.liveIDs())
			}
			if time.Now().After(deadline) {
				t.Fatal("scaling did not end")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := s.Signal(bg, st.ID, "out", secret, nil); err != nil {
		t.Fatal(err)
	}
	if n := size(); n != 2 {
		t.Fatalf("scale out: %d", n)
	}
	// In the cooldown: ignored.
	if err := s.Signal(bg, st.ID, "out", secret, nil); err != nil {
		t.Fatal(err)
	}
	if n := size(); n != 2 {
		t.Fatalf("scaled in the cooldown: %d", n)
	}
	// -10% of 2 is one less.
	if err := s.Signal(bg, st.ID, "in", secretOf(t, s, ctx, st.ID, "in"), nil); err != nil {
		t.Fatal(err)
	}
	if n := size(); n != 1 {
		t.Fatalf("scale in: %d", n)
	}
	// min_size holds.
	if err := s.Signal(bg, st.ID, "in", secretOf(t, s, ctx, st.ID, "in"), nil); err != nil {
		t.Fatal(err)
	}
	trusts.mu.Lock()
	calls := trusts.calls
	trusts.mu.Unlock()
	if n := size(); n != 1 || calls != 4 {
		t.Fatalf("below min: %d, trust used %d times", n, calls)
	}
	// A revoked trust stops the URL.
	_ = trusts.Revoke(bg, st.TrustID)
	if err := s.Signal(bg, st.ID, "in", secretOf(t, s, ctx, st.ID, "in"), nil); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("revoked trust: %v", err)
	}
	trusts.mu.Lock()
	trusts.by[st.TrustID] = identity.CredentialsFrom(ctx)
	trusts.mu.Unlock()
	if err := s.DeleteStack(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	got := waitStack(t, s, ctx, st.ID)
	trusts.mu.Lock()
	left := len(trusts.by)
	trusts.mu.Unlock()
	if got.StackStatus() != "DELETE_COMPLETE" || len(th.liveIDs()) != 0 || left != 0 {
		t.Fatalf("%s live %v trusts %d", got.StackStatus(), th.liveIDs(), left)
	}
}

func TestAdjust(t *testing.T) {
	for _, c := range []struct {
		cur  int
		typ  string
		adj  float64
		step int
		want int
	}{{2, ChangeInCapacity, 1, 0, 3}, {2, ExactCapacity, 5, 0, 5}, {10, PercentChangeInCapacity, 15, 0, 11},
		{10, PercentChangeInCapacity, -5, 0, 9}, {10, PercentChangeInCapacity, 10, 3, 13}, {10, PercentChangeInCapacity, -50, 0, 5}} {
		if got := adjust(c.cur, c.typ, c.adj, c.step); got != c.want {
			t.Errorf("%+v: %d", c, got)
		}
	}
}

func TestWaitConditionCompletesOnSignals(t *testing.T) {
	s := newService(t, Config{PublicURL: "http://h"})
	ctx := member("p1")
	tmpl := `
heat_template_version: 2016-10-14
resources:
  h: {type: OS::Heat::WaitConditionHandle}
  w: {type: OS::Heat::WaitCondition, properties: {handle: {get_resource: h}, count: 2, timeout: 30}}
outputs:
  data: {value: {get_attr: [w, data]}}
  curl: {value: {get_attr: [h, curl_cli]}}
`
	st, err := s.CreateStack(ctx, CreateStackOpts{Name: "wc", Template: []byte(tmpl)})
	if err != nil {
		t.Fatal(err)
	}
	var sec string
	for sec == "" {
		if r, err := s.GetResource(ctx, st.ID, "h"); err == nil && r.Status == StatusComplete {
			sec = r.Data["secret"]
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Signal(context.Background(), st.ID, "h", sec, map[string]any{"status": "SUCCESS", "data": "one", "id": "one"}); err != nil {
		t.Fatal(err)
	}
	// With a token: another project's stack is not found; a reader may
	// not signal; a member may.
	if err := s.SignalResource(member("p2"), st.ID, "h", nil); !errdefs.IsNotFound(err) {
		t.Fatalf("other project: %v", err)
	}
	reader := identity.WithCredentials(context.Background(), &identity.Credentials{UserID: "r", ProjectID: "p1", Roles: []string{identity.RoleReader}})
	if err := s.SignalResource(reader, st.ID, "h", nil); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("reader: %v", err)
	}
	if err := s.SignalResource(ctx, st.ID, "h", map[string]any{"data": "two", "id": "two"}); err != nil {
		t.Fatal(err)
	}
	if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
		t.Fatalf("%s: %s", got.StackStatus(), got.StatusReason)
	}
	outs, _ := s.Outputs(ctx, st)
	if outs[1].Value != `{"one":"one","two":"two"}` || !strings.Contains(outs[0].Value.(string), "curl -i -X POST") {
		t.Fatalf("outputs %+v", outs)
	}
	if err := s.Signal(context.Background(), st.ID, "h", sec, map[string]any{"status": "MAYBE"}); field(err) != "status" {
		t.Fatalf("bad status: %v", err)
	}
}
