// Package capture turns the application's writes into trigger events and their deliveries.
//
// # Sources
//
// In WAL mode (the default) the capture leader reads one logical replication slot (plugin
// pgoutput, protocol v2, messages on) over a publication that covers exactly the catalog's tables
// and walhook.outbox. Three ways to emit end as the same envelope:
//
//   - a write to a catalog table (insert/update/delete, with the optional "columns" filter on
//     updates): source key "wal:<commit LSN>:<change ordinal>:<event key>";
//   - a row inserted into walhook.outbox: source key "outbox:<id>"; the row is deleted in the same
//     transaction that stores its event (the resulting DELETE changes are ignored);
//   - SELECT walhook.emit(company_id, event, payload): a transactional logical message with
//     prefix "walhook": source key "wal:<commit LSN>:<change ordinal>:<event key>".
//
// A rolled-back transaction is never decoded, so it emits nothing.
//
// In poll mode (for databases without replication rights) every replica claims outbox rows in
// batches with FOR UPDATE SKIP LOCKED, woken by NOTIFY walhook_outbox and at least every
// PollInterval. Table writes are not captured in poll mode. walhook.emit follows the mode
// recorded in walhook.capture_setting (written at start): in poll mode it inserts an outbox row
// instead of writing a logical message, so it works, at the cost of a row to delete.
//
// # At least once, exactly once in the tables
//
// The reader decodes a committed source transaction into events and hands it to the committer,
// which batches consecutive transactions (up to BatchEvents events) into ONE transaction of ours
// (store.CaptureCommit: events, deliveries to every active webhook of the company subscribed to
// the event, outbox deletes, NOTIFY walhook_deliveries). Only after that commits does the flush
// LSN reported to the server move to the end of the last transaction in the batch. A crash before
// the report replays those transactions; their source keys are unique in walhook.event, so the
// replay stores nothing twice. When the reader is idle (no open transaction, everything handed
// over committed) it acks the server's keepalive position, so WAL of unrelated tables does not
// pile up behind the slot.
//
// # Bad data
//
// A NULL tenant, an unknown company, an event key not in the catalog, a payload that is not JSON,
// or a message that does not decode: counted in walhook_capture_skipped_total{reason} (or
// walhook_capture_decode_errors_total), logged with its position (rate-limited), skipped.
//
// # The envelope
//
// {"id":"evt_…","type":…,"company_id":…,"occurred_at":…,"data":{…},"previous":{…}}: id is a keyed
// digest of the source key (store.PublicIDs.Event): stable across replays, but an unkeyed hash of
// a guessable position ("outbox:<id>", a WAL position) would give the position back, and with it
// the platform's volume. occurred_at is the source transaction's commit time (an outbox
// row claimed by the poller: its created_at), data the row (or the emitted payload), previous the
// old row of an update when the table's REPLICA IDENTITY sends one (FULL: every column; default:
// only the key columns, and only when the key changed). Values are typed as value.go describes.
// An unchanged TOASTed column (a large value an UPDATE did not touch, which pgoutput does not
// resend) is taken from the old row when REPLICA IDENTITY FULL sends it, and is otherwise left
// out of data.
//
// Only the leader reads the slot (package leader); a catalog change takes effect at the next
// start (the publication is updated then).
package capture
