package metering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/metering/tsdb"
	"github.com/stratuskit/stratus/store"
)

// Config configures the metering service.
type Config struct {
	// Store holds resources, metrics, archive policies, stored events and
	// the event cursor (required; its tables must include Tables()).
	Store *store.Store
	// DB holds the measures (required): a time-series store of its own,
	// not the control-plane store.
	DB *tsdb.DB
	// Clock returns the current time, the time of polled samples; default
	// time.Now. Tests set it.
	Clock func() time.Time
	// PollInterval is how often Start's loop polls the sources; default 5
	// minutes (Ceilometer's). Negative: no loop, Poll is called by hand.
	PollInterval time.Duration
	// DefaultPolicy is the archive policy of metrics created by samples;
	// default "stratus": 5-minute buckets for a day, hourly for 30 days,
	// daily for a year, so that a month's query reads hourly rollups.
	DefaultPolicy string
	// EventRetention is how long stored events are kept; default 30 days.
	EventRetention time.Duration
	// Logger is optional.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("metering: Config.Store is required")
	}
	if c.DB == nil {
		return errors.New("metering: Config.DB is required")
	}
	return nil
}

// Service is the metering service: meters sampled by pollsters and from the
// other services' events, kept in archive policies, served by the Gnocchi
// API and Prometheus. Its methods enforce tenant isolation: a caller sees
// its own project's resources, metrics and events; cloud admins see all.
type Service struct {
	cfg Config
	st  *store.Store
	db  *tsdb.DB
	log *slog.Logger

	mu      sync.Mutex
	sources Sources
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pollMu  sync.Mutex // one Poll at a time
}

// New returns a metering service. Call Start to create the default archive
// policies and run the event consumer and the poll loop.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Minute
	}
	if cfg.DefaultPolicy == "" {
		cfg.DefaultPolicy = "stratus"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = 30 * day
	}
	var names []string
	for _, t := range Tables() {
		names = append(names, t.Name)
	}
	if err := cfg.Store.HasTables(names...); err != nil {
		return nil, fmt.Errorf("metering: %w", err)
	}
	return &Service{cfg: cfg, st: cfg.Store, db: cfg.DB, log: cfg.Logger}, nil
}

// Use sets the sources the pollsters sample. Call it before Start; nil
// fields are not polled.
func (s *Service) Use(src Sources) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = src
}

// Start creates the default archive policies and starts the event
// consumer and, unless Config.PollInterval is negative, the poll loop.
func (s *Service) Start(ctx context.Context) error {
	if err := s.ensurePolicies(ctx); err != nil {
		return err
	}
	if _, err := s.policy(s.cfg.DefaultPolicy); err != nil {
		return fmt.Errorf("metering: default policy: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.wg.Go(func() { s.consumeEvents(runCtx) })
	if s.cfg.PollInterval > 0 {
		s.wg.Go(func() { s.pollLoop(runCtx) })
	}
	return nil
}

// Close stops the loops. The DB is the caller's to close.
func (s *Service) Close() error {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Clock().UTC() }

func (s *Service) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("metering: poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tables returns the metering service's store tables.
func Tables() []store.Table {
	return []store.Table{resourceTable(), metricTable(), policyTable(), eventTable()}
}

func notFound(kind, id string) error {
	return fmt.Errorf("metering: %s %q: %w", kind, id, errdefs.ErrNotFound)
}
