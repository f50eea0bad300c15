package store

import (
	"context"
	"math"
	"time"
)

// CompactStats says what one compaction removed.
type CompactStats struct {
	// Tombstones is how many tombstones past retention were purged.
	Tombstones int
	// Events is how many events every consumer had passed, past retention,
	// were purged.
	Events int
}

// compactChunk bounds the records one compaction transaction removes.
const compactChunk = 1000

// Compact purges tombstones older than the tombstone retention and events
// that every consumer's cursor has passed and that are older than the event
// retention. It runs in chunks, so writers are never held up for long.
func (s *Store) Compact(ctx context.Context) (CompactStats, error) {
	return s.compact(ctx, s.Update)
}

func (s *Store) compact(ctx context.Context, update func(context.Context, func(*Txn) error) error) (CompactStats, error) {
	var st CompactStats
	now := s.opts.Clock()
	tsCut := now.Add(-s.opts.TombstoneRetention)
	evCut := now.Add(-s.opts.EventRetention)
	for {
		n := 0
		err := update(ctx, func(tx *Txn) error {
			n = 0
			all, err := List[Tombstone](nil, tx, tombstoneTable, IDIndex)
			if err != nil {
				return err
			}
			for ts := range all {
				if n == compactChunk {
					break
				}
				if ts.DeletedAt.Before(tsCut) {
					if err := tx.purgeIfExists(tombstoneTable, ts.StoreKey()); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		st.Tombstones += n
		if n < compactChunk {
			break
		}
	}
	for {
		n := 0
		err := update(ctx, func(tx *Txn) error {
			n = 0
			floor := uint64(math.MaxUint64)
			curs, err := List[cursor](nil, tx, cursorTable, IDIndex)
			if err != nil {
				return err
			}
			for c := range curs {
				floor = min(floor, c.Seq)
			}
			events, err := List[Event](nil, tx, eventTable, "seq")
			if err != nil {
				return err
			}
			for ev := range events {
				if n == compactChunk || ev.Seq > floor || !ev.Time.Before(evCut) {
					break
				}
				if err := tx.purgeIfExists(eventTable, ev.StoreKey()); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		st.Events += n
		if n < compactChunk {
			break
		}
	}
	return st, nil
}

// compactLoop compacts periodically while this process leads the
// "store.compaction" election, so that of several controllers sharing a
// backend only one compacts, with fenced writes.
func (s *Store) compactLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.closing
		cancel()
	}()
	for ctx.Err() == nil {
		l, err := s.Campaign(ctx, "store.compaction")
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("compaction election failed; retrying", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(s.opts.CompactInterval):
				}
			}
			continue
		}
		s.compactWhileLeading(ctx, l)
		_ = l.Resign(context.WithoutCancel(ctx))
	}
}

func (s *Store) compactWhileLeading(ctx context.Context, l *Leader) {
	t := time.NewTicker(s.opts.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.Lost():
			s.log.Info("lost the compaction leadership")
			return
		case <-t.C:
			st, err := s.compact(ctx, l.Update)
			if err != nil {
				s.log.Warn("compaction failed", "err", err)
				continue
			}
			if st.Tombstones+st.Events > 0 {
				s.log.Info("compacted", "tombstones", st.Tombstones, "events", st.Events)
			}
		}
	}
}
