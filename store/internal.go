package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/stratuskit/stratus/errdefs"
)

// The store's own tables. They are persisted like any other.
const (
	eventTable     = "store.events"
	cursorTable    = "store.cursors"
	tombstoneTable = "store.tombstones"
)

func internalTables() []Table {
	return []Table{
		{Name: eventTable, New: func() Record { return new(Event) }, Indexes: []*memdb.IndexSchema{
			{Name: "seq", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Seq"}},
		}},
		{Name: cursorTable, New: func() Record { return new(cursor) }},
		{Name: tombstoneTable, New: func() Record { return new(Tombstone) }, Indexes: []*memdb.IndexSchema{
			{Name: "table", Indexer: &memdb.StringFieldIndex{Field: "Table"}},
		}},
	}
}

// Event is one entry of the transactional outbox: something that changed,
// written in the same transaction as the change, so that consumers see an
// event exactly for every change that committed.
type Event struct {
	Meta
	// ID identifies the event; it is unique. It starts with the event's
	// Seq as the transaction computed it (16 hex digits) and ends with 16
	// random characters, so that the events of successive commits have
	// increasing keys and a commit writes them onto the same few pages of
	// the backend, not one page each.
	ID string `json:"id"`
	// N is the event's position among the events of its commit.
	N uint64 `json:"n"`
	// Seq orders events in commit order: the commit's revision and N. It is
	// unique and increasing.
	Seq uint64 `json:"-"`
	// Time is the commit time of the change.
	Time time.Time `json:"time"`
	// Type names what happened, "<service>.<resource>.<action>", such as
	// "compute.server.create".
	Type string `json:"type"`
	// ResourceID is the id of the resource the event is about.
	ResourceID string `json:"resource_id,omitempty"`
	// ProjectID is the project that owns the resource, if any.
	ProjectID string `json:"project_id,omitempty"`
	// Payload is the event's JSON body.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// StoreKey implements Record.
func (e *Event) StoreKey() string { return e.ID }

// eventSeqBits is how many low bits of Seq number the events of one commit.
const eventSeqBits = 20

func eventSeq(rev, n uint64) uint64 { return rev<<eventSeqBits | n }

// eventID returns a new event id whose order follows seq. The random part
// keeps ids unique when controllers sharing a backend compute the same seq
// (the backend then assigns the commits different revisions).
func eventID(seq uint64) string {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	var b [32]byte
	hex.Encode(b[:16], n[:])
	copy(b[16:], rand.Text())
	return string(b[:])
}

// Emit writes an event into the outbox as part of this transaction. payload
// is encoded as JSON; it may be nil.
func (t *Txn) Emit(typ, resourceID, projectID string, payload any) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if t.events >= 1<<eventSeqBits {
		return fmt.Errorf("store: more than %d events in one commit", 1<<eventSeqBits)
	}
	ev := &Event{
		ID: eventID(eventSeq(t.rev, t.events)), N: t.events, Seq: eventSeq(t.rev, t.events),
		Time: t.now, Type: typ, ResourceID: resourceID, ProjectID: projectID,
	}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("store: event %s: encode payload: %w", typ, err)
		}
		ev.Payload = raw
	}
	t.events++
	return t.put(t.st.tables[eventTable], ev)
}

// cursor is a consumer's durable position in the outbox.
type cursor struct {
	Meta
	Name string `json:"name"`
	Seq  uint64 `json:"seq"`
}

func (c *cursor) StoreKey() string { return c.Name }

// Consumer reads the outbox from a durable cursor of its own. Each consumer
// (metering, orchestration, a webhook sender) has a unique name; its cursor
// survives restarts, and compaction keeps every event it has not passed.
type Consumer struct {
	st   *Store
	name string
}

// Consumer returns the consumer called name. Its cursor is created, at the
// oldest retained event, by the first call to Next.
func (s *Store) Consumer(name string) *Consumer { return &Consumer{st: s, name: name} }

// Next returns up to limit events after the consumer's cursor, in commit
// order, waiting until there is at least one or ctx ends. It does not move
// the cursor: call Ack once the events are handled, so that a crash in
// between delivers them again (at-least-once).
func (c *Consumer) Next(ctx context.Context, limit int) ([]*Event, error) {
	if limit <= 0 {
		limit = 100
	}
	if err := c.register(ctx); err != nil {
		return nil, err
	}
	for {
		ws := memdb.NewWatchSet()
		tx := c.st.Snapshot()
		cur, err := Get[cursor](ws, tx, cursorTable, c.name)
		if err != nil {
			return nil, fmt.Errorf("store: consumer %q: %w", c.name, err)
		}
		events, err := ListFrom[Event](ws, tx, eventTable, "seq", cur.Seq+1)
		if err != nil {
			return nil, err
		}
		var out []*Event
		for ev := range events {
			out = append(out, ev)
			if len(out) == limit {
				break
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return nil, err
		}
	}
}

func (c *Consumer) register(ctx context.Context) error {
	if _, err := Get[cursor](nil, c.st.Snapshot(), cursorTable, c.name); err == nil {
		return nil
	}
	err := c.st.Update(ctx, func(tx *Txn) error {
		if _, err := Get[cursor](nil, tx, cursorTable, c.name); err == nil {
			return nil
		}
		return tx.Insert(cursorTable, &cursor{Name: c.name})
	})
	if err != nil {
		return fmt.Errorf("store: register consumer %q: %w", c.name, err)
	}
	return nil
}

// Ack durably moves the consumer's cursor to seq: events up to and including
// seq are handled. A cursor never moves back.
func (c *Consumer) Ack(ctx context.Context, seq uint64) error {
	return c.st.Update(ctx, func(tx *Txn) error {
		cur, err := Get[cursor](nil, tx, cursorTable, c.name)
		if err != nil {
			if !errdefs.IsNotFound(err) {
				return err
			}
			cur = &cursor{Name: c.name}
		}
		if seq <= cur.Seq {
			return nil
		}
		cur.Seq = seq
		return tx.Put(cursorTable, cur)
	})
}

// Tombstone is the last value of a deleted record, kept for the store's
// tombstone retention so that "changes since", billing and audits can see
// deletions.
type Tombstone struct {
	Meta
	// Table is the table the record was deleted from.
	Table string `json:"table"`
	// Key is the deleted record's key.
	Key string `json:"key"`
	// DeletedAt is the commit time of the deletion.
	DeletedAt time.Time `json:"deleted_at"`
	// Object is the record's last value, as JSON.
	Object json.RawMessage `json:"object"`
}

// StoreKey implements Record.
func (ts *Tombstone) StoreKey() string { return tombstoneKey(ts.Table, ts.Key) }

// Decode decodes the deleted record into v.
func (ts *Tombstone) Decode(v any) error { return json.Unmarshal(ts.Object, v) }

func tombstoneKey(table, key string) string { return table + "/" + key }

func newTombstone(table string, rec Record, now time.Time) (*Tombstone, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("store: %s %q: encode tombstone: %w", table, rec.StoreKey(), err)
	}
	return &Tombstone{Table: table, Key: rec.StoreKey(), DeletedAt: now, Object: raw}, nil
}

// Tombstones returns the tombstones of records deleted from table, in key
// order.
func Tombstones(ws memdb.WatchSet, tx *Txn, table string) (iter.Seq[*Tombstone], error) {
	return List[Tombstone](ws, tx, tombstoneTable, "table", table)
}

// GetTombstone returns the tombstone of the record of table with key, or an
// error matching errdefs.ErrNotFound.
func GetTombstone(ws memdb.WatchSet, tx *Txn, table, key string) (*Tombstone, error) {
	return Get[Tombstone](ws, tx, tombstoneTable, tombstoneKey(table, key))
}

// Events returns the outbox events after seq, in commit order, without a
// consumer cursor (for listing and inspection).
func Events(ws memdb.WatchSet, tx *Txn, after uint64) (iter.Seq[*Event], error) {
	return ListFrom[Event](ws, tx, eventTable, "seq", after+1)
}
