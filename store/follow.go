package store

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-memdb"
)

// remote is a change set that another controller committed (or a full
// reload after the watch history was compacted), to apply to the local
// replica through the committer.
type remote struct {
	rev     uint64
	changes []Change
	// full, when set, is the whole backend state as of rev: local records
	// not in it (and not newer than rev) are removed.
	full map[string]map[string]loaded
	done chan struct{}
}

type loaded struct {
	value []byte
	rev   uint64
}

// follow applies the commits of every controller sharing the backend to
// this store's replica, in order, until the store closes. If the history
// it needs was compacted, it reloads the whole state.
func (s *Store) follow(w Watcher, after uint64) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.Watch(ctx, after, func(rev uint64, changes []Change) error {
			if err := s.apply(ctx, &remote{rev: rev, changes: changes}); err != nil {
				return err
			}
			after = rev
			backoff = 100 * time.Millisecond
			return nil
		})
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return
		}
		if errors.Is(err, ErrCompacted) {
			s.log.Warn("watch history compacted: reloading the replica", "after", after)
			rev, rerr := s.reload(ctx)
			if rerr == nil {
				after = rev
				continue
			}
			err = rerr
		}
		s.log.Warn("watch failed; retrying", "after", after, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// reload reads the whole backend state and applies it.
func (s *Store) reload(ctx context.Context) (uint64, error) {
	full := make(map[string]map[string]loaded)
	rev, err := s.backend.Load(ctx, func(table string, key, value []byte, rev uint64) error {
		if _, ok := s.tables[table]; !ok {
			return nil
		}
		t := full[table]
		if t == nil {
			t = make(map[string]loaded)
			full[table] = t
		}
		t[string(key)] = loaded{value: append([]byte(nil), value...), rev: rev}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rev, s.apply(ctx, &remote{rev: rev, full: full})
}

// apply hands a remote change set to the committer and waits until it is
// applied.
func (s *Store) apply(ctx context.Context, r *remote) error {
	r.done = make(chan struct{})
	select {
	case s.applies <- r:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-s.closing:
		return ErrClosed
	}
}

// applyRemote runs in the committer. Commits arrive in the backend's order,
// this controller's own included (it waits for them: see finishBatch). A
// change is applied only if it is newer than the local record, so that a
// reload followed by the watch's replay of the same commits is harmless.
func (s *Store) applyRemote(r *remote) {
	defer close(r.done)
	mtx := s.db.Txn(true)
	defer mtx.Abort()
	if r.full != nil {
		s.applyFull(mtx, r)
	}
	for _, c := range r.changes {
		s.applyOne(mtx, c.Table, c.Key, c.Value, r.rev)
	}
	mtx.Commit()
	if r.rev > s.rev.Load() {
		s.rev.Store(r.rev)
	}
}

func (s *Store) applyOne(mtx *memdb.Txn, table, key string, value []byte, rev uint64) {
	t, ok := s.tables[table]
	if !ok {
		return
	}
	old, err := mtx.First(table, IDIndex, key)
	if err != nil {
		s.log.Error("apply remote change", "table", table, "key", key, "err", err)
		return
	}
	if old != nil && old.(Record).StoreMeta().Revision >= rev {
		return
	}
	if value == nil {
		if old != nil {
			_ = mtx.Delete(table, old)
		}
		return
	}
	rec, _, err := t.decode(value, rev)
	if err == nil {
		err = mtx.Insert(table, rec)
	}
	if err != nil {
		s.log.Error("apply remote change", "table", table, "key", key, "rev", rev, "err", err)
	}
}

func (s *Store) applyFull(mtx *memdb.Txn, r *remote) {
	for name := range s.tables {
		have := r.full[name]
		it, err := mtx.Get(name, IDIndex)
		if err != nil {
			continue
		}
		var gone []any
		for obj := it.Next(); obj != nil; obj = it.Next() {
			rec := obj.(Record)
			if _, ok := have[rec.StoreKey()]; !ok && rec.StoreMeta().Revision <= r.rev {
				gone = append(gone, obj)
			}
		}
		for _, obj := range gone {
			_ = mtx.Delete(name, obj)
		}
		for key, l := range have {
			s.applyOne(mtx, name, key, l.value, l.rev)
		}
	}
}
