package orchestration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Stack actions and statuses, as Heat names them.
const (
	ActionInit     = "INIT"
	ActionCreate   = "CREATE"
	ActionDelete   = "DELETE"
	ActionRollback = "ROLLBACK"
	ActionUpdate   = "UPDATE"

	StatusInProgress = "IN_PROGRESS"
	StatusComplete   = "COMPLETE"
	StatusFailed     = "FAILED"
)

// Stack is a stack: a template instantiated in a project.
type Stack struct {
	store.Meta
	ID          string `json:"id"`
	Name        string `json:"stack_name"`
	ProjectID   string `json:"project"`
	UserID      string `json:"stack_user_project_id"`
	Description string `json:"description"`
	// Roles are the creator's roles on the project, and AdminProject
	// whether the project is the cloud's admin project: the engine acts
	// with them, as Heat acts with the stored context of the request.
	Roles           []string `json:"roles"`
	AdminProject    bool     `json:"admin_project,omitempty"`
	ProjectDomainID string   `json:"project_domain_id,omitempty"`
	// Template is the template as given.
	Template   string            `json:"template"`
	Files      map[string]string `json:"files,omitempty"`
	Parameters map[string]any    `json:"parameters"`
	// Action and Status make Heat's stack_status (CREATE_IN_PROGRESS ...).
	Action          string     `json:"action"`
	Status          string     `json:"status"`
	StatusReason    string     `json:"stack_status_reason"`
	DisableRollback bool       `json:"disable_rollback"`
	TimeoutMins     int        `json:"timeout_mins"`
	Tags            []string   `json:"tags"`
	Created         time.Time  `json:"creation_time"`
	Updated         time.Time  `json:"updated_time"`
	Deleted         *time.Time `json:"deletion_time,omitempty"`
	// Environment is the stack's environment (resource_registry,
	// parameter_defaults), as given.
	Environment *Environment `json:"environment,omitempty"`
	// Gen counts the stack's updates and rollbacks; a resource is up to
	// date when its Gen is the stack's.
	Gen int `json:"gen,omitempty"`
	// Started is when the current action started (its timeout counts
	// from there).
	Started time.Time `json:"started,omitzero"`
	// Prev, during an update, is what the stack was before: a failed
	// update rolls back to it. During that rollback it is the failed
	// update's target.
	Prev *Prior `json:"prev,omitempty"`
	// ParentID and ParentResource name the stack and resource a nested
	// stack belongs to; Depth is its nesting depth (0 at the top).
	// TrustID is the trust from the owner with which signals act.
	TrustID        string `json:"trust_id,omitempty"`
	ParentID       string `json:"parent,omitempty"`
	ParentResource string `json:"parent_resource,omitempty"`
	Depth          int    `json:"depth,omitempty"`
}

// Prior is a stack's template, files, parameters and environment at one
// point.
type Prior struct {
	Template    string            `json:"template"`
	Files       map[string]string `json:"files,omitempty"`
	Parameters  map[string]any    `json:"parameters"`
	Environment *Environment      `json:"environment,omitempty"`
}

// Environment is a Heat environment: parameter values, parameter
// defaults (which also reach nested stacks) and a resource registry
// mapping resource types to template files (or to other types).
type Environment struct {
	Parameters        map[string]any    `json:"parameters,omitempty"`
	ParameterDefaults map[string]any    `json:"parameter_defaults,omitempty"`
	ResourceRegistry  map[string]string `json:"resource_registry,omitempty"`
}

// StoreKey implements store.Record.
func (s *Stack) StoreKey() string { return s.ID }

// StackStatus is Heat's stack_status.
func (s *Stack) StackStatus() string { return s.Action + "_" + s.Status }

// StackResource is one resource of a stack and the engine's progress on it.
type StackResource struct {
	store.Meta
	StackID      string            `json:"stack_id"`
	Name         string            `json:"resource_name"`
	Type         string            `json:"resource_type"`
	PhysicalName string            `json:"physical_name"`
	PhysicalID   string            `json:"physical_resource_id"`
	Action       string            `json:"action"`
	Status       string            `json:"status"`
	StatusReason string            `json:"resource_status_reason"`
	Data         map[string]string `json:"data,omitempty"`
	// Properties are the resolved properties the physical resource was
	// last created or updated with (an update compares them).
	Properties map[string]any `json:"properties,omitempty"`
	// Gen is the stack generation the resource was last settled in.
	Gen int `json:"gen,omitempty"`
	// Old is the physical resource an update in progress replaces: it is
	// deleted when the update ends, restored by its rollback.
	Old     *Replaced `json:"replaced,omitempty"`
	Created time.Time `json:"creation_time"`
	Updated time.Time `json:"updated_time"`
}

// Replaced is a physical resource being replaced by an update.
type Replaced struct {
	Type         string            `json:"type"`
	PhysicalName string            `json:"physical_name"`
	PhysicalID   string            `json:"physical_id"`
	Data         map[string]string `json:"data,omitempty"`
	Properties   map[string]any    `json:"properties,omitempty"`
}

// StoreKey implements store.Record.
func (r *StackResource) StoreKey() string { return r.StackID + "/" + r.Name }

// ResourceStatus is Heat's resource_status.
func (r *StackResource) ResourceStatus() string { return r.Action + "_" + r.Status }

// Event is one state change of a stack or of one of its resources; a
// stack's own events have ResourceName = the stack's name and PhysicalID =
// its id, as Heat's.
type Event struct {
	store.Meta
	ID           string    `json:"id"`
	StackID      string    `json:"stack_id"`
	StackName    string    `json:"stack_name"`
	ResourceName string    `json:"resource_name"`
	ResourceType string    `json:"resource_type"`
	PhysicalID   string    `json:"physical_resource_id"`
	Status       string    `json:"resource_status"`
	Reason       string    `json:"resource_status_reason"`
	Time         time.Time `json:"event_time"`
}

// StoreKey implements store.Record.
func (e *Event) StoreKey() string { return e.StackID + "/" + e.ID }

// CreateStackOpts is a stack to create.
type CreateStackOpts struct {
	Name     string
	Template []byte
	Files    map[string]string
	// Parameters are the given parameter values: strings (as the CLI sends
	// them) or JSON values.
	Parameters      map[string]any
	DisableRollback bool
	// TimeoutMins is the create's timeout (default 60).
	TimeoutMins int
	Tags        []string
	// Environment, if set, gives parameter values and defaults (under
	// Parameters) and the resource registry.
	Environment *Environment

	parentID, parentResource, trustID string
	depth                             int
}

var stackNamePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$`)

// CreateStack validates the template and parameters, writes the stack and
// its resources (INIT_COMPLETE) in one transaction in CREATE_IN_PROGRESS,
// and starts the engine on it. Validation failures are
// *errdefs.ValidationError naming the culprit.
func (s *Service) CreateStack(ctx context.Context, o CreateStackOpts) (*Stack, error) {
	c, err := s.caller(ctx, "stacks:create", "")
	if err != nil {
		return nil, err
	}
	if !stackNamePattern.MatchString(o.Name) {
		return nil, errdefs.Invalid("stack_name", "%q: a stack name must start with a letter and have only letters, digits, '_', '-' and '.' (at most 255)", short(o.Name))
	}
	if o.TimeoutMins < 0 || o.TimeoutMins > 7*24*60 {
		return nil, errdefs.Invalid("timeout_mins", "must be between 1 and %d", 7*24*60)
	}
	if o.TimeoutMins == 0 {
		o.TimeoutMins = 60
	}
	if len(o.Tags) > 50 {
		return nil, errdefs.Invalid("tags", "at most 50 tags")
	}
	size := len(o.Template)
	for k, f := range o.Files {
		size += len(k) + len(f)
	}
	if size > 4*s.limits.MaxTemplateBytes {
		return nil, errdefs.Invalid("files", "the template and its files are %d bytes, more than %d", size, 4*s.limits.MaxTemplateBytes)
	}
	t, err := ParseTemplate(o.Template, s.limits)
	if err != nil {
		return nil, err
	}
	params, err := t.ResolveParameters(ctx, envParams(o.Environment, o.Parameters, t), s.deps.Checker)
	if err != nil {
		return nil, err
	}
	plugins, err := s.pluginsFor(o.Environment, o.Files)
	if err != nil {
		return nil, err
	}
	p, err := analyze(ctx, t, params, o.Files, plugins, s.limits, s.deps.Checker)
	if err != nil {
		return nil, err
	}
	trustID := o.trustID
	if s.deps.Trusts != nil && o.parentID == "" {
		if trustID, err = s.deps.Trusts.Delegate(ctx); err != nil {
			return nil, fmt.Errorf("orchestration: cannot create the stack's trust: %w", err)
		}
	}
	now := s.st.Now().UTC()
	st := &Stack{ID: newUUID(), TrustID: trustID, Name: o.Name, ProjectID: c.ProjectID, UserID: c.UserID, Roles: slices.Clone(c.Roles),
		AdminProject: c.IsAdminProject, ProjectDomainID: c.ProjectDomainID,
		Description: t.Description, Template: string(o.Template), Files: o.Files, Parameters: params,
		Action: ActionCreate, Status: StatusInProgress, StatusReason: "Stack CREATE started",
		DisableRollback: o.DisableRollback, TimeoutMins: o.TimeoutMins, Tags: o.Tags, Created: now, Updated: now, Started: now,
		Environment: o.Environment, ParentID: o.parentID, ParentResource: o.parentResource, Depth: o.depth}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		it, err := store.List[Stack](nil, tx, stackTable, projectIndex, c.ProjectID)
		if err != nil {
			return err
		}
		live := 0
		for other := range it {
			if other.Deleted != nil {
				continue
			}
			if other.Name == o.Name {
				return fmt.Errorf("orchestration: the stack (%s) already exists: %w", o.Name, errdefs.ErrConflict)
			}
			live++
		}
		if live >= s.limits.MaxStacksPerProject {
			return fmt.Errorf("orchestration: the project has %d stacks (nested ones included), the limit: %w", live, errdefs.ErrQuotaExceeded)
		}
		if err := tx.Insert(stackTable, st); err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(p.t.Resources)) {
			r := &StackResource{StackID: st.ID, Name: name, Type: p.t.Resources[name].Type,
				PhysicalName: physicalName(st, name), Action: ActionInit, Status: StatusComplete, Created: now, Updated: now}
			if err := tx.Insert(resourceTable, r); err != nil {
				return err
			}
		}
		return s.stackEventTxn(tx, st)
	})
	if err != nil {
		if trustID != "" && o.parentID == "" {
			_ = s.deps.Trusts.Revoke(ctx, trustID)
		}
		return nil, err
	}
	s.mu.Lock()
	s.plans[st.ID] = p
	s.mu.Unlock()
	return st, nil
}

// physicalName is Heat's stack-resource-suffix name, deterministic so that
// a restarted engine can find what an interrupted create made.
func physicalName(st *Stack, res string) string {
	sum := sha256.Sum256([]byte(st.ID + "/" + res))
	suffix := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:12]
	sn, rn := st.Name, res
	if len(sn) > 100 {
		sn = sn[:100]
	}
	if len(rn) > 100 {
		rn = rn[:100]
	}
	return sn + "-" + rn + "-" + suffix
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (s *Service) nextEventID() string { return fmt.Sprintf("%016x", s.seq.Add(1)) }

func (s *Service) stackEventTxn(tx *store.Txn, st *Stack) error {
	return tx.Insert(eventTable, &Event{ID: s.nextEventID(), StackID: st.ID, StackName: st.Name, ResourceName: st.Name,
		ResourceType: "OS::Heat::Stack", PhysicalID: st.ID, Status: st.StackStatus(), Reason: st.StatusReason, Time: tx.Now().UTC()})
}

func (s *Service) resourceEventTxn(tx *store.Txn, st *Stack, r *StackResource) error {
	return tx.Insert(eventTable, &Event{ID: s.nextEventID(), StackID: st.ID, StackName: st.Name, ResourceName: r.Name,
		ResourceType: r.Type, PhysicalID: r.PhysicalID, Status: r.ResourceStatus(), Reason: r.StatusReason, Time: tx.Now().UTC()})
}

// visible returns the stack if the caller may see it: another project's
// stack is not found, whoever asks (OSSA-2013-035).
func (s *Service) visible(ctx context.Context, action string, st *Stack) (*Stack, error) {
	c, err := s.caller(ctx, action, st.ProjectID)
	if err != nil {
		if errors.Is(err, errdefs.ErrForbidden) && identity.CredentialsFrom(ctx).ProjectID != st.ProjectID {
			return nil, notFound(st.ID)
		}
		return nil, err
	}
	if c.ProjectID != st.ProjectID {
		return nil, notFound(st.ID)
	}
	return st, nil
}

func notFound(ref string) error {
	return fmt.Errorf("orchestration: the Stack (%s) could not be found: %w", ref, errdefs.ErrNotFound)
}

// GetStack returns a stack by id, deleted ones included.
func (s *Service) GetStack(ctx context.Context, id string) (*Stack, error) {
	st, err := store.Get[Stack](nil, s.st.Snapshot(), stackTable, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, notFound(id)
		}
		return nil, err
	}
	return s.visible(ctx, "stacks:get", st)
}

// FindStack returns the caller's stack with this name or id: the live one
// of that name, else the most recently deleted.
func (s *Service) FindStack(ctx context.Context, ref string) (*Stack, error) {
	if st, err := s.GetStack(ctx, ref); err == nil {
		return st, nil
	}
	c, err := s.caller(ctx, "stacks:get", "")
	if err != nil {
		return nil, err
	}
	it, err := store.List[Stack](nil, s.st.Snapshot(), stackTable, projectIndex, c.ProjectID)
	if err != nil {
		return nil, err
	}
	var best *Stack
	for st := range it {
		if st.Name != ref {
			continue
		}
		if st.Deleted == nil {
			return st, nil
		}
		if best == nil || st.Deleted.After(*best.Deleted) {
			best = st
		}
	}
	if best == nil {
		return nil, notFound(ref)
	}
	return best, nil
}

// ListStacks lists the caller's live stacks, newest first.
func (s *Service) ListStacks(ctx context.Context) ([]*Stack, error) {
	c, err := s.caller(ctx, "stacks:get", "")
	if err != nil {
		return nil, err
	}
	it, err := store.List[Stack](nil, s.st.Snapshot(), stackTable, projectIndex, c.ProjectID)
	if err != nil {
		return nil, err
	}
	var out []*Stack
	for st := range it {
		if st.Deleted == nil && st.ParentID == "" {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// DeleteStack starts deleting a stack: a create under way is stopped and
// its resources deleted in reverse dependency order.
func (s *Service) DeleteStack(ctx context.Context, id string) error {
	st, err := s.GetStack(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.caller(ctx, "stacks:delete", st.ProjectID); err != nil {
		return err
	}
	if st.Deleted != nil {
		return notFound(id)
	}
	if st.Action == ActionDelete && st.Status == StatusInProgress {
		return nil
	}
	err = s.st.Update(ctx, func(tx *store.Txn) error {
		cur, err := store.Get[Stack](nil, tx, stackTable, id)
		if err != nil {
			return err
		}
		cur.Action, cur.Status, cur.StatusReason, cur.Updated = ActionDelete, StatusInProgress, "Stack DELETE started", tx.Now().UTC()
		if err := tx.Update(stackTable, cur); err != nil {
			return err
		}
		return s.stackEventTxn(tx, cur)
	})
	return err
}

// ListResources lists a stack's resources.
func (s *Service) ListResources(ctx context.Context, stackID string) ([]*StackResource, error) {
	if _, err := s.GetStack(ctx, stackID); err != nil {
		return nil, err
	}
	return s.resources(stackID)
}

func (s *Service) resources(stackID string) ([]*StackResource, error) {
	it, err := store.List[StackResource](nil, s.st.Snapshot(), resourceTable, stackIndex, stackID)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(it)
	slices.SortFunc(out, func(a, b *StackResource) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GetResource returns one resource of a stack.
func (s *Service) GetResource(ctx context.Context, stackID, name string) (*StackResource, error) {
	if _, err := s.GetStack(ctx, stackID); err != nil {
		return nil, err
	}
	r, err := store.Get[StackResource](nil, s.st.Snapshot(), resourceTable, stackID+"/"+name)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("orchestration: the Resource (%s) could not be found: %w", name, errdefs.ErrNotFound)
	}
	return r, err
}

// ResourceAttributes returns the attributes of a created resource, by
// name, as resource show lists them.
func (s *Service) ResourceAttributes(ctx context.Context, st *Stack, r *StackResource) map[string]any {
	out := map[string]any{}
	p, err := s.planOf(ctx, st)
	if err != nil {
		return out
	}
	pl, ok := p.plugins[r.Type]
	if !ok || r.PhysicalID == "" {
		return out
	}
	ectx := s.engineCtx(ctx, st)
	for name := range pl.Schema().Attributes {
		if v, err := pl.Attribute(ectx, toPlugin(st, r), name); err == nil {
			out[name] = v
		}
	}
	return out
}

// ListEvents lists a stack's events in order, those of one resource if
// resource is set.
func (s *Service) ListEvents(ctx context.Context, stackID, resource string) ([]*Event, error) {
	if _, err := s.GetStack(ctx, stackID); err != nil {
		return nil, err
	}
	it, err := store.List[Event](nil, s.st.Snapshot(), eventTable, stackIndex, stackID)
	if err != nil {
		return nil, err
	}
	var out []*Event
	for e := range it {
		if resource == "" || e.ResourceName == resource {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Event) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Output is one resolved stack output.
type Output struct {
	Key, Description string
	Value            any
	// Error says why the value could not be resolved.
	Error string
}

// Outputs resolves a stack's outputs, sorted by key.
func (s *Service) Outputs(ctx context.Context, st *Stack) ([]Output, error) {
	p, err := s.planOf(ctx, st)
	if err != nil {
		return nil, err
	}
	ev := s.evaluator(s.engineCtx(ctx, st), st, p, nil)
	var out []Output
	for _, k := range slices.Sorted(maps.Keys(p.t.Outputs)) {
		o := p.t.Outputs[k]
		v, err := ev.resolve("outputs."+k, o.Value, 0)
		oo := Output{Key: k, Description: o.Description, Value: v}
		if err != nil {
			oo.Value, oo.Error = nil, err.Error()
		}
		out = append(out, oo)
	}
	return out, nil
}

// TemplateOf returns a stack's template, parsed.
func (s *Service) TemplateOf(ctx context.Context, st *Stack) (map[string]any, error) {
	p, err := s.planOf(ctx, st)
	if err != nil {
		return nil, err
	}
	return p.t.Raw, nil
}
