package objectstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

// Limits, as Swift's /info reports them.
const (
	// MaxObjectSize is the largest single object (Swift's max_file_size).
	MaxObjectSize = 5<<30 + 2
	// MaxObjectNameLength bounds object names, in bytes.
	MaxObjectNameLength = 1024
	// MaxContainerNameLength bounds container names, in bytes.
	MaxContainerNameLength = 256
	// ListingLimit is the most entries one listing returns.
	ListingLimit = 10000
	// MaxMetaNameLength, MaxMetaValueLength, MaxMetaCount and
	// MaxMetaOverallSize bound metadata headers.
	MaxMetaNameLength  = 128
	MaxMetaValueLength = 256
	MaxMetaCount       = 90
	MaxMetaOverallSize = 4096
	// MaxManifestSegments bounds an SLO manifest.
	MaxManifestSegments = 1000
	// MaxManifestSize bounds the body of an SLO manifest PUT.
	MaxManifestSize = 8 << 20
	// MaxBulkDeletes bounds one bulk delete.
	MaxBulkDeletes = 10000
	// AccountPrefix begins every account name.
	AccountPrefix = "AUTH_"
)

// Table names.
const (
	accountTable   = "objectstore.accounts"
	containerTable = "objectstore.containers"
)

// Tables returns the store tables of the object store, for store.Open.
// They hold account and container metadata; objects and listings live in
// the Backend.
func Tables() []store.Table {
	return []store.Table{
		{Name: accountTable, New: func() store.Record { return new(Account) }},
		{Name: containerTable, New: func() store.Record { return new(Container) }},
	}
}

// Errors the Service returns besides the errdefs kinds; the API maps them
// to Swift's status codes.
var (
	// ErrPreconditionFailed is a failed If-Match, If-None-Match or
	// If-Unmodified-Since (412).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrRangeNotSatisfiable is a Range outside the object (416).
	ErrRangeNotSatisfiable = errors.New("requested range not satisfiable")
)

// Config configures a Service.
type Config struct {
	// Store holds the tables of Tables. Required.
	Store *store.Store
	// Backend keeps the objects. Required.
	Backend Backend
	// Logger receives the service's log lines. Default: slog.Default().
	Logger *slog.Logger
	// Clock returns the current time. Default: the store's clock.
	Clock func() time.Time
	// ReapInterval is how often expired objects are deleted. Default:
	// 10 s; negative disables the reaper.
	ReapInterval time.Duration
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("objectstore: Config.Store is required")
	}
	if c.Backend == nil {
		return errors.New("objectstore: Config.Backend is required")
	}
	return nil
}

// Service is the object store: Swift's accounts, containers and objects
// with ACLs, quotas, versioning, expiry, large objects and temp URLs, on a
// Backend. Its methods authorize the caller found in the context
// (identity.Credentials, or a temp URL grant) themselves, so library
// callers get the same checks as the REST API.
type Service struct {
	cfg     Config
	st      *store.Store
	backend Backend
	log     *slog.Logger
	now     func() time.Time

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a Service. Call Start to run the expiry reaper.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Store.HasTables(accountTable, containerTable); err != nil {
		return nil, fmt.Errorf("objectstore: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = cfg.Store.Now
	}
	if cfg.ReapInterval == 0 {
		cfg.ReapInterval = 10 * time.Second
	}
	return &Service{cfg: cfg, st: cfg.Store, backend: cfg.Backend, log: cfg.Logger, now: cfg.Clock, stop: make(chan struct{})}, nil
}

// Backend returns the service's backend.
func (s *Service) Backend() Backend { return s.backend }

// Start starts the expiry reaper.
func (s *Service) Start(context.Context) error {
	if s.cfg.ReapInterval > 0 {
		s.wg.Go(s.reapLoop)
	}
	return nil
}

// Close stops the reaper. It closes neither the store nor the backend.
func (s *Service) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	return nil
}

func (s *Service) reapLoop() {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.ReapExpired(context.Background()); err != nil {
				s.log.Warn("objectstore: reaping expired objects", "err", err)
			}
		}
	}
}

// ReapExpired deletes the objects whose X-Delete-At has passed and
// returns how many it deleted.
func (s *Service) ReapExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		keys, err := s.backend.ReapExpired(ctx, s.now(), 1000)
		total += len(keys)
		if err != nil || len(keys) < 1000 {
			return total, err
		}
	}
}

// checkContainerName validates a container name.
func checkContainerName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("container", "must not be empty")
	case len(name) > MaxContainerNameLength:
		return errdefs.Invalid("container", "must be at most %d bytes", MaxContainerNameLength)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\x00/"):
		return errdefs.Invalid("container", "must be UTF-8 without NUL or '/'")
	case name == "." || name == "..":
		return errdefs.Invalid("container", "must not be '.' or '..'")
	}
	return nil
}

// checkObjectName validates an object name.
func checkObjectName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("object", "must not be empty")
	case len(name) > MaxObjectNameLength:
		return errdefs.Invalid("object", "must be at most %d bytes", MaxObjectNameLength)
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return errdefs.Invalid("object", "must be UTF-8 without NUL")
	}
	return nil
}

// checkAccountName validates an account name: AUTH_ and a project id.
func checkAccountName(name string) error {
	id, ok := strings.CutPrefix(name, AccountPrefix)
	if !ok || id == "" || len(name) > 256 || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00/") {
		return errdefs.Invalid("account", "must be %s followed by a project id", AccountPrefix)
	}
	return nil
}

// checkKey validates all three names of key.
func checkKey(key ObjectKey) error {
	if err := checkAccountName(key.Account); err != nil {
		return err
	}
	if err := checkContainerName(key.Container); err != nil {
		return err
	}
	return checkObjectName(key.Name)
}

// checkMeta validates the metadata headers of one resource: names under
// prefix (X-Account-Meta-, ...) and the sizes Swift allows.
func checkMeta(prefix string, h map[string]string) error {
	count, total := 0, 0
	for k, v := range h {
		name, ok := cutPrefixFold(k, prefix)
		if !ok {
			continue
		}
		count++
		total += len(name) + len(v)
		switch {
		case name == "":
			return errdefs.Invalid(k, "metadata name must not be empty")
		case len(name) > MaxMetaNameLength:
			return errdefs.Invalid(k, "metadata name must be at most %d bytes", MaxMetaNameLength)
		case len(v) > MaxMetaValueLength:
			return errdefs.Invalid(k, "metadata value must be at most %d bytes", MaxMetaValueLength)
		case !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\r\n"):
			return errdefs.Invalid(k, "metadata value must be UTF-8 on one line")
		}
	}
	if count > MaxMetaCount {
		return errdefs.Invalid(prefix+"*", "at most %d metadata items", MaxMetaCount)
	}
	if total > MaxMetaOverallSize {
		return errdefs.Invalid(prefix+"*", "metadata must total at most %d bytes", MaxMetaOverallSize)
	}
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// mergeMeta applies updates to cur: an empty value removes the header.
func mergeMeta(cur, updates map[string]string) map[string]string {
	out := make(map[string]string, len(cur)+len(updates))
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range updates {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}
