package identity

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Well-known names and ids.
const (
	// DefaultDomainID is the id of the domain that always exists.
	DefaultDomainID = "default"
	// DefaultDomainName is the name of the domain that always exists.
	DefaultDomainName = "Default"
	// RoleAdmin, RoleMember and RoleReader are the default roles;
	// admin implies member, which implies reader.
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
	// DefaultRegion is the region Bootstrap creates when none is given.
	DefaultRegion = "RegionOne"
)

// Table names.
const (
	domainTable     = "identity.domains"
	projectTable    = "identity.projects"
	userTable       = "identity.users"
	groupTable      = "identity.groups"
	memberTable     = "identity.group_members"
	roleTable       = "identity.roles"
	impliedTable    = "identity.implied_roles"
	assignmentTable = "identity.assignments"
	regionTable     = "identity.regions"
	serviceTable    = "identity.services"
	endpointTable   = "identity.endpoints"
	revokeTable     = "identity.revocations"
	keyTable        = "identity.keys"
	appCredTable    = "identity.application_credentials"
	trustTable      = "identity.trusts"
	credentialTable = "identity.credentials"
)

// Tables returns the store tables of the identity service, for store.Open.
func Tables() []store.Table {
	return []store.Table{
		domainTableDef, projectTableDef, userTableDef, groupTableDef, memberTableDef,
		roleTableDef, impliedTableDef, assignmentTableDef, regionTableDef,
		serviceTableDef, endpointTableDef, revokeTableDef, keyTableDef,
		appCredTableDef, trustTableDef, credentialTableDef,
	}
}

// Config configures a Service.
type Config struct {
	// Store holds the identity tables (see Tables). Required.
	Store *store.Store
	// Logger receives the service's log lines. Default: slog.Default().
	Logger *slog.Logger
	// TokenTTL is the lifetime of a new token. Default: one hour.
	TokenTTL time.Duration
	// Policy overrides rules of DefaultPolicy by action name. Rules not
	// named keep their defaults.
	Policy Policy
	// PasswordHashing sets the argon2id cost. The zero value means the
	// defaults (see PasswordHashing).
	PasswordHashing PasswordHashing
	// AdminProjectName and AdminProjectDomainID name the project whose
	// admins are cloud admins. Default: "admin" in the default domain.
	AdminProjectName     string
	AdminProjectDomainID string
	// TokenCacheSize bounds the validated-token cache. Default: 100,000;
	// negative disables the cache.
	TokenCacheSize int
	// Clock returns the current time. Default: the store's clock.
	Clock func() time.Time
	// MaxActiveKeys bounds the token keys kept by a rotation: staged,
	// primary and secondaries (keystone's [fernet_tokens]
	// max_active_keys). Default: 3. See RotateTokenKeys.
	MaxActiveKeys int
	// KeyRotationInterval, if positive, rotates the token keys on that
	// schedule (see RotateTokenKeys). Zero means rotation only by a call.
	KeyRotationInterval time.Duration
	// CredentialKey, if set, is the 32-byte AES key that encrypts the
	// blobs of the credentials API, kept by the host outside the store.
	// Default: a key generated once and kept in the store's keys table.
	CredentialKey []byte
	// Security is the password and account policy (keystone's
	// [security_compliance]). The zero value enforces nothing.
	Security SecurityCompliance
	// MaxTrustRedelegation bounds a trust's redelegation_count. Default 3.
	MaxTrustRedelegation int
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("identity: Config.Store is required")
	}
	if c.TokenTTL < 0 {
		return errdefs.Invalid("TokenTTL", "must not be negative")
	}
	if c.MaxActiveKeys != 0 && c.MaxActiveKeys < 2 {
		return errdefs.Invalid("MaxActiveKeys", "must be at least 2 (a staged and a primary key)")
	}
	if c.CredentialKey != nil && len(c.CredentialKey) != 32 {
		return errdefs.Invalid("CredentialKey", "must be 32 bytes")
	}
	if err := c.Security.validate(); err != nil {
		return err
	}
	return c.PasswordHashing.validate()
}

// Service is the identity service: Keystone v3's resources, tokens,
// revocation, catalog and policy. Its methods enforce policy on the
// Credentials found in the context (see WithCredentials).
type Service struct {
	cfg    Config
	st     *store.Store
	log    *slog.Logger
	policy Policy
	now    func() time.Time

	keysMu sync.Mutex
	keys   atomic.Pointer[keyring]

	credMu   sync.Mutex
	credAEAD cipher.AEAD

	secrets appCredSecrets
	pwRegex *regexp.Regexp

	cache  tokenCache
	revMu  sync.Mutex
	revIdx revIndexHolder
	epMu   sync.Mutex
	ep     epochHolder

	stopOnce sync.Once
	stop     chan struct{}
	life     context.Context // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New returns a Service on cfg.Store, whose identity tables must be open.
// Call Start before serving.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(Tables()))
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.AdminProjectName == "" {
		cfg.AdminProjectName = "admin"
	}
	if cfg.AdminProjectDomainID == "" {
		cfg.AdminProjectDomainID = DefaultDomainID
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = 100_000
	}
	if cfg.Clock == nil {
		cfg.Clock = cfg.Store.Now
	}
	if cfg.MaxActiveKeys == 0 {
		cfg.MaxActiveKeys = 3
	}
	if cfg.MaxTrustRedelegation == 0 {
		cfg.MaxTrustRedelegation = 3
	}
	s := &Service{
		cfg:    cfg,
		st:     cfg.Store,
		log:    cfg.Logger,
		policy: DefaultPolicy().With(cfg.Policy),
		now:    cfg.Clock,
		stop:   make(chan struct{}),
	}
	if cfg.Security.PasswordRegex != "" {
		s.pwRegex = regexp.MustCompile(cfg.Security.PasswordRegex) // checked by Validate
	}
	s.life, s.cancel = context.WithCancel(context.Background())
	s.cache.max = cfg.TokenCacheSize
	return s, nil
}

// Start creates what must exist (the default domain, the default roles
// and the token keys) and starts the background pruning of expired
// revocation events. It is idempotent across restarts.
func (s *Service) Start(ctx context.Context) error {
	if err := s.ensureDefaults(ctx); err != nil {
		return err
	}
	if _, err := s.keyring(ctx); err != nil {
		return err
	}
	if err := s.noteTTL(ctx); err != nil {
		return fmt.Errorf("identity: record token lifetime: %w", err)
	}
	s.wg.Go(s.pruneLoop)
	if s.cfg.KeyRotationInterval > 0 {
		s.wg.Go(s.rotateLoop)
	}
	return nil
}

// Close stops the background work. It does not close the store.
func (s *Service) Close() error {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.cancel()
	})
	s.wg.Wait()
	return nil
}

func (s *Service) pruneLoop() {
	t := time.NewTicker(noteTTLEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.noteTTL(ctx); err != nil {
				s.log.Warn("identity: record token lifetime", "err", err)
			}
			if n, err := s.PruneRevocations(ctx); err != nil {
				s.log.Warn("identity: prune revocations", "err", err)
			} else if n > 0 {
				s.log.Info("identity: pruned revocation events", "count", n)
			}
			cancel()
		}
	}
}

// ensureDefaults creates the default domain and roles and the implied
// roles admin ⇒ member ⇒ reader if they are missing.
func (s *Service) ensureDefaults(ctx context.Context) error {
	snap := s.st.Snapshot()
	need := false
	if _, err := store.Get[Domain](nil, snap, domainTable, DefaultDomainID); err != nil {
		need = true
	}
	for _, n := range []string{RoleAdmin, RoleMember, RoleReader} {
		if _, err := store.First[Role](nil, snap, roleTable, "name", roleNameKey("", n)); err != nil {
			need = true
		}
	}
	if !need {
		return nil
	}
	ids := map[string]string{RoleAdmin: newID(), RoleMember: newID(), RoleReader: newID()}
	err := s.update(ctx, func(tx *store.Txn) error {
		if _, err := store.Get[Domain](nil, tx, domainTable, DefaultDomainID); err != nil {
			d := &Domain{ID: DefaultDomainID, Name: DefaultDomainName, Description: "The default domain", Enabled: true}
			if err := tx.Insert(domainTable, d); err != nil {
				return err
			}
		}
		byName := map[string]string{}
		for _, n := range []string{RoleAdmin, RoleMember, RoleReader} {
			if r, err := store.First[Role](nil, tx, roleTable, "name", roleNameKey("", n)); err == nil {
				byName[n] = r.ID
				continue
			}
			if err := tx.Insert(roleTable, &Role{ID: ids[n], Name: n}); err != nil {
				return err
			}
			byName[n] = ids[n]
		}
		for _, p := range [][2]string{{RoleAdmin, RoleMember}, {RoleMember, RoleReader}} {
			ir := &ImpliedRole{PriorID: byName[p[0]], ImpliedID: byName[p[1]]}
			if _, err := store.Get[ImpliedRole](nil, tx, impliedTable, ir.StoreKey()); err == nil {
				continue
			}
			if err := tx.Insert(impliedTable, ir); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: create defaults: %w", err)
	}
	return nil
}

// newID returns a Keystone-style id: 32 lowercase hex digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// strIndex is a memdb indexer over a string computed from the record. An
// empty string means the record is not in the index.
type strIndex func(obj any) string

func (f strIndex) FromObject(obj any) (bool, []byte, error) {
	v := f(obj)
	if v == "" {
		return false, nil, nil
	}
	return true, append([]byte(v), 0), nil
}

func (f strIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("identity: index takes one argument, got %d", len(args))
	}
	v, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("identity: index argument must be a string, got %T", args[0])
	}
	return append([]byte(v), 0), nil
}

type memdbIndex = memdb.IndexSchema

func index(name string, unique bool, f strIndex) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: unique, AllowMissing: true, Indexer: f}
}

// key joins the parts of a composite index value.
func key(parts ...string) string { return strings.Join(parts, "\x1f") }

// checkName validates a resource name.
func checkName(field, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return errdefs.Invalid(field, "must not be empty")
	case len(v) > 255:
		return errdefs.Invalid(field, "must be at most 255 characters")
	case !utf8.ValidString(v):
		return errdefs.Invalid(field, "must be valid UTF-8")
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errdefs.Invalid(field, "must not contain control characters")
	}
	return nil
}

// checkID validates an id given by a caller (a reference or a chosen id).
func checkID(field, v string) error {
	if v == "" {
		return errdefs.Invalid(field, "must not be empty")
	}
	if len(v) > 64 || strings.ContainsFunc(v, func(r rune) bool { return r <= 0x20 || r == 0x7f || r == '/' }) {
		return errdefs.Invalid(field, "is not a valid id")
	}
	return nil
}

func checkDescription(v string) error {
	if len(v) > 65535 || !utf8.ValidString(v) {
		return errdefs.Invalid("description", "must be valid UTF-8 of at most 65535 bytes")
	}
	return nil
}

func notFound(kind, id string) error {
	return fmt.Errorf("identity: could not find %s: %s: %w", kind, id, errdefs.ErrNotFound)
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("identity: "+format+": %w", append(args, errdefs.ErrConflict)...)
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// cloneMap returns a deep copy of a JSON-like map (nested maps and slices
// are copied too), so that records handed to callers share no memory with
// the store.
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	case []string:
		return slices.Clone(x)
	}
	return v
}
