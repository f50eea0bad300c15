// Package reconcile runs level-triggered reconcilers over the store: the
// shared loop behind every service's asynchronous work (spawning a server,
// plugging a port, attaching a volume).
//
// A reconciler says which items need work, reading a store snapshot and
// registering watches; the loop calls Reconcile for each item, retries
// failures with exponential backoff per item, and sleeps on the watches
// when nothing is due. It is level-triggered: it compares desired and
// observed state every time, so a restart simply resumes.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/store"
)

// Item is one piece of pending work.
type Item struct {
	// Key identifies the item, for example a server id.
	Key string
	// Revision is the store revision of the record that makes the item
	// pending. After a successful Reconcile the item is not reconciled again
	// until its revision changes (or a resync), so that a reconciler that
	// cannot make progress does not spin.
	Revision uint64
}

// Reconciler is what a service implements for one kind of work.
type Reconciler interface {
	// Pending returns the items that need work in the snapshot tx,
	// registering in ws the watches that fire when that may change.
	Pending(ws memdb.WatchSet, tx *store.Txn) ([]Item, error)
	// Reconcile drives one item toward its desired state and writes the
	// observed state back to the store. An error is logged and the item is
	// retried with backoff.
	Reconcile(ctx context.Context, key string) error
}

// Options tunes a Loop. The zero value is usable.
type Options struct {
	// Logger receives failures. Default: slog.Default().
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the retry delay of a failing item,
	// which doubles at each failure (with jitter). Defaults: 100ms and 1m.
	MinBackoff, MaxBackoff time.Duration
	// Resync, if positive, reconciles every pending item again at this
	// interval even if nothing changed, to catch drift in the outside world.
	Resync time.Duration
	// Workers is how many items are reconciled at once (never the same key
	// twice at once). Default 1.
	Workers int
}

// Loop runs one Reconciler. Start it with Start; Stop ends it.
type Loop struct {
	name string
	st   *store.Store
	r    Reconciler
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	state   map[string]*itemState
	cancel  context.CancelFunc
	done    chan struct{}
	running bool
}

type itemState struct {
	doneRev  uint64 // revision of the last successful reconcile
	attempts int
	due      time.Time
	busy     bool
}

// New returns a loop called name (for logs) that runs r on st.
func New(name string, st *store.Store, r Reconciler, opts *Options) *Loop {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	return &Loop{name: name, st: st, r: r, opts: o, log: o.Logger.With("reconciler", name), state: map[string]*itemState{}}
}

// Start runs the loop in the background until Stop or until ctx ends.
func (l *Loop) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		return
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	l.running = true
	go l.run(ctx)
}

// Stop ends the loop and waits for reconciles under way to return (their
// context is cancelled).
func (l *Loop) Stop() {
	l.mu.Lock()
	if !l.running {
		l.mu.Unlock()
		return
	}
	l.cancel()
	done := l.done
	l.running = false
	l.mu.Unlock()
	<-done
}

func (l *Loop) run(ctx context.Context) {
	defer close(l.done)
	sem := make(chan struct{}, l.opts.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	kick := make(chan struct{}, 1) // a worker finished: look again
	var resync <-chan time.Time
	if l.opts.Resync > 0 {
		t := time.NewTicker(l.opts.Resync)
		defer t.Stop()
		resync = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ws := memdb.NewWatchSet()
		items, err := l.r.Pending(ws, l.st.Snapshot())
		if err != nil {
			l.log.Error("listing pending work failed", "err", err)
			ws = nil
		}
		now := time.Now()
		next := time.Time{}
		seen := make(map[string]bool, len(items))
		for _, it := range items {
			seen[it.Key] = true
			l.mu.Lock()
			s := l.state[it.Key]
			if s == nil {
				s = &itemState{}
				l.state[it.Key] = s
			}
			skip := s.busy || (s.attempts == 0 && s.doneRev != 0 && s.doneRev == it.Revision)
			if !skip && s.due.After(now) {
				if next.IsZero() || s.due.Before(next) {
					next = s.due
				}
				skip = true
			}
			if !skip {
				s.busy = true
			}
			l.mu.Unlock()
			if skip {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				l.release(it.Key)
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				l.reconcile(ctx, it)
				select {
				case kick <- struct{}{}:
				default:
				}
			})
		}
		l.forget(seen)

		var due <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			due = timer.C
		} else if err != nil {
			timer.Reset(l.opts.MinBackoff)
			due = timer.C
		}
		wctx, wcancel := context.WithCancel(ctx)
		watch := ws.WatchCh(wctx)
		select {
		case <-ctx.Done():
			wcancel()
			return
		case werr := <-watch:
			_ = werr // nil when a watch fired; cancellation is seen above
		case <-due:
		case <-kick:
		case <-resync:
			l.mu.Lock()
			for _, s := range l.state {
				s.doneRev = 0
			}
			l.mu.Unlock()
		}
		wcancel() // ends WatchCh's goroutine
		if due != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (l *Loop) reconcile(ctx context.Context, it Item) {
	err := l.safeReconcile(ctx, it.Key)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state[it.Key]
	if s == nil {
		return
	}
	s.busy = false
	if err == nil {
		s.attempts, s.due, s.doneRev = 0, time.Time{}, it.Revision
		return
	}
	if ctx.Err() != nil {
		return
	}
	s.attempts++
	d := l.opts.MinBackoff << min(s.attempts-1, 20)
	d = min(d, l.opts.MaxBackoff)
	d = d/2 + rand.N(d/2+1) // jitter in [d/2, d]
	s.due = time.Now().Add(d)
	l.log.Warn("reconcile failed; will retry", "key", it.Key, "attempt", s.attempts, "retry_in", d, "err", err)
}

func (l *Loop) safeReconcile(ctx context.Context, key string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reconcile: %s %q panicked: %v", l.name, key, p)
		}
	}()
	return l.r.Reconcile(ctx, key)
}

func (l *Loop) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.state[key]; s != nil {
		s.busy = false
	}
}

// forget drops the state of items no longer pending and not in flight.
func (l *Loop) forget(pending map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, s := range l.state {
		if !pending[k] && !s.busy {
			delete(l.state, k)
		}
	}
}

// Attempts returns how many times in a row the item with key has failed
// (0 when it last succeeded or is unknown), for status reporting.
func (l *Loop) Attempts(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.state[key]; s != nil {
		return s.attempts
	}
	return 0
}
