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
	var st CompactStats
	now := s.opts.Clock()
	tsCut := now.Add(-s.opts.TombstoneRetention)
	evCut := now.Add(-s.opts.EventRetention)
	for {
		n := 0
		err := s.Update(ctx, func(tx *Txn) error {
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
		err := s.Update(ctx, func(tx *Txn) error {
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

func (s *Store) compactLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.CompactInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.closing
		cancel()
	}()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			st, err := s.Compact(ctx)
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
