package metering

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/store"
)

const (
	eventTableName = "metering.events"
	// consumerName is metering's durable cursor in the store's outbox.
	consumerName = "metering"
)

// Event is a change another service made (a server created, a volume
// attached, an image uploaded …), as metering stores it: its type, when,
// the resource and project, and its traits (the event's payload, flattened
// to strings).
type Event struct {
	store.Meta
	ID         string            `json:"message_id"`
	Seq        uint64            `json:"seq"`
	Type       string            `json:"event_type"`
	Generated  time.Time         `json:"generated"`
	ResourceID string            `json:"resource_id"`
	ProjectID  string            `json:"project_id"`
	Traits     map[string]string `json:"traits"`
}

// StoreKey implements store.Record.
func (e *Event) StoreKey() string { return e.ID }

func eventTable() store.Table {
	return store.Table{Name: eventTableName, New: func() store.Record { return new(Event) },
		Indexes: []*memdb.IndexSchema{{Name: "seq", Indexer: &memdb.UintFieldIndex{Field: "Seq"}, Unique: true}}}
}

// consumeEvents reads the outbox from metering's durable cursor until ctx
// ends: each batch is stored, with its effects on resources, in one
// transaction, then acknowledged. A crash in between delivers the batch
// again; storing it again changes nothing.
func (s *Service) consumeEvents(ctx context.Context) {
	cons := s.st.Consumer(consumerName)
	for {
		evs, err := cons.Next(ctx, 256)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("metering: read events", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if err := s.storeEvents(ctx, evs); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("metering: store events", "err", err)
			continue
		}
		if err := cons.Ack(ctx, evs[len(evs)-1].Seq); err != nil && ctx.Err() == nil {
			s.log.Warn("metering: ack events", "err", err)
		}
	}
}

func (s *Service) storeEvents(ctx context.Context, evs []*store.Event) error {
	cut := s.now().Add(-s.cfg.EventRetention)
	return s.st.Update(ctx, func(tx *store.Txn) error {
		if err := pruneEventsTxn(tx, cut, 256+2*len(evs)); err != nil {
			return err
		}
		for _, ev := range evs {
			e := &Event{ID: ev.ID, Seq: ev.Seq, Type: ev.Type, Generated: ev.Time.UTC(), ResourceID: ev.ResourceID,
				ProjectID: ev.ProjectID, Traits: traits(ev)}
			if err := tx.Put(eventTableName, e); err != nil {
				return err
			}
			if err := applyEventTxn(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// pruneEventsTxn deletes up to max stored events older than cut, oldest
// first: each batch of new events makes room for 256 plus twice as many
// old ones, so that the table stays within the retention.
func pruneEventsTxn(tx *store.Txn, cut time.Time, max int) error {
	it, err := store.List[Event](nil, tx, eventTableName, "seq")
	if err != nil {
		return err
	}
	var old []string
	for e := range it {
		if !e.Generated.Before(cut) || len(old) == max {
			break
		}
		old = append(old, e.ID)
	}
	for _, id := range old {
		if err := tx.Delete(eventTableName, id); err != nil {
			return err
		}
	}
	return nil
}

// traits flattens an event's payload into strings, one level of nesting
// joined with dots, bounded.
func traits(ev *store.Event) map[string]string {
	t := map[string]string{"resource_id": ev.ResourceID, "project_id": ev.ProjectID}
	var m map[string]any
	if len(ev.Payload) == 0 || json.Unmarshal(ev.Payload, &m) != nil {
		return t
	}
	var walk func(prefix string, v any, depth int)
	walk = func(prefix string, v any, depth int) {
		if len(t) >= 64 {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if depth > 2 {
				return
			}
			for k, sub := range x {
				walk(strings.TrimPrefix(prefix+"."+k, "."), sub, depth+1)
			}
		case nil:
		default:
			s := fmt.Sprint(x)
			if len(s) > 255 {
				s = s[:255]
			}
			t[prefix] = s
		}
	}
	walk("", m, 0)
	return t
}

// eventResource maps event types to the resource type they start or end.
var eventResource = []struct {
	prefix, typ string
	starts      []string
	ends        []string
}{
	{"compute.server.", TypeInstance, []string{"create"}, []string{"delete"}},
	{"volume.", TypeVolume, []string{"create.start"}, []string{"delete.end"}},
	{"image.image.", TypeImage, []string{"create"}, []string{"delete"}},
	{"network.floatingip.", TypeNetwork, []string{"create"}, []string{"delete"}},
}

// applyEventTxn records a resource's start or end from its event, so that
// billing knows lives to the second even between polls.
func applyEventTxn(tx *store.Txn, e *Event) error {
	if e.ResourceID == "" || len(e.ResourceID) > 255 {
		return nil
	}
	for _, er := range eventResource {
		action, ok := strings.CutPrefix(e.Type, er.prefix)
		if !ok {
			continue
		}
		r, err := store.Get[Resource](nil, tx, resourceTableName, e.ResourceID)
		switch {
		case err != nil && !errdefs.IsNotFound(err):
			return err
		case slices.Contains(er.starts, action) && err != nil:
			attrs := map[string]string{}
			for k, v := range e.Traits {
				if k != "resource_id" && k != "project_id" {
					attrs[k] = v
				}
			}
			return tx.Put(resourceTableName, &Resource{ID: e.ResourceID, OriginalID: e.ResourceID, Type: er.typ,
				ProjectID: e.ProjectID, StartedAt: e.Generated, RevisionAt: e.Generated, Attributes: attrs,
				Metrics: map[string]string{}})
		case slices.Contains(er.ends, action) && err == nil && r.EndedAt == nil:
			end := e.Generated
			r.EndedAt = &end
			r.RevisionAt = end
			return tx.Put(resourceTableName, r)
		}
		return nil
	}
	return nil
}

// ListEventsOpts filters ListEvents.
type ListEventsOpts struct {
	Type       string // exact event type, or a prefix ending in '.'
	ResourceID string
	Since      time.Time
	Until      time.Time
	Limit      int
}

// ListEvents returns the stored events the caller may see (its project's;
// admins all), oldest first.
func (s *Service) ListEvents(ctx context.Context, opts ListEventsOpts) ([]*Event, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := store.List[Event](nil, s.st.Snapshot(), eventTableName, "seq")
	if err != nil {
		return nil, err
	}
	var out []*Event
	for e := range it {
		switch {
		case !c.sees(e.ProjectID):
		case opts.Type != "" && e.Type != opts.Type && (!strings.HasSuffix(opts.Type, ".") || !strings.HasPrefix(e.Type, opts.Type)):
		case opts.ResourceID != "" && e.ResourceID != opts.ResourceID:
		case !opts.Since.IsZero() && e.Generated.Before(opts.Since):
		case !opts.Until.IsZero() && !e.Generated.Before(opts.Until):
		default:
			out = append(out, e)
			if opts.Limit > 0 && len(out) == opts.Limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// DrainEvents stores every event committed so far and returns (tests and
// hosts use it to read their own writes without waiting for the
// consumer). It is safe beside the background consumer: storing an event
// twice changes nothing.
func (s *Service) DrainEvents(ctx context.Context) error {
	cons := s.st.Consumer(consumerName)
	if err := cons.Ack(ctx, 0); err != nil { // creates the cursor if missing
		return err
	}
	for {
		// Next answers at once when events are waiting; the short deadline
		// only ends the wait when none are.
		nctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		evs, err := cons.Next(nctx, 256)
		cancel()
		if err != nil {
			return ctx.Err()
		}
		if err := s.storeEvents(ctx, evs); err != nil {
			return err
		}
		if err := cons.Ack(ctx, evs[len(evs)-1].Seq); err != nil {
			return err
		}
	}
}
