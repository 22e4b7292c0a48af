package capture

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/semaphore"

	"github.com/walhook/walhook/relay/store"
)

// The replication protocol's commands (CREATE_REPLICATION_SLOT, START_REPLICATION, standby
// status updates) run on a dedicated replication connection through pglogrepl; like the
// publication DDL in the store, they are the documented exception to "every runtime query is a
// named sqlc query".

// connectReplication opens a replication connection to the application's database with the
// settings value.go relies on (UTC, ISO dates).
func (c *Capture) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	pool := c.source().Pool()
	if pool == nil {
		return nil, errors.New("open replication connection: the store is not over a pool")
	}
	cfg := pool.Config().ConnConfig.Config.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["DateStyle"] = "ISO, MDY"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	cfg.RuntimeParams["application_name"] = "walhook-capture"
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > c.cfg.ConnectTimeout {
		cfg.ConnectTimeout = c.cfg.ConnectTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open replication connection: %w", err)
	}
	return conn, nil
}

// Prepare makes the publication cover the catalog's tables and the outbox, starts a new source
// epoch when one is due (epoch.go), and creates the slot when it is missing, on a replication
// connection of its own. The capture leader does the same
// at the start of every stream, on the stream's connection; Prepare is for running it before
// that: `walhook dev` (through relay.Relay.Prepare) and tests.
func (c *Capture) Prepare(ctx context.Context) error {
	conn, err := c.connectReplication(ctx)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	_, err = c.prepare(ctx, conn)
	return err
}

func closeConn(ctx context.Context, conn *pgconn.PgConn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = conn.Close(cctx)
}

// prepared is what prepare found out about the source for a session.
type prepared struct {
	sys pglogrepl.IdentifySystemResult
	// pos is the stored position and source epoch once prepare has started a new epoch where
	// one was due (epoch.go).
	pos store.CapturePosition
}

// prepare syncs the publication, identifies the source, decides its source epoch (sourceEpoch:
// before the slot is created, so a crash in between cannot lose the reason), creates the slot
// when it is missing, and checks it.
func (c *Capture) prepare(ctx context.Context, conn *pgconn.PgConn) (prepared, error) {
	_, update, del := c.cfg.Catalog.Operations()
	pub := store.Publication{Tables: append(c.cfg.Catalog.Tables(), outboxTable), Insert: true, Update: update, Delete: del}
	changed, err := c.source().CapturePublicationSync(ctx, c.cfg.Publication, pub)
	if err != nil {
		return prepared{}, err
	}
	if changed {
		c.log.Info().Str("publication", c.cfg.Publication).Strs("tables", pub.Tables).Msg("publication updated")
	}
	var p prepared
	if p.sys, err = pglogrepl.IdentifySystem(ctx, conn); err != nil {
		return prepared{}, fmt.Errorf("identify source system: %w", err)
	}
	slot, err := c.source().CaptureSlotStatus(ctx, c.cfg.Slot)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return prepared{}, fmt.Errorf("look up replication slot %s: %w", c.cfg.Slot, err)
	}
	if p.pos, err = c.sourceEpoch(ctx, p.sys, missing); err != nil {
		return prepared{}, err
	}
	if missing {
		_, err := pglogrepl.CreateReplicationSlot(ctx, conn, c.cfg.Slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // created meanwhile by another replica
			return p, nil
		}
		if err != nil {
			return prepared{}, fmt.Errorf("create replication slot %s: %w", c.cfg.Slot, err)
		}
		c.log.Info().Str("slot", c.cfg.Slot).Int("source_epoch", p.pos.Epoch).Msg("replication slot created")
		c.slot.set(store.SlotWALReserved)
		return p, nil
	}
	if err := c.slot.observe(slot, c.log); err != nil {
		return prepared{}, err // lost: START_REPLICATION would only fail
	}
	if slot.Plugin != "pgoutput" || slot.Type != "logical" {
		return prepared{}, fmt.Errorf("replication slot %s is a %s slot with plugin %q; walhook needs its own logical pgoutput slot", c.cfg.Slot, slot.Type, slot.Plugin)
	}
	if db := conn.ParameterStatus("database"); db != "" && slot.Database != "" && db != slot.Database {
		return prepared{}, fmt.Errorf("replication slot %s belongs to database %s", c.cfg.Slot, slot.Database)
	}
	return p, nil
}

// stream runs one replication session: prepare, sweep leftover outbox rows, then read and commit
// until ctx ends or an error.
func (c *Capture) stream(ctx context.Context) error {
	conn, err := c.connectReplication(ctx)
	if err != nil {
		return &sessionError{reasonConnect, err}
	}
	defer closeConn(ctx, conn)
	p, err := c.prepare(ctx, conn)
	if err != nil {
		return &sessionError{reasonPrepare, err}
	}
	keys := sourceKeys{epoch: p.pos.Epoch}
	// Outbox rows written before the slot existed (or while in poll mode) are not in the stream:
	// claim them once. A row also in the stream has the same source key, so it is stored once.
	for {
		n, err := c.pollBatch(ctx, keys)
		if err != nil {
			return &sessionError{reasonCommit, err}
		}
		if n < c.cfg.PollBatch {
			break
		}
	}
	sys := p.sys
	start := c.startPosition(p.pos, sys)
	err = pglogrepl.StartReplication(ctx, conn, c.cfg.Slot, start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '2'",
			"publication_names '" + c.cfg.Publication + "'",
			"messages 'true'",
		},
	})
	if err != nil {
		// Invalidated between the check in prepare and now: PostgreSQL answers 55000
		// (object_not_in_prerequisite_state; 15: "cannot read from logical replication slot",
		// detail "This slot has been invalidated because it exceeded the maximum reserved size").
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55000" {
			if s, serr := c.source().CaptureSlotStatus(ctx, c.cfg.Slot); serr == nil {
				if lerr := c.slot.observe(s, c.log); lerr != nil {
					return lerr
				}
			}
		}
		return &sessionError{reasonStart, fmt.Errorf("start replication on slot %s: %w", c.cfg.Slot, err)}
	}
	c.log.Info().Str("slot", c.cfg.Slot).Str("from", start.String()).Msg("streaming")

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ids, err := c.st.PublicIDs(ctx)
	if err != nil {
		return err
	}
	ring := &keyring{load: loadEmitKeys(c.source())}
	if err := ring.reload(ctx); err != nil {
		return err
	}
	dec := newDecoder(c.cfg.Catalog, ids, ring)
	dec.partEvents = min(c.cfg.BatchEvents, partEvents)
	dec.partBytes = partBytes
	dec.maxEvent = c.cfg.MaxEventBytes
	dec.stored = start
	dec.srcKeys = keys
	s := &session{c: c, conn: conn, dec: dec, txns: make(chan *txn, 4096), systemID: sys.SystemID, epoch: keys.epoch,
		inflight: semaphore.NewWeighted(inflightBytes)}
	committed := make(chan error, 1)
	go func() {
		err := s.commitLoop(sctx)
		if err != nil {
			err = &sessionError{reasonCommit, err}
			cancel(err)
		}
		committed <- err
	}()
	err = s.readLoop(sctx) // never nil: the reader returns only with an error or its context's end
	cancel(err)
	cerr := <-committed
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if ctx.Err() != nil {
		return nil
	}
	if cerr != nil { // a committer's failure is sctx's cause (above); kept should that change
		return cerr
	}
	return &sessionError{reasonStream, err}
}

// startPosition is where the stream starts: the position stored with the events in walhook's
// database (walhook.capture_position, as prepare left it) when it is this source cluster's and
// within its WAL, else 0 (PostgreSQL starts at the slot's confirmed_flush_lsn). A position of
// another cluster or beyond the WAL has already started a new source epoch, which forgets it
// (epoch.go); the checks here only guard against a row changed in between. See "Two databases"
// in doc.go.
func (c *Capture) startPosition(pos store.CapturePosition, sys pglogrepl.IdentifySystemResult) pglogrepl.LSN {
	lsn := pglogrepl.LSN(pos.LSN)
	if pos.SystemID != sys.SystemID || lsn > sys.XLogPos {
		return 0
	}
	return lsn
}

// partEvents is the size of the parts a large transaction is handed to the committer in (see
// txn): small enough that its first part is stored and sent within tens of milliseconds of the
// transaction reaching capture, large enough that a part is one efficient statement.
const partEvents = 500

// partBytes bounds a part by its payloads' bytes as well (the first part: a fifth of it), so a
// transaction of many mid-sized rows is handed over every few MiB, never held whole.
const partBytes = 4 << 20

// inflightBytes bounds the payload bytes decoded and handed to the committer but not yet
// committed: the reader waits when it is reached, so a committer slower than the stream cannot
// make the queue hold gigabytes. It also bounds one fan-out batch: storing a batch copies its
// payloads two or three times (the statement's arrays, the connection's buffer), so memory is a
// small multiple of it. A transaction larger than it (it is at most partBytes plus one event)
// takes the whole of it.
const inflightBytes = 16 << 20

// session is one replication session: the reader owns conn and the decoder; the committer owns
// the fan-out transactions; they share positions through atomics.
type session struct {
	c    *Capture
	conn *pgconn.PgConn
	dec  *decoder
	txns chan *txn

	// systemID is the source cluster's identifier (IDENTIFY_SYSTEM), stored with the position,
	// and epoch the session's source epoch, which the position is stored under.
	systemID string
	epoch    int

	// inflight counts the payload bytes handed to the committer and not yet committed
	// (inflightBytes).
	inflight *semaphore.Weighted

	flushed   atomic.Uint64 // end LSN of the last transaction whose events committed
	handed    atomic.Int64  // transactions handed to the committer
	committed atomic.Int64  // transactions the committer finished
}

func (s *session) readLoop(ctx context.Context) error {
	cfg := s.c.cfg
	nextStatus := time.Now().Add(cfg.StatusInterval)
	var serverEnd pglogrepl.LSN
	for {
		if !time.Now().Before(nextStatus) {
			if err := s.sendStatus(ctx, serverEnd); err != nil {
				return err
			}
			nextStatus = time.Now().Add(cfg.StatusInterval)
		}
		r, err := Receive(ctx, s.conn, nextStatus)
		if err != nil {
			return err
		}
		switch {
		case r.Keepalive:
			serverEnd = max(serverEnd, r.KeepaliveMsg.ServerWALEnd)
			if r.KeepaliveMsg.ReplyRequested {
				nextStatus = time.Time{}
			}
		case r.XLog:
			if err := s.decode(ctx, r.XLogMsg); err != nil {
				return err
			}
		}
	}
}

// decode feeds one XLogData to the decoder and hands finished transactions to the committer. A
// message that does not decode is counted and skipped: bad data never stops capture.
func (s *session) decode(ctx context.Context, xld pglogrepl.XLogData) (err error) {
	defer func() {
		// pglogrepl indexes into the message without bounds checks; a malformed message must
		// not kill the process.
		if r := recover(); r != nil {
			s.c.m.decodeErrors.Inc()
			s.c.limiter.Msg(s.c.log.Error().Str("lsn", xld.WALStart.String()).Interface("panic", r), "undecodable replication message skipped")
			err = nil
		}
	}()
	t, derr := s.dec.handle(ctx, xld.WALData)
	if errors.Is(derr, errKeysUnavailable) {
		return derr
	}
	if derr != nil {
		s.c.m.decodeErrors.Inc()
		s.c.limiter.Msg(s.c.log.Error().Err(derr).Str("lsn", xld.WALStart.String()), "undecodable replication message skipped")
		return nil
	}
	if t == nil {
		return nil
	}
	if err := s.inflight.Acquire(ctx, t.weight()); err != nil {
		return err
	}
	s.handed.Add(1)
	select {
	case s.txns <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// weight is what t holds of the in-flight budget (inflightBytes).
func (t *txn) weight() int64 { return min(int64(t.bytes), inflightBytes) }

// sendStatus reports the flush position: the end of the last committed transaction, or, when
// idle (no open transaction, everything handed over committed), the server's last keepalive
// position.
func (s *session) sendStatus(ctx context.Context, serverEnd pglogrepl.LSN) error {
	pos := pglogrepl.LSN(s.flushed.Load())
	if !s.dec.inTxn() && s.handed.Load() == s.committed.Load() && serverEnd > pos {
		pos = serverEnd
	}
	if pos == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := pglogrepl.SendStandbyStatusUpdate(wctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos,
	})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

// outboxRetries bounds how often the committer retries deleting a consumed outbox row that was
// not yet visible (see outboxLeft); outboxRetryAfter is the wait between tries.
const (
	outboxRetries    = 10
	outboxRetryAfter = 100 * time.Millisecond
)

func (s *session) commitLoop(ctx context.Context) error {
	batch := make([]*txn, 0, 64)
	// outboxLeft holds consumed outbox rows the fan-out could not delete yet, with the tries so
	// far. The stream can deliver a transaction a moment before PostgreSQL makes it visible to
	// new snapshots, so the DELETE of its outbox row may find nothing; it is retried with the
	// next commit, or after outboxRetryAfter when idle. A row still not deleted after
	// outboxRetries tries is gone already (its event is stored either way: source keys dedupe).
	outboxLeft := map[int64]int{}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case t := <-s.txns:
			batch = append(batch, t)
		case <-retry.C:
		}
		n := 0
		if len(batch) > 0 {
			n = len(batch[0].events)
		}
	drain:
		for len(batch) > 0 && n < s.c.cfg.BatchEvents {
			select {
			case t := <-s.txns:
				batch = append(batch, t)
				n += len(t.events)
			default:
				break drain
			}
		}
		left := make([]int64, 0, len(outboxLeft))
		for id := range outboxLeft {
			left = append(left, id)
		}
		var end pglogrepl.LSN // 0 when the batch holds only parts of an open transaction
		for _, t := range batch {
			end = max(end, t.endLSN)
		}
		pos := store.CapturePosition{Slot: s.c.cfg.Slot, SystemID: s.systemID, LSN: uint64(end), Epoch: s.epoch}
		missing, err := s.c.commit(ctx, batch, left, pos)
		if err != nil {
			return err
		}
		still := make(map[int64]int, len(missing))
		for _, id := range missing {
			if tries := outboxLeft[id] + 1; tries < outboxRetries {
				still[id] = tries
			}
		}
		outboxLeft = still
		if len(outboxLeft) > 0 {
			retry.Reset(outboxRetryAfter)
		}
		if len(batch) == 0 {
			continue
		}
		if s.c.afterCommit != nil {
			s.c.afterCommit(uint64(end))
		}
		if end > pglogrepl.LSN(s.flushed.Load()) {
			s.flushed.Store(uint64(end))
		}
		s.committed.Add(int64(len(batch)))
		for _, t := range batch {
			s.inflight.Release(t.weight())
		}
	}
}

// commit stores a batch of decoded transactions in one fan-out transaction with pos (when its
// LSN is not 0), and deletes their consumed outbox rows and the earlier ones in retryOutbox: in
// the same transaction with one database, in the source right after it commits with two. It
// returns the outbox rows it asked to delete that were not deleted.
func (c *Capture) commit(ctx context.Context, batch []*txn, retryOutbox []int64, pos store.CapturePosition) ([]int64, error) {
	b := store.CaptureBatch{Position: pos}
	outbox := append([]int64(nil), retryOutbox...)
	var big []oversized
	for _, t := range batch {
		b.Events = append(b.Events, t.events...)
		outbox = append(outbox, t.outboxIDs...)
		big = append(big, t.tooLarge...)
		c.reportSkips(t.skips)
	}
	if len(big) > 0 {
		// Set aside in walhook's database before the batch's position is stored: a crash in
		// between replays them, and their source keys dedupe in the quarantine.
		n, err := c.setAside(ctx, c.st, big)
		c.countTooLarge(n)
		if err != nil {
			return nil, err
		}
	}
	for _, t := range batch {
		if !t.part {
			c.m.transactions.Inc()
		}
	}
	if len(b.Events) == 0 && len(outbox) == 0 {
		return nil, nil
	}
	var res fanOutResult
	if !c.twoDatabases() {
		b.OutboxIDs = outbox
	}
	if len(b.Events) > 0 || len(b.OutboxIDs) > 0 {
		var err error
		if res, err = c.store(ctx, b); err != nil {
			return nil, err
		}
	}
	deleted := res.OutboxDeleted
	if c.twoDatabases() && len(outbox) > 0 {
		// Their events are committed in walhook's database: delete the rows in the source. A
		// crash before this replays them (source keys dedupe) and deletes them then.
		dctx, cancel := context.WithTimeout(ctx, c.cfg.CommitTimeout)
		var err error
		deleted, err = c.src.OutboxDelete(dctx, outbox)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("delete consumed outbox rows in the source: %w", err)
		}
	}
	stored := func(e store.CaptureEvent) bool { return !res.quarantined[e.SourceKey] }
	var missing []int64
	if len(deleted) < len(outbox) {
		gone := make(map[int64]bool, len(deleted))
		for _, id := range deleted {
			gone[id] = true
		}
		for _, id := range outbox {
			if !gone[id] {
				missing = append(missing, id)
			}
		}
	}
	if len(res.UnknownCompany) > 0 {
		unknown := make(map[string]bool, len(res.UnknownCompany))
		for _, k := range res.UnknownCompany {
			unknown[k] = true
		}
		stored = func(e store.CaptureEvent) bool { return !unknown[e.SourceKey] && !res.quarantined[e.SourceKey] }
	}
	for _, t := range batch {
		for i, e := range t.events {
			if stored(e) {
				c.m.events.WithLabelValues(t.sources[i], e.EventKey).Inc()
			}
		}
	}
	return missing, nil
}

// store runs the fan-out of a batch (fanOut: refused events are quarantined), and reports what
// it did.
//
// With a local dispatcher (Config.Dispatcher), the fan-out leases the fresh deliveries its plan
// allows to it, and they are handed over in memory once the transaction has committed (see
// handoff.go in package dispatch).
func (c *Capture) store(ctx context.Context, b store.CaptureBatch) (fanOutResult, error) {
	if c.cfg.Dispatcher != nil && len(b.Events) > 0 {
		b.Handoff = c.cfg.Dispatcher.HandoffPlan()
	}
	res, err := c.fanOut(ctx, c.st, b)
	if err != nil {
		return res, err
	}
	if len(res.Handed) > 0 {
		c.cfg.Dispatcher.Take(ctx, res.Handed)
	}
	c.reportFanOut(res.CaptureResult)
	return res, nil
}

// reportFanOut counts a fan-out's deliveries and skipped unknown companies, and wakes the
// dispatcher.
func (c *Capture) reportFanOut(res store.CaptureResult) {
	c.m.deliveries.Add(float64(res.Deliveries))
	if len(res.UnknownCompany) > 0 {
		c.m.skipped.WithLabelValues(skipUnknownCompany).Add(float64(len(res.UnknownCompany)))
		c.limiter.Msg(c.log.Warn().Int("count", len(res.UnknownCompany)).Str("position", res.UnknownCompany[0]),
			"events of unknown companies skipped")
	}
	if res.Deliveries > int64(len(res.Handed)) && c.cfg.Wake != nil {
		c.cfg.Wake()
	}
}

func (c *Capture) reportSkips(skips []skip) {
	var first, forged *skip
	n, nForged := 0, 0
	for i := range skips {
		s := &skips[i]
		c.m.skipped.WithLabelValues(s.reason).Inc()
		if s.reason == skipForged {
			nForged++
			if forged == nil {
				forged = s
			}
			continue
		}
		n++
		if first == nil {
			first = s
		}
	}
	if forged != nil {
		c.forgedLog.Msg(c.log.Error().Str("lsn", forged.position).Int("count", nForged).Str("detail", forged.detail),
			"forged walhook message refused: a role wrote a logical message with walhook's prefix without walhook.emit")
	}
	if first != nil {
		c.limiter.Msg(c.log.Warn().Str("reason", first.reason).Str("position", first.position).
			Int("count", n).Str("detail", first.detail), "bad source data skipped")
	}
}
