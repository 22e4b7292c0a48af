package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/relay/capture"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
)

// Config configures a run. The zero value of every field but Exe is a usable default.
type Config struct {
	// Quick runs every scenario small, about a minute in total.
	Quick bool
	// Only, when not empty, names the scenarios to run (the others are skipped).
	Only []string
	// DatabaseURL, when set, is a PostgreSQL (wal_level=logical) to use instead of a private
	// cluster; the run creates and drops a database of its own in it.
	DatabaseURL string
	// Dir holds the private cluster. Default: a temporary directory, removed at the end.
	Dir string
	// Exe is the executable started (with ChildEnv set) as the child relay of the backlog
	// scenario. Empty: the backlog scenario runs the relay in process and reports no RSS.
	Exe string
	// ExeArgs are the child's arguments (for walhook: "bench").
	ExeArgs []string
	// Log receives the relay's warnings and errors. Default: discarded.
	Log zerolog.Logger
	// Progress receives one line per scenario as it starts. Default: discarded.
	Progress io.Writer
}

// Result is one scenario's outcome.
type Result struct {
	Scenario string `json:"scenario"`
	// Figure is the headline number in Unit; Figures holds the others (rates in /s, latencies in ms).
	Figure   float64            `json:"figure"`
	Unit     string             `json:"unit"`
	Figures  map[string]float64 `json:"figures"`
	Target   string             `json:"target,omitempty"`
	Met      *bool              `json:"met,omitempty"`
	Expected int                `json:"expected_deliveries"`
	Received int                `json:"received_deliveries"`
	Recorded int                `json:"recorded_deliveries"`
	Seconds  float64            `json:"seconds"`
	// WALPerDelivery is the cluster's WAL (pg_current_wal_lsn() difference) over the scenario
	// divided by its deliveries, in bytes: the application's rows and everything walhook writes.
	WALPerDelivery *float64 `json:"wal_bytes_per_delivery,omitempty"`
	// WalhookWALPerDelivery and AppWALPerDelivery split it by statement (pg_stat_statements
	// wal_bytes): walhook's queries, the application's load.
	WalhookWALPerDelivery *float64 `json:"walhook_wal_bytes_per_delivery,omitempty"`
	AppWALPerDelivery     *float64 `json:"app_wal_bytes_per_delivery,omitempty"`
	// DBMicrosPerDelivery is the execution time of walhook's and the application's statements
	// (pg_stat_statements total_exec_time) per delivery; WalhookDBMicrosPerDelivery walhook's part.
	DBMicrosPerDelivery        *float64 `json:"db_us_per_delivery,omitempty"`
	WalhookDBMicrosPerDelivery *float64 `json:"walhook_db_us_per_delivery,omitempty"`
	// Statements breaks walhook's part down by sqlc query name (JSON only).
	Statements map[string]StatementCost `json:"walhook_statements,omitempty"`
	Failures   []string                 `json:"failures,omitempty"`
}

// Report is a whole run.
type Report struct {
	Started  time.Time `json:"started"`
	Quick    bool      `json:"quick"`
	Machine  Machine   `json:"machine"`
	Results  []Result  `json:"results"`
	Failures []string  `json:"failures,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	MemoryMB   int    `json:"memory_mb"`
	GoVersion  string `json:"go_version"`
	PostgreSQL string `json:"postgresql"`
}

// Failed reports whether any scenario failed.
func (r *Report) Failed() bool {
	if len(r.Failures) > 0 {
		return true
	}
	for _, res := range r.Results {
		if len(res.Failures) > 0 {
			return true
		}
	}
	return false
}

// WriteJSON writes the report to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // results are for reading
		return fmt.Errorf("create results dir: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil { //nolint:gosec // results are for reading
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteTable prints the report as a table.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "walhook bench (quick=%v) on %d CPUs, %d MB, %s, %s\n", r.Quick, r.Machine.CPUs, r.Machine.MemoryMB, r.Machine.GoVersion, r.Machine.PostgreSQL)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\ttarget\tmet\tdelivered\tWAL B/dlv (walhook)\tdb µs/dlv (walhook)\tdetails")
	for _, res := range r.Results {
		met := "-"
		if res.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*res.Met]
		}
		if len(res.Failures) > 0 {
			met = "FAIL"
		}
		keys := make([]string, 0, len(res.Figures))
		for k := range res.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var det []string
		for _, k := range keys {
			det = append(det, fmt.Sprintf("%s=%s", k, num(res.Figures[k])))
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", res.Scenario, num(res.Figure), res.Unit, res.Target, met, res.Recorded, res.Expected,
			pair(res.WALPerDelivery, res.WalhookWALPerDelivery), pair(res.DBMicrosPerDelivery, res.WalhookDBMicrosPerDelivery), strings.Join(det, " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	for _, res := range r.Results {
		for _, f := range res.Failures {
			fmt.Fprintf(w, "FAIL %s: %s\n", res.Scenario, f)
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAIL: %s\n", f)
	}
	return nil
}

// pair prints "all (part)", "-" for a figure not measured.
func pair(all, part *float64) string {
	if all == nil {
		return "-"
	}
	if part == nil {
		return num(*all)
	}
	return num(*all) + " (" + num(*part) + ")"
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// env is what the scenarios share.
type env struct {
	cfg   Config
	url   string // the bench database
	keys  string // keyring spec
	st    *store.Store
	pool  *pgxpool.Pool // walhook's pool (the relay's)
	app   *pgxpool.Pool // the application's connections
	rc    *receiver
	cat   *catalog.Catalog
	sizes sizes
	// ceilingRate and cdcRate are earlier scenarios' figures the later ones compare with.
	ceilingRate, cdcRate float64
	// statsOK: pg_stat_statements is readable; statsFrom is the reading at the start of the
	// current scenario's measurement window (markStats).
	statsOK   bool
	statsFrom dbStats
	// relay is the in-process relay; stopRelay stops it.
	stopRelay func() error
}

const benchDatabase = "walhook_bench"

// Run runs the benchmark and returns its report. An error means the run could not be set up; a
// scenario that failed is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	rep := &Report{Started: time.Now().UTC(), Quick: cfg.Quick, Machine: machine()}
	e := &env{cfg: cfg, sizes: fullSizes}
	if cfg.Quick {
		e.sizes = quickSizes
	}
	cleanup, err := e.open(ctx)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	var pgv string
	if err := e.app.QueryRow(ctx, "SHOW server_version").Scan(&pgv); err == nil {
		rep.Machine.PostgreSQL = "PostgreSQL " + pgv
	}
	if err := e.startRelay(ctx); err != nil {
		return nil, err
	}
	for _, s := range scenarios() {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, s.name) {
			continue
		}
		fmt.Fprintf(cfg.Progress, "bench: %s…\n", s.name)
		if err := e.markStats(ctx); err != nil {
			return rep, err
		}
		res, err := s.run(e, ctx)
		if ctx.Err() != nil {
			return rep, fmt.Errorf("run %s: %w", s.name, ctx.Err())
		}
		if err != nil {
			res = Result{Scenario: s.name, Failures: []string{err.Error()}}
		}
		if res.Scenario == "" {
			res.Scenario = s.name
		}
		if err := e.addDBFigures(ctx, &res); err != nil {
			res.Failures = append(res.Failures, err.Error())
		}
		rep.Results = append(rep.Results, res)
	}
	if e.stopRelay != nil {
		if err := e.stopRelay(); err != nil {
			rep.Failures = append(rep.Failures, "relay: "+err.Error())
		}
		e.stopRelay = nil
	}
	return rep, nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryMB = kb / 1024
				break
			}
		}
	}
	return m
}

// open starts (or connects to) PostgreSQL, creates the bench database and the receiver. The
// returned cleanup stops everything it started, also after an error.
func (e *env) open(ctx context.Context) (func(), error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	adminURL := e.cfg.DatabaseURL
	if adminURL == "" {
		dir := e.cfg.Dir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "walhook-bench-")
			if err != nil {
				return cleanup, fmt.Errorf("create bench dir: %w", err)
			}
			if err := os.Chmod(tmp, 0o755); err != nil { //nolint:gosec // the postgres user must traverse it
				return cleanup, fmt.Errorf("chmod bench dir: %w", err)
			}
			stops = append(stops, func() { _ = os.RemoveAll(tmp) })
			dir = tmp
		}
		// Settings of a production-like server: durable (fsync on) so the history's cost is
		// real, a WAL large enough that a benchmark does not measure checkpoints.
		// TCP on 127.0.0.1: the bench's connections do not depend on a socket file in /tmp.
		cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "pgdata"), TCP: true, Durable: true, Settings: map[string]string{
			"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min",
			"max_connections": "200",
			// The database's time per delivery (Result.DBMicrosPerDelivery) and the split of
			// WAL between walhook and the application come from pg_stat_statements.
			"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "10000",
			"pg_stat_statements.track_utility": "off",
		}})
		if err != nil {
			return cleanup, fmt.Errorf("start PostgreSQL: %w", err)
		}
		stops = append(stops, func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = cl.Stop(sctx)
		})
		adminURL = cl.TCPURL("postgres")
	}
	url, drop, err := createDatabase(ctx, adminURL, benchDatabase)
	if err != nil {
		return cleanup, err
	}
	stops = append(stops, drop)
	e.url = url
	e.keys = crypt.GenerateKeySpec("bench1")
	keys, err := crypt.ParseKeyring(e.keys)
	if err != nil {
		return cleanup, fmt.Errorf("parse bench keys: %w", err)
	}
	if e.pool, err = openPool(ctx, url, 20); err != nil {
		return cleanup, err
	}
	stops = append(stops, e.pool.Close)
	if e.app, err = openPool(ctx, url, 16); err != nil {
		return cleanup, err
	}
	stops = append(stops, e.app.Close)
	e.st = store.New(e.pool, keys)
	if _, err := e.st.MigrateUp(ctx); err != nil {
		return cleanup, err
	}
	if _, err := e.app.Exec(ctx, appSchema); err != nil {
		return cleanup, fmt.Errorf("create application table: %w", err)
	}
	e.enableStats(ctx)
	if e.cat, err = catalog.Parse([]byte(catalogYAML)); err != nil {
		return cleanup, fmt.Errorf("parse bench catalog: %w", err)
	}
	if err := e.cat.Sync(ctx, e.st); err != nil {
		return cleanup, fmt.Errorf("store bench catalog: %w", err)
	}
	if e.rc, err = newReceiver(ctx); err != nil {
		return cleanup, err
	}
	stops = append(stops, e.rc.close)
	stops = append(stops, func() {
		if e.stopRelay != nil {
			_ = e.stopRelay()
			e.stopRelay = nil
		}
	})
	return cleanup, nil
}

func openPool(ctx context.Context, url string, conns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pc.MaxConns = conns
	// As `walhook relay` does (cmd/walhook): no JIT for short OLTP statements.
	if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
		pc.ConnConfig.RuntimeParams["jit"] = "off"
	}
	p, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return p, nil
}

// createDatabase creates a fresh database db (dropping a leftover one and its slot) and returns
// its URL and a function that drops it.
func createDatabase(ctx context.Context, adminURL, db string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", func() {}, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	name := pgx.Identifier{db}.Sanitize()
	_, _ = conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", db)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", func() {}, fmt.Errorf("drop old bench database: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", func() {}, fmt.Errorf("create bench database: %w", err)
	}
	u := replaceDatabase(adminURL, db)
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		c, err := pgx.Connect(dctx, adminURL)
		if err != nil {
			return
		}
		defer c.Close(dctx)
		_, _ = c.Exec(dctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", db)
		_, _ = c.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u, drop, nil
}

// relayConfig is the relay's configuration in every scenario: the defaults, loopback allowed
// (the SSRF guard's explicit allow-list), a 5 s attempt timeout, and a short retry schedule so the
// isolation scenario's hanging endpoint is retried within the run.
func (e *env) relayConfig(instance string) relay.Config {
	return relay.Config{
		InstanceID: instance,
		Dispatch: dispatch.Config{
			SenderConfig: dispatch.SenderConfig{
				Version: "bench", AttemptTimeout: 5 * time.Second,
				AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			},
			Schedule: []time.Duration{0, time.Second, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second},
		},
		Capture: capture.Config{Catalog: e.cat},
	}
}

// startRelay runs the real relay in this process until stopRelay.
func (e *env) startRelay(ctx context.Context) error {
	rl, err := relay.New(e.relayConfig("bench"), e.st, e.cfg.Log, prometheus.NewRegistry())
	if err != nil {
		return fmt.Errorf("build relay: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rl.Run(rctx) }()
	e.stopRelay = func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("run relay: %w", err)
		}
		return nil
	}
	return e.waitStreaming(ctx)
}

// waitStreaming waits until the capture leader streams from the slot: rows committed before the
// slot exists would not be captured.
func (e *env) waitStreaming(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var active bool
		err := e.app.QueryRow(ctx, `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = 'walhook'`).Scan(&active)
		if err != nil {
			return fmt.Errorf("read slot: %w", err)
		}
		if active {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("capture did not start streaming within a minute")
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for capture: %w", ctx.Err())
		case <-t.C:
		}
	}
}
