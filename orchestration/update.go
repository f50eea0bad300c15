package orchestration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Updater is a Plugin that can change some properties of a resource in
// place (those whose PropSchema has UpdateAllowed); a change to any other
// property replaces the resource. Update gets r with the new properties
// and the old ones; a Waiter's Ready is polled after it.
type Updater interface {
	Update(ctx context.Context, r *Resource, old map[string]any) error
}

// UpdateStackOpts is a stack update (PUT, or PATCH with Existing).
type UpdateStackOpts struct {
	// Template is the new template; with Existing, nil keeps the current.
	Template []byte
	// Files are the new files (merged into the current with Existing).
	Files map[string]string
	// Parameters are the new parameter values; with Existing they are
	// merged over the current ones.
	Parameters map[string]any
	// Environment replaces the stack's environment; with Existing, nil
	// keeps the current.
	Environment *Environment
	// Existing is PATCH: start from the stack's current template, files,
	// parameters and environment.
	Existing bool
	// ClearParameters are parameters that go back to their defaults.
	ClearParameters []string
	// DisableRollback, if set, replaces the stack's setting.
	DisableRollback *bool
	// TimeoutMins, if not zero, replaces the stack's timeout.
	TimeoutMins int
	// Tags, if not nil, replace the stack's tags.
	Tags []string
}

// Changes is what an update would do to each resource, as a preview
// shows it.
type Changes struct {
	Added, Updated, Replaced, Deleted, Unchanged []*StackResource
}

// target is an update's resolved new state.
type target struct {
	prior Prior
	plan  *plan
}

// prepare resolves and validates an update's target.
func (s *Service) prepare(ctx context.Context, st *Stack, o UpdateStackOpts) (*target, error) {
	if o.TimeoutMins < 0 || o.TimeoutMins > 7*24*60 {
		return nil, errdefs.Invalid("timeout_mins", "must be between 1 and %d", 7*24*60)
	}
	tp := Prior{Template: string(o.Template), Files: o.Files, Environment: o.Environment}
	given := map[string]any{}
	if o.Existing {
		if o.Template == nil {
			tp.Template = st.Template
		}
		files := maps.Clone(st.Files)
		if files == nil {
			files = map[string]string{}
		}
		maps.Copy(files, o.Files)
		tp.Files = files
		if o.Environment == nil {
			tp.Environment = st.Environment
		}
		maps.Copy(given, st.Parameters)
	} else if len(o.Template) == 0 {
		return nil, errdefs.Invalid("template", "no template given")
	}
	size := len(tp.Template)
	for k, f := range tp.Files {
		size += len(k) + len(f)
	}
	if size > 4*s.limits.MaxTemplateBytes {
		return nil, errdefs.Invalid("files", "the template and its files are %d bytes, more than %d", size, 4*s.limits.MaxTemplateBytes)
	}
	t, err := ParseTemplate([]byte(tp.Template), s.limits)
	if err != nil {
		return nil, err
	}
	for _, k := range o.ClearParameters {
		delete(given, k)
	}
	// Current values of parameters the new template no longer has are
	// dropped; given ones must exist.
	for k := range given {
		if _, ok := t.Parameters[k]; !ok {
			delete(given, k)
		}
	}
	maps.Copy(given, envParams(tp.Environment, o.Parameters, t))
	if tp.Parameters, err = t.ResolveParameters(ctx, given, s.deps.Checker); err != nil {
		return nil, err
	}
	plugins, err := s.pluginsFor(tp.Environment, tp.Files)
	if err != nil {
		return nil, err
	}
	p, err := analyze(ctx, t, tp.Parameters, tp.Files, plugins, s.limits, s.deps.Checker)
	if err != nil {
		return nil, err
	}
	return &target{prior: tp, plan: p}, nil
}

// UpdateStack starts updating a stack to a new template, parameters and
// files: resources are created, updated in place, replaced or deleted as
// their properties changed. A failed update rolls back to the stack as
// it was, unless rollback is disabled.
func (s *Service) UpdateStack(ctx context.Context, id string, o UpdateStackOpts) (*Stack, error) {
	st, err := s.updatable(ctx, id)
	if err != nil {
		return nil, err
	}
	tg, err := s.prepare(ctx, st, o)
	if err != nil {
		return nil, err
	}
	var out *Stack
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[Stack](nil, tx, stackTable, st.ID)
		if err != nil {
			return err
		}
		if err := checkUpdatable(cur); err != nil {
			return err
		}
		now := tx.Now().UTC()
		cur.Prev = &Prior{Template: cur.Template, Files: cur.Files, Parameters: cur.Parameters, Environment: cur.Environment}
		cur.Template, cur.Files, cur.Parameters, cur.Environment = tg.prior.Template, tg.prior.Files, tg.prior.Parameters, tg.prior.Environment
		cur.Description = tg.plan.t.Description
		if o.DisableRollback != nil {
			cur.DisableRollback = *o.DisableRollback
		}
		if o.TimeoutMins > 0 {
			cur.TimeoutMins = o.TimeoutMins
		}
		if o.Tags != nil {
			cur.Tags = o.Tags
		}
		cur.Gen++
		cur.Action, cur.Status, cur.StatusReason, cur.Updated, cur.Started = ActionUpdate, StatusInProgress, "Stack UPDATE started", now, now
		if err := tx.Update(stackTable, cur); err != nil {
			return err
		}
		out = cur
		return s.stackEventTxn(tx, cur)
	})
	if err != nil {
		return nil, err
	}
	tg.plan.gen = out.Gen
	s.mu.Lock()
	s.plans[out.ID] = tg.plan
	s.mu.Unlock()
	return out, nil
}

func (s *Service) updatable(ctx context.Context, id string) (*Stack, error) {
	st, err := s.GetStack(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.caller(ctx, "stacks:update", st.ProjectID); err != nil {
		return nil, err
	}
	if st.Deleted != nil {
		return nil, notFound(id)
	}
	return st, checkUpdatable(st)
}

func checkUpdatable(st *Stack) error {
	switch {
	case st.Status == StatusInProgress:
		return fmt.Errorf("orchestration: the stack %s is %s: updating a stack when another action is in progress is not supported: %w",
			st.Name, st.StackStatus(), errdefs.ErrConflict)
	case st.Action == ActionDelete:
		return fmt.Errorf("orchestration: the stack %s is being deleted: %w", st.Name, errdefs.ErrConflict)
	}
	return nil
}

// PreviewUpdate says what UpdateStack would do with o, doing nothing.
func (s *Service) PreviewUpdate(ctx context.Context, id string, o UpdateStackOpts) (*Changes, error) {
	st, err := s.updatable(ctx, id)
	if err != nil {
		return nil, err
	}
	tg, err := s.prepare(ctx, st, o)
	if err != nil {
		return nil, err
	}
	recs, err := s.resources(st.ID)
	if err != nil {
		return nil, err
	}
	state := map[string]*StackResource{}
	for _, r := range recs {
		state[r.Name] = r
	}
	// Properties resolve against the stack as it is; a value that needs a
	// resource the update creates or replaces counts as changed.
	cur := *st
	cur.Template, cur.Files, cur.Parameters, cur.Environment = tg.prior.Template, tg.prior.Files, tg.prior.Parameters, tg.prior.Environment
	// The stack's own plan, for definitions as written.
	old, _ := s.planOf(ctx, st)
	ch := &Changes{}
	// In dependency order, so that a resource whose properties refer to a
	// replaced or added one counts those properties as changed.
	moving := map[string]bool{}
	for _, name := range topoOrder(tg.plan) {
		rd := tg.plan.t.Resources[name]
		r := state[name]
		if r == nil || r.PhysicalID == "" {
			moving[name] = true
			ch.Added = append(ch.Added, &StackResource{StackID: st.ID, Name: name, Type: rd.Type, Action: ActionInit, Status: StatusComplete})
			continue
		}
		kind := "replace"
		if props, err := s.resolveProps(ctx, &cur, tg.plan, name, nil); err == nil {
			kind = decide(tg.plan, r, props)
		} else if old != nil {
			kind = decideRaw(old, tg.plan, r)
		}
		if kind != "replace" {
			var refs []string
			for k, v := range rd.Properties {
				if refersTo(v, moving) {
					refs = append(refs, k)
				}
			}
			if len(refs) > 0 {
				kind = policyFor(tg.plan.plugins[rd.Type], refs)
			}
		}
		switch kind {
		case "unchanged":
			ch.Unchanged = append(ch.Unchanged, r)
		case "update":
			ch.Updated = append(ch.Updated, r)
		default:
			moving[name] = true
			ch.Replaced = append(ch.Replaced, r)
		}
	}
	byName := func(a, b *StackResource) int { return strings.Compare(a.Name, b.Name) }
	for _, l := range []*[]*StackResource{&ch.Added, &ch.Updated, &ch.Replaced, &ch.Unchanged} {
		slices.SortFunc(*l, byName)
	}
	for _, r := range recs {
		if tg.plan.t.Resources[r.Name] == nil && r.PhysicalID != "" {
			ch.Deleted = append(ch.Deleted, r)
		}
	}
	return ch, nil
}

// decide says what an update does to an existing resource with the
// resolved properties props: "unchanged", "update" (in place) or
// "replace".
func decide(p *plan, r *StackResource, props map[string]any) string {
	rd := p.t.Resources[r.Name]
	if rd.Type != r.Type {
		return "replace"
	}
	if r.Status == StatusFailed {
		// As in Heat: a failed resource is replaced, but a nested stack is
		// updated again, its resources deciding for themselves.
		if _, ok := p.plugins[rd.Type].(nestedStack); ok {
			return "update"
		}
		return "replace"
	}
	if r.Status == StatusInProgress && r.Action == ActionUpdate {
		// An in-place update was interrupted (a crash, a cancel): what the
		// physical resource holds is unknown, so apply the target again.
		if _, ok := p.plugins[rd.Type].(Updater); ok {
			return "update"
		}
		return "replace"
	}
	changed := changedKeys(r.Properties, props)
	if len(changed) == 0 {
		return "unchanged"
	}
	return policyFor(p.plugins[rd.Type], changed)
}

// nestedStack is implemented by the plugins whose resources are nested
// stacks.
type nestedStack interface{ nestedStack() }

// policyFor is "update" when the plugin can change every one of the
// changed properties in place, else "replace".
func policyFor(pl Plugin, changed []string) string {
	if _, ok := pl.(Updater); !ok {
		return "replace"
	}
	sch := pl.Schema()
	for _, k := range changed {
		if ps := sch.Properties[k]; ps == nil || !ps.UpdateAllowed {
			return "replace"
		}
	}
	return "update"
}

// refersTo reports whether v uses get_resource or get_attr on one of
// names.
func refersTo(v any, names map[string]bool) bool {
	if name, arg, ok := asFunc(v); ok {
		switch name {
		case "get_resource":
			if s, ok := arg.(string); ok && names[s] {
				return true
			}
		case "get_attr":
			if l, ok := arg.([]any); ok && len(l) > 0 {
				if s, ok := l[0].(string); ok && names[s] {
					return true
				}
			}
		}
		return refersTo(arg, names)
	}
	switch t := v.(type) {
	case map[string]any:
		for _, x := range t {
			if refersTo(x, names) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(t, func(x any) bool { return refersTo(x, names) })
	}
	return false
}

// topoOrder lists a plan's resources, each after those it needs.
func topoOrder(p *plan) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range p.deps[n] {
			visit(d)
		}
		out = append(out, n)
	}
	for _, n := range slices.Sorted(maps.Keys(p.t.Resources)) {
		visit(n)
	}
	return out
}

// decideRaw compares the definitions as written (old's and p's), for a
// preview whose properties need resources that do not exist yet.
func decideRaw(old, p *plan, r *StackResource) string {
	var was map[string]any
	if rd := old.t.Resources[r.Name]; rd != nil {
		was = rd.Properties
	}
	return policyFor(p.plugins[r.Type], changedKeys(was, p.t.Resources[r.Name].Properties))
}

// changedKeys lists the properties whose values differ (compared as
// JSON, as the store keeps them).
func changedKeys(old, cur map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if !sameJSON(old[k], cur[k]) {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok && old[k] != nil {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// update moves a stack's resources to its (new) template: every resource
// of the template is brought up to date in dependency order (created,
// left, updated in place or replaced), then those the template no longer
// has and those replaced are deleted in reverse dependency order of the
// stack as it was. A rollback is the same walk back to the old template,
// where a replaced resource gets its old physical resource back.
func (s *Service) update(ctx context.Context, st *Stack, p *plan) {
	action := st.Action
	rollback := action == ActionRollback
	start := st.Started
	if start.IsZero() {
		start = st.Updated
	}
	cctx, cancel := context.WithDeadline(ctx, start.Add(time.Duration(st.TimeoutMins)*time.Minute))
	defer cancel()
	failure := s.settleAll(cctx, st, p, rollback)
	if failure == nil {
		failure = s.deleteLeftovers(cctx, st, p)
	}
	if ctx.Err() != nil {
		return
	}
	if failure == nil && cctx.Err() != nil {
		failure = errors.New("timed out")
	}
	if failure == nil {
		s.finishUpdate(st.ID, action, StatusComplete, "Stack "+action+" completed successfully", p)
		return
	}
	if rollback || st.DisableRollback {
		s.finishUpdate(st.ID, action, StatusFailed, "Resource "+action+" failed: "+failure.Error(), nil)
		return
	}
	if s.startUpdateRollback(st.ID, "Resource UPDATE failed: "+failure.Error()) {
		cur, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, st.ID)
		if err != nil {
			return
		}
		// This run goes on with the rollback: the watcher need not
		// restart it.
		s.mu.Lock()
		if r := s.running[st.ID]; r != nil && r.action == ActionUpdate && r.gen == st.Gen {
			r.action, r.gen = cur.Action, cur.Gen
		}
		s.mu.Unlock()
		rp, err := s.planOf(ctx, cur)
		if err != nil {
			s.finishUpdate(st.ID, ActionRollback, StatusFailed, err.Error(), nil)
			return
		}
		s.update(ctx, cur, rp)
	}
}

// settleAll brings every resource of the plan up to date.
func (s *Service) settleAll(ctx context.Context, st *Stack, p *plan, rollback bool) error {
	recs, err := s.resources(st.ID)
	if err != nil {
		return err
	}
	state := map[string]*StackResource{}
	for _, r := range recs {
		state[r.Name] = r
	}
	settled := func(name string) bool {
		r := state[name]
		return r != nil && r.Gen == st.Gen && r.Status == StatusComplete && r.PhysicalID != ""
	}
	waiting := map[string]int{}
	var ready []string
	for _, name := range slices.Sorted(maps.Keys(p.t.Resources)) {
		if settled(name) {
			continue
		}
		n := 0
		for _, d := range p.deps[name] {
			if !settled(d) {
				n++
			}
		}
		waiting[name] = n
		if n == 0 {
			ready = append(ready, name)
		}
	}
	current := func(name string) *StackResource { return state[name] }
	results := make(chan outcome)
	inflight := 0
	var failure error
	for {
		for failure == nil && len(ready) > 0 && inflight < s.cfg.Concurrency && ctx.Err() == nil {
			name := ready[0]
			ready = ready[1:]
			inflight++
			r := state[name]
			props, perr := s.resolveProps(ctx, st, p, name, current)
			kind := ""
			if perr == nil && r != nil && r.PhysicalID != "" && r.Old == nil {
				kind = decide(p, r, props)
			}
			go func() {
				if perr != nil {
					results <- outcome{name, perr}
					return
				}
				results <- outcome{name, s.settleOne(ctx, st, p, name, r, props, kind, rollback)}
			}()
		}
		if inflight == 0 {
			break
		}
		o := <-results
		inflight--
		if r, _ := store.Get[StackResource](nil, s.st.Snapshot(), resourceTable, st.ID+"/"+o.name); r != nil {
			state[o.name] = r
		}
		if o.err != nil {
			if failure == nil {
				failure = fmt.Errorf("resources.%s: %s", o.name, errText(o.err))
			}
			continue
		}
		for _, dep := range p.requiredBy[o.name] {
			if waiting[dep]--; waiting[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	if failure == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if failure == nil {
		for name := range p.t.Resources {
			if !settled(name) {
				return errors.New("not every resource could be updated")
			}
		}
	}
	return failure
}

// settleOne brings one resource up to date: kind is decide's verdict for
// a resource that exists ("" otherwise).
func (s *Service) settleOne(ctx context.Context, st *Stack, p *plan, name string, r *StackResource, props map[string]any, kind string, rollback bool) error {
	rd := p.t.Resources[name]
	if r == nil {
		now := s.st.Now().UTC()
		r = &StackResource{StackID: st.ID, Name: name, Type: rd.Type, PhysicalName: physicalName(st, name),
			Action: ActionInit, Status: StatusComplete, Created: now, Updated: now}
		err := s.st.Update(ctx, func(tx *store.Txn) error {
			if _, err := store.Get[StackResource](nil, tx, resourceTable, r.StoreKey()); err == nil {
				return nil
			}
			return tx.Insert(resourceTable, r)
		})
		if err != nil {
			return err
		}
	}
	if rollback && r.Old != nil {
		// Put back what the failed update replaced.
		if r.PhysicalID != "" {
			if pl := p.plugins[r.Type]; pl != nil {
				if err := pl.Delete(s.engineCtx(ctx, st), toPlugin(st, r)); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			}
		}
		old := r.Old
		var err error
		r, err = s.updateResource(st, name, true, func(r *StackResource) {
			r.Type, r.PhysicalName, r.PhysicalID, r.Data, r.Properties, r.Old = old.Type, old.PhysicalName, old.PhysicalID, old.Data, old.Properties, nil
			r.Action, r.Status, r.StatusReason = ActionRollback, StatusComplete, "restored"
		})
		if err != nil {
			return err
		}
		kind = decide(p, r, props)
	}
	switch {
	case r.Old != nil:
		// An interrupted replacement: go on creating the new one.
		return s.createOne(ctx, st, p, r, props, ActionUpdate)
	case r.PhysicalID == "":
		if r.Type != rd.Type {
			if _, err := s.updateResource(st, name, false, func(r *StackResource) { r.Type = rd.Type }); err != nil {
				return err
			}
			r.Type = rd.Type
		}
		if r.Action != ActionCreate || r.Status != StatusInProgress {
			r.Action = ActionInit
		}
		return s.createOne(ctx, st, p, r, props, ActionCreate)
	case kind == "unchanged":
		_, err := s.updateResource(st, name, false, func(r *StackResource) { r.Gen = st.Gen })
		return err
	case kind == "update":
		return s.updateInPlace(ctx, st, p, r, props)
	}
	return s.replace(ctx, st, p, r, props)
}

// updateInPlace changes a resource's properties through its Updater.
func (s *Service) updateInPlace(ctx context.Context, st *Stack, p *plan, r *StackResource, props map[string]any) error {
	pl := p.plugins[r.Type]
	ectx := s.engineCtx(ctx, st)
	r, err := s.updateResource(st, r.Name, true, func(r *StackResource) {
		r.Action, r.Status, r.StatusReason = ActionUpdate, StatusInProgress, "state changed"
	})
	if err != nil {
		return err
	}
	res := toPlugin(st, r)
	res.Properties = props
	if res.Data == nil {
		res.Data = map[string]string{}
	}
	err = pl.(Updater).Update(ectx, res, r.Properties)
	if err == nil {
		if w, ok := pl.(Waiter); ok {
			err = s.poll(ectx, func() (bool, error) { return w.Ready(ectx, res) })
		}
	}
	if err != nil {
		if !stopped(ctx) {
			_, _ = s.updateResource(st, r.Name, true, func(r *StackResource) {
				r.Action, r.Status, r.StatusReason = ActionUpdate, StatusFailed, reasonOf(err, r.Name)
				// What was asked is what to compare against next time.
				r.Properties, r.Data = props, res.Data
			})
		}
		return err
	}
	_, err = s.updateResource(st, r.Name, true, func(r *StackResource) {
		r.Action, r.Status, r.StatusReason = ActionUpdate, StatusComplete, "state changed"
		r.Properties, r.Data, r.Gen = props, res.Data, st.Gen
	})
	return err
}

// DeleteBeforeReplace is implemented by plugins whose resources cannot
// always exist twice (a fixed name, a port only one server may hold):
// when it says so for the resource (with its old properties), the old one
// is deleted before its replacement is created, and a rollback cannot
// bring it back.
type DeleteBeforeReplace interface {
	DeleteBeforeReplace(old *Resource) bool
}

// replace makes a new physical resource for r, keeping the old one in
// r.Old until the update ends (or deleting it first if the type says so).
func (s *Service) replace(ctx context.Context, st *Stack, p *plan, r *StackResource, props map[string]any) error {
	oldPl := p.plugins[r.Type]
	oldRes := toPlugin(st, r)
	oldRes.Properties = r.Properties
	if d, ok := oldPl.(DeleteBeforeReplace); ok && d.DeleteBeforeReplace(oldRes) || oldPl == nil {
		if oldPl != nil {
			if err := oldPl.Delete(s.engineCtx(ctx, st), toPlugin(st, r)); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		}
		r2, err := s.updateResource(st, r.Name, false, func(x *StackResource) {
			x.PhysicalID, x.Data, x.Properties = "", nil, nil
			x.Type = p.t.Resources[r.Name].Type
			x.Action, x.Status = ActionUpdate, StatusInProgress
		})
		if err != nil {
			return err
		}
		return s.createOne(ctx, st, p, r2, props, ActionUpdate)
	}
	r2, err := s.updateResource(st, r.Name, true, func(x *StackResource) {
		x.Old = &Replaced{Type: x.Type, PhysicalName: x.PhysicalName, PhysicalID: x.PhysicalID, Data: x.Data, Properties: x.Properties}
		x.PhysicalID, x.Data, x.Properties = "", nil, nil
		x.Type = p.t.Resources[r.Name].Type
		x.PhysicalName = physicalName(st, fmt.Sprintf("%s-%d", r.Name, st.Gen))
		x.Action, x.Status, x.StatusReason = ActionUpdate, StatusInProgress, "replacing"
	})
	if err != nil {
		return err
	}
	return s.createOne(ctx, st, p, r2, props, ActionUpdate)
}

// deleteOld deletes the physical resource r replaced.
func (s *Service) deleteOld(ctx context.Context, st *Stack, p *plan, r *StackResource) error {
	o := r.Old
	if pl := s.pluginOf(p, o.Type); pl != nil && o.PhysicalID != "" {
		res := &Resource{Name: r.Name, Type: o.Type, StackID: st.ID, StackName: st.Name, PhysicalName: o.PhysicalName,
			PhysicalID: o.PhysicalID, Data: maps.Clone(o.Data), Properties: o.Properties}
		err := pl.Delete(s.engineCtx(ctx, st), res)
		for wait := 50 * time.Millisecond; errdefs.IsConflict(err) && ctx.Err() == nil && wait < 30*time.Second; wait *= 2 {
			_ = sleepCtx(ctx, wait)
			err = pl.Delete(s.engineCtx(ctx, st), res)
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	_, err := s.updateResource(st, r.Name, false, func(r *StackResource) { r.Old = nil })
	return err
}

// pluginOf is the plugin of a type as the plan sees it, else the
// service's.
func (s *Service) pluginOf(p *plan, typ string) Plugin {
	if p != nil {
		if pl, ok := p.plugins[typ]; ok {
			return pl
		}
	}
	return s.plugins[typ]
}

// deleteLeftovers deletes the resources the template no longer has and
// the physical resources that were replaced, in reverse dependency order
// of the stack as it was.
func (s *Service) deleteLeftovers(ctx context.Context, st *Stack, p *plan) error {
	recs, err := s.resources(st.ID)
	if err != nil {
		return err
	}
	pending := map[string]*StackResource{}
	for _, r := range recs {
		if p.t.Resources[r.Name] == nil || r.Old != nil {
			pending[r.Name] = r
		}
	}
	if len(pending) == 0 {
		return nil
	}
	var prev *plan
	if st.Prev != nil {
		prev, _ = s.buildPlan(ctx, st.Prev.Template, st.Prev.Parameters, st.Prev.Files, st.Prev.Environment, nil)
	}
	for len(pending) > 0 {
		// A level: those nothing pending needs.
		var level []*StackResource
		for name, r := range pending {
			needed := false
			if prev != nil {
				for _, d := range prev.requiredBy[name] {
					if pending[d] != nil && d != name {
						needed = true
					}
				}
			}
			if !needed {
				level = append(level, r)
			}
		}
		if len(level) == 0 { // a cycle across templates: take them all
			level = slices.Collect(maps.Values(pending))
		}
		var wg sync.WaitGroup
		errs := make([]error, len(level))
		for i, r := range level {
			wg.Go(func() {
				if p.t.Resources[r.Name] != nil {
					errs[i] = s.deleteOld(ctx, st, p, r)
					return
				}
				pp := p
				if prev != nil {
					pp = prev
				}
				retain := pp.t.Resources[r.Name] != nil && pp.t.Resources[r.Name].DeletionPolicy == PolicyRetain
				if errs[i] = s.deleteOne(ctx, st, &plan{plugins: mergedPlugins(p, pp)}, r, retain); errs[i] == nil {
					errs[i] = s.st.Update(ctx, func(tx *store.Txn) error {
						err := tx.Delete(resourceTable, r.StoreKey())
						if errdefs.IsNotFound(err) {
							return nil
						}
						return err
					})
				}
			})
		}
		wg.Wait()
		for i, r := range level {
			if errs[i] != nil {
				return fmt.Errorf("resources.%s: %s", r.Name, errText(errs[i]))
			}
			delete(pending, r.Name)
		}
	}
	return nil
}

func mergedPlugins(a, b *plan) map[string]Plugin {
	out := maps.Clone(b.plugins)
	maps.Copy(out, a.plugins)
	return out
}

// finishUpdate ends an update or its rollback; a completed one forgets
// the previous state.
func (s *Service) finishUpdate(id, action, status, reason string, p *plan) {
	err := s.st.Update(context.Background(), func(tx *store.Txn) error {
		st, err := store.Get[Stack](nil, tx, stackTable, id)
		if err != nil {
			return err
		}
		if st.Action != action || st.Status != StatusInProgress {
			return nil
		}
		st.Status, st.StatusReason, st.Updated = status, reason, tx.Now().UTC()
		if status == StatusComplete {
			st.Prev = nil
		}
		if err := tx.Update(stackTable, st); err != nil {
			return err
		}
		return s.stackEventTxn(tx, st)
	})
	if err != nil {
		s.log.Warn("orchestration: cannot record the stack's state", "stack", id, "err", err)
	}
}

// CancelUpdate stops an update in progress: it rolls back to the stack as
// it was, or, without rollback, ends UPDATE_FAILED where it stands.
func (s *Service) CancelUpdate(ctx context.Context, id string, rollback bool) error {
	st, err := s.GetStack(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.caller(ctx, "stacks:update", st.ProjectID); err != nil {
		return err
	}
	if st.Action != ActionUpdate || st.Status != StatusInProgress {
		return fmt.Errorf("orchestration: the stack %s is %s, not UPDATE_IN_PROGRESS: %w", st.Name, st.StackStatus(), errdefs.ErrConflict)
	}
	if rollback {
		if !s.startUpdateRollback(st.ID, "Stack UPDATE cancelled") {
			return fmt.Errorf("orchestration: the stack %s is no longer being updated: %w", st.Name, errdefs.ErrConflict)
		}
		return nil
	}
	s.finishUpdate(st.ID, ActionUpdate, StatusFailed, "Stack UPDATE cancelled", nil)
	return nil
}

// startUpdateRollback fails an update in progress and starts its
// rollback to the stack as it was.
func (s *Service) startUpdateRollback(id, reason string) bool {
	ok := false
	err := s.st.Update(context.Background(), func(tx *store.Txn) error {
		ok = false
		st, err := store.Get[Stack](nil, tx, stackTable, id)
		if err != nil {
			return err
		}
		if st.Action != ActionUpdate || st.Status != StatusInProgress || st.Prev == nil {
			return nil
		}
		now := tx.Now().UTC()
		st.Status, st.StatusReason, st.Updated = StatusFailed, reason, now
		if err := s.stackEventTxn(tx, st); err != nil {
			return err
		}
		back := st.Prev
		st.Prev = &Prior{Template: st.Template, Files: st.Files, Parameters: st.Parameters, Environment: st.Environment}
		st.Template, st.Files, st.Parameters, st.Environment = back.Template, back.Files, back.Parameters, back.Environment
		st.Gen++
		st.Action, st.Status, st.StatusReason, st.Started = ActionRollback, StatusInProgress, "Stack ROLLBACK started", now
		if err := tx.Update(stackTable, st); err != nil {
			return err
		}
		ok = true
		return s.stackEventTxn(tx, st)
	})
	return err == nil && ok
}

// envParams merges an environment's parameter_defaults (for parameters
// the template has) and parameters under the given values.
func envParams(env *Environment, given map[string]any, t *Template) map[string]any {
	if env == nil {
		return given
	}
	out := map[string]any{}
	for k, v := range env.ParameterDefaults {
		if _, ok := t.Parameters[k]; ok {
			out[k] = v
		}
	}
	maps.Copy(out, env.Parameters)
	maps.Copy(out, given)
	return out
}
