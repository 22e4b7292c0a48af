package capture

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// Skip reasons: bad data is counted under one of these, logged with its position, and skipped.
const (
	skipNullTenant     = "null_tenant"
	skipUnknownCompany = "unknown_company"
	skipUnknownEvent   = "unknown_event"
	skipBadPayload     = "bad_payload"
	// skipForged: a logical message with walhook's prefix that walhook.emit did not sign
	// (emitkey.go).
	skipForged = "forged"
)

// skip is one piece of bad data left out.
type skip struct {
	reason   string
	position string // source position (LSN, outbox id)
	detail   string
}

// txn is one committed source transaction, decoded into events, or a part of one: a large
// transaction is handed to the committer in parts (see part) as it is decoded, so its
// first deliveries are stored and sent while the rest is still being read. Only the last part
// (Commit) has endLSN set, so the position is acknowledged only once every part is stored; a
// crash in between replays the whole transaction, and the parts already stored dedupe by their
// source keys.
type txn struct {
	commitLSN  pglogrepl.LSN // LSN of the commit record (Begin.FinalLSN)
	endLSN     pglogrepl.LSN // end of the transaction, acked once its events are stored; 0 on a part but the last
	commitTime time.Time
	part       bool // a part of a transaction handed over before its end (see part)
	replayed   bool // its events are stored already (decoder.stored): decoded into nothing
	rest       bool // not the transaction's first part
	changes    int  // data messages seen (insert/update/delete/message), for ordinals
	events     []store.CaptureEvent
	sources    []string // per event: table, outbox or message (metric label)
	outboxIDs  []int64
	skips      []skip
	// tooLarge are the events over Config.MaxEventBytes: never rendered, quarantined without
	// their payload (see oversized).
	tooLarge []oversized
	// bytes is the size of the events' payloads: a part is handed over by bytes as well (part).
	bytes int
}

// oversized is an event larger than Config.MaxEventBytes: its company, event key, source key
// and size, but no payload. It is quarantined as too_large (quarantine.go) and not delivered.
type oversized struct {
	event store.CaptureEvent // Payload is nil
	size  int                // the envelope's size in bytes, or a lower bound of it when it was not rendered
}

// outboxTable is the outbox's qualified name as relation messages spell it.
const outboxTable = "walhook.outbox"

// messagePrefix is the prefix walhook.emit gives its logical messages.
const messagePrefix = "walhook"

type column struct {
	name string
	oid  uint32
	key  bool // part of the replica identity
}

type relation struct {
	name   string // schema.table
	cols   []column
	byName map[string]int
	events []webhook.EventType // catalog entries over this table
}

// decoder turns pgoutput (protocol v2) messages into transactions of events. It is not safe for
// concurrent use; the stream's reader owns it.
type decoder struct {
	// partEvents is the number of events after which an open transaction is handed over as a
	// part (see txn). 0: whole transactions only.
	partEvents int
	// partBytes is the payload bytes after which an open transaction is handed over as a part,
	// whatever its events. 0: no bound.
	partBytes int
	// maxEvent is the largest event rendered (Config.MaxEventBytes); a larger one is set aside
	// as oversized. 0: no cap.
	maxEvent int
	// stored is the position stored with the events in walhook's database (the stream's start
	// LSN): a transaction whose commit record starts before it ends at or before it, so its
	// events are stored already. PostgreSQL does not send such transactions when the stream
	// starts there; skipping them here as well is belt and braces. 0: none.
	stored pglogrepl.LSN
	// srcKeys builds the source keys of the session's source epoch (epoch.go).
	srcKeys sourceKeys
	cat     *catalog.Catalog
	ids     *store.PublicIDs // event ids: a keyed digest of the source position
	keys    *keyring         // emit keys: only messages walhook.emit signed are events
	rels    map[uint32]*relation
	cur     *txn
	buf     []byte
}

func newDecoder(cat *catalog.Catalog, ids *store.PublicIDs, keys *keyring) *decoder {
	return &decoder{cat: cat, ids: ids, keys: keys, rels: map[uint32]*relation{}}
}

// inTxn reports whether a transaction is open (Begin seen, Commit not yet).
func (d *decoder) inTxn() bool { return d.cur != nil }

// handle decodes one XLogData payload. It returns a transaction when data ends one (Commit, or a
// non-transactional logical message), with endLSN set. An error wrapping errKeysUnavailable is
// transient (the stream should stop and replay); any other error is bad data.
func (d *decoder) handle(ctx context.Context, data []byte) (*txn, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("decode pgoutput: empty message")
	}
	msg, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return nil, fmt.Errorf("decode pgoutput %q message: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		d.cur = &txn{commitLSN: m.FinalLSN, commitTime: m.CommitTime, replayed: m.FinalLSN < d.stored}
	case *pglogrepl.CommitMessage:
		t := d.cur
		if t == nil {
			return nil, fmt.Errorf("decode pgoutput: commit %s without begin", m.CommitLSN)
		}
		d.cur = nil
		if t.replayed {
			return nil, nil
		}
		t.endLSN = m.TransactionEndLSN
		return t, nil
	case *pglogrepl.RelationMessageV2:
		d.relation(&m.RelationMessage)
	}
	if d.cur != nil && d.cur.replayed {
		return nil, nil // a change or message of a transaction already stored
	}
	switch m := msg.(type) {
	case *pglogrepl.InsertMessageV2:
		return d.part(), d.change(m.RelationID, "insert", nil, 0, m.Tuple)
	case *pglogrepl.UpdateMessageV2:
		return d.part(), d.change(m.RelationID, "update", m.OldTuple, m.OldTupleType, m.NewTuple)
	case *pglogrepl.DeleteMessageV2:
		return d.part(), d.change(m.RelationID, "delete", m.OldTuple, m.OldTupleType, nil)
	case *pglogrepl.LogicalDecodingMessageV2:
		t, err := d.message(ctx, &m.LogicalDecodingMessage)
		if t == nil && err == nil {
			t = d.part()
		}
		return t, err
	}
	// Type, Origin, Truncate: nothing to capture. Streamed transactions are not requested.
	return nil, nil
}

// part hands over the open transaction's events so far when there are partEvents of them (a
// fifth of that for its first part; see txn), or when their payloads reach partBytes (a fifth
// for the first part), so a transaction of many large rows is never held whole: the part goes to the committer with endLSN 0, and
// decoding goes on in a new part that carries the transaction's position and change count, so
// ordinals and source keys are those of the whole transaction. It is called before a change is
// decoded, and returns nil when the open transaction is not that large.
func (d *decoder) part() *txn {
	t := d.cur
	if d.partEvents <= 0 || t == nil {
		return nil
	}
	limit := d.partEvents
	if !t.rest {
		limit = max(1, limit/5) // the first part is small: it is what the first delivery waits for
	}
	bytesLimit := d.partBytes
	if !t.rest {
		bytesLimit /= 5
	}
	if len(t.events) < limit && (bytesLimit <= 0 || t.bytes < bytesLimit) {
		return nil
	}
	d.cur = &txn{commitLSN: t.commitLSN, commitTime: t.commitTime, changes: t.changes, rest: true}
	t.part = true
	return t
}

func (d *decoder) relation(m *pglogrepl.RelationMessage) {
	r := &relation{name: m.Namespace + "." + m.RelationName, byName: make(map[string]int, len(m.Columns))}
	for i, c := range m.Columns {
		r.cols = append(r.cols, column{name: c.Name, oid: c.DataType, key: c.Flags&1 == 1})
		r.byName[c.Name] = i
	}
	for _, t := range d.cat.Events() {
		if t.Source == webhook.SourceTable && t.SourceTable == r.name {
			r.events = append(r.events, t)
		}
	}
	d.rels[m.RelationID] = r
}

func (d *decoder) ensureTxn() *txn {
	if d.cur == nil {
		d.cur = &txn{}
	}
	return d.cur
}

func (d *decoder) change(relID uint32, op string, oldTuple *pglogrepl.TupleData, oldType uint8, newTuple *pglogrepl.TupleData) error {
	t := d.ensureTxn()
	t.changes++
	ordinal := t.changes
	r, ok := d.rels[relID]
	if !ok {
		return fmt.Errorf("decode pgoutput: %s of unknown relation %d", op, relID)
	}
	if r.name == outboxTable {
		if op == "insert" && newTuple != nil {
			d.outboxRow(t, r, newTuple)
		}
		return nil // updates and deletes of the outbox (ours) are not events
	}
	row, old := newTuple, oldTuple
	if op == "delete" {
		row = oldTuple
	}
	if row == nil {
		return nil
	}
	full := oldType == pglogrepl.UpdateMessageTupleTypeOld
	if op == "update" {
		// A row moved to another company: the old company's events first (see moved).
		for _, et := range r.events {
			if mv := tenantMove(r, old, full, newTuple, et.TenantColumn); mv.moved {
				d.movedOut(t, r, ordinal, et, mv, old, full)
			}
		}
	}
	for _, et := range r.events {
		if op == "update" {
			if mv := tenantMove(r, old, full, newTuple, et.TenantColumn); mv.moved {
				d.movedIn(t, r, ordinal, et, old, newTuple)
				continue
			}
		}
		if !slices.Contains(et.Operations, op) {
			continue
		}
		if op == "update" && len(et.Columns) > 0 && !changed(r, et.Columns, old, full, newTuple) {
			continue
		}
		pos := fmt.Sprintf("%s:%d", t.commitLSN, ordinal)
		tenant, ok := columnText(r, row, old, et.TenantColumn)
		if !ok {
			t.skips = append(t.skips, skip{reason: skipNullTenant, position: pos, detail: et.Key + ": " + et.TenantColumn + " is NULL"})
			continue
		}
		keyOnly := op == "delete" && !full && oldType == pglogrepl.DeleteMessageTupleTypeKey
		// The old row is shown only when it provably belongs to the same company: without the
		// tenant column in it, it might be another company's (a move not detected).
		withPrevious := op == "update" && old != nil && tenantMove(r, old, full, newTuple, et.TenantColumn).oldKnown
		sourceKey := d.srcKeys.wal(t.commitLSN, ordinal, et.Key, "")
		ev := store.CaptureEvent{SourceKey: sourceKey, CompanyID: tenant, EventKey: et.Key, OccurredAt: t.commitTime}
		size := rowSize(r, row, old, keyOnly)
		if withPrevious {
			size += rowSize(r, old, nil, !full)
		}
		if d.tooLarge(t, ev, size) {
			continue
		}
		data := d.rowJSON(r, row, old, keyOnly)
		var previous []byte
		if withPrevious {
			previous = d.rowJSON(r, old, nil, !full)
		}
		ev.Payload = envelope(d.ids, sourceKey, et.Key, tenant, t.commitTime, data, previous)
		d.addEvent(t, ev, "table")
	}
	return nil
}

// move is what an UPDATE did to a row's tenant column.
type move struct {
	// oldKnown: the old row carries the tenant column (REPLICA IDENTITY FULL, or the column is
	// part of the replica identity and the key changed), so a move can be told.
	oldKnown bool
	moved    bool   // oldKnown and the tenant changed (NULL counts as a tenant of its own)
	from     string // the old tenant; "" with fromNull
	fromNull bool
}

// tenantMove compares an UPDATE's old and new tenant column. Without an old row carrying the
// column nothing can be told: the update is then delivered to the new row's company, without
// previous (see change).
func tenantMove(r *relation, old *pglogrepl.TupleData, full bool, nu *pglogrepl.TupleData, tenantColumn string) move {
	i, ok := r.byName[tenantColumn]
	if old == nil || !ok || i >= len(old.Columns) || i >= len(r.cols) {
		return move{}
	}
	var mv move
	switch c := old.Columns[i]; {
	case c.DataType == pglogrepl.TupleDataTypeText:
		mv = move{oldKnown: true, from: string(c.Data)}
	case c.DataType == pglogrepl.TupleDataTypeNull && (full || r.cols[i].key):
		mv = move{oldKnown: true, fromNull: true}
	default: // not in a key-only old row, unchanged TOAST, binary: unknown
		return move{}
	}
	to, ok := columnText(r, nu, old, tenantColumn)
	mv.moved = mv.fromNull == ok || (ok && to != mv.from)
	return mv
}

// movedOut and movedIn emit what one catalog entry gives each company when an UPDATE moved a
// row from one company to another. Neither company ever sees the other's data:
//
//   - the old company receives the entry if it has a delete operation: data is the old row;
//   - the new company receives the entry if it has an insert operation: data is the new row;
//     if it has only an update operation, and no entry on this table with the same tenant column
//     has an insert, it receives the update (whatever its columns filter: the whole row is new to
//     it), data the new row, without previous.
//
// A NULL tenant on either side receives nothing. The old company's event is keyed with the
// suffix ":old", so an entry that has both delete and insert stores both.
func (d *decoder) movedOut(t *txn, r *relation, ordinal int, et webhook.EventType, mv move, old *pglogrepl.TupleData, full bool) {
	if mv.fromNull || !slices.Contains(et.Operations, "delete") {
		return
	}
	key := d.srcKeys.wal(t.commitLSN, ordinal, et.Key, ":old")
	ev := store.CaptureEvent{SourceKey: key, CompanyID: mv.from, EventKey: et.Key, OccurredAt: t.commitTime}
	if d.tooLarge(t, ev, rowSize(r, old, nil, !full)) {
		return
	}
	ev.Payload = envelope(d.ids, key, et.Key, mv.from, t.commitTime, d.rowJSON(r, old, nil, !full), nil)
	d.addEvent(t, ev, "table")
}

func (d *decoder) movedIn(t *txn, r *relation, ordinal int, et webhook.EventType, old, nu *pglogrepl.TupleData) {
	toNew := slices.Contains(et.Operations, "insert") ||
		(slices.Contains(et.Operations, "update") && !r.hasInsert(et.TenantColumn))
	if !toNew {
		return
	}
	to, ok := columnText(r, nu, old, et.TenantColumn)
	if !ok {
		t.skips = append(t.skips, skip{reason: skipNullTenant, position: fmt.Sprintf("%s:%d", t.commitLSN, ordinal),
			detail: et.Key + ": " + et.TenantColumn + " is NULL"})
		return
	}
	key := d.srcKeys.wal(t.commitLSN, ordinal, et.Key, "")
	ev := store.CaptureEvent{SourceKey: key, CompanyID: to, EventKey: et.Key, OccurredAt: t.commitTime}
	if d.tooLarge(t, ev, rowSize(r, nu, old, false)) {
		return
	}
	ev.Payload = envelope(d.ids, key, et.Key, to, t.commitTime, d.rowJSON(r, nu, old, false), nil)
	d.addEvent(t, ev, "table")
}

// hasInsert reports whether a catalog entry on r with this tenant column fires on insert.
func (r *relation) hasInsert(tenantColumn string) bool {
	for _, et := range r.events {
		if et.TenantColumn == tenantColumn && slices.Contains(et.Operations, "insert") {
			return true
		}
	}
	return false
}

func (t *txn) add(e store.CaptureEvent, source string) {
	t.events = append(t.events, e)
	t.sources = append(t.sources, source)
	t.bytes += len(e.Payload)
}

// envelopeOverhead is what an envelope adds to its data at most but the company and the event
// key: the id, the timestamp, the keys and punctuation (webhook.Envelope).
const envelopeOverhead = 160

// tooLarge sets e aside as oversized when size (the raw bytes of what its envelope would hold,
// a lower bound of the envelope: rendering only adds quotes and escapes) already exceeds the
// cap, before anything is rendered, so a huge row costs no copy of it.
func (d *decoder) tooLarge(t *txn, e store.CaptureEvent, size int) bool {
	size += envelopeOverhead + len(e.CompanyID) + len(e.EventKey)
	if d.maxEvent <= 0 || size <= d.maxEvent {
		return false
	}
	t.tooLarge = append(t.tooLarge, oversized{event: e, size: size})
	return true
}

// addEvent adds a rendered event, or sets it aside as oversized when escaping made its envelope
// larger than the cap (its raw size was not).
func (d *decoder) addEvent(t *txn, e store.CaptureEvent, source string) {
	if d.maxEvent > 0 && len(e.Payload) > d.maxEvent {
		size := len(e.Payload)
		e.Payload = nil
		t.tooLarge = append(t.tooLarge, oversized{event: e, size: size})
		return
	}
	t.add(e, source)
}

// rowSize is the raw size of what rowJSON would render of row: its column names and the
// values' bytes as pgoutput sent them (a hex-rendered binary value counts twice).
func rowSize(r *relation, row, old *pglogrepl.TupleData, keyOnly bool) int {
	n := 2
	for i, c := range row.Columns {
		if i >= len(r.cols) {
			break
		}
		if keyOnly && !r.cols[i].key {
			continue
		}
		if c.DataType == pglogrepl.TupleDataTypeToast {
			if old == nil || i >= len(old.Columns) {
				continue
			}
			c = old.Columns[i]
		}
		n += len(r.cols[i].name) + 4 + len(c.Data)
		if c.DataType == pglogrepl.TupleDataTypeBinary {
			n += len(c.Data)
		}
	}
	return n
}

// changed reports whether an UPDATE changed one of cols. With the old row (REPLICA IDENTITY
// FULL) it compares values; without it, a column sent as "unchanged TOAST" did not change and any
// other is assumed changed (the event fires: better a spare event than a lost one).
func changed(r *relation, cols []string, old *pglogrepl.TupleData, full bool, nu *pglogrepl.TupleData) bool {
	for _, c := range cols {
		i, ok := r.byName[c]
		if !ok || i >= len(nu.Columns) {
			continue
		}
		n := nu.Columns[i]
		if n.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		if !full || old == nil || i >= len(old.Columns) {
			return true
		}
		o := old.Columns[i]
		if o.DataType == pglogrepl.TupleDataTypeToast {
			return true
		}
		if o.DataType != n.DataType || !bytes.Equal(o.Data, n.Data) {
			return true
		}
	}
	return false
}

// columnText returns a column's text value; an unchanged TOASTed value is taken from old.
func columnText(r *relation, row, old *pglogrepl.TupleData, name string) (string, bool) {
	i, ok := r.byName[name]
	if !ok || i >= len(row.Columns) {
		return "", false
	}
	c := row.Columns[i]
	if c.DataType == pglogrepl.TupleDataTypeToast && old != nil && i < len(old.Columns) {
		c = old.Columns[i]
	}
	if c.DataType != pglogrepl.TupleDataTypeText {
		return "", false
	}
	return string(c.Data), true
}

// rowJSON renders a row as a JSON object in column order. An unchanged TOASTed value is taken
// from old when old has it, else left out. keyOnly renders only the replica identity's columns
// (a key-only old row carries nothing else).
func (d *decoder) rowJSON(r *relation, row, old *pglogrepl.TupleData, keyOnly bool) []byte {
	b := d.buf[:0]
	b = append(b, '{')
	first := true
	for i, c := range row.Columns {
		if i >= len(r.cols) {
			break
		}
		col := r.cols[i]
		if keyOnly && !col.key {
			continue
		}
		if c.DataType == pglogrepl.TupleDataTypeToast {
			if old == nil || i >= len(old.Columns) || old.Columns[i].DataType == pglogrepl.TupleDataTypeToast {
				continue
			}
			c = old.Columns[i]
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendStringS(b, col.name)
		b = append(b, ':')
		switch c.DataType {
		case pglogrepl.TupleDataTypeText:
			b = appendValue(b, col.oid, c.Data)
		case pglogrepl.TupleDataTypeBinary:
			b = appendString(b, []byte(hex.EncodeToString(c.Data)))
		default:
			b = append(b, "null"...)
		}
	}
	b = append(b, '}')
	out := slices.Clone(b)
	if cap(b) > rowBufKeep {
		b = nil // do not keep a large row's buffer for the rest of the session
	}
	d.buf = b
	return out
}

// rowBufKeep is the largest rendering buffer the decoder keeps between rows.
const rowBufKeep = 64 << 10

// outboxRow turns an outbox insert into an event keyed "outbox:<id>" (the same key the poller
// uses, so switching modes never doubles an event).
func (d *decoder) outboxRow(t *txn, r *relation, row *pglogrepl.TupleData) {
	idText, _ := columnText(r, row, nil, "id")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		t.skips = append(t.skips, skip{reason: skipBadPayload, position: t.commitLSN.String(), detail: "outbox row without id"})
		return
	}
	t.outboxIDs = append(t.outboxIDs, id)
	company, _ := columnText(r, row, nil, "company_id")
	key, _ := columnText(r, row, nil, "event_key")
	payload, size := columnBytes(r, row, "payload")
	if d.maxEvent > 0 && size > d.maxEvent {
		payload = nil // not looked at: outboxEvent sets it aside by its size
	}
	at := t.commitTime
	if created, ok := columnText(r, row, nil, "created_at"); ok {
		if ts, ok := outboxTime(created); ok {
			at = ts
		}
	}
	ev, big, sk := outboxEvent(d.cat, d.ids, d.srcKeys, d.maxEvent, id, company, key, payload, size, at)
	switch {
	case sk != nil:
		t.skips = append(t.skips, *sk)
	case big != nil:
		t.tooLarge = append(t.tooLarge, *big)
	default:
		t.add(ev, "outbox")
	}
}

// columnBytes returns a text column's value (not copied) and its size.
func columnBytes(r *relation, row *pglogrepl.TupleData, name string) ([]byte, int) {
	i, ok := r.byName[name]
	if !ok || i >= len(row.Columns) || row.Columns[i].DataType != pglogrepl.TupleDataTypeText {
		return nil, 0
	}
	return row.Columns[i].Data, len(row.Columns[i].Data)
}

// outboxTime is an outbox row's created_at as its event's time. The stream and the poller (and
// the stream-start sweep, which claims rows the stream may read too) give one row one time,
// so its event has one (source_key, occurred_at), the replay dedupe of migration 0029: the
// row's own created_at, not the commit time only the stream knows. ±infinity are clamped as
// OutboxClaim clamps them (queries/outbox.sql): the first and the last day a time.Time and
// PostgreSQL both hold.
func outboxTime(text string) (time.Time, bool) {
	switch text {
	case "infinity":
		return outboxTimeMax, true
	case "-infinity":
		return outboxTimeMin, true
	}
	ts, ok := parseTimestamptz([]byte(text))
	switch {
	case ok:
	case strings.HasSuffix(text, " BC"):
		return outboxTimeMin, true
	case strings.IndexByte(text, '-') > 4: // a year past 9999
		return outboxTimeMax, true
	default:
		return time.Time{}, false
	}
	switch {
	case ts.Before(outboxTimeMin):
		ts = outboxTimeMin
	case ts.After(outboxTimeMax):
		ts = outboxTimeMax
	}
	return ts, true
}

var (
	outboxTimeMin = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	outboxTimeMax = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// outboxEvent builds the event of an outbox row, or says why it is skipped, or sets it aside as
// oversized when size (the payload's bytes; payload itself may then be nil: it is not read) or
// its envelope exceeds maxEvent (0: no cap).
func outboxEvent(cat *catalog.Catalog, ids *store.PublicIDs, keys sourceKeys, maxEvent int, id int64, company, key string, payload []byte, size int, at time.Time) (store.CaptureEvent, *oversized, *skip) {
	pos := "outbox:" + strconv.FormatInt(id, 10)
	if et, ok := cat.Get(key); !ok || et.Source != webhook.SourceOutbox {
		return store.CaptureEvent{}, nil, &skip{reason: skipUnknownEvent, position: pos, detail: "event " + strconv.Quote(key)}
	}
	if company == "" {
		return store.CaptureEvent{}, nil, &skip{reason: skipNullTenant, position: pos, detail: "empty company_id"}
	}
	sourceKey := keys.outbox(id)
	ev := store.CaptureEvent{SourceKey: sourceKey, CompanyID: company, EventKey: key, OccurredAt: at}
	if size += envelopeOverhead + len(company) + len(key); maxEvent > 0 && size > maxEvent {
		return store.CaptureEvent{}, &oversized{event: ev, size: size}, nil
	}
	if !json.Valid(payload) {
		return store.CaptureEvent{}, nil, &skip{reason: skipBadPayload, position: pos, detail: "payload is not JSON"}
	}
	ev.Payload = envelope(ids, sourceKey, key, company, at, compact(payload), nil)
	if maxEvent > 0 && len(ev.Payload) > maxEvent {
		size, ev.Payload = len(ev.Payload), nil
		return store.CaptureEvent{}, &oversized{event: ev, size: size}, nil
	}
	return ev, nil, nil
}

// emitted is the content of a walhook.emit logical message.
type emitted struct {
	CompanyID json.RawMessage `json:"company_id"`
	Event     string          `json:"event"`
	Payload   json.RawMessage `json:"payload"`
}

// emittedHead is an emitted message without its payload, for one too large to render.
type emittedHead struct {
	CompanyID json.RawMessage `json:"company_id"`
	Event     string          `json:"event"`
}

// message turns a logical message with prefix "walhook" (walhook.emit) into an event, when
// walhook.emit signed it (emitkey.go); a forged one is skipped.
func (d *decoder) message(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) (*txn, error) {
	if m.Prefix != messagePrefix || (!m.Transactional && m.LSN < d.stored) {
		return nil, nil
	}
	standalone := !m.Transactional || d.cur == nil
	var t *txn
	if standalone {
		// A message outside a transaction stands alone: keyed by its own LSN, acked with the next
		// transaction (endLSN stays 0).
		t = &txn{commitLSN: m.LSN, commitTime: time.Now().UTC()}
	} else {
		t = d.cur
		t.changes++
	}
	pos := m.LSN.String()
	if !m.Transactional {
		// walhook.emit emits transactional messages only, so a non-transactional one with
		// walhook's prefix is not its own. It would have no commit time either: its event's
		// time, and with it the event's partition and replay dedupe (UNIQUE (source_key,
		// occurred_at), migration 0029), would change on a replay.
		t.skips = append(t.skips, skip{reason: skipForged, position: pos, detail: "non-transactional logical message with prefix walhook (walhook.emit emits transactional ones only)"})
		return t, nil
	}
	content, ok, err := d.keys.verify(ctx, m.LSN, m.Content)
	if err != nil {
		return nil, err
	}
	if !ok {
		t.skips = append(t.skips, skip{reason: skipForged, position: pos, detail: "logical message with prefix walhook not signed by walhook.emit"})
		return standaloneOrNil(standalone, t), nil
	}
	var e emitted
	big := d.maxEvent > 0 && len(content)+envelopeOverhead > d.maxEvent
	if big {
		// Read only the company and the event: the payload is never copied (emittedHead has
		// no field for it).
		var h emittedHead
		err = json.Unmarshal(content, &h)
		e = emitted{CompanyID: h.CompanyID, Event: h.Event}
	} else {
		err = json.Unmarshal(content, &e)
	}
	if err != nil {
		t.skips = append(t.skips, skip{reason: skipBadPayload, position: pos, detail: "message is not JSON"})
		return standaloneOrNil(standalone, t), nil
	}
	company := ""
	var s string
	switch {
	case json.Unmarshal(e.CompanyID, &s) == nil:
		company = s
	case isJSONNumber(e.CompanyID):
		company = string(e.CompanyID)
	}
	if et, ok := d.cat.Get(e.Event); !ok || et.Source != webhook.SourceOutbox {
		t.skips = append(t.skips, skip{reason: skipUnknownEvent, position: pos, detail: "event " + strconv.Quote(e.Event)})
		return standaloneOrNil(standalone, t), nil
	}
	if company == "" {
		t.skips = append(t.skips, skip{reason: skipNullTenant, position: pos, detail: "company_id missing or null"})
		return standaloneOrNil(standalone, t), nil
	}
	sourceKey := d.srcKeys.message(t.commitLSN, t.changes, standalone, e.Event)
	ev := store.CaptureEvent{SourceKey: sourceKey, CompanyID: company, EventKey: e.Event, OccurredAt: t.commitTime}
	if big {
		t.tooLarge = append(t.tooLarge, oversized{event: ev, size: len(content) + envelopeOverhead})
		return standaloneOrNil(standalone, t), nil
	}
	payload := []byte(e.Payload)
	if len(payload) == 0 || string(payload) == "null" {
		payload = []byte("{}")
	}
	ev.Payload = envelope(d.ids, sourceKey, e.Event, company, t.commitTime, compact(payload), nil)
	d.addEvent(t, ev, "message")
	return standaloneOrNil(standalone, t), nil
}

func standaloneOrNil(standalone bool, t *txn) *txn {
	if standalone {
		return t
	}
	return nil
}

// compact compacts an emitted payload, repairing lone surrogate escapes as value.go does for json
// columns.
func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return appendRepairedJSON(make([]byte, 0, out.Len()), out.Bytes())
}

// envelope renders an event's envelope (webhook.Envelope, the one definition of it). Its id is
// ids.Event(sourceKey): stable across replays and resyncs, and opaque (the source position is
// never put in the envelope itself). previous is left out when nil.
func envelope(ids *store.PublicIDs, sourceKey, eventKey, company string, at time.Time, data, previous []byte) []byte {
	e := webhook.Envelope{ID: ids.Event(sourceKey), Type: eventKey, CompanyID: company, OccurredAt: at, Data: data, Previous: previous}
	return e.AppendJSON(make([]byte, 0, 128+len(data)+len(previous)))
}
