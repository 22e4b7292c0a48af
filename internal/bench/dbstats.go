package bench

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// dbStats is a reading of one cluster's cumulative counters (or the difference of two readings:
// what a scenario cost the cluster). WAL comes from pg_current_wal_lsn() (the whole cluster: the
// application's rows, walhook's writes, vacuum, everything); times and per-statement WAL from
// pg_stat_statements of the bench database when it is loaded (statsOK).
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
	// procs is a reading's CPU time of the cluster's processes (and of this one, for the
	// application's cluster) by pid; cpu a difference's, by category (cpu.go), in µs.
	procs map[int]proc
	cpu   map[string]float64
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

// clusterStats reads one cluster's counters through a connection to its bench database and keeps
// the current measurement window's start. In ModeTwo the application's cluster and walhook's own
// are read apart: the figures never mix them.
type clusterStats struct {
	pool *pgxpool.Pool
	// name prefixes the cluster's CPU categories: "app" (the application's), "own" (walhook's).
	name string
	// ok: pg_stat_statements is readable.
	ok bool
	// from is the reading at the start of the window (markStats, openWindow).
	from dbStats
	// acc, when not nil, is the sum of closed windows (closeWindow): application-impact counts
	// only its runs with the relay.
	acc *dbStats
}

// enableStats creates pg_stat_statements in the database of pool. It fails when the server does
// not preload the library (an existing server given with --database-url); the run then reports WAL
// per delivery only.
func (e *env) enableStats(ctx context.Context, pool *pgxpool.Pool, name string) *clusterStats {
	c := &clusterStats{pool: pool, name: name}
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		fmt.Fprintf(e.cfg.Progress, "bench: no pg_stat_statements (%v): database time per delivery not reported\n", err)
		return c
	}
	var s dbStats
	if err := pool.QueryRow(ctx, statsQuery).Scan(&s.walhookMS, &s.walhookWAL, &s.appMS, &s.appWAL); err != nil {
		fmt.Fprintf(e.cfg.Progress, "bench: pg_stat_statements unreadable (%v): database time per delivery not reported\n", err)
		return c
	}
	c.ok = true
	return c
}

// read reads the counters now.
func (c *clusterStats) read(ctx context.Context) (dbStats, error) {
	var s dbStats
	if err := c.pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8`).Scan(&s.walLSN); err != nil {
		return s, fmt.Errorf("read wal position: %w", err)
	}
	var err error
	if s.procs, err = readProcs(ctx, c, c.name == "app"); err != nil {
		return s, err
	}
	if !c.ok {
		return s, nil
	}
	if err := c.pool.QueryRow(ctx, statsQuery).Scan(&s.walhookMS, &s.walhookWAL, &s.appMS, &s.appWAL); err != nil {
		return s, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	rows, err := c.pool.Query(ctx, byNameQuery)
	if err != nil {
		return s, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	defer rows.Close()
	s.byName = map[string]stmtCounters{}
	for rows.Next() {
		var name string
		var sc stmtCounters
		if err := rows.Scan(&name, &sc.calls, &sc.ms, &sc.wal); err != nil {
			return s, fmt.Errorf("read pg_stat_statements: %w", err)
		}
		s.byName[name] = sc
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	s.statsOK = true
	return s, nil
}

// since is the cost from the window's start to now, or the closed windows' sum when there is one.
func (c *clusterStats) since(ctx context.Context) (dbStats, error) {
	if c.acc != nil {
		return *c.acc, nil
	}
	end, err := c.read(ctx)
	if err != nil {
		return end, err
	}
	return end.minus(c.from), nil
}

// minus is the difference of two readings (s later than o).
func (s dbStats) minus(o dbStats) dbStats {
	d := dbStats{
		walLSN: s.walLSN - o.walLSN, walhookMS: s.walhookMS - o.walhookMS, walhookWAL: s.walhookWAL - o.walhookWAL,
		appMS: s.appMS - o.appMS, appWAL: s.appWAL - o.appWAL, statsOK: s.statsOK && o.statsOK,
		cpu: cpuSince(s.procs, o.procs),
	}
	if !d.statsOK {
		return d
	}
	d.byName = map[string]stmtCounters{}
	for name, c := range s.byName {
		d.byName[name] = stmtCounters{calls: c.calls - o.byName[name].calls, ms: c.ms - o.byName[name].ms, wal: c.wal - o.byName[name].wal}
	}
	return d
}

// plus is the sum of two differences.
func (s dbStats) plus(o dbStats) dbStats {
	d := dbStats{
		walLSN: s.walLSN + o.walLSN, walhookMS: s.walhookMS + o.walhookMS, walhookWAL: s.walhookWAL + o.walhookWAL,
		appMS: s.appMS + o.appMS, appWAL: s.appWAL + o.appWAL, statsOK: s.statsOK && o.statsOK,
		byName: map[string]stmtCounters{}, cpu: map[string]float64{},
	}
	for _, m := range []map[string]float64{s.cpu, o.cpu} {
		for k, v := range m {
			d.cpu[k] += v
		}
	}
	for _, m := range []map[string]stmtCounters{s.byName, o.byName} {
		for name, c := range m {
			t := d.byName[name]
			d.byName[name] = stmtCounters{calls: t.calls + c.calls, ms: t.ms + c.ms, wal: t.wal + c.wal}
		}
	}
	return d
}

// clusters are the current deployment's cluster readers: the application's, then walhook's own
// in ModeTwo.
func (e *env) clusters() []*clusterStats {
	if e.ownStats == nil {
		return []*clusterStats{e.srcStats}
	}
	return []*clusterStats{e.srcStats, e.ownStats}
}

// markStats restarts the current scenario's measurement window (a scenario with a phase that
// delivers nothing, as scale's seeding, starts it after that phase).
func (e *env) markStats(ctx context.Context) error {
	for _, c := range e.clusters() {
		s, err := c.read(ctx)
		if err != nil {
			return err
		}
		c.from, c.acc = s, nil
	}
	return nil
}

// openWindow starts one of several windows whose sum is the scenario's cost (closeWindow adds
// it); markStats forgets the sum.
func (e *env) openWindow(ctx context.Context) error {
	for _, c := range e.clusters() {
		s, err := c.read(ctx)
		if err != nil {
			return err
		}
		c.from = s
	}
	return nil
}

// closeWindow adds the cost since openWindow to the scenario's.
func (e *env) closeWindow(ctx context.Context) error {
	for _, c := range e.clusters() {
		s, err := c.read(ctx)
		if err != nil {
			return err
		}
		d := s.minus(c.from)
		if c.acc != nil {
			d = c.acc.plus(d)
		}
		c.acc = &d
	}
	return nil
}

// addDBFigures puts the database's cost per delivery since the mark (or in the closed windows)
// into res: WAL (all of the application's cluster's), and with pg_stat_statements the execution
// time of walhook's and the application's statements there and walhook's share of the WAL; in
// ModeTwo the same of walhook's own cluster in res.WalhookCluster. deliveries is res.Expected
// (none: nothing to add).
func (e *env) addDBFigures(ctx context.Context, res *Result) error {
	n := float64(res.Expected)
	if n <= 0 || res.WALPerDelivery != nil { // nothing delivered, or the scenario added them itself
		return nil
	}
	d, err := e.srcStats.since(ctx)
	if err != nil {
		return err
	}
	res.WALPerDelivery = ptr(d.walLSN / n)
	addCPU(res, e.srcStats.name, d.cpu, n)
	if d.statsOK {
		// total_exec_time is in ms; per delivery in µs. It is the statements' execution: a
		// commit's WAL flush after an implicit transaction, logical decoding in the walsender
		// and autovacuum are not in it.
		res.DBMicrosPerDelivery = ptr((d.walhookMS + d.appMS) * 1000 / n)
		res.WalhookDBMicrosPerDelivery = ptr(d.walhookMS * 1000 / n)
		res.WalhookWALPerDelivery = ptr(d.walhookWAL / n)
		res.AppWALPerDelivery = ptr(d.appWAL / n)
		res.Statements = statementCosts(d, n)
	}
	if e.ownStats == nil {
		return nil
	}
	o, err := e.ownStats.since(ctx)
	if err != nil {
		return err
	}
	res.WalhookCluster = &ClusterCost{WALPerDelivery: o.walLSN / n}
	addCPU(res, e.ownStats.name, o.cpu, n)
	if o.statsOK {
		res.WalhookCluster.WalhookDBMicrosPerDelivery = ptr(o.walhookMS * 1000 / n)
		res.WalhookCluster.WalhookWALPerDelivery = ptr(o.walhookWAL / n)
		res.WalhookCluster.Statements = statementCosts(o, n)
	}
	return nil
}

// addCPU adds a cluster's CPU time by category, per delivery, to res.CPU ("<cluster>:<category>").
func addCPU(res *Result, cluster string, cpu map[string]float64, n float64) {
	for cat, us := range cpu {
		if res.CPU == nil {
			res.CPU = map[string]float64{}
		}
		res.CPU[cpuKey(cluster, cat)] = us / n
	}
}

// statementCosts is walhook's statements of a difference by name, per delivery (nil: none ran).
func statementCosts(d dbStats, n float64) map[string]StatementCost {
	var out map[string]StatementCost
	for name, c := range d.byName {
		if c.calls <= 0 {
			continue
		}
		if out == nil {
			out = map[string]StatementCost{}
		}
		out[name] = StatementCost{Calls: c.calls, MicrosPerDlv: c.ms * 1000 / n, WALBytesPerDlv: c.wal / n}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
