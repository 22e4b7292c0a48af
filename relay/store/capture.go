package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// CaptureEvent is one captured event, ready to store: SourceKey is its unique source position
// ("wal:<commit lsn>:<n>:<key>", "outbox:<id>"; prefixed "e<N>:" in source epoch N > 0, see
// CapturePosition.Epoch), Payload the envelope as JSON.
type CaptureEvent struct {
	SourceKey  string
	CompanyID  string
	EventKey   string
	Payload    []byte
	OccurredAt time.Time
}

// CaptureBatch is what one fan-out transaction stores: events, the outbox rows they consumed
// (deleted in the same transaction; none when the outbox lives in another database), and where
// capture stands in the source once they are stored.
type CaptureBatch struct {
	Events    []CaptureEvent
	OutboxIDs []int64
	// Position, when its LSN is not 0, is stored in the same statement (walhook.capture_position,
	// never moved back for the same source cluster).
	Position CapturePosition
	// Handoff, when not nil, leases fresh deliveries to the dispatcher in the capture leader's
	// process: they are inserted already leased and returned in CaptureResult.Handed, so that
	// dispatcher sends them from memory without claiming them.
	Handoff *Handoff
}

// Handoff says which fresh deliveries CaptureCommit may insert already leased to a dispatcher,
// and under which claim token: at most Limit, at most PerWebhook of one webhook (Shares[id] for
// the webhooks listed), none of SkipWebhooks or SkipCompanies (held at their share) and none of a
// failing webhook.
type Handoff struct {
	Token         string
	Lease         time.Duration
	Limit         int
	PerWebhook    int
	Shares        map[int64]int
	SkipWebhooks  []int64
	SkipCompanies []string
}

// CaptureResult counts what a fan-out transaction did.
type CaptureResult struct {
	Events     int64 // new events (a replayed source key counts nothing)
	Deliveries int64 // deliveries created
	// UnknownCompany lists the source keys skipped because their company does not exist.
	UnknownCompany []string
	// OutboxDeleted lists the consumed outbox rows deleted. A row whose inserting transaction
	// the stream delivered a moment before it became visible to new snapshots is not among
	// them; the caller retries it.
	OutboxDeleted []int64
	// Handed are the deliveries inserted already leased under CaptureBatch.Handoff's token, in
	// insertion order, with their events' envelopes as stored (one per event, shared, read-only).
	Handed []Claimed
}

// CapturePosition is where capture stands in a source for a slot: the end LSN of the last source
// transaction whose events are stored (0: none), the source cluster's system identifier
// (IDENTIFY_SYSTEM; "" unknown), so that a position of another cluster is never used, and the
// source epoch (migration 0027).
type CapturePosition struct {
	Slot     string
	SystemID string
	LSN      uint64
	// Epoch counts the histories of the source capture has read through the slot: it goes up
	// when the source was replaced, never down. CaptureCommit stores the position only while
	// the stored epoch is still this one.
	Epoch int
	// EpochReason and EpochStarted say why and when the epoch began (read only; "" and nil for
	// epoch 0).
	EpochReason  string
	EpochStarted *time.Time
}

// lsnText formats an LSN as PostgreSQL's pg_lsn text ("" for 0).
func lsnText(lsn uint64) string {
	if lsn == 0 {
		return ""
	}
	return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn))
}

// parseLSN parses pg_lsn text.
func parseLSN(s string) (uint64, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return uint64(hi)<<32 | uint64(lo), nil
}

// CapturePositionGet returns the stored position of slot; ErrNotFound when there is none.
func (s *Store) CapturePositionGet(ctx context.Context, slot string) (CapturePosition, error) {
	r, err := s.q.CapturePositionGet(ctx, slot)
	if err != nil {
		return CapturePosition{}, mapErr(err)
	}
	lsn, err := parseLSN(r.Lsn)
	if err != nil {
		return CapturePosition{}, err
	}
	return CapturePosition{Slot: slot, SystemID: r.SystemID, LSN: lsn, Epoch: int(r.Epoch),
		EpochReason: r.EpochReason, EpochStarted: r.EpochStartedAt}, nil
}

// CaptureEpochBump starts a new source epoch for slot: epoch + 1, the stored position forgotten
// (LSN 0), systemID recorded ("" keeps the stored one), reason kept for operators. It applies
// only while the stored epoch is still seen (a slot without a row gets epoch 1), so callers that
// read the same row start one epoch between them. It returns the stored position afterwards and
// whether this call started the epoch.
func (s *Store) CaptureEpochBump(ctx context.Context, slot string, seen int, systemID, reason string) (CapturePosition, bool, error) {
	_, err := s.q.CaptureEpochBump(ctx, dbsqlc.CaptureEpochBumpParams{Slot: slot, SystemID: systemID, Reason: reason, SeenEpoch: int32(seen)})
	bumped := err == nil
	if err != nil && !errors.Is(mapErr(err), ErrNotFound) {
		return CapturePosition{}, false, fmt.Errorf("start a source epoch for slot %s: %w", slot, mapErr(err))
	}
	pos, err := s.CapturePositionGet(ctx, slot)
	if err != nil {
		return CapturePosition{}, false, fmt.Errorf("read the source epoch of slot %s: %w", slot, err)
	}
	return pos, bumped, nil
}

// captureChunk bounds the arrays of one CaptureCommit statement; a larger batch is several
// statements in the same transaction.
const captureChunk = 5000

// CaptureCommit stores a batch in one transaction: inserts the events (a source key already
// stored inserts nothing), one pending delivery per active webhook of the event's company
// subscribed to its key (leased to b.Handoff's token where it allows, and returned in
// Handed), deletes the consumed outbox rows, stores b.Position, and notifies walhook_deliveries at
// commit when a delivery was left to be claimed. Events of unknown companies are skipped and listed.
func (s *Store) CaptureCommit(ctx context.Context, b CaptureBatch) (CaptureResult, error) {
	var res CaptureResult
	leased := time.Now() // before the transaction: its now() starts the leases of every chunk
	err := s.Tx(ctx, func(tx *Store) error {
		outbox := b.OutboxIDs
		for start := 0; start < len(b.Events) || start == 0; start += captureChunk {
			end := min(start+captureChunk, len(b.Events))
			p := dbsqlc.CaptureCommitParams{
				SourceKeys:  make([]string, 0, end-start),
				CompanyIds:  make([]string, 0, end-start),
				EventKeys:   make([]string, 0, end-start),
				Payloads:    make([]string, 0, end-start),
				OccurredAts: make([]time.Time, 0, end-start),
				OutboxIds:   outbox,
			}
			if p.OutboxIds == nil {
				p.OutboxIds = []int64{}
			}
			if start == 0 && b.Position.LSN > 0 {
				p.PositionSlot, p.PositionSystemID, p.PositionLsn = b.Position.Slot, b.Position.SystemID, lsnText(b.Position.LSN)
				p.PositionEpoch = int32(b.Position.Epoch)
			}
			p.LeaseSkipWebhooks, p.LeaseSkipCompanies = []int64{}, []string{}
			p.LeaseShareWebhookIds, p.LeaseShareCounts = []int64{}, []int64{}
			if h := b.Handoff; h != nil && h.Limit > len(res.Handed) {
				p.LeaseToken, p.LeaseSeconds = h.Token, h.Lease.Seconds()
				p.LeaseLimit, p.LeasePerWebhook = int64(h.Limit-len(res.Handed)), int64(h.PerWebhook)
				if h.SkipWebhooks != nil {
					p.LeaseSkipWebhooks = h.SkipWebhooks
				}
				if h.SkipCompanies != nil {
					p.LeaseSkipCompanies = h.SkipCompanies
				}
				for id, n := range h.Shares {
					p.LeaseShareWebhookIds = append(p.LeaseShareWebhookIds, id)
					p.LeaseShareCounts = append(p.LeaseShareCounts, int64(n))
				}
			}
			outbox = nil
			for _, e := range b.Events[start:end] {
				p.SourceKeys = append(p.SourceKeys, e.SourceKey)
				p.CompanyIds = append(p.CompanyIds, e.CompanyID)
				p.EventKeys = append(p.EventKeys, e.EventKey)
				p.Payloads = append(p.Payloads, string(e.Payload))
				p.OccurredAts = append(p.OccurredAts, e.OccurredAt)
			}
			r, err := tx.q.CaptureCommit(ctx, p)
			if err != nil {
				return fmt.Errorf("store captured events: %w", mapErr(err))
			}
			res.Events += r.Events
			res.Deliveries += r.Deliveries
			res.UnknownCompany = append(res.UnknownCompany, r.UnknownCompany...)
			res.OutboxDeleted = append(res.OutboxDeleted, r.OutboxDeleted...)
			if len(r.HandedIds) > 0 {
				payloads := make(map[int64]json.RawMessage, 4)
				for i, id := range r.HandedEventIds {
					if r.HandedPayloads[i] != "" {
						payloads[id] = json.RawMessage(r.HandedPayloads[i])
					}
				}
				for i, id := range r.HandedIds {
					res.Handed = append(res.Handed, Claimed{
						ID: id, CompanyID: r.HandedCompanyIds[i], WebhookID: r.HandedWebhookIds[i], EventID: r.HandedEventIds[i],
						EventAt: r.HandedEventAts[i],
						Payload: payloads[r.HandedEventIds[i]], CapturedAt: r.CapturedAt, LeaseToken: b.Handoff.Token,
						Leased: leased,
					})
				}
			}
			if end >= len(b.Events) {
				break
			}
		}
		return nil
	})
	return res, err
}

// CaptureMode is how capture reads the application's events.
type CaptureMode string

// Capture modes.
const (
	CaptureWAL  CaptureMode = "wal"
	CapturePoll CaptureMode = "poll"
)

// CaptureModeSet records the capture mode, which walhook.emit follows: in poll mode it inserts an
// outbox row instead of a logical message.
func (s *Store) CaptureModeSet(ctx context.Context, mode CaptureMode) error {
	return mapErr(s.q.CaptureModeSet(ctx, string(mode)))
}

// CaptureModeGet returns the recorded capture mode.
func (s *Store) CaptureModeGet(ctx context.Context) (CaptureMode, error) {
	m, err := s.q.CaptureModeGet(ctx)
	return CaptureMode(m), mapErr(err)
}

// ErrCaptureSource: walhook's database records that capture reads from another place than the
// caller was started with (see CaptureSourceError).
var ErrCaptureSource = errors.New("capture source differs from the one recorded")

// CaptureSourceError says a relay or slot command was started with (or without)
// --source-database-url on a walhook database recorded the other way (migration 0028).
type CaptureSourceError struct {
	// Apart is what the database records: capture reads another database (--source-database-url).
	Apart bool
}

func (e *CaptureSourceError) Error() string {
	if e.Apart {
		return "walhook's database captures from the application's database apart (it was started with --source-database-url, " +
			"or made by walhook split): start with --source-database-url <the application's database> (WALHOOK_SOURCE_DATABASE_URL); " +
			"without it capture would read walhook's own database and take the capture lease from the relays reading the application's " +
			"(docs/operations.md, \"Two databases\")"
	}
	return "walhook's database is also the application's (it was started without --source-database-url): " +
		"start without --source-database-url, or move to two databases with walhook split (docs/operations.md, \"Two databases\")"
}

func (e *CaptureSourceError) Unwrap() error { return ErrCaptureSource }

// CaptureSourceCheck records, the first time, whether capture reads its own database (apart
// false) or another (apart true), and returns a *CaptureSourceError when the record says the
// other. A schema older than migration 0028 records nothing.
func (s *Store) CaptureSourceCheck(ctx context.Context, apart bool) error {
	want := "self"
	if apart {
		want = "apart"
	}
	got, err := s.q.CaptureSettingSourceRecord(ctx, want)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" {
		return nil // undefined_column: serve --migrate=false on an older schema
	}
	if err != nil {
		return fmt.Errorf("record the capture source: %w", mapErr(err))
	}
	if got != want {
		return &CaptureSourceError{Apart: got == "apart"}
	}
	return nil
}

// SplitTable splits "schema.table" (or a bare "table", in schema public) into its parts.
func SplitTable(name string) (schema, table string) {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "public", name
}

// TableInfo describes an application table for catalog validation.
type TableInfo struct {
	Columns []string // in table order
	// ReplicaIdentity is pg_class.relreplident: d (default: the primary key), f (full), i (index), n (nothing).
	ReplicaIdentity string
	HasPrimaryKey   bool
	// IdentityColumns are the replica identity index's columns (d: the primary key; i: the
	// index); empty under f and n.
	IdentityColumns []string
}

// OldRowHas reports whether the old row PostgreSQL publishes for an UPDATE can carry column:
// always under REPLICA IDENTITY FULL; under a key identity only when column is part of the key
// (and then exactly when the key, so the column, may have changed).
func (t TableInfo) OldRowHas(column string) bool {
	return t.ReplicaIdentity == "f" || slices.Contains(t.IdentityColumns, column)
}

// CanPublishChanges reports whether UPDATE and DELETE of the table can be published without
// breaking the application's writes (PostgreSQL refuses them on a published table without a
// replica identity).
func (t TableInfo) CanPublishChanges() bool {
	switch t.ReplicaIdentity {
	case "f", "i":
		return true
	case "d":
		return t.HasPrimaryKey
	}
	return false
}

// CaptureTableInfo looks a table up ("schema.table" or "table"); ErrNotFound when it does not exist.
func (s *Store) CaptureTableInfo(ctx context.Context, name string) (TableInfo, error) {
	schema, table := SplitTable(name)
	id, err := s.q.CaptureTableIdentity(ctx, dbsqlc.CaptureTableIdentityParams{SchemaName: schema, TableName: table})
	if err != nil {
		return TableInfo{}, mapErr(err)
	}
	cols, err := s.q.CaptureTableColumns(ctx, dbsqlc.CaptureTableColumnsParams{SchemaName: schema, TableName: table})
	if err != nil {
		return TableInfo{}, mapErr(err)
	}
	idCols, err := s.q.CaptureTableIdentityColumns(ctx, dbsqlc.CaptureTableIdentityColumnsParams{SchemaName: schema, TableName: table})
	if err != nil {
		return TableInfo{}, mapErr(err)
	}
	return TableInfo{Columns: cols, ReplicaIdentity: id.ReplicaIdentity, HasPrimaryKey: id.HasPrimaryKey, IdentityColumns: idCols}, nil
}

// SlotStatus is a replication slot as pg_replication_slots shows it.
type SlotStatus struct {
	Name, Plugin, Type, Database string
	Active                       bool
	ActivePID                    *int32
	RestartLSN                   string
	ConfirmedFlushLSN            string
	CurrentLSN                   string
	// LagBytes is the server's WAL position minus the slot's confirmed flush position.
	LagBytes int64
	// WALStatus is PostgreSQL's verdict on the WAL the slot needs: reserved or extended (kept),
	// unreserved (beyond max_slot_wal_keep_size: removed at the next checkpoint unless the
	// slot catches up), lost (removed: the slot is invalidated and can no longer stream).
	WALStatus string
	// SafeWALSize is how many more bytes of WAL can be written before the slot is at risk of
	// becoming lost; nil when max_slot_wal_keep_size is unlimited (-1) or the slot is lost.
	SafeWALSize *int64
}

// The slot WAL states of pg_replication_slots.wal_status (PostgreSQL 13+).
const (
	SlotWALReserved   = "reserved"
	SlotWALExtended   = "extended"
	SlotWALUnreserved = "unreserved"
	SlotWALLost       = "lost"
)

// CaptureSlotStatus returns a slot's status; ErrNotFound when there is no such slot.
func (s *Store) CaptureSlotStatus(ctx context.Context, slot string) (SlotStatus, error) {
	r, err := s.q.CaptureSlotGet(ctx, slot)
	if err != nil {
		return SlotStatus{}, mapErr(err)
	}
	return SlotStatus{
		Name: r.SlotName, Plugin: r.Plugin, Type: r.SlotType, Database: r.DatabaseName, Active: r.Active,
		ActivePID: r.ActivePid, RestartLSN: r.RestartLsn, ConfirmedFlushLSN: r.ConfirmedFlushLsn,
		CurrentLSN: r.CurrentLsn, LagBytes: r.LagBytes, WALStatus: r.WalStatus, SafeWALSize: r.SafeWalSize,
	}, nil
}

// CaptureSlotDrop drops a replication slot (it must not be active).
func (s *Store) CaptureSlotDrop(ctx context.Context, slot string) error {
	return mapErr(s.q.CaptureSlotDrop(ctx, slot))
}

// CaptureSlotCreate creates a logical pgoutput slot at the current WAL position and returns
// that position; it returns once the slot is consistent. ErrConflict when the slot exists.
func (s *Store) CaptureSlotCreate(ctx context.Context, slot string) (string, error) {
	lsn, err := s.q.CaptureSlotCreate(ctx, slot)
	return lsn, mapErr(err)
}

// Publication is the publication capture streams: its tables ("schema.table", sorted) and the
// operations it publishes.
type Publication struct {
	Tables                 []string
	Insert, Update, Delete bool
}

// CapturePublicationSync makes publication name cover exactly want.Tables and publish exactly
// want's operations (never TRUNCATE), creating it when missing. It reports whether anything
// changed.
//
// This is DDL on identifiers, which sqlc does not model: with the migrator, the documented
// exception to "every runtime query is a named sqlc query". Identifiers are quoted with
// pgx.Identifier.
func (s *Store) CapturePublicationSync(ctx context.Context, name string, want Publication) (bool, error) {
	tables := make([]string, 0, len(want.Tables))
	for _, t := range want.Tables {
		schema, table := SplitTable(t)
		tables = append(tables, pgx.Identifier{schema, table}.Sanitize())
	}
	var ops []string
	for _, o := range []struct {
		on   bool
		name string
	}{{want.Insert, "insert"}, {want.Update, "update"}, {want.Delete, "delete"}} {
		if o.on {
			ops = append(ops, o.name)
		}
	}
	publish := strings.Join(ops, ", ")
	pub := pgx.Identifier{name}.Sanitize()
	changed := false
	err := s.Tx(ctx, func(tx *Store) error {
		cur, err := tx.q.CapturePublicationGet(ctx, name)
		err = mapErr(err)
		missing := errors.Is(err, ErrNotFound)
		if err != nil && !missing {
			return fmt.Errorf("read publication %s: %w", name, err)
		}
		if missing {
			changed = true
			_, err := tx.db.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s WITH (publish = '%s')",
				pub, strings.Join(tables, ", "), publish))
			if err != nil {
				return fmt.Errorf("create publication %s: %w", name, err)
			}
			return nil
		}
		if cur.Puballtables {
			return fmt.Errorf("publication %s is FOR ALL TABLES; give capture its own publication", name)
		}
		rows, err := tx.q.CapturePublicationTables(ctx, name)
		if err != nil {
			return fmt.Errorf("read publication %s: %w", name, mapErr(err))
		}
		have := make([]string, len(rows))
		for i, r := range rows {
			have[i] = r.SchemaName + "." + r.TableName
		}
		wantNames := make([]string, len(want.Tables))
		for i, t := range want.Tables {
			schema, table := SplitTable(t)
			wantNames[i] = schema + "." + table
		}
		slices.Sort(wantNames)
		if !slices.Equal(have, wantNames) {
			changed = true
			if _, err := tx.db.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s SET TABLE %s", pub, strings.Join(tables, ", "))); err != nil {
				return fmt.Errorf("alter publication %s: %w", name, err)
			}
		}
		if cur.Pubinsert != want.Insert || cur.Pubupdate != want.Update || cur.Pubdelete != want.Delete || cur.Pubtruncate {
			changed = true
			if _, err := tx.db.Exec(ctx, fmt.Sprintf("ALTER PUBLICATION %s SET (publish = '%s')", pub, publish)); err != nil {
				return fmt.Errorf("alter publication %s: %w", name, err)
			}
		}
		return nil
	})
	return changed, err
}
