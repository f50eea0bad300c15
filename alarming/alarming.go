package alarming

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/metering"
	"github.com/stratuskit/stratus/store"
)

// Aggregator answers the metric aggregates alarms compare with their
// thresholds (metering.Service does). It is called with the alarm's
// project's credentials in ctx, so an alarm reads only its project's
// resources.
type Aggregator interface {
	Aggregates(ctx context.Context, q metering.AggregatesQuery) ([]metering.AggregateGroup, error)
}

// Trusts lets alarms act for their creator after the creator's token has
// expired, as Aodh's trust+http(s) actions do.
type Trusts interface {
	// Delegate creates a trust from the caller in ctx to the alarming
	// service's own user, on the caller's project with the caller's
	// roles, and returns its id.
	Delegate(ctx context.Context) (string, error)
	// Token returns a token issued through the trust.
	Token(ctx context.Context, trustID string) (string, error)
	// Revoke deletes the trust (the alarm is gone).
	Revoke(ctx context.Context, trustID string) error
}

// Config configures the alarming service.
type Config struct {
	// Store holds alarms and their history (required; its tables must
	// include Tables()).
	Store *store.Store
	// Metrics answers the aggregates the rules read (required).
	Metrics Aggregator
	// Trusts serves trust+http(s) actions; nil refuses them at create
	// time.
	Trusts Trusts
	// Clock returns the current time; default time.Now. Tests set it.
	Clock func() time.Time
	// EvaluationInterval is how often the evaluator runs; default 60 s
	// (Aodh's). Negative: no loop, Evaluate is called by hand.
	EvaluationInterval time.Duration
	// WebhookKey is the cloud's secret from which each alarm's webhook
	// signing secret is derived (HMAC-SHA256(WebhookKey, alarm id)), so
	// that the key itself is never shown and one tenant cannot sign for
	// another. Default: 32 random bytes per process — set it for
	// secrets that survive restarts.
	WebhookKey []byte
	// AllowedHosts are the hosts (name or address, with or without
	// :port) webhooks may be sent to besides loopback addresses. A
	// webhook to any other host is refused at create time.
	AllowedHosts []string
	// DenyLoopback refuses loopback webhooks too (a multi-tenant cloud
	// whose controllers serve APIs on loopback should set it).
	DenyLoopback bool
	// HTTPClient sends the actions; default a client with a 10 s
	// timeout that does not follow redirects.
	HTTPClient *http.Client
	// Retries is how many times a failed action is tried again, with
	// backoff doubling from RetryBackoff (default 3 and 500 ms).
	Retries      int
	RetryBackoff time.Duration
	// MaxAlarmsPerProject bounds each project's alarms, so that one
	// tenant cannot swamp the evaluator; default 200.
	MaxAlarmsPerProject int
	// Logger is optional.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("alarming: Config.Store is required")
	}
	if c.Metrics == nil {
		return errors.New("alarming: Config.Metrics is required")
	}
	return nil
}

// Service is the alarming service (Aodh): threshold alarms on metering's
// aggregates, evaluated periodically by one controller at a time, with
// webhook and trust actions and a history of every change. Its methods
// enforce tenant isolation: a caller sees its own project's alarms, cloud
// admins see all; another project's alarm is not found.
type Service struct {
	cfg Config
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup // loops
	sendWG  sync.WaitGroup // actions in flight
	sendCtx context.Context
	stopped bool
}

// New returns an alarming service; Start runs its evaluator.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.EvaluationInterval == 0 {
		cfg.EvaluationInterval = time.Minute
	}
	if len(cfg.WebhookKey) == 0 {
		cfg.WebhookKey = make([]byte, 32)
		_, _ = rand.Read(cfg.WebhookKey)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 500 * time.Millisecond
	}
	if cfg.MaxAlarmsPerProject <= 0 {
		cfg.MaxAlarmsPerProject = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var names []string
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("alarming: %w", err)
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, sendCtx: context.Background()}, nil
}

// Start runs the evaluator (unless Config.EvaluationInterval is negative):
// it campaigns for the store's "alarming.evaluator" leadership, so that one
// controller evaluates every alarm across a cloud sharing an etcd store.
func (s *Service) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.sendCtx = runCtx
	s.mu.Unlock()
	if s.cfg.EvaluationInterval > 0 {
		s.wg.Go(func() { s.evalLoop(runCtx) })
	}
	return nil
}

// Close stops the evaluator and waits for the actions in flight.
func (s *Service) Close() error {
	s.mu.Lock()
	cancel := s.cancel
	s.stopped = true
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	s.sendWG.Wait()
	return nil
}

// Wait waits for the actions sent so far (tests).
func (s *Service) Wait() { s.sendWG.Wait() }

func (s *Service) now() time.Time { return s.cfg.Clock().UTC() }

// Tables returns the alarming service's store tables.
func Tables() []store.Table { return []store.Table{alarmTable(), historyTable()} }

// who is the caller as alarming's policy sees it.
type who struct {
	user, project string
	admin         bool
}

func caller(ctx context.Context) (who, error) {
	c := identity.CredentialsFrom(ctx)
	if c == nil {
		return who{}, fmt.Errorf("alarming: %w: no credentials", errdefs.ErrUnauthenticated)
	}
	if c.IsCloudAdmin() || c.IsSystemReader() {
		return who{user: c.UserID, project: c.ProjectID, admin: true}, nil
	}
	if c.ProjectID == "" {
		return who{}, fmt.Errorf("alarming: %w: a project-scoped token is needed", errdefs.ErrForbidden)
	}
	return who{user: c.UserID, project: c.ProjectID}, nil
}

func (w who) sees(project string) bool { return w.admin || project == w.project }

func notFound(id string) error {
	return fmt.Errorf("alarming: alarm %q: %w", id, errdefs.ErrNotFound)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
