// Package store holds the control plane's state: go-memdb tables and
// indexes, made durable by a Backend (store/boltstore on one machine;
// store/memstore for tests).
//
// # Tables
//
// Each service declares its tables beside its records and exports them; the
// host passes every service's tables to [Open] (there is no global schema):
//
//	st, err := store.Open(ctx, backend, slices.Concat(identity.Tables(), compute.Tables()), nil)
//
// A record is a struct that embeds [Meta] and has a StoreKey method. The
// store adds the primary "id" index over StoreKey; a table declares its
// secondary indexes as memdb.IndexSchema values.
//
// # Reads
//
// [Store.Snapshot] gives a consistent read-only view that never blocks and
// never shows a write that is not yet durable. [Get], [First], [List] and
// [ListFrom] are typed helpers that return copies of the stored records and
// register watch channels in a memdb.WatchSet, so that a reconciler can
// block until what it read changes.
//
// # Writes and group commit
//
// [Store.Update] hands a transaction function to the store's single
// committer. The committer runs concurrent functions as one batch inside one
// memdb write transaction, writes the batch to the backend in one durable
// commit (one bbolt transaction and fsync), and only then makes it visible
// and answers every caller. A function that fails is dropped from its batch
// with its error going to its own caller alone; if it had already written,
// the rest of the batch runs again without it. Functions may therefore run
// more than once and must do no I/O.
//
// Updates are compare-and-swap: [Txn.Update] fails with errdefs.ErrConflict
// if the record changed since the caller read it.
//
// # Events, tombstones, compaction
//
// [Txn.Emit] writes an event into the outbox in the same transaction as the
// change it describes. A [Consumer] reads events after its own durable
// cursor. [Txn.Delete] leaves a [Tombstone] with the record's last value.
// [Store.Compact], also run periodically, purges tombstones past their
// retention and events that every consumer has passed, past theirs.
//
// # Schema evolution
//
// Every record carries its table's version. A table lists [Upgrade]
// functions; records of an older version are upgraded on load and written
// back. Records from a newer program are refused.
//
// Backends pass the conformance suite in store/storetest, which includes a
// SIGKILL crash test.
package store
