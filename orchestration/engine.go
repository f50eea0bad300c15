package orchestration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// lead runs the engine while this process leads it: with several
// controllers on one etcd cluster one engine drives the stacks at a time,
// and another takes over (resuming every stack in progress) when its
// leader is lost.
func (s *Service) lead() {
	for {
		l, err := s.st.Campaign(s.ctx, "orchestration-engine")
		if err != nil {
			return // closing
		}
		ctx, cancel := context.WithCancel(s.ctx)
		go func() {
			select {
			case <-l.Lost():
			case <-ctx.Done():
			}
			cancel()
		}()
		s.watch(ctx)
		cancel()
		s.runs.Wait()
		if s.ctx.Err() != nil {
			_ = l.Resign(context.Background())
			return
		}
	}
}

// watch starts a run for every stack in progress, as the store shows them,
// until ctx ends: stacks created or deleted through any controller, and
// those a previous leader (or process) left unfinished.
func (s *Service) watch(ctx context.Context) {
	var lastPurge time.Time
	for {
		ws := memdb.NewWatchSet()
		it, err := store.List[Stack](ws, s.st.Snapshot(), stackTable, activeIndex, true)
		if err != nil {
			return
		}
		for st := range it {
			s.ensureRun(ctx, st)
		}
		if time.Since(lastPurge) > s.cfg.DeletedRetention/10 {
			s.purge(ctx)
			lastPurge = time.Now()
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.DeletedRetention/10)
		_ = ws.WatchCtx(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// purge removes the stacks deleted more than DeletedRetention ago, with
// their events.
func (s *Service) purge(ctx context.Context) {
	cutoff := s.st.Now().Add(-s.cfg.DeletedRetention)
	it, err := store.List[Stack](nil, s.st.Snapshot(), stackTable, store.IDIndex)
	if err != nil {
		return
	}
	for st := range it {
		if st.Deleted == nil || st.Deleted.After(cutoff) {
			continue
		}
		err := s.st.Update(ctx, func(tx *store.Txn) error {
			evs, err := store.List[Event](nil, tx, eventTable, stackIndex, st.ID)
			if err != nil {
				return err
			}
			for e := range evs {
				if err := tx.Delete(eventTable, e.StoreKey()); err != nil {
					return err
				}
			}
			return tx.Delete(stackTable, st.ID)
		})
		if err != nil {
			s.log.Warn("orchestration: cannot purge a deleted stack", "stack", st.ID, "err", err)
		}
	}
}

// ensureRun makes sure a goroutine works on the stack's current action: it
// starts one, or stops a run of an older action (a create the stack's
// delete replaced) and has it look again.
func (s *Service) ensureRun(ctx context.Context, st *Stack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.running[st.ID]; r != nil {
		if r.action != st.Action || r.gen != st.Gen {
			r.again = true
			r.cancel()
		}
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &run{cancel: cancel, action: st.Action, gen: st.Gen}
	s.running[st.ID] = r
	s.runs.Add(1)
	go func() {
		defer s.runs.Done()
		id := st.ID
		for {
			s.work(rctx, id)
			s.mu.Lock()
			if !r.again || ctx.Err() != nil {
				delete(s.running, id)
				s.mu.Unlock()
				cancel()
				return
			}
			r.again = false
			cancel()
			rctx, cancel = context.WithCancel(ctx)
			r.cancel = cancel
			if cur, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, id); err == nil {
				r.action, r.gen = cur.Action, cur.Gen
			}
			s.mu.Unlock()
		}
	}()
}

// work advances a stack in progress to its end.
func (s *Service) work(ctx context.Context, id string) {
	st, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, id)
	if err != nil || st.Status != StatusInProgress {
		return
	}
	p, err := s.planOf(ctx, st)
	if err != nil {
		s.finish(ctx, st.ID, st.Action, StatusFailed, err.Error())
		return
	}
	switch {
	case st.Action == ActionCreate:
		s.create(ctx, st, p)
	case st.Action == ActionUpdate || st.Action == ActionRollback && st.Prev != nil:
		s.update(ctx, st, p)
	case st.Action == ActionRollback, st.Action == ActionDelete:
		s.delete(ctx, st, p)
	}
}

// planOf returns a stack's parsed and analysed template.
func (s *Service) planOf(ctx context.Context, st *Stack) (*plan, error) {
	s.mu.Lock()
	p := s.plans[st.ID]
	s.mu.Unlock()
	if p != nil && p.gen == st.Gen {
		return p, nil
	}
	p, err := s.buildPlan(ctx, st.Template, st.Parameters, st.Files, st.Environment, nil)
	if err != nil {
		return nil, err
	}
	p.gen = st.Gen
	s.mu.Lock()
	s.plans[st.ID] = p
	s.mu.Unlock()
	return p, nil
}

// buildPlan parses and analyses a template with resolved parameters.
func (s *Service) buildPlan(ctx context.Context, tmpl string, params map[string]any, files map[string]string, env *Environment, chk Checker) (*plan, error) {
	t, err := ParseTemplate([]byte(tmpl), s.limits)
	if err != nil {
		return nil, err
	}
	plugins, err := s.pluginsFor(env, files)
	if err != nil {
		return nil, err
	}
	return analyze(ctx, t, params, files, plugins, s.limits, chk)
}

// engineCtx carries the stack owner's credentials, with which the plugins
// act (also after a restart, when no request is there).
func (s *Service) engineCtx(ctx context.Context, st *Stack) context.Context {
	return identity.WithCredentials(ctx, &identity.Credentials{UserID: st.UserID, ProjectID: st.ProjectID, ProjectDomainID: st.ProjectDomainID,
		IsAdminProject: st.AdminProject, Roles: slices.Clone(st.Roles)})
}

func toPlugin(st *Stack, r *StackResource) *Resource {
	return &Resource{Name: r.Name, Type: r.Type, StackID: st.ID, StackName: st.Name, PhysicalName: r.PhysicalName,
		PhysicalID: r.PhysicalID, Data: maps.Clone(r.Data)}
}

// evaluator resolves functions against the stack's resources as stored;
// recs, if set, is the engine's current view.
func (s *Service) evaluator(ctx context.Context, st *Stack, p *plan, recs func(string) *StackResource) *evaluator {
	if recs == nil {
		recs = func(name string) *StackResource {
			r, _ := store.Get[StackResource](nil, s.st.Snapshot(), resourceTable, st.ID+"/"+name)
			return r
		}
	}
	return &evaluator{t: p.t, conds: p.conds, params: st.Parameters, files: st.Files, lim: s.limits, stackName: st.Name, stackID: st.ID, projectID: st.ProjectID,
		ref: func(name string) (any, error) {
			r := recs(name)
			if r == nil || r.PhysicalID == "" {
				return nil, fmt.Errorf("orchestration: the resource %q has not been created", name)
			}
			if rf, ok := p.plugins[r.Type].(Referencer); ok {
				return rf.RefID(toPlugin(st, r)), nil
			}
			return r.PhysicalID, nil
		},
		attr: func(name, attr string) (any, error) {
			r := recs(name)
			if r == nil || r.PhysicalID == "" {
				return nil, fmt.Errorf("orchestration: the resource %q has not been created", name)
			}
			pl := p.plugins[r.Type]
			if pl == nil {
				return nil, fmt.Errorf("orchestration: the resource type %q is unknown", r.Type)
			}
			if _, ok := pl.Schema().Attributes[attr]; !ok && attr != "show" && !openAttributes(pl) {
				return nil, invalid("get_attr", "the resource %q (%s) has no attribute %q", name, r.Type, attr)
			}
			return pl.Attribute(ctx, toPlugin(st, r), attr)
		}}
}

// update changes one resource record (read in the transaction, so it never
// conflicts) and writes its event.
func (s *Service) updateResource(st *Stack, name string, event bool, fn func(r *StackResource)) (*StackResource, error) {
	var out *StackResource
	err := s.st.Update(context.Background(), func(tx *store.Txn) error {
		r, err := store.Get[StackResource](nil, tx, resourceTable, st.ID+"/"+name)
		if err != nil {
			return err
		}
		fn(r)
		r.Updated = tx.Now().UTC()
		if err := tx.Update(resourceTable, r); err != nil {
			return err
		}
		out = r
		if event {
			return s.resourceEventTxn(tx, st, r)
		}
		return nil
	})
	return out, err
}

// finish ends a stack's action unless the stack moved on to another one
// meanwhile (a delete during a create).
func (s *Service) finish(ctx context.Context, id, action, status, reason string) bool {
	done := false
	err := s.st.Update(context.Background(), func(tx *store.Txn) error {
		done = false
		st, err := store.Get[Stack](nil, tx, stackTable, id)
		if err != nil {
			return err
		}
		if st.Action != action || st.Status != StatusInProgress {
			return nil
		}
		st.Status, st.StatusReason, st.Updated = status, reason, tx.Now().UTC()
		if action == ActionDelete && status == StatusComplete {
			now := tx.Now().UTC()
			st.Deleted = &now
		}
		if err := tx.Update(stackTable, st); err != nil {
			return err
		}
		done = true
		return s.stackEventTxn(tx, st)
	})
	if err != nil {
		s.log.Warn("orchestration: cannot record the stack's state", "stack", id, "err", err)
		return false
	}
	return done
}

// startRollback fails a create in progress and starts its rollback.
func (s *Service) startRollback(id, reason string) bool {
	ok := false
	err := s.st.Update(context.Background(), func(tx *store.Txn) error {
		ok = false
		st, err := store.Get[Stack](nil, tx, stackTable, id)
		if err != nil {
			return err
		}
		if st.Action != ActionCreate || st.Status != StatusInProgress {
			return nil
		}
		st.Status, st.StatusReason, st.Updated = StatusFailed, reason, tx.Now().UTC()
		if err := s.stackEventTxn(tx, st); err != nil {
			return err
		}
		st.Action, st.Status, st.StatusReason = ActionRollback, StatusInProgress, "Stack ROLLBACK started"
		if err := tx.Update(stackTable, st); err != nil {
			return err
		}
		ok = true
		return s.stackEventTxn(tx, st)
	})
	return err == nil && ok
}

type outcome struct {
	name string
	err  error
}

// create creates the resources of a stack in dependency order, at most
// Concurrency at once, resuming whatever an earlier run left.
func (s *Service) create(ctx context.Context, st *Stack, p *plan) {
	deadline := st.Created.Add(time.Duration(st.TimeoutMins) * time.Minute)
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	recs, err := s.resources(st.ID)
	if err != nil {
		return
	}
	state := map[string]*StackResource{}
	for _, r := range recs {
		state[r.Name] = r
	}
	waiting := map[string]int{}
	var ready []string
	done := 0
	for _, name := range slices.Sorted(maps.Keys(p.t.Resources)) {
		if r := state[name]; r != nil && r.Action == ActionCreate && r.Status == StatusComplete {
			done++
			continue
		}
		n := 0
		for _, d := range p.deps[name] {
			if r := state[d]; r == nil || r.Action != ActionCreate || r.Status != StatusComplete {
				n++
			}
		}
		waiting[name] = n
		if n == 0 {
			ready = append(ready, name)
		}
	}
	var current = func(name string) *StackResource { return state[name] }
	results := make(chan outcome)
	inflight := 0
	var failure error
	for {
		for failure == nil && len(ready) > 0 && inflight < s.cfg.Concurrency && cctx.Err() == nil {
			name := ready[0]
			ready = ready[1:]
			inflight++
			r := state[name]
			// The evaluator reads the state map, which only this goroutine
			// writes, so resolve properties before handing off.
			props, perr := s.resolveProps(cctx, st, p, name, current)
			go func() {
				if perr != nil {
					results <- outcome{name, perr}
					return
				}
				results <- outcome{name, s.createOne(cctx, st, p, r, props, ActionCreate)}
			}()
		}
		if inflight == 0 {
			break
		}
		o := <-results
		inflight--
		r, _ := store.Get[StackResource](nil, s.st.Snapshot(), resourceTable, st.ID+"/"+o.name)
		if r != nil {
			state[o.name] = r
		}
		if o.err != nil {
			if failure == nil {
				failure = fmt.Errorf("resources.%s: %s", o.name, errText(o.err))
			}
			continue
		}
		done++
		for _, dep := range p.requiredBy[o.name] {
			if waiting[dep]--; waiting[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	if ctx.Err() != nil {
		return // stopped: a delete took over, or the process is closing
	}
	if failure == nil && cctx.Err() != nil {
		failure = errors.New("timed out")
	}
	if failure == nil && done < len(p.t.Resources) {
		failure = errors.New("not every resource could be created")
	}
	if failure == nil {
		s.finish(ctx, st.ID, ActionCreate, StatusComplete, "Stack CREATE completed successfully")
		return
	}
	if st.DisableRollback {
		s.finish(ctx, st.ID, ActionCreate, StatusFailed, "Resource CREATE failed: "+failure.Error())
		return
	}
	// CREATE_FAILED and ROLLBACK_IN_PROGRESS in one transaction: the stack
	// never rests in CREATE_FAILED when a rollback follows.
	if s.startRollback(st.ID, "Resource CREATE failed: "+failure.Error()) {
		cur, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, st.ID)
		if err == nil {
			s.delete(ctx, cur, p)
		}
	}
}

func errText(err error) string {
	var ve *errdefs.ValidationError
	switch {
	case errors.As(err, &ve):
		return ve.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "Timed out"
	}
	return err.Error()
}

// resolveProps resolves and checks a resource's properties.
func (s *Service) resolveProps(ctx context.Context, st *Stack, p *plan, name string, recs func(string) *StackResource) (map[string]any, error) {
	rd := p.t.Resources[name]
	ectx := s.engineCtx(ctx, st)
	ev := s.evaluator(ectx, st, p, recs)
	v, err := ev.resolve("resources."+name+".properties", anyMap(rd.Properties), 1)
	if err != nil {
		return nil, err
	}
	props, _ := v.(map[string]any)
	return checkProperties(ectx, "resources."+name+".properties", p.plugins[rd.Type].Schema(), props, true, s.deps.Checker)
}

// createOne creates one resource: IN_PROGRESS (with its physical name
// already stored), then the physical id as soon as the plugin returns it,
// then COMPLETE once the plugin says it is ready.
func (s *Service) createOne(ctx context.Context, st *Stack, p *plan, r *StackResource, props map[string]any, action string) error {
	pl := p.plugins[r.Type]
	ectx := s.engineCtx(ctx, st)
	resumed := r.Action == action && r.Status == StatusInProgress
	if !resumed {
		var err error
		r, err = s.updateResource(st, r.Name, true, func(r *StackResource) {
			r.Action, r.Status, r.StatusReason = action, StatusInProgress, "state changed"
		})
		if err != nil {
			return err
		}
	}
	res := toPlugin(st, r)
	res.Properties = props
	if res.Data == nil {
		res.Data = map[string]string{}
	}
	fail := func(err error) error {
		if stopped(ctx) {
			return err // the engine is stopping: the next Start resumes here
		}
		_, _ = s.updateResource(st, r.Name, true, func(r *StackResource) {
			r.Action, r.Status, r.StatusReason = action, StatusFailed, reasonOf(err, r.Name)
		})
		return err
	}
	if res.PhysicalID == "" && resumed {
		if f, ok := pl.(Finder); ok {
			id, err := f.Find(ectx, res)
			if err != nil {
				return fail(err)
			}
			res.PhysicalID = id
		}
	}
	if res.PhysicalID == "" {
		id, err := pl.Create(ectx, res)
		if id != "" {
			if _, uerr := s.updateResource(st, r.Name, false, func(r *StackResource) { r.PhysicalID, r.Data = id, res.Data }); uerr != nil {
				return uerr
			}
			res.PhysicalID = id
		}
		if err != nil {
			return fail(err)
		}
		if id == "" {
			return fail(errors.New("the plugin returned no physical id"))
		}
	} else if _, err := s.updateResource(st, r.Name, false, func(r *StackResource) { r.PhysicalID = res.PhysicalID }); err != nil {
		return err
	}
	if w, ok := pl.(Waiter); ok {
		if err := s.poll(ectx, func() (bool, error) { return w.Ready(ectx, res) }); err != nil {
			return fail(err)
		}
	}
	_, err := s.updateResource(st, r.Name, true, func(r *StackResource) {
		r.Action, r.Status, r.StatusReason = action, StatusComplete, "state changed"
		r.Properties, r.Gen, r.Data = props, st.Gen, res.Data
	})
	return err
}

func reasonOf(err error, name string) string {
	kind := "Error"
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		kind = "NotFound"
	case errors.Is(err, errdefs.ErrConflict):
		kind = "Conflict"
	case errors.Is(err, errdefs.ErrQuotaExceeded):
		kind = "OverLimit"
	case errors.Is(err, errdefs.ErrInvalid):
		kind = "ValueError"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Timed out"
	}
	return kind + ": resources." + name + ": " + err.Error()
}

// stopped reports whether ctx was cancelled (a delete took over, or the
// service is closing) rather than timed out.
func stopped(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// poll calls ready with a growing interval until it is true or fails.
func (s *Service) poll(ctx context.Context, ready func() (bool, error)) error {
	wait := 10 * time.Millisecond
	for {
		ok, err := ready()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if wait *= 2; wait > s.cfg.PollInterval {
			wait = s.cfg.PollInterval
		}
	}
}

// delete deletes the resources of a stack (for a delete or a rollback) in
// reverse dependency order: a resource goes once nothing that needs it is
// left.
func (s *Service) delete(ctx context.Context, st *Stack, p *plan) {
	action := st.Action
	recs, err := s.resources(st.ID)
	if err != nil {
		return
	}
	gone := map[string]bool{}
	state := map[string]*StackResource{}
	for _, r := range recs {
		state[r.Name] = r
		if r.Action == ActionInit || r.Action == ActionDelete && r.Status == StatusComplete {
			gone[r.Name] = true
		}
	}
	// Every record goes, those of the template in reverse dependency
	// order, others (left by an interrupted update) first.
	all := map[string]bool{}
	for name := range p.t.Resources {
		all[name] = true
		if state[name] == nil {
			gone[name] = true
		}
	}
	for name := range state {
		all[name] = true
	}
	// left[r] counts the resources that need r and are not gone yet; r
	// can go when it reaches zero.
	left := map[string]int{}
	var ready []string
	for _, name := range slices.Sorted(maps.Keys(p.t.Resources)) {
		for _, d := range p.requiredBy[name] {
			if !gone[d] {
				left[name]++
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if !gone[name] && left[name] == 0 {
			ready = append(ready, name)
		}
	}
	release := func(name string) {
		for _, d := range p.deps[name] {
			if left[d]--; left[d] == 0 && !gone[d] {
				ready = append(ready, d)
			}
		}
	}
	results := make(chan outcome)
	inflight := 0
	var failure error
	for {
		for failure == nil && len(ready) > 0 && inflight < s.cfg.Concurrency && ctx.Err() == nil {
			name := ready[0]
			ready = ready[1:]
			inflight++
			r := state[name]
			retain := action == ActionDelete && p.t.Resources[name] != nil && p.t.Resources[name].DeletionPolicy == PolicyRetain
			go func() { results <- outcome{name, s.deleteOne(ctx, st, p, r, retain)} }()
		}
		if inflight == 0 {
			break
		}
		o := <-results
		inflight--
		if o.err != nil {
			if failure == nil {
				failure = fmt.Errorf("resources.%s: %s", o.name, errText(o.err))
			}
			continue
		}
		gone[o.name] = true
		release(o.name)
	}
	if ctx.Err() != nil {
		return
	}
	if failure == nil && len(gone) < len(all) {
		failure = errors.New("not every resource could be deleted")
	}
	if failure != nil {
		s.finish(ctx, st.ID, action, StatusFailed, "Resource DELETE failed: "+failure.Error())
		return
	}
	if action == ActionRollback {
		s.finish(ctx, st.ID, action, StatusComplete, "Stack ROLLBACK completed successfully")
		return
	}
	if s.finish(ctx, st.ID, action, StatusComplete, "Stack DELETE completed successfully") {
		if s.deps.Trusts != nil && st.TrustID != "" && st.ParentID == "" {
			if err := s.deps.Trusts.Revoke(s.engineCtx(ctx, st), st.TrustID); err != nil {
				s.log.Warn("orchestration: cannot revoke a deleted stack's trust", "stack", st.ID, "err", err)
			}
		}
		_ = s.st.Update(context.Background(), func(tx *store.Txn) error {
			for _, r := range recs {
				if err := tx.Delete(resourceTable, r.StoreKey()); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			}
			return nil
		})
		s.mu.Lock()
		delete(s.plans, st.ID)
		s.mu.Unlock()
	}
}

// deleteOne deletes one resource, adopting first what an interrupted
// create may have made.
func (s *Service) deleteOne(ctx context.Context, st *Stack, p *plan, r *StackResource, retain bool) error {
	pl := p.plugins[r.Type]
	ectx := s.engineCtx(ctx, st)
	if r.Old != nil {
		if err := s.deleteOld(ctx, st, p, r); err != nil {
			return err
		}
	}
	r, err := s.updateResource(st, r.Name, true, func(r *StackResource) {
		r.Action, r.Status, r.StatusReason = ActionDelete, StatusInProgress, "state changed"
	})
	if err != nil {
		return err
	}
	res := toPlugin(st, r)
	if res.PhysicalID == "" && pl != nil {
		if f, ok := pl.(Finder); ok {
			if res.PhysicalID, err = f.Find(ectx, res); err != nil {
				return err
			}
		}
	}
	if res.PhysicalID != "" && !retain && pl != nil {
		// A conflict (a subnet still in use by a port another resource is
		// releasing) is retried until the stack's context ends.
		err := pl.Delete(ectx, res)
		for wait := 50 * time.Millisecond; errdefs.IsConflict(err) && ctx.Err() == nil && wait < 30*time.Second; wait *= 2 {
			_ = sleepCtx(ctx, wait)
			err = pl.Delete(ectx, res)
		}
		if err != nil && !errdefs.IsNotFound(err) {
			if stopped(ctx) {
				return err
			}
			_, _ = s.updateResource(st, r.Name, true, func(r *StackResource) {
				r.Action, r.Status, r.StatusReason = ActionDelete, StatusFailed, reasonOf(err, r.Name)
			})
			return err
		}
	}
	_, err = s.updateResource(st, r.Name, true, func(r *StackResource) {
		r.Action, r.Status, r.StatusReason = ActionDelete, StatusComplete, "state changed"
		if !retain {
			r.PhysicalID = ""
		}
	})
	return err
}
