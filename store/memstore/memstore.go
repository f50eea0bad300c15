// Package memstore is an in-memory store.Backend for tests and for
// throwaway clouds. It is not durable: its state lives as long as the
// process. It can inject faults into commits, to test how callers handle a
// failing disk.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

var _ store.Backend = (*Backend)(nil)

// Hooks inject faults. Each hook may be nil.
type Hooks struct {
	// BeforeCommit is called with each commit before it is applied; an error
	// fails the commit, which then applies nothing.
	BeforeCommit func(changes []store.Change) error
}

// Backend is an in-memory store.Backend.
type Backend struct {
	s      *state
	closed bool
}

type state struct {
	mu     sync.Mutex
	rev    uint64
	tables map[string]map[string]entry
	hooks  Hooks
}

type entry struct {
	rev   uint64
	value []byte
}

// New returns an empty backend.
func New() *Backend {
	return &Backend{s: &state{tables: make(map[string]map[string]entry)}}
}

// SetHooks replaces the backend's fault hooks.
func (b *Backend) SetHooks(h Hooks) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.s.hooks = h
}

// Reopen returns a new Backend on the same state, as a restarted process
// would find it on a durable backend.
func (b *Backend) Reopen() *Backend { return &Backend{s: b.s} }

// Durable reports false: the state does not survive the process.
func (b *Backend) Durable() bool { return false }

var errClosed = errors.New("memstore: closed")

// Load implements store.Backend.
func (b *Backend) Load(ctx context.Context, fn func(table string, key, value []byte, rev uint64) error) (uint64, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.closed {
		return 0, errClosed
	}
	for _, t := range slices.Sorted(maps.Keys(b.s.tables)) {
		recs := b.s.tables[t]
		for _, k := range slices.Sorted(maps.Keys(recs)) {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if err := fn(t, []byte(k), recs[k].value, recs[k].rev); err != nil {
				return 0, err
			}
		}
	}
	return b.s.rev, nil
}

// Commit implements store.Backend.
func (b *Backend) Commit(ctx context.Context, changes []store.Change) (uint64, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.closed {
		return 0, errClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for _, c := range changes {
		if have := b.s.tables[c.Table][c.Key].rev; have != c.Prev {
			return 0, fmt.Errorf("memstore: %s %q is at revision %d, not %d: %w", c.Table, c.Key, have, c.Prev, errdefs.ErrConflict)
		}
	}
	if h := b.s.hooks.BeforeCommit; h != nil {
		if err := h(changes); err != nil {
			return 0, err
		}
	}
	rev := b.s.rev + 1
	for _, c := range changes {
		t := b.s.tables[c.Table]
		if t == nil {
			t = make(map[string]entry)
			b.s.tables[c.Table] = t
		}
		if c.Value == nil {
			delete(t, c.Key)
		} else {
			t[c.Key] = entry{rev: rev, value: slices.Clone(c.Value)}
		}
	}
	b.s.rev = rev
	return rev, nil
}

// Close implements store.Backend. The state stays reachable through Reopen.
func (b *Backend) Close() error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.closed = true
	return nil
}
