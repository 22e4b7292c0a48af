package bench

import (
	"context"
	"fmt"
)

// dbStats is a reading of the database's cumulative counters; the difference of two readings is
// what a scenario cost the database. WAL comes from pg_current_wal_lsn() (the whole cluster: the
// application's rows, walhook's writes, vacuum, everything); times and per-statement WAL from
// pg_stat_statements when it is loaded (statsOK).
type dbStats struct {
	walLSN float64 // bytes since 0/0
	// walhook's statements: every runtime statement of walhook is a sqlc query, whose text starts
	// with "-- name:"; app's: the bench's load statements (app.go). The harness's own statements
	// (setup, the history check) are in neither.
	walhookMS, walhookWAL float64
	appMS, appWAL         float64
	statsOK               bool
	// byName is walhook's statements by sqlc query name.
	byName map[string]stmtCounters
}

type stmtCounters struct{ calls, ms, wal float64 }

// StatementCost is one of walhook's queries (by sqlc name) in a scenario: calls, and execution
// time and WAL per delivery, so a change to one statement can be measured on its own.
type StatementCost struct {
	Calls          float64 `json:"calls"`
	MicrosPerDlv   float64 `json:"us_per_delivery"`
	WALBytesPerDlv float64 `json:"wal_bytes_per_delivery"`
}

// byNameQuery is walhook's statements of the bench database by sqlc name (the "-- name: X :kind"
// first line).
const byNameQuery = `
SELECT split_part(split_part(query, E'\n', 1), ' ', 3), sum(calls)::float8, sum(total_exec_time)::float8, sum(wal_bytes)::float8
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query LIKE '-- name:%'
GROUP BY 1`

// statsQuery sums pg_stat_statements of the bench database into walhook's and the application's.
const statsQuery = `
SELECT coalesce(sum(total_exec_time) FILTER (WHERE w), 0)::float8,
       coalesce(sum(wal_bytes) FILTER (WHERE w), 0)::float8,
       coalesce(sum(total_exec_time) FILTER (WHERE a), 0)::float8,
       coalesce(sum(wal_bytes) FILTER (WHERE a), 0)::float8
FROM (SELECT total_exec_time, wal_bytes,
             query LIKE '-- name:%' AS w,
             (query LIKE 'INSERT INTO bench_item %' OR query LIKE 'SELECT count(walhook.emit(%'
              OR query LIKE 'INSERT INTO walhook.outbox %') AS a
      FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())) s`

// enableStats creates pg_stat_statements in the bench database. It fails when the server does not
// preload the library (an existing server given with --database-url); the run then reports WAL
// per delivery only.
func (e *env) enableStats(ctx context.Context) {
	if _, err := e.app.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		fmt.Fprintf(e.cfg.Progress, "bench: no pg_stat_statements (%v): database time per delivery not reported\n", err)
		return
	}
	var s dbStats
	if err := e.app.QueryRow(ctx, statsQuery).Scan(&s.walhookMS, &s.walhookWAL, &s.appMS, &s.appWAL); err != nil {
		fmt.Fprintf(e.cfg.Progress, "bench: pg_stat_statements unreadable (%v): database time per delivery not reported\n", err)
		return
	}
	e.statsOK = true
}

// readStats reads the counters now.
func (e *env) readStats(ctx context.Context) (dbStats, error) {
	var s dbStats
	if err := e.app.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8`).Scan(&s.walLSN); err != nil {
		return s, fmt.Errorf("read wal position: %w", err)
	}
	if !e.statsOK {
		return s, nil
	}
	if err := e.app.QueryRow(ctx, statsQuery).Scan(&s.walhookMS, &s.walhookWAL, &s.appMS, &s.appWAL); err != nil {
		return s, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	rows, err := e.app.Query(ctx, byNameQuery)
	if err != nil {
		return s, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	defer rows.Close()
	s.byName = map[string]stmtCounters{}
	for rows.Next() {
		var name string
		var c stmtCounters
		if err := rows.Scan(&name, &c.calls, &c.ms, &c.wal); err != nil {
			return s, fmt.Errorf("read pg_stat_statements: %w", err)
		}
		s.byName[name] = c
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	s.statsOK = true
	return s, nil
}

// markStats restarts the current scenario's measurement window (a scenario with a phase that
// delivers nothing, as application-impact's run without the relay, starts it after that phase).
func (e *env) markStats(ctx context.Context) error {
	s, err := e.readStats(ctx)
	if err != nil {
		return err
	}
	e.statsFrom = s
	return nil
}

// addDBFigures puts the database's cost per delivery since the mark into res: WAL (all of the
// cluster's), and with pg_stat_statements the execution time of walhook's and the application's
// statements and walhook's share of the WAL. deliveries is res.Expected (none: nothing to add).
func (e *env) addDBFigures(ctx context.Context, res *Result) error {
	n := float64(res.Expected)
	if n <= 0 || res.WALPerDelivery != nil { // nothing delivered, or the scenario added them itself
		return nil
	}
	end, err := e.readStats(ctx)
	if err != nil {
		return err
	}
	from := e.statsFrom
	wal := (end.walLSN - from.walLSN) / n
	res.WALPerDelivery = &wal
	if !end.statsOK || !from.statsOK {
		return nil
	}
	// total_exec_time is in ms; per delivery in µs. It is the statements' execution: a commit's
	// WAL flush after an implicit transaction, logical decoding in the walsender and autovacuum
	// are not in it.
	db := (end.walhookMS - from.walhookMS + end.appMS - from.appMS) * 1000 / n
	wh := (end.walhookMS - from.walhookMS) * 1000 / n
	whWAL := (end.walhookWAL - from.walhookWAL) / n
	res.DBMicrosPerDelivery, res.WalhookDBMicrosPerDelivery, res.WalhookWALPerDelivery = &db, &wh, &whWAL
	res.AppWALPerDelivery = ptr((end.appWAL - from.appWAL) / n)
	for name, c := range end.byName {
		d := stmtCounters{calls: c.calls - from.byName[name].calls, ms: c.ms - from.byName[name].ms, wal: c.wal - from.byName[name].wal}
		if d.calls <= 0 {
			continue
		}
		if res.Statements == nil {
			res.Statements = map[string]StatementCost{}
		}
		res.Statements[name] = StatementCost{Calls: d.calls, MicrosPerDlv: d.ms * 1000 / n, WALBytesPerDlv: d.wal / n}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
