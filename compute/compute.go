package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
)

// Table names.
const (
	flavorTable    = "compute.flavors"
	accessTable    = "compute.flavor_access"
	keypairTable   = "compute.keypairs"
	groupTable     = "compute.server_groups"
	serverTable    = "compute.servers"
	hostTable      = "compute.hosts"
	usageTable     = "compute.host_usage"
	claimTable     = "compute.claims"
	aggregateTable = "compute.aggregates"
	quotaTable     = "compute.quotas"
	quotaUseTable  = "compute.quota_usage"
	actionTable    = "compute.instance_actions"
	migrationTable = "compute.migrations"
)

func strIndex(name, field string, allowMissing bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: allowMissing, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// Tables returns the store tables of the compute service, for store.Open.
func Tables() []store.Table {
	return []store.Table{
		{Name: flavorTable, New: func() store.Record { return new(Flavor) }, Indexes: []*memdb.IndexSchema{strIndex("name", "Name", false)}},
		{Name: accessTable, New: func() store.Record { return new(flavorAccess) }, Indexes: []*memdb.IndexSchema{strIndex("project", "ProjectID", false)}},
		{Name: keypairTable, New: func() store.Record { return new(Keypair) }},
		{Name: groupTable, New: func() store.Record { return new(ServerGroup) }, Indexes: []*memdb.IndexSchema{strIndex("project", "ProjectID", false)}},
		{Name: serverTable, New: func() store.Record { return new(Server) }, Indexes: []*memdb.IndexSchema{
			strIndex("project", "ProjectID", false),
			strIndex("host", "HostID", true),
			strIndex("task", "TaskState", true),
			volumeOpsIndexSchema(),
		}},
		{Name: hostTable, New: func() store.Record { return new(Host) }, Indexes: []*memdb.IndexSchema{
			{Name: "name", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		}},
		{Name: usageTable, New: func() store.Record { return new(HostUsage) }},
		{Name: claimTable, New: func() store.Record { return new(Claim) }},
		{Name: aggregateTable, New: func() store.Record { return new(Aggregate) }},
		{Name: quotaTable, New: func() store.Record { return new(QuotaSet) }},
		{Name: quotaUseTable, New: func() store.Record { return new(QuotaUsage) }},
		{Name: actionTable, New: func() store.Record { return new(InstanceAction) }, Indexes: []*memdb.IndexSchema{strIndex("server", "ServerID", false)}},
		{Name: migrationTable, New: func() store.Record { return new(Migration) }, Indexes: []*memdb.IndexSchema{
			strIndex("server", "ServerID", false), strIndex("status", "Status", false)}},
	}
}

// Deps are what compute needs of other services, set with Use before
// Start. Images is required to boot from an image, Ports to ask for
// networks and ports, Volumes for block device mappings of volumes.
type Deps struct {
	Images  Images
	Ports   Ports
	Volumes Volumes
}

// Config configures a Service.
type Config struct {
	// Store holds the compute tables (see Tables). Required.
	Store *store.Store
	// Logger receives the service's log lines. Default: slog.Default().
	Logger *slog.Logger
	// Policy overrides rules of DefaultPolicy by action name.
	Policy identity.Policy
	// MaxAttempts bounds how many hosts a boot tries before the server goes
	// to ERROR. Default 3.
	MaxAttempts int
	// Scheduler tunes placement (weights, sampling limit).
	Scheduler SchedulerOptions
	// Workers is how many servers the conductor drives at once. Default 16.
	Workers int
	// HeartbeatTTL is how long a host stays up without a heartbeat.
	// Default 30s.
	HeartbeatTTL time.Duration
	// SweepInterval is how often each host's sweep removes Stratus domains
	// that belong to no server. Default 1 minute; negative disables it.
	SweepInterval time.Duration
	// DefaultQuota is the quota of projects without their own. The zero
	// value means Nova's defaults (see DefaultQuotaSet).
	DefaultQuota *QuotaSet
	// PowerOffTimeout bounds a clean shutdown before a hard stop.
	// Default 60s.
	PowerOffTimeout time.Duration
	// VendorData is served to guests as vendor_data.json.
	VendorData map[string]any
	// ResizeConfirmWindow, when positive, confirms resizes and cold
	// migrations left in VERIFY_RESIZE that long (Nova's
	// resize_confirm_window). Zero leaves them for the user.
	ResizeConfirmWindow time.Duration
}

// SchedulerOptions tunes placement; see compute/scheduler.Options.
type SchedulerOptions struct {
	RAMWeight, CPUWeight, DiskWeight, SoftAffinityWeight float64
	// Limit samples at most this many passing hosts (0: scan every host).
	Limit int
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("compute: Config.Store is required")
	}
	if c.MaxAttempts < 0 {
		return errdefs.Invalid("MaxAttempts", "must not be negative")
	}
	return nil
}

// Service is the compute service: Nova's flavors, keypairs, server groups,
// servers and their lifecycle, hosts, scheduler and quotas. Its methods
// enforce policy and tenant isolation on the Credentials in the context.
type Service struct {
	cfg    Config
	st     *store.Store
	log    *slog.Logger
	policy identity.Policy
	deps   Deps

	mu      sync.RWMutex
	drivers map[string]Hypervisor // host id -> driver
	beats   map[string]time.Time  // host id -> last heartbeat (never stored)

	sched *hostCache

	life    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New returns a Service on cfg.Store, whose compute tables must be open.
// Add hosts with AddHost and dependencies with Use, then call Start.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var names []string
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("compute: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.HeartbeatTTL <= 0 {
		cfg.HeartbeatTTL = 30 * time.Second
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.PowerOffTimeout <= 0 {
		cfg.PowerOffTimeout = 60 * time.Second
	}
	s := &Service{
		cfg:     cfg,
		st:      cfg.Store,
		log:     cfg.Logger,
		policy:  DefaultPolicy().With(cfg.Policy),
		drivers: map[string]Hypervisor{},
		beats:   map[string]time.Time{},
	}
	s.sched = newHostCache(s)
	s.life, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Use sets the services compute depends on. Call it before Start.
func (s *Service) Use(d Deps) { s.deps = d }

// Start registers nothing new; it starts the conductor, which resumes
// every server left in a transitional state, and each host's agent
// (heartbeat, power-state sync, sweep).
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = true
	s.mu.Unlock()
	s.sched.refresh()
	s.wg.Go(s.leadConductor)
	s.wg.Go(s.moveJanitor)
	s.mu.RLock()
	for id := range s.drivers {
		s.startAgent(id)
	}
	s.mu.RUnlock()
	return nil
}

// Close stops the conductor and the host agents. It does not close the
// drivers or the store.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// leadConductor runs the conductor while this process leads it: with
// several controllers on one etcd cluster one conductor drives the servers
// at a time, and another takes over when its leader is lost.
func (s *Service) leadConductor() {
	for {
		l, err := s.st.Campaign(s.life, "compute-conductor")
		if err != nil {
			return // closing
		}
		loop := reconcile.New("compute-conductor", s.st, &conductor{s: s}, &reconcile.Options{
			Logger: s.log, Workers: s.cfg.Workers, MinBackoff: 50 * time.Millisecond, MaxBackoff: 5 * time.Second, Resync: 30 * time.Second,
		})
		loop.Start(s.life)
		select {
		case <-l.Lost():
			loop.Stop()
		case <-s.life.Done():
			loop.Stop()
			_ = l.Resign(context.Background())
			return
		}
	}
}

// driver returns the Hypervisor of host id.
func (s *Service) driver(hostID string) (Hypervisor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.drivers[hostID]
	if !ok {
		return nil, fmt.Errorf("compute: host %q has no driver in this process: %w", hostID, errdefs.ErrUnavailable)
	}
	return d, nil
}

// DefaultPolicy returns compute's default rules, close to Nova's: project
// members manage their project's servers, keypairs are their user's,
// cloud admins do all, and host, flavor and quota administration is for
// admins only.
func DefaultPolicy() identity.Policy {
	p := identity.ProjectDefaults("compute:server:")
	member := identity.AnyOf(identity.Admin, identity.ProjectRole(identity.RoleMember))
	reader := identity.AnyOf(identity.SystemReader, identity.ProjectRole(identity.RoleReader))
	for _, a := range []string{"action", "lock", "console", "force_delete", "metadata"} {
		p["compute:server:"+a] = member
	}
	p["compute:server:unlock_override"] = identity.Admin
	p["compute:server:all_tenants"] = identity.SystemReader
	p["compute:server:show_host"] = identity.SystemReader
	p["compute:server:actions"] = reader
	for _, a := range []string{"create", "update", "delete", "access", "extra_specs"} {
		p["compute:flavor:"+a] = identity.Admin
	}
	p["compute:flavor:list"] = identity.Authenticated
	p["compute:keypair"] = identity.Authenticated
	p["compute:keypair:other_user"] = identity.Admin
	p["compute:server_group:create"] = member
	p["compute:server_group:delete"] = member
	p["compute:server_group:get"] = reader
	p["compute:server_group:all_tenants"] = identity.SystemReader
	p["compute:host:read"] = identity.SystemReader
	p["compute:host:write"] = identity.Admin
	p["compute:quota:get"] = identity.AnyOf(identity.SystemReader, identity.ProjectRole(identity.RoleReader))
	p["compute:quota:update"] = identity.Admin
	p["compute:az:detail"] = identity.SystemReader
	p["compute:az:list"] = identity.Authenticated
	movePolicy(p, member)
	return p
}

// caller returns the context's credentials or an ErrUnauthenticated error.
func caller(ctx context.Context) (*identity.Credentials, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return nil, fmt.Errorf("compute: no credentials: %w", errdefs.ErrUnauthenticated)
	}
	return c, nil
}

// enforce checks action on a project's resource.
func (s *Service) enforce(ctx context.Context, action, projectID string) (*identity.Credentials, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.policy.Enforce(ctx, action, identity.Target{ProjectID: projectID, UserID: c.UserID}); err != nil {
		return nil, fmt.Errorf("compute: %w", err)
	}
	return c, nil
}

// allowed reports whether the caller may perform action on projectID,
// without an error.
func (s *Service) allowed(c *identity.Credentials, action, projectID string) bool {
	return s.policy.Allowed(c, action, identity.Target{ProjectID: projectID, UserID: c.UserID})
}

// visible reports whether c may see a resource of projectID: its own
// project, or any for system readers.
func visible(c *identity.Credentials, projectID string) bool {
	return c.ProjectID == projectID || c.IsSystemReader()
}

func notFound(kind, id string) error {
	return fmt.Errorf("compute: %s %s could not be found: %w", kind, id, errdefs.ErrNotFound)
}

// update runs fn in a store transaction, retrying a few times on CAS
// conflicts from concurrent writers.
func (s *Service) update(ctx context.Context, fn func(tx *store.Txn) error) error {
	var err error
	for range 5 {
		err = s.st.Update(ctx, fn)
		if !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
	}
	return err
}
