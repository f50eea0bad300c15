// Package blockstore is the block storage service, mirroring OpenStack
// Cinder's v3 API: volume types, volumes, snapshots, attachments, backups,
// transfers and quotas, with a scheduler that places volumes on backend
// pools. See doc.go.
package blockstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/store"
)

// Table names.
const (
	volumeTable     = "blockstore.volumes"
	snapshotTable   = "blockstore.snapshots"
	typeTable       = "blockstore.types"
	attachmentTable = "blockstore.attachments"
	backupTable     = "blockstore.backups"
	transferTable   = "blockstore.transfers"
	quotaTable      = "blockstore.quotas"
)

// Index names.
const (
	projectIndex = "project"
	volumeIndex  = "volume"
	nameIndex    = "name"
)

func strIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// Tables returns the tables the Service keeps in the store.
func Tables() []store.Table {
	return []store.Table{
		{Name: volumeTable, New: func() store.Record { return new(Volume) }, Indexes: []*memdb.IndexSchema{strIndex(projectIndex, "ProjectID")}},
		{Name: snapshotTable, New: func() store.Record { return new(Snapshot) }, Indexes: []*memdb.IndexSchema{strIndex(projectIndex, "ProjectID"), strIndex(volumeIndex, "VolumeID")}},
		{Name: typeTable, New: func() store.Record { return new(VolumeType) }, Indexes: []*memdb.IndexSchema{strIndex(nameIndex, "Name")}},
		{Name: attachmentTable, New: func() store.Record { return new(Attachment) }, Indexes: []*memdb.IndexSchema{strIndex(volumeIndex, "VolumeID")}},
		{Name: backupTable, New: func() store.Record { return new(Backup) }, Indexes: []*memdb.IndexSchema{strIndex(projectIndex, "ProjectID"), strIndex(volumeIndex, "VolumeID")}},
		{Name: transferTable, New: func() store.Record { return new(Transfer) }, Indexes: []*memdb.IndexSchema{strIndex(volumeIndex, "VolumeID")}},
		{Name: quotaTable, New: func() store.Record { return new(QuotaSet) }},
	}
}

// BackendConfig is one volume backend the Service places volumes on.
type BackendConfig struct {
	// Name is the backend's name (volume_backend_name in type extra
	// specs, and the middle of a volume's host "stratus@<name>#<pool>").
	Name string
	// Backend is the driver.
	Backend Backend
}

// Config configures a Service.
type Config struct {
	// Store holds the tables of Tables. Required.
	Store *store.Store
	// Backends are the volume backends; at least one. Required.
	Backends []BackendConfig
	// Logger receives the service's log lines. Default: slog.Default().
	Logger *slog.Logger
	// Policy overrides rules of DefaultPolicy by action name.
	Policy identity.Policy
	// Quota is every project's quota unless SetQuota gave it another.
	// Zero fields take DefaultQuota's values.
	Quota map[string]int
	// AvailabilityZone of every volume. Default "nova".
	AvailabilityZone string
	// BackupChunkSize is the size of a backup chunk. Default 4 MiB.
	BackupChunkSize int
	// Host names this controller in volume hosts. Default "stratus".
	Host string
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("blockstore: Config.Store is required")
	}
	if len(c.Backends) == 0 {
		return errors.New("blockstore: Config.Backends needs at least one backend")
	}
	seen := map[string]bool{}
	for _, b := range c.Backends {
		if b.Name == "" || b.Backend == nil || seen[b.Name] {
			return errdefs.Invalid("Backends", "blockstore: every backend needs a unique name and a driver")
		}
		seen[b.Name] = true
	}
	if c.BackupChunkSize < 0 {
		return errdefs.Invalid("BackupChunkSize", "blockstore: must not be negative")
	}
	return nil
}

// DefaultPolicy returns the service's default rules, close to Cinder's:
// members of a project manage its volumes, snapshots, attachments, backups
// and transfers; readers read; types, quotas, status resets and force
// deletes are for cloud admins.
func DefaultPolicy() identity.Policy {
	read := identity.AnyOf(identity.SystemReader, identity.ProjectRole(identity.RoleReader))
	write := identity.AnyOf(identity.Admin, identity.ProjectRole(identity.RoleMember))
	return identity.Policy{
		"volume:get": read, "volume:create": write, "volume:update": write, "volume:delete": write,
		"volume:attach": write, "volume:extend": write, "volume:upload_image": write,
		"volume:backup": write, "volume:transfer": write, "volume:snapshot": write,
		"volume:reset_status": identity.Admin, "volume:force_delete": identity.Admin,
		"volume:manage_types": identity.Admin, "volume:quota_update": identity.Admin,
		"volume:quota_show":  identity.AnyOf(identity.SystemReader, identity.ProjectRole(identity.RoleReader)),
		"volume:all_tenants": identity.SystemReader,
	}
}

// Service is the block storage service. Its methods enforce policy and
// tenant isolation on the Credentials in the context: a resource of
// another project is not found.
type Service struct {
	cfg      Config
	st       *store.Store
	log      *slog.Logger
	policy   identity.Policy
	backends map[string]Backend

	mu      sync.Mutex
	images  Images
	backups BackupStore

	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service on cfg.Store, whose tables (Tables) must be open.
// Call Start before serving.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var names []string
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = "nova"
	}
	if cfg.BackupChunkSize == 0 {
		cfg.BackupChunkSize = 4 << 20
	}
	if cfg.Host == "" {
		cfg.Host = "stratus"
	}
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, policy: DefaultPolicy().With(cfg.Policy), backends: map[string]Backend{}}
	for _, b := range cfg.Backends {
		s.backends[b.Name] = b.Backend
	}
	s.life, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// UseImages sets the image service that volumes from images and
// os-volume_upload_image use. Without it they are errdefs.ErrUnsupported.
func (s *Service) UseImages(im Images) {
	s.mu.Lock()
	s.images = im
	s.mu.Unlock()
}

// UseBackups sets where backups are kept. Without it backups are
// errdefs.ErrUnsupported.
func (s *Service) UseBackups(bs BackupStore) {
	s.mu.Lock()
	s.backups = bs
	s.mu.Unlock()
}

func (s *Service) imageSvc() (Images, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.images == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnsupported, errors.New("blockstore: no image service is configured"))
	}
	return s.images, nil
}

func (s *Service) backupSvc() (BackupStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backups == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnsupported, errors.New("blockstore: no backup store is configured"))
	}
	return s.backups, nil
}

// Start creates the default volume type and settles what a crash left in
// flight: a create or a restore that did not finish ends in error with its
// partial bytes deleted and its quota released; an unfinished delete is
// finished; an attachment that was never completed is removed and its
// volume goes back to available (or stays in-use for its other
// attachments); an extend, upload or backup that did not finish is rolled
// back.
func (s *Service) Start(ctx context.Context) error {
	if err := s.ensureDefaultType(ctx); err != nil {
		return err
	}
	return s.recover(ctx)
}

// Close stops the async work and waits for it.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Wait waits for the async work started so far (for tests and shutdown).
func (s *Service) Wait() { s.wg.Wait() }

// spawn runs fn in the background with the caller's credentials.
func (s *Service) spawn(ctx context.Context, what, id string, fn func(ctx context.Context) error) {
	c := identity.CredentialsFrom(ctx)
	s.wg.Go(func() {
		bctx := identity.WithCredentials(s.life, c)
		if err := fn(bctx); err != nil {
			s.log.Warn("blockstore: "+what+" failed", "id", id, "err", err)
		}
	})
}

// caller returns the request's credentials.
func caller(ctx context.Context) (*identity.Credentials, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return nil, errdefs.Wrap(errdefs.ErrUnauthenticated, errors.New("blockstore: the request needs credentials"))
	}
	return c, nil
}

// allowed enforces action on project's resource.
func (s *Service) allowed(c *identity.Credentials, action, project string) error {
	if !s.policy.Allowed(c, action, identity.Target{ProjectID: project}) {
		return errdefs.Wrap(errdefs.ErrForbidden, errorf("Policy doesn't allow %s to be performed.", action))
	}
	return nil
}

// sees reports whether c may see a resource of project.
func sees(c *identity.Credentials, project string) bool {
	return c.IsSystemReader() || c.IsCloudAdmin() || (c.ProjectID != "" && c.ProjectID == project)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func notFound(kind, id string) error {
	return errdefs.Wrap(errdefs.ErrNotFound, errorf("%s %s could not be found.", kind, id))
}

func invalid(field, format string, args ...any) error { return errdefs.Invalid(field, format, args...) }

// badRequest is Cinder's 400 for an action refused in the current state.
func badRequest(format string, args ...any) error {
	return errdefs.Wrap(errdefs.ErrInvalid, fmt.Errorf(format, args...))
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
