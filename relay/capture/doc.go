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
// In source epoch N > 0 (see "Source epochs") every key is prefixed with "e<N>:".
//
// A rolled-back transaction is never decoded, so it emits nothing.
//
// # Who may emit
//
// Any role may write a logical message with prefix "walhook" (pg_logical_emit_message needs no
// privilege), so capture accepts one only when walhook.emit signed it (emitkey.go): walhook.emit
// is SECURITY DEFINER, reads a key only walhook's own role can read (walhook.emit_key) and puts
// an HMAC-SHA256 of its content in the message. A message whose MAC does not verify under a key
// in the table is forged: walhook_capture_skipped_total{reason="forged"}, logged with its LSN on
// its own rate limiter, skipped; it is never parsed further, so no content can stop capture.
// Unsigned messages are accepted only below the WAL position migration 0010 recorded (written
// before signing existed). Keys are reloaded when a message names a newer one and every minute;
// a failure to read them stops the stream (it replays later), it does not refuse messages.
// EXECUTE on walhook.emit and INSERT on walhook.outbox are privileges the operator grants.
//
// # Rows that move between companies
//
// An UPDATE whose old row carries the tenant column (REPLICA IDENTITY FULL, or the column in the
// identity) and changes it moves the row: the old company receives the table's delete events
// (data: the old row), the new company its insert events (data: the new row), or, when the table
// has no insert event, its update events without previous. Neither ever sees the other's row.
// When the old row does not carry the tenant column a move cannot be told; previous is then left
// out (it might be another company's), and capture warns at start about such tables
// (catalog.UndetectedMoves). See movedOut/movedIn in decode.go.
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
// the event, outbox deletes, the position, NOTIFY walhook_deliveries). Only after that commits does the flush
// LSN reported to the server move to the end of the last transaction in the batch. A crash before
// the report replays those transactions; their source keys, with their times, are unique in walhook.event
// (UNIQUE (source_key, occurred_at); the time is the commit's, read again on the replay), so the
// replay stores nothing twice. A large transaction is handed over in parts as it is decoded (100
// events, then 500 at a time, or 0.8 MiB of payloads, then 4 MiB, whichever comes first; txn
// and part in decode.go), so its first deliveries are stored and sent while the rest is still
// being read, and a transaction of many large rows is never held whole; the reader waits while
// 16 MiB of payloads are handed over but not committed (inflightBytes in stream.go). Only its
// last part moves the flush LSN, and a replay dedupes the parts already stored. When the reader is idle (no open transaction, everything handed
// over committed) it acks the server's keepalive position, so WAL of unrelated tables does not
// pile up behind the slot.
//
// # Two databases
//
// With Config.Source (--source-database-url) the application's database is not walhook's. Capture
// reads the source — the replication connection, the slot and the publication, the catalog's
// tables, walhook.emit's keys and capture_setting, and walhook.outbox (claimed, LISTENed on and
// deleted there) — and writes walhook's database: events, deliveries, quarantine, the leader
// lease, public ids, and the position. A transaction cannot span the two, so at-least-once rests
// on an order and on idempotence:
//
//  1. store.CaptureCommit commits the batch's events and deliveries in walhook's database, and in
//     the same statement (a CTE, no extra round trip) upserts walhook.capture_position: the slot,
//     the source's system identifier (IDENTIFY_SYSTEM) and the end LSN of the batch's last whole
//     transaction, never moved back for the same cluster. A batch of parts only stores no position.
//  2. Then the consumed outbox rows are deleted in the source (DELETE … WHERE id = ANY: idempotent;
//     a row not yet visible is retried as with one database, see outboxLeft in stream.go).
//  3. Then the flush position advances and the next status update acknowledges the slot.
//
// A crash after 1 leaves the slot behind what is stored. At the next stream start capture reads
// the stored position and, when it is this source cluster's (same system identifier) and not
// beyond the source's WAL end, passes it to START_REPLICATION; the decoder also skips every
// transaction whose commit record starts before it (its end is at or before it), belt and braces.
// PostgreSQL (CreateDecodingContext) treats a start LSN so: one before the slot's
// confirmed_flush_lsn is moved forward to it (its log: "… has been already streamed, forwarding
// to …"); one after it makes decoding skip every transaction whose commit record lies before it
// (SnapBuildXactNeedsSkip; TestStoredPositionOfAnotherCluster shows it on the server the tests
// run), while the slot's confirmed_flush_lsn only moves when capture acknowledges. Either way nothing before the stored position is stored again, and whatever is
// replayed anyway dedupes on walhook.event (source_key, occurred_at). Outbox rows left behind by a crash before
// 2 are claimed again (the stream-start sweep, or their INSERT replayed), store nothing twice
// ("outbox:<id>" is their source key) and are deleted then.
//
// A stored position of another cluster (a source restored into a new cluster, or replaced) or
// beyond the source's WAL end (a source gone back to an earlier point) is never used: using it
// could skip events that were never stored. Either starts a new source epoch, which forgets it
// (see "Source epochs"), and capture streams from the slot's own position. The position is
// stored with one database too (same statement), where it only spares re-reading.
//
// In poll mode, and for the start-up sweep, rows are claimed FOR UPDATE SKIP LOCKED in a source
// transaction, their events committed in walhook's database, and the rows deleted in that source
// transaction before it commits; a crash in between releases the rows, which are claimed again
// and dedupe. With one database all of it is still the one transaction described above.
//
// # Source epochs
//
// A source key names a position in the source (an LSN, an outbox id), so it is unique only
// within one history of the source. With two databases walhook's can outlive the application's:
// restored from pg_dump into a new cluster (outbox ids go on from the dump's point, ids the old
// database had used since; LSNs are the new cluster's), reset (staging: ids start over), restored
// to an earlier point (the abandoned timeline's LSNs are used again), upgraded. A new event whose
// key equals a stored one would be taken for a replay and silently dropped. (With one database
// the events are restored together with the source, and a new epoch changes only the keys.) So capture counts the histories it has read through a
// slot, the source epoch (walhook.capture_position.epoch, migration 0027; epoch.go), and source
// keys of epoch N > 0 carry it: "e<N>:wal:…", "e<N>:outbox:…". Epoch 0 keeps the keys of before,
// so nothing changes for existing installations and a replay across the upgrade still dedupes.
// The keys are built in one place (sourceKeys) for the stream, the stream-start outbox sweep and
// poll mode; `walhook quarantine retry` stores the key the quarantine row holds.
//
// Every replication session decides, in prepare and before it creates a missing slot, whether
// the source is still the history it read: a new epoch starts (epoch + 1, the stored position
// forgotten, the source's system identifier recorded; a warning, walhook_capture_epochs_total
// {reason}, walhook_capture_source_epoch) when
//
//   - the stored position's system identifier is not the source's (IDENTIFY_SYSTEM):
//     reason other_cluster (a restore into a new cluster, pg_dump, pg_upgrade);
//   - the slot is missing while a position is stored: reason slot_missing. Slots are not in
//     backups, so a source restored from any backup, point-in-time recovery included (which
//     keeps the system identifier), comes back without it; so does `walhook slot drop`;
//   - the stored position is beyond the source's WAL end: reason rewound (a disk snapshot
//     restored with its slot, or a failover to a standby that had not received what capture
//     had stored: the next transactions reuse LSNs capture has keys of).
//
// `walhook slot recreate` starts one explicitly (reason slot_recreate) before it creates the new
// slot, and so does `walhook slot epoch` (reason manual). Two callers that read the same epoch
// start one between them (the bump applies only to the epoch it read), and a session of an
// earlier epoch no longer moves the stored position.
// The epoch is stored before a missing slot is created, so a crash in between can never leave a
// new slot read in the old epoch; an epoch with nothing captured in it costs nothing.
//
// Why a new epoch never duplicates a WAL event: in the cases above the slot is new (created at
// the current WAL position: nothing older is ever decoded from it) or belongs to a history whose
// transactions were not stored under the new epoch; every event decoded in the new epoch is a
// change the old keys never described. The exceptions are narrow: other_cluster with the slot
// there (pg_upgrade to PostgreSQL 17+ keeps slots only once they have confirmed everything, so
// nothing is read again) and rewound (the transactions between the slot's confirmed position and the source's
// WAL end were stored under the old epoch and are delivered again: at most the slot's lag at the
// snapshot or failover — a duplicate, never a loss).
//
// The one window for outbox rows: rows still in the source's outbox at the point the restored
// source was copied (its backup, its snapshot, the standby's last WAL) whose events walhook had
// stored or stored afterwards from the old source — stored but not yet deleted, or not yet
// claimed. Under the new epoch they are new keys, so they are delivered again: at most the outbox
// backlog of that moment, normally the rows of the last few milliseconds. Without the epoch they
// would dedupe, and every new row whose id an earlier one had would be lost instead.
//
// The same system identifier with the slot there and the position within its WAL keeps the
// epoch: a restart, a crash, a leader change, PostgreSQL restarted, a failover to a standby with
// synced slots (PostgreSQL 17 failover slots; same system identifier, the slot and the WAL
// carried over). Replays there dedupe exactly as before.
//
// Poll mode reads no replication session, so it cannot tell a new source by itself: it uses the
// epoch stored for its slot name (Config.Slot), read before each round of claims, which an
// operator starts with `walhook slot epoch` after restoring or resetting the application's
// database and before the relays run again (or an earlier WAL-mode session started). A poller
// running in between would claim the restored rows under the old epoch: a row whose id the old
// database had used would be taken for a replay, and its event lost.
//
// # Bad data
//
// Nothing in the data may stop capture: the slot would hold WAL on the application's primary
// and every company would stop with it.
//
// A NULL tenant, an unknown company, an event key not in the catalog, a payload that is not JSON,
// a forged message, or a message that does not decode: counted in
// walhook_capture_skipped_total{reason} (or walhook_capture_decode_errors_total), logged with its
// position (rate-limited), skipped.
//
// An event PostgreSQL refuses to store (store.Permanent: SQLSTATE class 22, 23 or 54, e.g. a json
// column value holding "\u0000", which jsonb cannot hold) is quarantined (quarantine.go): the
// fan-out halves the batch until it has the refused events alone, writes each of them to
// walhook.capture_quarantine (envelope as bytes, company, event, source key, SQLSTATE and
// message, attempts), stores the rest, and the position past them is acknowledged as usual.
// Counted in walhook_capture_quarantined_total{reason}; walhook_capture_quarantine_rows is how
// many wait. `walhook quarantine retry` runs the fan-out again once the cause is fixed. A
// transient error (lost connection, restart, deadlock, serialization failure, deadline) is never
// quarantined: the session restarts and replays the same transactions (source keys dedupe). A
// quarantine row that is itself refused for good is logged with its position and counted as
// skipped{reason="unstorable"}.
//
// An event larger than Config.MaxEventBytes (--capture-max-event-bytes, default 1 MiB: its
// envelope, data and previous included) is never rendered nor delivered: a 100 MB row would
// otherwise cost several copies of itself in the relay's memory, and could crash-loop it. Its
// size is known before anything is rendered (the raw values pgoutput sent; a row whose escaped
// JSON outgrows the cap is caught once rendered), so memory stays about twice the message (the
// replication message and pglogrepl's copy of its values). It is quarantined with reason
// too_large WITHOUT its payload (company, event key, source key, and its size in the reason),
// counted in walhook_capture_quarantined_total{reason="too_large"}, logged with its position on
// a rate limiter of its own, and the rest of the transaction and the stream go on; the position
// is acknowledged past it. This holds for table rows, outbox rows (in the stream; in poll mode
// and the stream-start sweep the claim does not even read a payload over the cap) and
// walhook.emit messages (only the company and the event are read from one over the cap). Such
// a quarantine row cannot be retried (store.ErrPayloadNotKept): the application sends the event
// again, smaller.
//
// Repairs, only where the meaning is unchanged (value.go):
//   - invalid UTF-8 in text becomes U+FFFD;
//   - a lone UTF-16 surrogate escape in JSON ("\ud800" without its pair) encodes no character
//     and becomes "\ufffd" (the json type refuses it at input, so it comes only from emitted
//     payloads);
//   - "\u0000" is not repaired: NUL is a real character that PostgreSQL text and jsonb cannot
//     hold, and dropping or replacing it, or passing the JSON on as a string, changes the value
//     a receiver sees. The event is quarantined.
//
// A replication session that fails is restarted after 250 ms doubling to 2 s, so capture is back
// within about 2 s of PostgreSQL; a failure that recurs more than five times in a row after
// PostgreSQL answered (a missing privilege, a slot in use) waits up to 30 s. Each failure is
// counted in walhook_capture_failures_total{reason}.
//
// # The envelope
//
// {"id":"evt_…","type":…,"company_id":…,"occurred_at":…,"data":{…},"previous":{…}}: id is a keyed
// digest of the source key (store.PublicIDs.Event): stable across replays, but an unkeyed hash of
// a guessable position ("outbox:<id>", a WAL position) would give the position back, and with it
// the platform's volume. occurred_at is the source transaction's commit time (an outbox
// row: its created_at, whether the stream, the start-up sweep or the poller reads it, so one row
// has one time and its replays dedupe on (source_key, occurred_at), migration 0029), data the row (or the emitted payload), previous the
// old row of an update when the table's REPLICA IDENTITY sends one that carries the tenant column
// (FULL: every column; a key identity that includes the tenant column: only the key columns, and
// only when the key changed). Values are typed as value.go describes.
// An unchanged TOASTed column (a large value an UPDATE did not touch, which pgoutput does not
// resend) is taken from the old row when REPLICA IDENTITY FULL sends it, and is otherwise left
// out of data.
//
// # A lost slot
//
// When PostgreSQL invalidates the slot (it fell behind by more than max_slot_wal_keep_size:
// wal_status lost), capture cannot resume by itself. The leader reports it (SlotLostError: an
// error log, walhook_replication_slot_wal_status, Check for /readyz), re-reads the slot's status
// every few seconds without START_REPLICATION, and streams again once an operator has recreated
// the slot (`walhook slot recreate`). slot.go has the details.
//
// Only the leader reads the slot (package leader); a catalog change takes effect at the next
// start (the publication is updated then).
package capture
