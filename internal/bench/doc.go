// Package bench is walhook's benchmark harness (`walhook bench`, `make bench`). It measures what a
// user of a webhook relay cares about — throughput, commit-to-receipt latency, fan-out, isolation
// from a hanging endpoint, draining a backlog within bounded memory, and scale in configured
// webhooks, the cost to the application's own commit rate, a large transaction's first delivery,
// and one company's share of the relay while another's endpoints hang — against the real relay (relay.New + Run) and a real PostgreSQL.
//
// One run: start a private PostgreSQL cluster with pgcluster (or use a given URL; two in
// ModeTwo), create a fresh database, migrate it, create the application's table (bench_item, ~1 KiB rows) and the catalog
// (item.created from the table, item.emitted from the outbox / walhook.emit), start a loopback
// receiver (HTTP/1.1 keep-alive; it records each request's arrival time and webhook-id and counts
// each webhook-id once), then run the scenarios in order. Each scenario uses a company of its own,
// loads the database the way an application would (its own pgx connections doing INSERTs,
// walhook.emit calls and outbox inserts), waits until the receiver has every delivery, and checks
// that walhook's history (walhook.delivery, walhook.attempt) records each one as succeeded; a
// mismatch is a failure of the scenario.
//
// Latency is commit → receipt: the commit time is the envelope's occurred_at, which capture takes
// from the source transaction's commit timestamp in the replication stream (the database's clock,
// the same machine's as the receiver's).
//
// Every scenario also reports what it cost the database per delivery: the cluster's WAL
// (pg_current_wal_lsn() before and after), and, with pg_stat_statements (preloaded in the private
// cluster), the execution time and WAL of walhook's statements (sqlc queries, recognised by their
// "-- name:" comment) and of the application's load statements; and the CPU time of the
// cluster's processes by what they do (cpu.go) and of this process.
//
// # Deployments
//
// A run is in one or both of two modes (Config.Modes). ModeOne keeps walhook's tables in the
// application's database. ModeTwo (issue 17) starts a second private cluster for walhook's own
// database and runs capture with the application's database as its source (capture.Config.Source):
// the application's load, the slot, walhook.emit and the outbox are there; queue, history and
// configuration in walhook's. Each deployment is a deployment value (pools, stores, slot,
// relay); env embeds the current one, so a scenario is written once. Figures of the two clusters
// are read apart: Result's WAL, statement and "app:" CPU fields are the application's cluster's,
// WalhookCluster and "own:" CPU walhook's. One relay runs at a time.
//
// application-impact (impact.go) alternates runs without the relay, with a decoding-only reader
// (decodeonly.go) and with the relay, in rounds, and reports medians: one run pair on a shared
// machine is noise.
//
// The backlog scenario runs the relay in a child process (this executable again, with
// ChildEnv set) so its peak RSS (VmHWM) is the relay's alone.
//
// `walhook bench history` (RunHistory, history.go) is a separate run about history at scale
// (issue 17): it builds N deliveries of history with INSERT … SELECT generate_series (keys and
// indexes built afterwards) in the migrations' weekly partitions (migration 0029) and in the
// layout before them (0029 reverted; 0028's claim and row deletes, history_sql.go), and measures
// on each a retention run removing the first week (time, WAL, the VACUUM it leaves), claims and
// the history API.
package bench
