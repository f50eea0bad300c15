package orchestration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Config configures a Service.
type Config struct {
	// Store holds the tables of Tables. Required.
	Store *store.Store
	// Logger is optional.
	Logger *slog.Logger
	// Policy overrides rules of DefaultPolicy by action name.
	Policy identity.Policy
	// Limits bound templates; zero fields take their defaults.
	Limits Limits
	// Concurrency is how many resources of one stack are created or
	// deleted at once (default 16).
	Concurrency int
	// PollInterval is the longest wait between two looks at a resource
	// that is becoming ready (default 500ms).
	PollInterval time.Duration
	// Plugins add resource types, or replace built-in ones, by type name.
	Plugins map[string]Plugin
	// DeletedRetention is how long a deleted stack and its events stay
	// readable (by id, for clients that wait on a delete) before they are
	// purged (default 1h).
	DeletedRetention time.Duration
	// PublicURL is the service's public base URL (scheme://host:port),
	// from which pre-signed signal URLs (alarm_url, a wait condition
	// handle's endpoint) are made.
	PublicURL string
}

// Service is the orchestration service: stacks of resources made from
// templates, created and deleted by an engine whose progress is in the
// store. Its methods enforce policy and project ownership.
type Service struct {
	cfg     Config
	st      *store.Store
	log     *slog.Logger
	policy  identity.Policy
	limits  Limits
	deps    Deps
	plugins map[string]Plugin

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	runs    sync.WaitGroup
	started bool

	mu      sync.Mutex
	running map[string]*run // by stack id
	plans   map[string]*plan

	seq atomic.Uint64
}

// run is one engine goroutine working on a stack.
type run struct {
	cancel context.CancelFunc
	// action and gen are the stack action and generation the run works
	// on; again asks it to look at the stack once more when done.
	action string
	gen    int
	again  bool
}

// New returns a Service; Use wires its dependencies and Start starts its
// engine.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errdefs.Invalid("Store", "orchestration: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.DeletedRetention <= 0 {
		cfg.DeletedRetention = time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, policy: DefaultPolicy().With(cfg.Policy),
		limits: cfg.Limits.withDefaults(), running: map[string]*run{}, plans: map[string]*plan{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.seq.Store(uint64(time.Now().UnixNano()))
	s.Use(Deps{})
	return s, nil
}

// Use sets the services the resource plugins drive and rebuilds the type
// registry: the OS::Heat types always, the others when their dependency is
// set, then Config.Plugins.
func (s *Service) Use(d Deps) {
	s.deps = d
	p := s.builtins()
	if d.Compute != nil {
		p["OS::Nova::Server"] = serverPlugin{d.Compute}
		p["OS::Nova::KeyPair"] = keypairPlugin{d.Compute}
		p["OS::Nova::Flavor"] = flavorPlugin{d.Compute}
		p["OS::Nova::ServerGroup"] = serverGroupPlugin{d.Compute}
		p["AWS::EC2::Instance"] = ec2Instance{serverPlugin{d.Compute}, d.Network}
	}
	if d.Network != nil {
		maps.Copy(p, neutronPlugins(d.Network))
		p["AWS::EC2::SecurityGroup"] = ec2SecurityGroup{d.Network}
	}
	if d.Volumes != nil {
		p["OS::Cinder::Volume"] = volumePlugin{d.Volumes}
	}
	if d.Attacher != nil {
		p["OS::Cinder::VolumeAttachment"] = attachmentPlugin{d.Attacher}
	}
	if d.Images != nil {
		p["OS::Glance::WebImage"] = webImagePlugin{d.Images}
	}
	if d.Containers != nil {
		p["OS::Swift::Container"] = containerPlugin{d.Containers}
	}
	maps.Copy(p, s.cfg.Plugins)
	s.plugins = p
}

// builtins are the resource types that need no other service.
func (s *Service) builtins() map[string]Plugin {
	return map[string]Plugin{
		"OS::Heat::RandomString":        randomString{},
		"OS::Heat::None":                nonePlugin{},
		"OS::Heat::TestResource":        testResource{},
		"OS::Heat::Stack":               stackPlugin{nested{s}},
		"OS::Heat::ResourceGroup":       groupPlugin{nested{s}},
		"OS::Heat::AutoScalingGroup":    asgPlugin{groupPlugin{nested{s}}},
		"OS::Heat::ScalingPolicy":       policyPlugin{s},
		"OS::Heat::WaitConditionHandle": handlePlugin{s},
		"OS::Heat::WaitCondition":       waitPlugin{s},
	}
}

// DefaultPolicy returns the service's default rules, close to Heat's:
// members of a project manage its stacks, readers read them.
func DefaultPolicy() identity.Policy {
	read := identity.AnyOf(identity.Admin, identity.ProjectRole(identity.RoleReader))
	write := identity.AnyOf(identity.Admin, identity.ProjectRole(identity.RoleMember))
	return identity.Policy{
		"stacks:get": read, "stacks:create": write, "stacks:delete": write, "stacks:update": write,
		"stacks:validate_template": write, "resource_types:get": read,
	}
}

// Tables are the service's store tables.
func Tables() []store.Table {
	return []store.Table{
		{Name: stackTable, New: func() store.Record { return new(Stack) }, Indexes: []*memdb.IndexSchema{
			{Name: projectIndex, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
			{Name: activeIndex, Indexer: &memdb.ConditionalIndex{Conditional: func(o any) (bool, error) {
				return o.(*Stack).Status == StatusInProgress, nil
			}}},
		}},
		{Name: resourceTable, New: func() store.Record { return new(StackResource) }, Indexes: []*memdb.IndexSchema{
			{Name: stackIndex, Indexer: &memdb.StringFieldIndex{Field: "StackID"}}}},
		{Name: eventTable, New: func() store.Record { return new(Event) }, Indexes: []*memdb.IndexSchema{
			{Name: stackIndex, Indexer: &memdb.StringFieldIndex{Field: "StackID"}}}},
	}
}

const (
	stackTable    = "orchestration.stacks"
	resourceTable = "orchestration.resources"
	eventTable    = "orchestration.events"
	projectIndex  = "project"
	stackIndex    = "stack"
	activeIndex   = "active"
)

// Start starts the engine, which resumes every stack whose create,
// rollback or delete was under way when the process (or the controller
// that led the engine) stopped.
func (s *Service) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		s.wg.Go(s.lead)
	}
	return nil
}

// Close stops the engine; stacks in progress resume at the next Start.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func caller(ctx context.Context) (*identity.Credentials, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnauthenticated, errors.New("orchestration: the request needs credentials"))
	}
	return c, nil
}

// caller returns the credentials in ctx if policy allows action on
// project ("" for the caller's own).
func (s *Service) caller(ctx context.Context, action, project string) (*identity.Credentials, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if project == "" {
		project = c.ProjectID
	}
	if c.ProjectID == "" {
		return nil, errdefs.Wrap(errdefs.ErrForbidden, errors.New("orchestration: stacks need a project-scoped token"))
	}
	if !s.policy.Allowed(c, action, identity.Target{ProjectID: project}) {
		return nil, errdefs.Wrap(errdefs.ErrForbidden, fmt.Errorf("orchestration: policy does not allow %s", action))
	}
	return c, nil
}

// ResourceTypes lists the resource types, sorted.
func (s *Service) ResourceTypes(ctx context.Context) ([]string, error) {
	if _, err := s.caller(ctx, "resource_types:get", ""); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(s.plugins)), nil
}

// ResourceTypeSchema returns a type's schema as Heat's API shows it.
func (s *Service) ResourceTypeSchema(ctx context.Context, typ string) (map[string]any, error) {
	if _, err := s.caller(ctx, "resource_types:get", ""); err != nil {
		return nil, err
	}
	p, ok := s.plugins[typ]
	if !ok {
		return nil, fmt.Errorf("orchestration: the resource type %q: %w", typ, errdefs.ErrNotFound)
	}
	return schemaJSON(typ, p.Schema()), nil
}
