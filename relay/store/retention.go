package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// ErrLockTimeout: a table lock was not granted within the lock_timeout the statement ran under
// (SQLSTATE 55P03), or waiting for it would have deadlocked (40P01). Nothing was changed; the
// caller tries again later rather than queue other sessions behind itself.
var ErrLockTimeout = errors.New("table lock not granted within lock_timeout")

// PartitionLockTimeout bounds the wait for the parents' ACCESS EXCLUSIVE locks when a week's
// history partitions are created or dropped. While the DDL waits, every claim, capture and
// history read queues behind it; past this wait it gives up and the next run tries again.
const PartitionLockTimeout = 5 * time.Second

// The history's partitioned tables (migration 0029). Their locks are taken by lockHistory, not
// in this order: the relay's statements take them in different orders.
var historyTables = [...]string{"event", "delivery", "attempt"}

// HistoryPartition is one weekly partition of the history.
type HistoryPartition struct {
	// Table is the partitioned table: event, delivery or attempt.
	Table string
	// Name is the partition's, <table>_pYYYYMMDD.
	Name string
	// Week is its first instant, a Monday 00:00 UTC; it holds a week from there.
	Week time.Time
}

// WeekDropped is what RetentionWeekDrop did.
type WeekDropped struct {
	// Pending is the pending deliveries moved into the default partition (with their events and
	// attempts, PendingEvents and PendingAttempts).
	Pending, PendingEvents, PendingAttempts int64
	// Rows estimates the rows dropped by table (event, delivery, attempt), from the planner's
	// statistics, less the rows moved: the week is not counted under its lock.
	Rows map[string]int64
	// Partitions is the number of partitions dropped (3 for a whole week).
	Partitions int
}

// HistoryWeek is the week t belongs to: its Monday 00:00 UTC (walhook.history_week).
func HistoryWeek(t time.Time) time.Time {
	u := t.UTC()
	y, m, d := u.Date()
	back := (int(u.Weekday()) + 6) % 7 // days since Monday
	return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
}

// lockTimeout maps a lock that was not granted to ErrLockTimeout, and any other error as mapErr.
func lockTimeout(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01") {
		return fmt.Errorf("%w: %s", ErrLockTimeout, pgErr.Message)
	}
	return mapErr(err)
}

// RetentionPartitionsCreate creates the history partitions of the weeks of from, from + 7 days,
// … (weeks of them) that are missing, each week in its own short transaction under
// PartitionLockTimeout, and returns how many partitions it created (three a week). It is
// idempotent, and takes no lock for a week that has its partitions. A week whose locks were not
// granted stops it with ErrLockTimeout (the weeks before it are created); a week that fails
// otherwise does not stop the weeks after it, and its error is returned with theirs. Rows of a
// missing week go to the default partitions meanwhile.
//
// Rows of a week already in the default partitions (dated ahead) are moved into its new
// partitions while the three tables' locks are held, stopping every claim and capture as long as
// the move takes. A week with more than moveLimit of them (events or deliveries; 0: no limit) is
// not created but returned in skipped: its rows, and the week's new ones, stay in the default
// partitions, where retention deletes them row by row.
func (s *Store) RetentionPartitionsCreate(ctx context.Context, from time.Time, weeks int, moveLimit int64) (created int, skipped []time.Time, err error) {
	parts, err := s.RetentionPartitionList(ctx)
	if err != nil {
		return 0, nil, err
	}
	have := make(map[time.Time]int, len(parts))
	for _, p := range parts {
		have[p.Week]++
	}
	var failed []error
	for i := range weeks {
		week := HistoryWeek(from).AddDate(0, 0, 7*i)
		if have[week] == len(historyTables) {
			continue
		}
		if moveLimit > 0 {
			n, err := s.q.RetentionDefaultWeekRows(ctx, dbsqlc.RetentionDefaultWeekRowsParams{Lo: week, Hi: week.AddDate(0, 0, 7)})
			if err != nil {
				return created, skipped, errors.Join(append(failed, fmt.Errorf("count the default partitions' rows of the week of %s: %w", week.Format(time.DateOnly), mapErr(err)))...)
			}
			if n > moveLimit {
				skipped = append(skipped, week)
				continue
			}
		}
		var n int32
		err := s.Tx(ctx, func(tx *Store) error {
			err := tx.lockHistory(ctx, true)
			if err != nil {
				return err
			}
			n, err = tx.q.RetentionPartitionCreate(ctx, week)
			return err
		})
		if err != nil {
			err = fmt.Errorf("create history partitions of the week of %s: %w", week.Format(time.DateOnly), lockTimeout(err))
			if errors.Is(err, ErrLockTimeout) {
				return created, skipped, errors.Join(append(failed, err)...)
			}
			failed = append(failed, err)
			continue
		}
		created += int(n)
	}
	return created, skipped, errors.Join(failed...)
}

// lockHistory takes, in the transaction s is bound to, ACCESS EXCLUSIVE on event, delivery and
// attempt (and, withWebhook, SHARE ROW EXCLUSIVE on webhook) within PartitionLockTimeout, and
// never waits for one while holding another: it waits for one, takes the others NOWAIT, and when
// one of those is busy releases all (a savepoint rolled back) and starts again waiting for that
// one. The relay's statements take these tables in different orders, so DDL that waited for a
// second table while holding the first would deadlock with them — and the deadlock detector
// would as likely cancel a claim or a capture commit as this. ErrLockTimeout past the budget.
func (s *Store) lockHistory(ctx context.Context, withWebhook bool) error {
	type lock struct{ wait, nowait func(context.Context) error }
	q := func(tx *Store) []lock {
		l := []lock{
			{tx.q.RetentionLockEvent, tx.q.RetentionLockEventNowait},
			{tx.q.RetentionLockDelivery, tx.q.RetentionLockDeliveryNowait},
			{tx.q.RetentionLockAttempt, tx.q.RetentionLockAttemptNowait},
		}
		if withWebhook {
			l = append(l, lock{tx.q.RetentionLockWebhook, tx.q.RetentionLockWebhookNowait})
		}
		return l
	}
	deadline := time.Now().Add(PartitionLockTimeout)
	first := 0
	for {
		left := time.Until(deadline)
		if left < time.Millisecond {
			return fmt.Errorf("%w: the history's tables stayed busy for %v", ErrLockTimeout, PartitionLockTimeout)
		}
		busy := -1
		err := s.Tx(ctx, func(sp *Store) error { // a savepoint: rolling it back releases its locks
			if err := sp.q.RetentionLockTimeout(ctx, fmt.Sprintf("%dms", left.Milliseconds())); err != nil {
				return err
			}
			locks := q(sp)
			if err := locks[first].wait(ctx); err != nil {
				return err
			}
			for i, l := range locks {
				if i == first {
					continue
				}
				if err := l.nowait(ctx); err != nil {
					busy = i
					return err
				}
			}
			return nil
		})
		if err == nil {
			return s.q.RetentionLockTimeout(ctx, lockTimeoutSetting)
		}
		var pgErr *pgconn.PgError
		if busy < 0 || !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			return err
		}
		first = busy
	}
}

// lockTimeoutSetting is PartitionLockTimeout as PostgreSQL's lock_timeout reads it.
var lockTimeoutSetting = fmt.Sprintf("%dms", PartitionLockTimeout.Milliseconds())

// RetentionPartitionList lists the history's weekly partitions, by week then table.
func (s *Store) RetentionPartitionList(ctx context.Context) ([]HistoryPartition, error) {
	rows, err := s.q.RetentionPartitionList(ctx)
	return rowsAs(rows, err, func(r dbsqlc.RetentionPartitionListRow) HistoryPartition {
		return HistoryPartition{Table: r.Parent, Name: r.Partition, Week: r.Week.UTC()}
	})
}

// RetentionWeekDrop removes the history of the week of week (its Monday 00:00 UTC) as tables,
// not rows, in one transaction under PartitionLockTimeout: it copies aside the week's pending
// deliveries — work still to do: a retry schedule running, a resync, a turned-off webhook's
// queue — with the events and attempts of every delivery of the week that stays, drops the
// week's event, delivery and attempt partitions (those there are), and inserts the copies back
// through the parents. With the week's range gone they land in the default partitions, ids and
// values unchanged, so a dispatcher holding one of them records it by (id, event_at) as before;
// the default partitions are emptied row by row once the rows are finished and old.
//
// The partitions are dropped while attached rather than detached first: the same end, but a
// detached delivery partition keeps its foreign key to webhook as a constraint of its own,
// whose triggers on webhook the detach creates (SHARE ROW EXCLUSIVE on webhook) and the drop
// removes again (ACCESS EXCLUSIVE on webhook, which capture and the admin API read).
//
// The drop waits for no long query (lockHistory): locks not granted within PartitionLockTimeout
// give up with ErrLockTimeout and change nothing; the next run tries again. A week without
// partitions is nothing to do. Rows dropped are estimated from the planner's statistics (the
// week is not counted under its lock).
//
// Partition names are identifiers, which sqlc does not model: with the migrator and the
// publication's DDL, the documented exception to "every runtime query is a named sqlc query".
// The names are made here from the week, as walhook.history_partition_create makes them, and
// quoted with pgx.Identifier.
func (s *Store) RetentionWeekDrop(ctx context.Context, week time.Time) (WeekDropped, error) {
	week = HistoryWeek(week)
	suffix := "_p" + week.Format("20060102")
	var res WeekDropped
	err := s.Tx(ctx, func(tx *Store) error {
		res = WeekDropped{Rows: make(map[string]int64, len(historyTables))}
		if err := tx.q.RetentionLockTimeout(ctx, lockTimeoutSetting); err != nil {
			return err
		}
		parts, err := tx.q.RetentionPartitionList(ctx)
		if err != nil {
			return err
		}
		have := make(map[string]bool, len(historyTables))
		var names []string
		for _, p := range parts {
			if p.Partition == p.Parent+suffix {
				have[p.Parent] = true
				names = append(names, p.Partition)
			}
		}
		if len(names) == 0 {
			return nil
		}
		est, err := tx.q.RetentionPartitionRows(ctx, names)
		if err != nil {
			return err
		}
		if err := tx.lockHistory(ctx, false); err != nil {
			return err
		}
		part := func(table string) string { return pgx.Identifier{"walhook", table + suffix}.Sanitize() }
		moving := func(table string) string { return pgx.Identifier{"pg_temp", "retention_moving_" + table}.Sanitize() }
		// The deliveries that stay: the pending ones of the partition, and any of the week
		// already in the default partition (a week whose delivery partition was missing).
		lo, hi := week, week.AddDate(0, 0, 7)
		stay := "SELECT d.id, d.event_id, d.event_at FROM walhook.delivery_pdefault d WHERE d.event_at >= $1 AND d.event_at < $2"
		aside := func(table, query string, n *int64) error {
			tag, err := tx.db.Exec(ctx, "CREATE TEMPORARY TABLE "+moving(table)+" ON COMMIT DROP AS "+query, lo, hi)
			if err != nil {
				return fmt.Errorf("copy aside what stays of %s%s: %w", table, suffix, err)
			}
			*n = tag.RowsAffected()
			return nil
		}
		if have["delivery"] {
			if err := aside("delivery", "SELECT * FROM "+part("delivery")+" WHERE state = 'pending' AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL", &res.Pending); err != nil {
				return err
			}
			stay += " UNION ALL SELECT m.id, m.event_id, m.event_at FROM " + moving("delivery") + " m"
		}
		// The events and attempts to keep are found from the few deliveries that stay, by the
		// partitions' primary key and attempt_delivery_idx.
		if have["event"] {
			if err := aside("event", "SELECT e.* FROM "+part("event")+" e WHERE (e.id, e.occurred_at) IN (SELECT s.event_id, s.event_at FROM ("+stay+") s)", &res.PendingEvents); err != nil {
				return err
			}
		}
		if have["attempt"] {
			if err := aside("attempt", "SELECT a.* FROM "+part("attempt")+" a WHERE (a.delivery_id, a.event_at) IN (SELECT s.id, s.event_at FROM ("+stay+") s)", &res.PendingAttempts); err != nil {
				return err
			}
		}
		drop := make([]string, 0, len(names))
		for _, t := range historyTables {
			if have[t] {
				drop = append(drop, part(t))
			}
		}
		if _, err := tx.db.Exec(ctx, "DROP TABLE "+strings.Join(drop, ", ")); err != nil {
			return fmt.Errorf("drop the week's partitions: %w", err)
		}
		for _, t := range historyTables {
			if !have[t] {
				continue
			}
			if _, err := tx.db.Exec(ctx, "INSERT INTO "+pgx.Identifier{"walhook", t}.Sanitize()+" OVERRIDING SYSTEM VALUE SELECT * FROM "+moving(t)); err != nil {
				return fmt.Errorf("move back what stays of %s%s: %w", t, suffix, err)
			}
		}
		moved := map[string]int64{"event": res.PendingEvents, "delivery": res.Pending, "attempt": res.PendingAttempts}
		for _, e := range est {
			t := strings.TrimSuffix(e.Name, suffix)
			res.Rows[t] = max(e.Estimate-moved[t], 0)
		}
		res.Partitions = len(drop)
		return nil
	})
	if err != nil {
		return WeekDropped{}, fmt.Errorf("drop the history of the week of %s: %w", week.Format(time.DateOnly), lockTimeout(err))
	}
	return res, nil
}

// RetentionLock takes the retention advisory lock on a connection of its own, so that one replica
// at a time deletes old history. ok is false when another session holds it. When ok, release
// must be called: it unlocks and returns the connection (closing it if unlocking fails, which
// also drops the lock). The store must be over a pool.
func (s *Store) RetentionLock(ctx context.Context) (release func(), ok bool, err error) {
	pool := s.Pool()
	if pool == nil {
		return nil, false, errors.New("retention lock: the store is not over a pool")
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquire connection: %w", err)
	}
	q := dbsqlc.New(conn)
	locked, err := q.RetentionTryLock(ctx)
	if err != nil || !locked {
		conn.Release()
		return nil, false, mapErr(err)
	}
	release = func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if unlocked, err := q.RetentionUnlock(uctx); err != nil || !unlocked {
			// A closed session holds no advisory locks.
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}
	return release, true, nil
}

// RetentionDeleteDeliveries deletes up to batch finished deliveries of the default partition (and,
// by trigger, their attempts) created and last changed before cutoff, in one short statement. It returns how many
// deliveries it deleted.
func (s *Store) RetentionDeleteDeliveries(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	n, err := s.q.RetentionDeleteDeliveries(ctx, dbsqlc.RetentionDeleteDeliveriesParams{Cutoff: cutoff, BatchSize: int32(batch)})
	return n, mapErr(err)
}

// RetentionDeleteEvents deletes up to batch events of the default partition captured before
// cutoff that no delivery references, in one short statement. It returns how many it deleted.
func (s *Store) RetentionDeleteEvents(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	n, err := s.q.RetentionDeleteEvents(ctx, dbsqlc.RetentionDeleteEventsParams{Cutoff: cutoff, BatchSize: int32(batch)})
	return n, mapErr(err)
}

// RetentionWeekPending counts the pending deliveries of the week of week (its Monday 00:00 UTC):
// what RetentionWeekDrop would set aside and move into the default partitions while it holds the
// three tables' ACCESS EXCLUSIVE locks — every claim, capture and history read waits that long.
// It takes no such lock.
func (s *Store) RetentionWeekPending(ctx context.Context, week time.Time) (int64, error) {
	lo := HistoryWeek(week)
	n, err := s.q.RetentionWeekPending(ctx, dbsqlc.RetentionWeekPendingParams{Lo: lo, Hi: lo.AddDate(0, 0, 7)})
	return n, mapErr(err)
}

// WeekBatch is what one batch of a kept week's row-by-row expiry did.
type WeekBatch struct {
	// Deleted is the rows it deleted, Scanned the rows it looked at (fewer than the batch: the
	// week's end), LastID the id to start the next batch after.
	Deleted, Scanned, LastID int64
}

// RetentionDeleteWeekDeliveries deletes, in one short statement, the finished deliveries (and, by
// trigger, their attempts) among the next batch deliveries of the week of week by id after
// afterID: the row-by-row expiry of a week retention keeps rather than drops (too many pending
// deliveries to move under the tables' locks). A pass from afterID 0 reads each row once.
func (s *Store) RetentionDeleteWeekDeliveries(ctx context.Context, week time.Time, afterID int64, batch int) (WeekBatch, error) {
	lo := HistoryWeek(week)
	r, err := s.q.RetentionDeleteWeekDeliveries(ctx, dbsqlc.RetentionDeleteWeekDeliveriesParams{
		Lo: lo, Hi: lo.AddDate(0, 0, 7), AfterID: afterID, BatchSize: int32(batch)})
	return WeekBatch{Deleted: r.Deleted, Scanned: r.Scanned, LastID: r.LastID}, mapErr(err)
}

// RetentionDeleteWeekEvents deletes, in one short statement, the events no delivery references
// among the next batch events of the week of week by id after afterID (the kept week's, as
// RetentionDeleteWeekDeliveries).
func (s *Store) RetentionDeleteWeekEvents(ctx context.Context, week time.Time, afterID int64, batch int) (WeekBatch, error) {
	lo := HistoryWeek(week)
	r, err := s.q.RetentionDeleteWeekEvents(ctx, dbsqlc.RetentionDeleteWeekEventsParams{
		Lo: lo, Hi: lo.AddDate(0, 0, 7), AfterID: afterID, BatchSize: int32(batch)})
	return WeekBatch{Deleted: r.Deleted, Scanned: r.Scanned, LastID: r.LastID}, mapErr(err)
}
