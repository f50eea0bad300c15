package orchestration

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Signaler is a Plugin whose resources take signals through their signal
// URL (a scaling policy, a wait condition handle). Signal runs with the
// stack owner's credentials (through the stack's trust when there is
// one); data is the signal's JSON body, if any.
type Signaler interface {
	Signal(ctx context.Context, r *Resource, data map[string]any) error
}

// Trusts is what orchestration needs of identity to act for a stack's
// owner long after the owner's token expired (a scaling policy's signal
// URL): a trust from the owner to the orchestration service.
type Trusts interface {
	// Delegate creates a trust from the caller in ctx to the service, with
	// the caller's roles on its project, and returns its id.
	Delegate(ctx context.Context) (string, error)
	// Credentials returns the credentials of a token scoped to the trust;
	// an error once the trust is deleted or expired or its trustor lost
	// the roles.
	Credentials(ctx context.Context, trustID string) (*identity.Credentials, error)
	// Revoke deletes a trust; nil if it is already gone.
	Revoke(ctx context.Context, trustID string) error
}

func newSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signalURL is a resource's pre-signed signal URL: anyone holding it may
// signal the resource, without a token.
func (s *Service) signalURL(r *Resource) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/signal/" + r.StackID + "/" + url.PathEscape(r.Name) + "/" + r.Data["secret"]
}

// Signal delivers a signal to a resource through its pre-signed URL: the
// secret must be the resource's. The plugin acts with the stack's trust
// (or, without trusts, with the owner's stored roles).
func (s *Service) Signal(ctx context.Context, stackID, resource, secret string, data map[string]any) error {
	st, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, stackID)
	if err != nil || st.Deleted != nil {
		return notFound(stackID)
	}
	rec, err := store.Get[StackResource](nil, s.st.Snapshot(), resourceTable, stackID+"/"+resource)
	if err != nil || rec.Data["secret"] == "" || subtle.ConstantTimeCompare([]byte(rec.Data["secret"]), []byte(secret)) != 1 {
		return fmt.Errorf("orchestration: the Resource (%s) could not be found: %w", resource, errdefs.ErrNotFound)
	}
	p, err := s.planOf(ctx, st)
	if err != nil {
		return err
	}
	sg, ok := p.plugins[rec.Type].(Signaler)
	if !ok {
		return errdefs.Invalid("resource", "the resource %s (%s) takes no signals", resource, rec.Type)
	}
	actx := s.engineCtx(ctx, st)
	if s.deps.Trusts != nil && st.TrustID != "" {
		c, err := s.deps.Trusts.Credentials(ctx, st.TrustID)
		if err != nil {
			return errdefs.Wrap(errdefs.ErrForbidden, fmt.Errorf("orchestration: the stack's trust no longer lets it act: %w", err))
		}
		actx = identity.WithCredentials(ctx, c)
	}
	res := toPlugin(st, rec)
	res.Properties = rec.Properties
	return sg.Signal(actx, res, data)
}

// SignalResource signals a resource as the caller (stack resource
// signal): the caller must be allowed to update the stack.
func (s *Service) SignalResource(ctx context.Context, stackID, resource string, data map[string]any) error {
	st, err := s.GetStack(ctx, stackID)
	if err != nil {
		return err
	}
	if _, err := s.caller(ctx, "stacks:update", st.ProjectID); err != nil {
		return err
	}
	rec, err := s.GetResource(ctx, stackID, resource)
	if err != nil {
		return err
	}
	p, err := s.planOf(ctx, st)
	if err != nil {
		return err
	}
	sg, ok := p.plugins[rec.Type].(Signaler)
	if !ok {
		return errdefs.Invalid("resource", "the resource %s (%s) takes no signals", resource, rec.Type)
	}
	res := toPlugin(st, rec)
	res.Properties = rec.Properties
	return sg.Signal(ctx, res, data)
}

// asgPlugin is OS::Heat::AutoScalingGroup: a group of resource copies
// whose size scaling policies change between min_size and max_size.
type asgPlugin struct{ groupPlugin }

func (asgPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A group of identical resources that scaling policies resize.",
		Properties: map[string]*PropSchema{
			"min_size":         {Type: PropInteger, Required: true, UpdateAllowed: true, Constraints: []Constraint{{IsRange: true, Min: ptr(0)}}},
			"max_size":         {Type: PropInteger, Required: true, UpdateAllowed: true, Constraints: []Constraint{{IsRange: true, Min: ptr(0)}}},
			"desired_capacity": {Type: PropInteger, UpdateAllowed: true, Description: "The initial size (default min_size)."},
			"cooldown":         {Type: PropInteger, UpdateAllowed: true, Description: "Seconds after a scaling during which signals are ignored."},
			"resource":         {Type: PropMap, Required: true, UpdateAllowed: true, Description: "The members' definition: type and properties."},
			"rolling_updates":  {Type: PropMap, UpdateAllowed: true, Description: "Unused here."},
		},
		Attributes: map[string]string{"current_size": "The number of members.", "outputs": "The members' references by name.",
			"outputs_list": "The members' references.", "refs": "The members' references."},
	}
}

func (p asgPlugin) OpenAttributes() bool { return true }

// def makes the group's resource_def from the resource property.
func asgDef(r *Resource) *Resource {
	g := *r
	g.Properties = map[string]any{"resource_def": r.Map("resource"), "index_var": "%index%"}
	return &g
}

func clamp(n, lo, hi int) int { return max(lo, min(n, hi)) }

func (p asgPlugin) Create(ctx context.Context, r *Resource) (string, error) {
	lo, hi := r.Int("min_size"), r.Int("max_size")
	if lo > hi {
		return "", invalid("resources."+r.Name+".properties.min_size", "min_size %d is more than max_size %d", lo, hi)
	}
	n := lo
	if _, ok := r.Properties["desired_capacity"]; ok {
		n = clamp(r.Int("desired_capacity"), lo, hi)
	}
	if err := p.checkCount(r, hi); err != nil {
		return "", err
	}
	keep, _ := members(nil, nil, n, nil)
	tmpl, err := p.template(asgDef(r), keep)
	if err != nil {
		return "", err
	}
	r.Data["members"] = strings.Join(keep, ",")
	return p.create(ctx, r, tmpl, nil)
}

// resize moves the group to n members (the oldest go first).
func (p asgPlugin) resize(ctx context.Context, r *Resource, n int) error {
	cur := splitList(r.Data["members"])
	removed := splitList(r.Data["removed"])
	oldest := cur
	if len(cur) > n {
		oldest = append(slices.Clone(cur[len(cur)-n:]), cur[:len(cur)-n]...)
	}
	keep, gone := members(oldest, removed, n, nil)
	slices.SortFunc(keep, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	tmpl, err := p.template(asgDef(r), keep)
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

func (p asgPlugin) Update(ctx context.Context, r *Resource, old map[string]any) error {
	lo, hi := r.Int("min_size"), r.Int("max_size")
	if lo > hi {
		return invalid("resources."+r.Name+".properties.min_size", "min_size %d is more than max_size %d", lo, hi)
	}
	if err := p.checkCount(r, hi); err != nil {
		return err
	}
	n := len(splitList(r.Data["members"]))
	if d, ok := r.Properties["desired_capacity"]; ok && !sameJSON(d, old["desired_capacity"]) {
		n = r.Int("desired_capacity")
	}
	return p.resize(ctx, r, clamp(n, lo, hi))
}

func (p asgPlugin) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	names := splitList(r.Data["members"])
	switch name {
	case "current_size":
		return len(names), nil
	case "outputs_list":
		return p.groupPlugin.Attribute(ctx, r, "refs")
	case "outputs":
		return p.groupPlugin.Attribute(ctx, r, "refs_map")
	}
	return p.groupPlugin.Attribute(ctx, r, name)
}

// Scaling adjustment types.
const (
	ChangeInCapacity        = "change_in_capacity"
	ExactCapacity           = "exact_capacity"
	PercentChangeInCapacity = "percent_change_in_capacity"
)

// policyPlugin is OS::Heat::ScalingPolicy: its signal URL resizes an
// AutoScalingGroup of the same stack.
type policyPlugin struct{ s *Service }

func (policyPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A scaling policy of an AutoScalingGroup, applied when its signal URL is POSTed to.",
		Properties: map[string]*PropSchema{
			"auto_scaling_group_id": {Type: PropString, Required: true, Description: "The group (get_resource of it)."},
			"adjustment_type": {Type: PropString, Required: true, UpdateAllowed: true,
				Constraints: []Constraint{{AllowedValues: []any{ChangeInCapacity, ExactCapacity, PercentChangeInCapacity}}}},
			"scaling_adjustment":  {Type: PropNumber, Required: true, UpdateAllowed: true},
			"cooldown":            {Type: PropInteger, UpdateAllowed: true, Description: "Seconds after a scaling during which signals are ignored."},
			"min_adjustment_step": {Type: PropInteger, UpdateAllowed: true, Description: "Least change of a percent adjustment."},
		},
		Attributes: map[string]string{"alarm_url": "The pre-signed URL that applies the policy (POST, no token).",
			"signal_url": "The same pre-signed URL."},
	}
}

func (p policyPlugin) Create(_ context.Context, r *Resource) (string, error) {
	r.Data["secret"] = newSecret()
	return r.PhysicalName, nil
}

func (policyPlugin) Update(context.Context, *Resource, map[string]any) error { return nil }

func (policyPlugin) Delete(context.Context, *Resource) error { return nil }

func (p policyPlugin) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "alarm_url", "signal_url":
		return p.s.signalURL(r), nil
	case "show":
		return map[string]any{"alarm_url": p.s.signalURL(r)}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

// adjust is the group's new size, as Heat computes it.
func adjust(cur int, typ string, adj float64, minStep int) int {
	switch typ {
	case ExactCapacity:
		return int(adj)
	case PercentChangeInCapacity:
		delta := float64(cur) * adj / 100
		var n int
		if math.Abs(delta) < 1 {
			if delta > 0 {
				n = int(math.Ceil(delta))
			} else {
				n = int(math.Floor(delta))
			}
		} else if delta > 0 {
			n = int(math.Floor(delta))
		} else {
			n = int(math.Ceil(delta))
		}
		if minStep > 0 && n != 0 && abs(n) < minStep {
			n = minStep * sign(n)
		}
		return cur + n
	}
	return cur + int(adj)
}

func abs(n int) int { return max(n, -n) }

func sign(n int) int {
	if n < 0 {
		return -1
	}
	return 1
}

// Signal applies the policy: unless the policy (or its group) is in its
// cooldown, the group is resized, within min_size and max_size.
func (p policyPlugin) Signal(ctx context.Context, r *Resource, _ map[string]any) error {
	s := p.s
	st, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, r.StackID)
	if err != nil {
		return err
	}
	recs, err := s.resources(st.ID)
	if err != nil {
		return err
	}
	gid := r.Str("auto_scaling_group_id")
	i := slices.IndexFunc(recs, func(x *StackResource) bool {
		return x.PhysicalID == gid && x.PhysicalID != "" && x.Type == "OS::Heat::AutoScalingGroup"
	})
	if i < 0 {
		return errdefs.Invalid("auto_scaling_group_id", "%q is not an AutoScalingGroup of the stack", gid)
	}
	g := recs[i]
	if g.Status == StatusInProgress {
		return fmt.Errorf("orchestration: the group %s is %s: %w", g.Name, g.ResourceStatus(), errdefs.ErrConflict)
	}
	now := s.st.Now()
	cool := r.Int("cooldown")
	if _, ok := r.Properties["cooldown"]; !ok || r.Properties["cooldown"] == nil {
		cool = intOf(g.Properties["cooldown"])
	}
	if last, err := time.Parse(time.RFC3339Nano, g.Data["last_scaled"]); err == nil && now.Before(last.Add(time.Duration(cool)*time.Second)) {
		s.log.Info("orchestration: scaling signal in cooldown, ignored", "stack", st.ID, "policy", r.Name)
		return nil
	}
	gr := toPlugin(st, g)
	gr.Properties = g.Properties
	cur := len(splitList(g.Data["members"]))
	n := clamp(adjust(cur, r.Str("adjustment_type"), floatOf(r.Properties["scaling_adjustment"]), r.Int("min_adjustment_step")),
		gr.Int("min_size"), gr.Int("max_size"))
	if n == cur {
		return nil
	}
	asg, ok := s.pluginOf(nil, g.Type).(asgPlugin)
	if !ok {
		return errors.New("orchestration: the group's type is not an AutoScalingGroup")
	}
	if gr.Data == nil {
		gr.Data = map[string]string{}
	}
	if err := asg.resize(ctx, gr, n); err != nil {
		return err
	}
	gr.Data["last_scaled"] = now.UTC().Format(time.RFC3339Nano)
	_, err = s.updateResource(st, g.Name, true, func(x *StackResource) {
		x.Data = gr.Data
		x.StatusReason = fmt.Sprintf("scaled from %d to %d by %s", cur, n, r.Name)
	})
	return err
}

func intOf(v any) int {
	f, err := toNumber(v)
	if err != nil {
		return 0
	}
	return int(f)
}

func floatOf(v any) float64 {
	f, _ := toNumber(v)
	return f
}

// handlePlugin is OS::Heat::WaitConditionHandle: a pre-signed URL a guest
// POSTs {"status": "SUCCESS"|"FAILURE", "reason", "data", "id"} to.
type handlePlugin struct{ s *Service }

func (handlePlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "A handle that guests signal (curl -X POST its endpoint) to complete a WaitCondition.",
		Properties:  map[string]*PropSchema{},
		Attributes: map[string]string{"endpoint": "The pre-signed signal URL.", "curl_cli": "A curl command that signals.",
			"token": "Unused: the endpoint is pre-signed."},
	}
}

func (handlePlugin) Create(_ context.Context, r *Resource) (string, error) {
	r.Data["secret"] = newSecret()
	return r.PhysicalName, nil
}

func (handlePlugin) Delete(context.Context, *Resource) error { return nil }

func (p handlePlugin) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	u := p.s.signalURL(r)
	switch name {
	case "endpoint":
		return u, nil
	case "curl_cli":
		return "curl -i -X POST -H 'Content-Type: application/json' " + u, nil
	case "token":
		return "", nil
	case "show":
		return map[string]any{"endpoint": u}, nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}

// maxSignals bounds the signals one handle keeps.
const maxSignals = 1000

// Signal records one signal.
func (p handlePlugin) Signal(_ context.Context, r *Resource, data map[string]any) error {
	status, _ := data["status"].(string)
	if status == "" {
		status = "SUCCESS"
	}
	if status != "SUCCESS" && status != "FAILURE" {
		return errdefs.Invalid("status", "must be SUCCESS or FAILURE")
	}
	sig := map[string]any{"status": status, "reason": textOf(data["reason"]), "data": textOf(data["data"])}
	id := textOf(data["id"])
	if len(id) > 255 || len(sig["reason"].(string)) > 4096 || len(sig["data"].(string)) > 64<<10 {
		return errdefs.Invalid("data", "the signal is too large")
	}
	st, err := store.Get[Stack](nil, p.s.st.Snapshot(), stackTable, r.StackID)
	if err != nil {
		return err
	}
	var ferr error
	_, err = p.s.updateResource(st, r.Name, false, func(x *StackResource) {
		ferr = nil
		var sigs map[string]any
		_ = json.Unmarshal([]byte(x.Data["signals"]), &sigs)
		if sigs == nil {
			sigs = map[string]any{}
		}
		x.Data = maps.Clone(x.Data)
		if x.Data == nil {
			x.Data = map[string]string{}
		}
		id := id
		if id == "" {
			id = strconv.Itoa(len(sigs) + 1)
		}
		if len(sigs) >= maxSignals {
			ferr = errdefs.Invalid("id", "the handle has %d signals already", maxSignals)
			return
		}
		sigs[id] = sig
		b, _ := json.Marshal(sigs)
		x.Data["signals"] = string(b)
	})
	if err != nil {
		return err
	}
	return ferr
}

// waitPlugin is OS::Heat::WaitCondition: ready once its handle has count
// SUCCESS signals; a FAILURE signal or the timeout fails it.
type waitPlugin struct{ s *Service }

func (waitPlugin) Schema() *TypeSchema {
	return &TypeSchema{
		Description: "Waits for count signals on a WaitConditionHandle.",
		Properties: map[string]*PropSchema{
			"handle":  {Type: PropString, Required: true, Description: "The handle (get_resource of it)."},
			"count":   {Type: PropInteger, Default: 1, UpdateAllowed: true, Constraints: []Constraint{{IsRange: true, Min: ptr(1), Max: ptr(maxSignals)}}},
			"timeout": {Type: PropInteger, Required: true, UpdateAllowed: true, Constraints: []Constraint{{IsRange: true, Min: ptr(1), Max: ptr(43200)}}},
		},
		Attributes: map[string]string{"data": "The signals' data by id (JSON)."},
	}
}

func (p waitPlugin) Create(_ context.Context, r *Resource) (string, error) {
	r.Data["deadline"] = p.s.st.Now().Add(time.Duration(r.Int("timeout")) * time.Second).UTC().Format(time.RFC3339Nano)
	r.Data["handle"] = r.Str("handle")
	r.Data["count"] = strconv.Itoa(r.Int("count"))
	return r.PhysicalName, nil
}

func (waitPlugin) Delete(context.Context, *Resource) error { return nil }

func (p waitPlugin) signals(r *Resource) map[string]map[string]any {
	recs, _ := p.s.resources(r.StackID)
	for _, x := range recs {
		if x.PhysicalID == r.Data["handle"] && x.Type == "OS::Heat::WaitConditionHandle" {
			var sigs map[string]map[string]any
			_ = json.Unmarshal([]byte(x.Data["signals"]), &sigs)
			return sigs
		}
	}
	return nil
}

func (p waitPlugin) Ready(_ context.Context, r *Resource) (bool, error) {
	ok := 0
	for id, sg := range p.signals(r) {
		if sg["status"] == "FAILURE" {
			return false, fmt.Errorf("the wait condition got a FAILURE signal (%s): %v", id, sg["reason"])
		}
		ok++
	}
	n, _ := strconv.Atoi(r.Data["count"])
	if ok >= n {
		return true, nil
	}
	if d, err := time.Parse(time.RFC3339Nano, r.Data["deadline"]); err == nil && p.s.st.Now().After(d) {
		return false, fmt.Errorf("the wait condition timed out: %d of %d signals", ok, n)
	}
	return false, nil
}

func (p waitPlugin) Attribute(_ context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "data", "show":
		out := map[string]any{}
		for id, sg := range p.signals(r) {
			out[id] = sg["data"]
		}
		b, _ := json.Marshal(out)
		return string(b), nil
	}
	return nil, fmt.Errorf("no attribute %q", name)
}
