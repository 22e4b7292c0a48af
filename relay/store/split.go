package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Moving a single-database installation to two databases (`walhook split`, issue 17).
//
// The old database stays the application's (the source: slot, publication, walhook.emit,
// walhook.outbox); walhook's own data is copied into a new, empty database, which walhook runs on
// from then on. No delivery is lost or repeated because of three things, in this order:
//
//  1. The mark. One transaction on the old database locks capture_setting's row, finds no live
//     dispatcher replica and no other walhook session, deletes the dead replicas' rows, takes the
//     capture lease for good (holder "split") and sets capture_setting.moved_at. From its commit
//     on, no walhook starts on the old database alone (MovedCheck), no dispatcher registers there
//     (ReplicaRegister shares the row lock, so it either registered before — and the mark
//     refused — or sees the mark; a paused one that wakes finds its row gone and must register),
//     and no capture leader leads there (the lease never expires).
//  2. The copy. A REPEATABLE READ snapshot of the old database, taken after the mark, is copied
//     table by table (COPY, streamed: bounded memory) into the new database in one transaction,
//     ids and identity sequences kept, so sealed secrets (bound to their row) open and public ids
//     stay the same. Pending deliveries come along unleased: no replica holds them any more.
//  3. The commit. The replicas are checked once more (none may have registered since the mark),
//     then the new database commits. A failure before that rolls back the copy and clears the mark.
//
// Copy, source and transient tables are listed below; a table in neither list stops the split,
// so a migration that adds a table must say where it goes. Like the migrator, the copy runs
// table-generic SQL outside queries/ (COPY, count, TRUNCATE and setval per listed table, names
// quoted with pgx.Identifier); everything else is a named query (queries/split.sql).

// splitLease is the holder the split takes the capture lease as, in the database it marks.
const splitLease = "split"

// splitCopied are walhook's tables the split copies into walhook's database, in an order that
// inserts referenced rows first.
var splitCopied = []string{
	"company", "event_type", "role", "role_permission", "member", "api_token", "platform_token",
	// Portal links and `walhook dev` sign-ins are one-time codes valid for minutes; copied, so a
	// link the host application handed out just before the split still signs in after it.
	"login_code",
	"oauth_credential", "webhook", "event", "delivery", "attempt", "audit_log", "capture_quarantine",
	"id_key",
}

// splitSource are the tables that stay in the application's database: capture needs them there.
var splitSource = []string{"outbox", "emit_key", "capture_setting"}

// splitTransient are the tables neither copied nor kept: process state each database has its own
// of, which walhook rebuilds (the leases and replica rows of running processes; the rate-limit
// buckets, UNLOGGED, which start full as after a crash; each database's migration records; the
// capture position, which the split writes itself from the slot).
var splitTransient = []string{"lease", "replica", "rate_bucket", "schema_migration", "source_schema_migration", "capture_position"}

// splitSelect overrides a copied column's value: a pending delivery's lease belonged to a
// replica of the old database, which no longer runs; unleased, it is claimed at once.
var splitSelect = map[string]map[string]string{
	"delivery": {
		"lease_until": "CASE WHEN state = 'pending' THEN NULL ELSE lease_until END",
		"leased_by":   "CASE WHEN state = 'pending' THEN NULL ELSE leased_by END",
	},
}

// SplitCount is a copied table and its rows.
type SplitCount struct {
	Name string
	Rows int64
}

// SplitPlan is what a split would do, checked without changing anything.
type SplitPlan struct {
	// Tables are the tables to copy and their rows now.
	Tables []SplitCount
	// Slot is the replication slot the new database continues from; nil when there is none
	// (outbox polling, or capture never ran).
	Slot *SlotStatus
	// Resume is set when an earlier split marked the old database and did not finish: the new
	// database is still empty, and running again completes it.
	Resume bool
}

// SplitResult is what a split did.
type SplitResult struct {
	Tables []SplitCount
	// Position is the slot's confirmed position the new database continues from ("" without a
	// slot).
	Position string
	Took     time.Duration
}

// SplitRefusedError says why a split (or its undo, back or drop) will not run; nothing changed.
type SplitRefusedError struct{ Reasons []string }

func (e *SplitRefusedError) Error() string {
	return "refused:\n  - " + strings.Join(e.Reasons, "\n  - ")
}

// SplitOptions configure Split.
type SplitOptions struct {
	// Slot is capture's replication slot in the old database. Default "walhook".
	Slot string
	// MovedTo names the new database in the mark (no password). Required.
	MovedTo string
	// Progress, when set, is called after each copied table.
	Progress func(SplitCount)
	// BeforeCommit, when set, runs after the copy, before the replica re-check and the commit of
	// the new database (tests use it to race a relay against the split).
	BeforeCommit func(ctx context.Context) error
}

func captureLease(slot string) string { return "capture:" + slot }

// splitIdentity refuses to split a database into itself.
func splitIdentity(ctx context.Context, old, new *Store) error {
	a, err := old.q.SplitDatabaseIdentity(ctx)
	if err != nil {
		return fmt.Errorf("identify the source database: %w", mapErr(err))
	}
	b, err := new.q.SplitDatabaseIdentity(ctx)
	if err != nil {
		return fmt.Errorf("identify walhook's database: %w", mapErr(err))
	}
	if a.SystemID == b.SystemID && a.DatabaseOid == b.DatabaseOid {
		return &SplitRefusedError{Reasons: []string{fmt.Sprintf("--database-url and --source-database-url are the same database (%s)", a.DatabaseName)}}
	}
	return nil
}

// SameDatabase reports whether a and b are connected to the same database, whatever URLs
// reached it (the cluster's system identifier and the database's oid).
func SameDatabase(ctx context.Context, a, b *Store) (bool, error) {
	err := splitIdentity(ctx, a, b)
	var refused *SplitRefusedError
	if errors.As(err, &refused) {
		return true, nil
	}
	return false, err
}

// identityTag names a database exactly, whatever URL reached it: its cluster's system identifier
// and its oid. The mark ends with the tag of the database the data went to, so a later undo,
// drop or resumed split acts only with that database.
func (s *Store) identityTag(ctx context.Context) (string, error) {
	id, err := s.q.SplitDatabaseIdentity(ctx)
	if err != nil {
		return "", fmt.Errorf("identify database: %w", mapErr(err))
	}
	return fmt.Sprintf("(system %s, database oid %d)", id.SystemID, id.DatabaseOid), nil
}

// movedHere refuses when m (a database's mark) names another database than target.
func movedHere(ctx context.Context, m *MovedError, target *Store, which string) error {
	tag, err := target.identityTag(ctx)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(m.To, tag) {
		return &SplitRefusedError{Reasons: []string{fmt.Sprintf("the marked database was moved to %s, not to %s %s: give that database", m.To, which, tag)}}
	}
	return nil
}

// splitTables lists the walhook tables that exist and checks each is classified.
func (s *Store) splitTables(ctx context.Context) ([]string, error) {
	tables, err := s.q.SplitTables(ctx)
	if err != nil {
		return nil, fmt.Errorf("list walhook's tables: %w", mapErr(err))
	}
	for _, t := range tables {
		if !slices.Contains(splitCopied, t) && !slices.Contains(splitSource, t) && !slices.Contains(splitTransient, t) {
			return nil, fmt.Errorf("table walhook.%s is unknown to this walhook split (a newer walhook made it?): run the walhook release that migrated the database", t)
		}
	}
	return tables, nil
}

// splitHolding lists the copied tables (and the process tables lease and replica) that hold rows:
// a database walhook's data may be copied into holds none.
func (s *Store) splitHolding(ctx context.Context) ([]string, error) {
	tables, err := s.splitTables(ctx)
	if err != nil {
		return nil, err
	}
	var holding []string
	for _, t := range append(slices.Clone(splitCopied), "lease", "replica") {
		if !slices.Contains(tables, t) {
			continue
		}
		var any bool
		if err := s.db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{"walhook", t}.Sanitize()+")").Scan(&any); err != nil {
			return nil, fmt.Errorf("look into walhook.%s: %w", t, mapErr(err))
		}
		if any {
			holding = append(holding, t)
		}
	}
	return holding, nil
}

// splitIdle lists what still runs on a database: live dispatcher replicas, a live capture lease
// held by another than the split, an active slot, and walhook sessions.
func (s *Store) splitIdle(ctx context.Context, slot string, since time.Time) ([]string, error) {
	var why []string
	n, err := s.q.SplitReplicasSince(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("read replicas: %w", mapErr(err))
	}
	if n > 0 {
		why = append(why, fmt.Sprintf("%d dispatcher replica(s) run on it (walhook.replica): stop every walhook relay and serve process", n))
	}
	l, err := s.LeaseGet(ctx, captureLease(slot))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("read capture lease: %w", err)
	}
	if err == nil && l.Live && l.Holder != splitLease {
		why = append(why, fmt.Sprintf("the capture leader %q holds its lease until %s: stop it (or wait for the lease to expire)", l.Holder, l.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	if st, err := s.CaptureSlotStatus(ctx, slot); err == nil && st.Active {
		why = append(why, fmt.Sprintf("replication slot %s is being read (pid %d): stop the relay reading it", slot, derefInt32(st.ActivePID)))
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("read slot %s: %w", slot, err)
	}
	sessions, err := s.q.SplitWalhookSessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", mapErr(err))
	}
	if len(sessions) > 0 {
		var pids []string
		for _, x := range sessions {
			pids = append(pids, fmt.Sprintf("pid %d from %s", x.Pid, x.Client))
		}
		why = append(why, fmt.Sprintf("%d walhook session(s) are open on it (%s): stop every walhook process, admin ones too", len(sessions), strings.Join(pids, ", ")))
	}
	return why, nil
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// SplitCheck checks whether old's walhook data can move to new, changing nothing: they are two
// databases, nothing of walhook runs on old, and new holds no walhook data. It returns what the
// split would copy.
func SplitCheck(ctx context.Context, old, new *Store, slot string) (SplitPlan, error) {
	slot = orDefault(slot, "walhook")
	var plan SplitPlan
	if err := splitIdentity(ctx, old, new); err != nil {
		return plan, err
	}
	var exists bool
	if err := old.db.QueryRow(ctx, "SELECT to_regclass('walhook.schema_migration') IS NOT NULL").Scan(&exists); err != nil {
		return plan, fmt.Errorf("look for walhook's schema: %w", mapErr(err))
	}
	if !exists {
		return plan, &SplitRefusedError{Reasons: []string{"the source database has no walhook schema: --source-database-url must name the database walhook ran in so far"}}
	}
	if err := old.MigrationCheck(ctx); err != nil {
		return plan, err
	}
	if err := new.MigrationCheck(ctx); err != nil {
		return plan, err
	}
	tables, err := old.splitTables(ctx)
	if err != nil {
		return plan, err
	}
	var why []string
	holding, err := new.splitHolding(ctx)
	if err != nil {
		return plan, err
	}
	moved, err := old.Moved(ctx)
	if err != nil {
		return plan, err
	}
	switch {
	case moved != nil && len(holding) > 0:
		return plan, &SplitRefusedError{Reasons: []string{fmt.Sprintf("the source database was already moved (at %s, to %s), and walhook's database holds data: the split is done",
			moved.At.UTC().Format(time.RFC3339), moved.To)}}
	case moved != nil:
		if err := movedHere(ctx, moved, new, "this --database-url"); err != nil {
			return plan, err
		}
		plan.Resume = true
	case len(holding) > 0:
		why = append(why, fmt.Sprintf("walhook's database (--database-url) holds walhook data (in %s): give a new, empty database", strings.Join(holding, ", ")))
	}
	idle, err := old.splitIdle(ctx, slot, time.Now().Add(24*time.Hour))
	if err != nil {
		return plan, err
	}
	why = append(why, idle...)
	if len(why) > 0 {
		return plan, &SplitRefusedError{Reasons: why}
	}
	for _, t := range splitCopied {
		if !slices.Contains(tables, t) {
			continue
		}
		var n int64
		if err := old.db.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{"walhook", t}.Sanitize()).Scan(&n); err != nil {
			return plan, fmt.Errorf("count walhook.%s: %w", t, mapErr(err))
		}
		plan.Tables = append(plan.Tables, SplitCount{Name: t, Rows: n})
	}
	if st, err := old.CaptureSlotStatus(ctx, slot); err == nil {
		plan.Slot = &st
	} else if !errors.Is(err, ErrNotFound) {
		return plan, fmt.Errorf("read slot %s: %w", slot, err)
	}
	return plan, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// splitMark marks db as moved to movedTo, in one transaction that finds nothing of walhook
// running on it (see the top of this file), and takes the capture lease for good. It returns the
// mark's time by the database's clock. A mark already there (an unfinished split) is renewed.
func (s *Store) splitMark(ctx context.Context, slot, movedTo string, target *Store) (time.Time, error) {
	tag, err := target.identityTag(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if len(movedTo) > 400 {
		movedTo = movedTo[:400] + "…"
	}
	movedTo += " " + tag
	err = s.Tx(ctx, func(tx *Store) error {
		cur, err := tx.q.CaptureSettingMovedLock(ctx)
		if err != nil {
			return fmt.Errorf("lock capture_setting: %w", mapErr(err))
		}
		// A mark naming another database: a second split (or --back) that passed its check
		// before the first marked. Renewing it would let both copies commit.
		if cur.MovedAt != nil && !strings.HasSuffix(cur.MovedTo, tag) {
			return &SplitRefusedError{Reasons: []string{fmt.Sprintf("the database was marked meanwhile as moved to %s, not to this one %s: another walhook split runs (or ran) on it", cur.MovedTo, tag)}}
		}
		why, err := tx.splitIdle(ctx, slot, time.Now().Add(24*time.Hour))
		if err != nil {
			return err
		}
		if len(why) > 0 {
			return &SplitRefusedError{Reasons: why}
		}
		if err := tx.q.SplitReplicasClear(ctx); err != nil {
			return fmt.Errorf("clear dead replicas: %w", mapErr(err))
		}
		// The lease never expires: no capture leader ever writes to this database alone again.
		ok, err := tx.LeaseAcquire(ctx, captureLease(slot), splitLease, 100*365*24*time.Hour)
		if err != nil {
			return fmt.Errorf("take the capture lease: %w", err)
		}
		if !ok {
			return &SplitRefusedError{Reasons: []string{"a capture leader took its lease meanwhile: stop every walhook relay"}}
		}
		return mapErr(tx.q.CaptureSettingMovedSet(ctx, movedTo))
	})
	if err != nil {
		return time.Time{}, err
	}
	m, err := s.Moved(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if m == nil {
		return time.Time{}, errors.New("the moved mark did not stay set: a concurrent walhook split --undo?")
	}
	return m.At, nil
}

// splitUnmark clears the mark and gives the capture lease back: the database is walhook's own
// again.
func (s *Store) splitUnmark(ctx context.Context, slot string) error {
	return s.Tx(ctx, func(tx *Store) error {
		if err := tx.q.CaptureSettingMovedClear(ctx); err != nil {
			return fmt.Errorf("clear the moved mark: %w", mapErr(err))
		}
		return tx.LeaseRelease(ctx, captureLease(slot), splitLease)
	})
}

// splitLockKey is the advisory lock a split takes in the database it copies into, so two splits
// into the same database copy one after the other (the second then finds it holding data).
const splitLockKey = 0x77616c686f6f6c // "walhool"

// Split moves old's walhook data into new: marks old (no walhook runs on it alone from then on),
// copies every walhook table that does not stay in the source from one snapshot of old into new
// in one transaction, and records the slot's confirmed position as where capture continues. Both
// databases must be migrated (main set in new; main and source sets in old). Any failure before
// the new database commits rolls back the copy and clears the mark.
func Split(ctx context.Context, old, new *Store, opts SplitOptions) (res SplitResult, err error) {
	start := time.Now()
	opts.Slot = orDefault(opts.Slot, "walhook")
	if opts.MovedTo == "" {
		return res, errors.New("split: MovedTo is required")
	}
	if _, err = SplitCheck(ctx, old, new, opts.Slot); err != nil {
		return res, err
	}
	if old.Pool() == nil || new.Pool() == nil {
		return res, errors.New("split: both stores must be over a pool")
	}
	job := copyJob{from: old.Pool(), to: new.Pool(), tables: splitCopied,
		progress: opts.Progress, beforeCommit: opts.BeforeCommit}
	job.finish = func(ctx context.Context, from, to *Store) error {
		// The slot's position, read now: no capture ran since the mark (the split holds the
		// lease, and no relay may run), so it does not move, and the snapshot holds every event
		// below it.
		st, err := from.CaptureSlotStatus(ctx, opts.Slot)
		switch {
		case errors.Is(err, ErrNotFound):
			// outbox polling, or capture never ran: no position to continue from, but a
			// source epoch to keep, if there is one
		case err != nil:
			return fmt.Errorf("read slot %s: %w", opts.Slot, err)
		default:
			res.Position = st.ConfirmedFlushLSN
		}
		// walhook's database captures from the old one from now on (migration 0028).
		if err := to.CaptureSourceCheck(ctx, true); err != nil {
			return err
		}
		return to.splitPosition(ctx, from, opts.Slot, res.Position)
	}
	// Nothing reached the new database: the old one is walhook's own again. Unless the new one
	// holds walhook's data all the same: a concurrent split into it (this one's retry) committed
	// its copy, whose mark this is too.
	keep := func(ctx context.Context) (bool, error) {
		holding, err := new.splitHolding(ctx)
		if err != nil {
			return true, fmt.Errorf("the mark was left: walhook's database could not be read: %w; run walhook split again, or --undo", err)
		}
		return len(holding) > 0, nil
	}
	if res.Tables, err = job.runMarked(ctx, old, new, opts.Slot, opts.MovedTo, keep, "; run walhook split --undo"); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	return res, nil
}

// runMarked marks marked (the database copied from) as moved to movedTo, runs the copy into
// other, and, when the copy does not commit, clears the mark again unless keep says it must stay:
// a copy that never committed must not leave a database no relay may run on. keep's error is
// told beside the copy's (the mark stays then); hint ends the message when clearing fails.
func (j copyJob) runMarked(ctx context.Context, marked, other *Store, slot, movedTo string, keep func(ctx context.Context) (bool, error), hint string) (tables []SplitCount, err error) {
	if j.markedAt, err = marked.splitMark(ctx, slot, movedTo, other); err != nil {
		return nil, err
	}
	if tables, err = j.run(ctx); err == nil {
		return tables, nil
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if kept, kerr := keep(uctx); kerr != nil {
		return nil, fmt.Errorf("%w (and %w)", err, kerr)
	} else if kept {
		return nil, err
	}
	if uerr := marked.splitUnmark(uctx, slot); uerr != nil {
		return nil, fmt.Errorf("%w (and clearing the moved mark failed: %w%s)", err, uerr, hint)
	}
	return nil, err
}

// copyJob is one copy of walhook's data from one database's snapshot into another, in one
// transaction of the target: the split (old into new) and its way back (new into old).
type copyJob struct {
	from, to *pgxpool.Pool
	// tables are copied in this order.
	tables []string
	// truncate are emptied in the target first, in the same transaction; none: the target must
	// hold no walhook data.
	truncate []string
	// markedAt is when the source of the copy was marked (runMarked sets it): no dispatcher may
	// have registered there since.
	markedAt time.Time
	// finish runs in both transactions after the copy.
	finish       func(ctx context.Context, from, to *Store) error
	progress     func(SplitCount)
	beforeCommit func(ctx context.Context) error
}

// run copies the snapshot into the target and commits it.
func (j copyJob) run(ctx context.Context) ([]SplitCount, error) {
	fc, err := j.from.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the database copied from: %w", err)
	}
	defer fc.Release()
	ftx, err := fc.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin the snapshot: %w", err)
	}
	defer func() { _ = ftx.Rollback(context.WithoutCancel(ctx)) }()
	tc, err := j.to.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the database copied into: %w", err)
	}
	defer tc.Release()
	ttx, err := tc.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin the copy: %w", err)
	}
	defer func() { _ = ttx.Rollback(context.WithoutCancel(ctx)) }()
	fst, tst := storeOn(ftx), storeOn(ttx)
	if _, err := ttx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(splitLockKey)); err != nil {
		return nil, fmt.Errorf("lock the database copied into: %w", err)
	}
	if len(j.truncate) == 0 {
		if holding, err := tst.splitHolding(ctx); err != nil {
			return nil, err
		} else if len(holding) > 0 {
			return nil, &SplitRefusedError{Reasons: []string{fmt.Sprintf("walhook's database holds walhook data (in %s): another split filled it?", strings.Join(holding, ", "))}}
		}
	}
	fromTables, err := fst.splitTables(ctx)
	if err != nil {
		return nil, err
	}
	toTables, err := tst.splitTables(ctx)
	if err != nil {
		return nil, err
	}
	if len(j.truncate) > 0 {
		// Replacing the target's data is for a target walhook does not run on alone: still
		// marked as moved. A concurrent --back that committed first cleared the mark, and relays
		// may have written there since.
		if m, err := tst.Moved(ctx); err != nil {
			return nil, err
		} else if m == nil {
			return nil, &SplitRefusedError{Reasons: []string{"the database copied into is no longer marked as moved: another walhook split --back finished first"}}
		}
		var names []string
		for _, t := range j.truncate {
			if slices.Contains(toTables, t) {
				names = append(names, pgx.Identifier{"walhook", t}.Sanitize())
			}
		}
		if _, err := ttx.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
			return nil, fmt.Errorf("empty walhook's tables: %w", mapErr(err))
		}
	}
	if slices.Contains(fromTables, "event") {
		// The history's weeks first (migration 0029), in the target's transaction: rows of a
		// week the target has no partition for would land in its default partition, which
		// retention empties row by row. No relay runs on the target, so no lock to wait for.
		parts, err := fst.RetentionPartitionList(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the history's partitions: %w", err)
		}
		for _, p := range parts {
			if p.Table != "event" { // one week, three partitions: created together
				continue
			}
			if _, err := tst.q.RetentionPartitionCreate(ctx, p.Week); err != nil {
				return nil, fmt.Errorf("create the history's partitions of the week of %s: %w", p.Week.Format(time.DateOnly), mapErr(err))
			}
		}
	}
	var copied []SplitCount
	for _, t := range j.tables {
		if !slices.Contains(fromTables, t) {
			continue
		}
		if !slices.Contains(toTables, t) {
			return nil, fmt.Errorf("walhook.%s is missing in the database copied into: migrate it (walhook migrate up)", t)
		}
		n, err := copyTable(ctx, fst, tst, t, ftx.Conn().PgConn(), ttx.Conn().PgConn())
		if err != nil {
			return nil, err
		}
		copied = append(copied, SplitCount{Name: t, Rows: n})
		if j.progress != nil {
			j.progress(copied[len(copied)-1])
		}
	}
	if j.finish != nil {
		if err := j.finish(ctx, fst, tst); err != nil {
			return nil, err
		}
	}
	if j.beforeCommit != nil {
		if err := j.beforeCommit(ctx); err != nil {
			return nil, err
		}
	}
	// Once more, outside the snapshot: no dispatcher registered where the copy comes from since
	// it was marked (ReplicaRegister refuses there; this catches one that raced the mark).
	live := New(j.from, nil)
	if n, err := live.q.SplitReplicasSince(ctx, j.markedAt); err != nil {
		return nil, fmt.Errorf("re-check replicas: %w", mapErr(err))
	} else if n > 0 {
		return nil, &SplitRefusedError{Reasons: []string{fmt.Sprintf("%d dispatcher replica(s) started during the copy on the database copied from: stop them and run again", n)}}
	}
	if err := ttx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit the copy: %w", err)
	}
	return copied, nil
}

// storeOn is a store bound to a transaction begun outside Tx (the split's two, one of them
// REPEATABLE READ).
func storeOn(tx pgx.Tx) *Store {
	return New(tx, nil)
}

// splitColumns returns table's columns as COPY lists them, failing when the two databases
// disagree (different migrations).
func splitColumns(ctx context.Context, from, to *Store, table string) ([]string, []bool, error) {
	a, err := from.q.SplitTableColumns(ctx, table)
	if err != nil {
		return nil, nil, fmt.Errorf("columns of walhook.%s: %w", table, mapErr(err))
	}
	b, err := to.q.SplitTableColumns(ctx, table)
	if err != nil {
		return nil, nil, fmt.Errorf("columns of walhook.%s: %w", table, mapErr(err))
	}
	if len(a) != len(b) {
		return nil, nil, fmt.Errorf("walhook.%s has %d columns in one database and %d in the other: migrate both with this walhook", table, len(a), len(b))
	}
	cols := make([]string, len(a))
	ident := make([]bool, len(a))
	for i := range a {
		if a[i].ColumnName != b[i].ColumnName || a[i].ColumnType != b[i].ColumnType {
			return nil, nil, fmt.Errorf("walhook.%s: column %d is %s %s in one database and %s %s in the other: migrate both with this walhook",
				table, i+1, a[i].ColumnName, a[i].ColumnType, b[i].ColumnName, b[i].ColumnType)
		}
		cols[i] = a[i].ColumnName
		ident[i] = b[i].IsIdentity
	}
	return cols, ident, nil
}

// copyTable streams one table from the snapshot into the copy (COPY TO piped into COPY FROM, in
// text format: memory stays bounded whatever the table's size), then moves the identity sequence
// past the rows copied and past every id the old database ever handed out, so a public id never
// names two rows.
func copyTable(ctx context.Context, from, to *Store, table string, src, dst *pgconn.PgConn) (int64, error) {
	cols, ident, err := splitColumns(ctx, from, to, table)
	if err != nil {
		return 0, err
	}
	name := pgx.Identifier{"walhook", table}.Sanitize()
	sel := make([]string, len(cols))
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
		sel[i] = quoted[i]
		if expr, ok := splitSelect[table][c]; ok {
			sel[i] = expr
		}
	}
	pr, pw := io.Pipe()
	readErr := make(chan error, 1)
	go func() {
		_, err := src.CopyTo(ctx, pw, "COPY (SELECT "+strings.Join(sel, ", ")+" FROM "+name+") TO STDOUT")
		pw.CloseWithError(err)
		readErr <- err
	}()
	// COPY FROM takes the given values of GENERATED ALWAYS identity columns as they are (no
	// OVERRIDING SYSTEM VALUE needed): the ids are kept.
	tag, err := dst.CopyFrom(ctx, pr, "COPY "+name+" ("+strings.Join(quoted, ", ")+") FROM STDIN")
	pr.CloseWithError(errors.New("copy into the target stopped"))
	rerr := <-readErr
	if err != nil {
		// The reader's error, if any, only follows from this one (its pipe was closed).
		return 0, fmt.Errorf("copy walhook.%s: %w", table, mapErr(err))
	}
	if rerr != nil {
		return 0, fmt.Errorf("read walhook.%s: %w", table, rerr)
	}
	for i, c := range cols {
		if !ident[i] {
			continue
		}
		var last int64
		if err := from.db.QueryRow(ctx, "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence($1, $2)), 0)", "walhook."+table, c).Scan(&last); err != nil {
			return 0, fmt.Errorf("read the id sequence of walhook.%s: %w", table, mapErr(err))
		}
		if _, err := to.db.Exec(ctx, "SELECT setval(pg_get_serial_sequence($1, $2), m) FROM (SELECT greatest($3::bigint, max("+pgx.Identifier{c}.Sanitize()+")) AS m FROM "+name+") x WHERE m > 0",
			"walhook."+table, c, last); err != nil {
			return 0, fmt.Errorf("set the id sequence of walhook.%s: %w", table, mapErr(err))
		}
	}
	return tag.RowsAffected(), nil
}

// splitPosition records in s (walhook's database, in the copy's transaction) that capture
// continues from position of the source's slot ("": no slot), in the source epoch source's
// walhook data was captured in: the copied events carry its keys, so the epoch must not start
// over at 0 (whose keys an earlier history of the source may have used).
func (s *Store) splitPosition(ctx context.Context, source *Store, slot, position string) error {
	was, err := source.CapturePositionGet(ctx, slot)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("read the source epoch: %w", err)
	}
	if position == "" && was.Epoch == 0 {
		return nil
	}
	if position == "" {
		position = "0/0"
	}
	id, err := source.q.SplitDatabaseIdentity(ctx)
	if err != nil {
		return fmt.Errorf("identify the source database: %w", mapErr(err))
	}
	err = s.q.SplitPositionSet(ctx, dbsqlc.SplitPositionSetParams{Slot: slot, SystemID: id.SystemID, Lsn: position,
		Epoch: int32(was.Epoch), EpochReason: was.EpochReason, EpochStartedAt: was.EpochStarted})
	if err != nil {
		return fmt.Errorf("record the capture position: %w", mapErr(err))
	}
	return nil
}

// splitEmptied are the tables emptied in a database whose walhook data lives elsewhere now: the
// copied ones and the process state that went with them (the capture lease stays: it keeps
// capture away from a database walhook no longer runs on).
func splitEmptied() []string {
	return append(slices.Clone(splitCopied), "rate_bucket", "replica", "capture_position")
}

// SplitDropMoved deletes the walhook data a split left behind in the old database (TRUNCATE, one
// transaction): what stays is what capture needs there. It refuses unless old is marked moved and
// new holds walhook data and is not marked itself.
func SplitDropMoved(ctx context.Context, old, new *Store) (dropped []SplitCount, err error) {
	if err := splitIdentity(ctx, old, new); err != nil {
		return nil, err
	}
	moved, err := old.Moved(ctx)
	if err != nil {
		return nil, err
	}
	if moved == nil {
		return nil, &SplitRefusedError{Reasons: []string{"the source database is not marked as moved: walhook's data there is the only copy (run walhook split first)"}}
	}
	if err := movedHere(ctx, moved, new, "this --database-url"); err != nil {
		return nil, err
	}
	if m, err := new.Moved(ctx); err != nil {
		return nil, err
	} else if m != nil {
		return nil, &SplitRefusedError{Reasons: []string{"walhook's database (--database-url) is marked as moved too (walhook split --back ran, or did not finish): its data is not the current copy"}}
	}
	if holding, err := new.splitHolding(ctx); err != nil {
		return nil, err
	} else if len(holding) == 0 {
		return nil, &SplitRefusedError{Reasons: []string{"walhook's database (--database-url) holds no walhook data: the split did not finish there (walhook split --undo clears the mark)"}}
	}
	err = old.Tx(ctx, func(tx *Store) error {
		if _, err := tx.db.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(splitLockKey)); err != nil {
			return fmt.Errorf("lock: %w", mapErr(err))
		}
		// Again under the lock --undo and --back take here too: either of them that finished
		// meanwhile made the old database's copy the only one.
		if m, err := tx.Moved(ctx); err != nil {
			return err
		} else if m == nil {
			return &SplitRefusedError{Reasons: []string{"the source database is not marked as moved any more (walhook split --undo or --back ran meanwhile): its walhook data is the only copy"}}
		}
		if held, err := new.splitHoldsCopied(ctx); err != nil {
			return err
		} else if !held {
			return &SplitRefusedError{Reasons: []string{"walhook's database (--database-url) holds no walhook data any more (walhook split --undo ran meanwhile?)"}}
		}
		tables, err := tx.splitTables(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, t := range splitEmptied() {
			if !slices.Contains(tables, t) {
				continue
			}
			var n int64
			if err := tx.db.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{"walhook", t}.Sanitize()).Scan(&n); err != nil {
				return fmt.Errorf("count walhook.%s: %w", t, mapErr(err))
			}
			dropped = append(dropped, SplitCount{Name: t, Rows: n})
			names = append(names, pgx.Identifier{"walhook", t}.Sanitize())
		}
		if _, err := tx.db.Exec(ctx, "TRUNCATE "+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("empty walhook's tables: %w", mapErr(err))
		}
		return nil
	})
	return dropped, err
}

// SplitUndo takes back a split before walhook ran on the two databases: it empties walhook's
// tables in new and clears old's mark, so old is walhook's own again, as before the split. It
// refuses when a walhook process ran on new since (its leases and replicas leave rows): what it
// delivered would be delivered again from old; SplitBack copies new's data back instead.
func SplitUndo(ctx context.Context, old, new *Store, slot string) error {
	slot = orDefault(slot, "walhook")
	if err := splitIdentity(ctx, old, new); err != nil {
		return err
	}
	moved, err := old.Moved(ctx)
	if err != nil {
		return err
	}
	if moved == nil {
		return &SplitRefusedError{Reasons: []string{"the source database is not marked as moved: there is no split to undo"}}
	}
	if err := movedHere(ctx, moved, new, "this --database-url"); err != nil {
		return err
	}
	var ran bool
	if err := new.db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM walhook.replica) OR EXISTS (SELECT 1 FROM walhook.lease)").Scan(&ran); err != nil {
		return fmt.Errorf("look into walhook's database: %w", mapErr(err))
	}
	if ran {
		return &SplitRefusedError{Reasons: []string{"walhook ran on walhook's database (--database-url) since the split (it holds leases or replicas): undoing would deliver again what it delivered; stop it and use walhook split --back, which copies its data back"}}
	}
	if sessions, err := new.q.SplitWalhookSessions(ctx); err != nil {
		return fmt.Errorf("read sessions: %w", mapErr(err))
	} else if len(sessions) > 0 {
		return &SplitRefusedError{Reasons: []string{fmt.Sprintf("%d walhook session(s) are open on walhook's database: stop every walhook process", len(sessions))}}
	}
	// One transaction of old, under its split lock, spans the whole undo: --drop-moved and --back
	// (which take the same lock there) run before or after it, never in between, and what was
	// checked above is checked again under it.
	return old.Tx(ctx, func(otx *Store) error {
		if _, err := otx.db.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(splitLockKey)); err != nil {
			return fmt.Errorf("lock the source database: %w", mapErr(err))
		}
		if m, err := otx.Moved(ctx); err != nil {
			return err
		} else if m == nil {
			return &SplitRefusedError{Reasons: []string{"the source database is not marked as moved any more (walhook split --back or --undo ran meanwhile)"}}
		}
		// After --drop-moved the old database's copy is gone and the new one holds the only
		// copy: emptying it would lose walhook's data.
		oldData, err := otx.splitHoldsCopied(ctx)
		if err != nil {
			return err
		}
		newData, err := new.splitHoldsCopied(ctx)
		if err != nil {
			return err
		}
		if newData && !oldData {
			return &SplitRefusedError{Reasons: []string{"the source database's copy of walhook's data was deleted (walhook split --drop-moved): walhook's database (--database-url) holds the only copy, so there is nothing to undo to; run walhook on the two databases, or walhook split --back"}}
		}
		err = new.Tx(ctx, func(tx *Store) error {
			if _, err := tx.db.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(splitLockKey)); err != nil {
				return fmt.Errorf("lock: %w", mapErr(err))
			}
			tables, err := tx.splitTables(ctx)
			if err != nil {
				return err
			}
			var names []string
			for _, t := range splitEmptied() {
				if slices.Contains(tables, t) {
					names = append(names, pgx.Identifier{"walhook", t}.Sanitize())
				}
			}
			_, err = tx.db.Exec(ctx, "TRUNCATE "+strings.Join(names, ", "))
			return mapErr(err)
		})
		if err != nil {
			return fmt.Errorf("empty walhook's database: %w", err)
		}
		// A crash from here to the commit leaves old marked with its data and new empty: the
		// state a split that died after its mark leaves (run the split again, or --undo).
		if err := otx.q.CaptureSettingMovedClear(ctx); err != nil {
			return fmt.Errorf("clear the moved mark: %w", mapErr(err))
		}
		return otx.LeaseRelease(ctx, captureLease(slot), splitLease)
	})
}

// splitHoldsCopied reports whether any table the split copies holds a row.
func (s *Store) splitHoldsCopied(ctx context.Context) (bool, error) {
	holding, err := s.splitHolding(ctx)
	if err != nil {
		return false, err
	}
	for _, t := range holding {
		if slices.Contains(splitCopied, t) {
			return true, nil
		}
	}
	return false, nil
}

// SplitBack goes back to one database after walhook ran on two: it marks new as moved (nothing
// may run on it from then on), replaces old's walhook data by a snapshot of new's in one
// transaction of old (with the capture position), and clears old's mark. A failure before old
// commits clears new's mark again.
func SplitBack(ctx context.Context, old, new *Store, slot, movedTo string, progress func(SplitCount)) (res SplitResult, err error) {
	start := time.Now()
	slot = orDefault(slot, "walhook")
	if err := splitIdentity(ctx, old, new); err != nil {
		return res, err
	}
	if old.Pool() == nil || new.Pool() == nil {
		return res, errors.New("split back: both stores must be over a pool")
	}
	moved, err := old.Moved(ctx)
	if err != nil {
		return res, err
	}
	if moved == nil {
		return res, &SplitRefusedError{Reasons: []string{"the source database is not marked as moved: walhook already runs on it alone"}}
	}
	if err := movedHere(ctx, moved, new, "this --database-url"); err != nil {
		return res, err
	}
	if holding, err := new.splitHolding(ctx); err != nil {
		return res, err
	} else if len(holding) == 0 {
		return res, &SplitRefusedError{Reasons: []string{"walhook's database (--database-url) holds no walhook data: the split did not finish (walhook split --undo clears the mark)"}}
	}
	var why []string
	if st, err := old.CaptureSlotStatus(ctx, slot); err == nil && st.Active {
		why = append(why, fmt.Sprintf("replication slot %s is being read (pid %d): stop every walhook relay", slot, derefInt32(st.ActivePID)))
	}
	if sessions, err := old.q.SplitWalhookSessions(ctx); err != nil {
		return res, fmt.Errorf("read sessions: %w", mapErr(err))
	} else if len(sessions) > 0 {
		why = append(why, fmt.Sprintf("%d walhook session(s) are open on the source database: stop every walhook process", len(sessions)))
	}
	if len(why) > 0 {
		return res, &SplitRefusedError{Reasons: why}
	}
	job := copyJob{from: new.Pool(), to: old.Pool(), tables: append(slices.Clone(splitCopied), "capture_position"),
		truncate: splitEmptied(), progress: progress}
	job.finish = func(ctx context.Context, _, to *Store) error {
		if err := to.q.CaptureSettingMovedClear(ctx); err != nil {
			return fmt.Errorf("clear the moved mark: %w", mapErr(err))
		}
		return to.LeaseRelease(ctx, captureLease(slot), splitLease)
	}
	// A concurrent --back that committed first cleared old's mark: walhook runs on old now, and
	// new must stay marked.
	keep := func(ctx context.Context) (bool, error) {
		m, err := old.Moved(ctx)
		if err != nil {
			return true, fmt.Errorf("walhook's database stays marked: the source database could not be read: %w", err)
		}
		return m == nil, nil
	}
	if res.Tables, err = job.runMarked(ctx, new, old, slot, movedTo, keep, ""); err != nil {
		return res, err
	}
	if p, err := old.CapturePositionGet(ctx, slot); err == nil {
		res.Position = lsnText(p.LSN)
	}
	res.Took = time.Since(start)
	return res, nil
}
