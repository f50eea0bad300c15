package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Elector is implemented by backends shared by several controllers, to
// elect one of them to run a singleton loop (a scheduler pass, compaction,
// a garbage sweep).
type Elector interface {
	// Campaign blocks until this process leads name, or ctx ends.
	Campaign(ctx context.Context, name string) (Leadership, error)
}

// Leadership is a won election, held until it is resigned or lost.
type Leadership interface {
	// Lost is closed when the leadership ends: resigned, or lost because
	// this process could not renew it (a partition, a stall).
	Lost() <-chan struct{}
	// Fence returns the fencing token of this leadership: a commit made
	// through a FencedCommitter with it applies only while the leadership
	// still holds.
	Fence() Fence
	// Resign gives the leadership up.
	Resign(ctx context.Context) error
}

// Fence identifies one leadership term in the backend: the key that holds
// it and the revision at which it was won.
type Fence struct {
	Key string
	Rev uint64
}

// FencedCommitter is implemented by backends that can make a commit
// conditional on a leadership still holding.
type FencedCommitter interface {
	// CommitFenced is Commit, failing with errdefs.ErrConflict (and
	// applying nothing) if fence's leadership no longer holds.
	CommitFenced(ctx context.Context, changes []Change, fence Fence) (uint64, error)
}

// ErrNotLeader is returned by Leader.Update once the leadership is lost.
var ErrNotLeader = errors.New("store: not the leader")

// Leader is this process's leadership of one named singleton task.
type Leader struct {
	st   *Store
	name string
	l    Leadership // nil on a backend without Elector

	once   sync.Once
	lost   chan struct{}
	unlock func()
}

// localElections elects among the campaigners of one process, for
// backends that only one process uses.
type localElections struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

func (e *localElections) lock(name string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.locks == nil {
		e.locks = make(map[string]chan struct{})
	}
	ch := e.locks[name]
	if ch == nil {
		ch = make(chan struct{}, 1)
		e.locks[name] = ch
	}
	return ch
}

// Campaign blocks until this process leads the singleton task name, or ctx
// ends. On a backend several controllers share (etcd), one controller in
// the cloud leads at a time; on a single-process backend, one caller in
// the process does.
func (s *Store) Campaign(ctx context.Context, name string) (*Leader, error) {
	l := &Leader{st: s, name: name, lost: make(chan struct{})}
	if el, ok := s.backend.(Elector); ok {
		lead, err := el.Campaign(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("store: campaign %q: %w", name, err)
		}
		l.l = lead
		go func() {
			select {
			case <-lead.Lost():
				l.markLost()
			case <-l.lost:
			}
		}()
		return l, nil
	}
	ch := s.elections.lock(name)
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("store: campaign %q: %w", name, ctx.Err())
	case <-s.closing:
		return nil, ErrClosed
	}
	l.unlock = func() { <-ch }
	return l, nil
}

func (l *Leader) markLost() {
	l.once.Do(func() {
		close(l.lost)
		if l.unlock != nil {
			l.unlock()
		}
	})
}

// Lost is closed when the leadership ends.
func (l *Leader) Lost() <-chan struct{} { return l.lost }

// Resign gives the leadership up.
func (l *Leader) Resign(ctx context.Context) error {
	var err error
	if l.l != nil {
		err = l.l.Resign(ctx)
	}
	l.markLost()
	return err
}

// Update is Store.Update fenced by the leadership: it commits only while
// this process still leads, so a leader that lost its term while stalled
// cannot overwrite its successor's work. It fails with ErrNotLeader once the
// leadership is known lost, and with errdefs.ErrConflict if the backend
// finds it lost at commit time.
func (l *Leader) Update(ctx context.Context, fn func(*Txn) error) error {
	select {
	case <-l.lost:
		return fmt.Errorf("store: %q: %w", l.name, ErrNotLeader)
	default:
	}
	if l.l == nil {
		return l.st.Update(ctx, fn)
	}
	f := l.l.Fence()
	return l.st.update(ctx, fn, &f)
}
