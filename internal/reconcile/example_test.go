package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/internal/reconcile"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// This example shows the wiring every Stratus service follows:
//
//   - New(Config) takes only the store, the driver and a logger, and checks
//     them (its tables must be open in the store);
//   - what it needs of other services is a small interface it declares,
//     set afterwards with a Use method, so two services that need each
//     other can be wired in either order;
//   - Start checks those dependencies and starts the reconcilers; Close
//     stops them.

// Lamp is the example service's record: a desired and an observed state.
type Lamp struct {
	store.Meta
	ID, Owner, Want, Have string
}

func (l *Lamp) StoreKey() string { return l.ID }

// Switcher is the example service's driver interface: the outside world.
type Switcher interface {
	Switch(ctx context.Context, id, state string) error
}

// Owners is what the example service needs of another service, declared by
// the consumer.
type Owners interface {
	OwnerExists(ctx context.Context, id string) bool
}

// LampConfig is the service's Config.
type LampConfig struct {
	Store  *store.Store
	Driver Switcher
	Logger *slog.Logger
}

// LampService is the example service.
type LampService struct {
	cfg    LampConfig
	owners Owners
	loop   *reconcile.Loop
}

// NewLampService is the service's New.
func NewLampService(cfg LampConfig) (*LampService, error) {
	if cfg.Store == nil || cfg.Driver == nil {
		return nil, errors.New("lamps: Store and Driver are required")
	}
	if err := cfg.Store.HasTables("example.lamps"); err != nil {
		return nil, fmt.Errorf("lamps: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &LampService{cfg: cfg}
	s.loop = reconcile.New("lamps", cfg.Store, s, &reconcile.Options{Logger: cfg.Logger})
	return s, nil
}

// UseOwners sets the dependency on the service that knows owners.
func (s *LampService) UseOwners(o Owners) { s.owners = o }

// Start checks the dependencies and starts the reconciler.
func (s *LampService) Start(ctx context.Context) error {
	if s.owners == nil {
		return errors.New("lamps: UseOwners was not called")
	}
	s.loop.Start(ctx)
	return nil
}

// Close stops the reconciler.
func (s *LampService) Close() error { s.loop.Stop(); return nil }

// Pending implements reconcile.Reconciler: lamps whose state differs.
func (s *LampService) Pending(ws memdb.WatchSet, tx *store.Txn) ([]reconcile.Item, error) {
	all, err := store.List[Lamp](ws, tx, "example.lamps", store.IDIndex)
	if err != nil {
		return nil, err
	}
	var out []reconcile.Item
	for l := range all {
		if l.Want != l.Have {
			out = append(out, reconcile.Item{Key: l.ID, Revision: l.Revision})
		}
	}
	return out, nil
}

// Reconcile implements reconcile.Reconciler: drive the driver, write back
// what was observed.
func (s *LampService) Reconcile(ctx context.Context, id string) error {
	l, err := store.Get[Lamp](nil, s.cfg.Store.Snapshot(), "example.lamps", id)
	if err != nil {
		return err
	}
	if !s.owners.OwnerExists(ctx, l.Owner) {
		return fmt.Errorf("lamps: owner %q does not exist", l.Owner)
	}
	if err := s.cfg.Driver.Switch(ctx, id, l.Want); err != nil {
		return err
	}
	l.Have = l.Want
	return s.cfg.Store.Update(ctx, func(tx *store.Txn) error { return tx.Update("example.lamps", l) })
}

type fakeSwitcher struct {
	mu  sync.Mutex
	log []string
}

func (f *fakeSwitcher) Switch(_ context.Context, id, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, id+"="+state)
	return nil
}

type everyone struct{}

func (everyone) OwnerExists(context.Context, string) bool { return true }

func Example_wiring() {
	ctx := context.Background()
	lamps := store.Table{Name: "example.lamps", New: func() store.Record { return new(Lamp) }}
	st, _ := store.Open(ctx, memstore.New(), []store.Table{lamps}, nil)
	defer st.Close()

	driver := &fakeSwitcher{}
	svc, err := NewLampService(LampConfig{Store: st, Driver: driver})
	if err != nil {
		panic(err)
	}
	fmt.Println(svc.Start(ctx)) // dependencies missing
	svc.UseOwners(everyone{})
	if err := svc.Start(ctx); err != nil {
		panic(err)
	}
	defer svc.Close()

	// The API path writes desired state only; the reconciler does the rest.
	_ = st.Update(ctx, func(tx *store.Txn) error {
		return tx.Insert("example.lamps", &Lamp{ID: "l1", Owner: "o1", Want: "on"})
	})
	for {
		ws := memdb.NewWatchSet()
		l, _ := store.Get[Lamp](ws, st.Snapshot(), "example.lamps", "l1")
		if l.Have == "on" {
			break
		}
		ws.Watch(nil)
	}
	fmt.Println(driver.log)
	// Output:
	// lamps: UseOwners was not called
	// [l1=on]
}
