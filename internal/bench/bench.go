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
	// Modes are the deployments every scenario runs in, in this order. Default: ModeOne. With
	// both, each scenario runs once per mode (ceiling, which uses no database, once), and
	// application-impact interleaves its runs of the two modes (see applicationImpact).
	Modes []Mode
	// DatabaseURL, when set, is a PostgreSQL (wal_level=logical) to use instead of private
	// clusters; the run creates and drops databases of its own in it. In ModeTwo it holds
	// walhook's database; the application's is on SourceDatabaseURL's server.
	DatabaseURL string
	// SourceDatabaseURL, with DatabaseURL, is the server of the application's databases (ModeTwo's
	// source, and ModeOne's database). Default: DatabaseURL's server (ModeTwo's two databases
	// are then in one server).
	SourceDatabaseURL string
	// Dir holds the private clusters. Default: a temporary directory, removed at the end.
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

// Mode is how walhook is deployed for a run.
type Mode string

const (
	// ModeOne keeps walhook's tables in the application's database (the default deployment):
	// one private cluster.
	ModeOne Mode = "one-database"
	// ModeTwo gives walhook a database of its own in a second private cluster (queue, history,
	// configuration, leases); the application's database, the capture's source, holds its
	// table, the slot, the publication, walhook.emit and walhook.outbox (issue 17).
	ModeTwo Mode = "two-databases"
)

// ParseModes reads "one", "two" or "both" (also the Mode names themselves).
func ParseModes(s string) ([]Mode, error) {
	switch s {
	case "one", string(ModeOne):
		return []Mode{ModeOne}, nil
	case "two", string(ModeTwo):
		return []Mode{ModeTwo}, nil
	case "both":
		return []Mode{ModeOne, ModeTwo}, nil
	}
	return nil, fmt.Errorf("modes %q: want one, two or both", s)
}

// Result is one scenario's outcome in one mode.
type Result struct {
	Scenario string `json:"scenario"`
	// Mode is the deployment the scenario ran in (empty for ceiling, which uses no database).
	Mode Mode `json:"mode,omitempty"`
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
	// WALPerDelivery is the application's cluster's WAL (pg_current_wal_lsn() difference) over
	// the scenario divided by its deliveries, in bytes: the application's rows and everything
	// walhook writes there (ModeOne: all of it; ModeTwo: the outbox's deletes). This and the
	// fields up to Statements are the application's cluster's; WalhookCluster is walhook's own.
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
	// CPU is the CPU time per delivery in µs, by process: "app:<category>" on the application's
	// cluster, "own:<category>" on walhook's own (ModeTwo), categories as cpu.go's cpuCategory
	// (walsender, application, walhook, harness, background), and "bench-process" (this process:
	// the load, the receiver and the relay). Only when the server runs on this machine (JSON only).
	CPU map[string]float64 `json:"cpu_us_per_delivery,omitempty"`
	// CPUWithout and CPUDecoding are, for application-impact, the same per row of the runs
	// without the relay, and with the decoding-only reader instead of it.
	CPUWithout  map[string]float64 `json:"cpu_us_per_row_without_relay,omitempty"`
	CPUDecoding map[string]float64 `json:"cpu_us_per_row_decoding_only,omitempty"`
	// WalhookCluster is, in ModeTwo, what the scenario cost walhook's own cluster.
	WalhookCluster *ClusterCost `json:"walhook_cluster,omitempty"`
	Failures       []string     `json:"failures,omitempty"`
}

// ClusterCost is what a scenario cost walhook's own cluster (ModeTwo), per delivery: the
// cluster's WAL, and with pg_stat_statements walhook's statements' time and WAL by name.
type ClusterCost struct {
	WALPerDelivery             float64                  `json:"wal_bytes_per_delivery"`
	WalhookWALPerDelivery      *float64                 `json:"walhook_wal_bytes_per_delivery,omitempty"`
	WalhookDBMicrosPerDelivery *float64                 `json:"walhook_db_us_per_delivery,omitempty"`
	Statements                 map[string]StatementCost `json:"walhook_statements,omitempty"`
}

// Report is a whole run.
type Report struct {
	Started  time.Time `json:"started"`
	Quick    bool      `json:"quick"`
	Modes    []Mode    `json:"modes"`
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
func (r *Report) WriteJSON(path string) error { return writeJSON(path, r) }

// writeJSON writes report to path as indented JSON, creating its directory.
func writeJSON(path string, report any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // results are for reading
		return fmt.Errorf("create results dir: %w", err)
	}
	b, err := json.MarshalIndent(report, "", "  ")
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
	modes := make([]string, len(r.Modes))
	two := false
	for i, m := range r.Modes {
		modes[i] = string(m)
		two = two || m == ModeTwo
	}
	fmt.Fprintf(w, "walhook bench (quick=%v, %s) on %d CPUs, %d MB, %s, %s\n", r.Quick, strings.Join(modes, " + "), r.Machine.CPUs, r.Machine.MemoryMB, r.Machine.GoVersion, r.Machine.PostgreSQL)
	if two {
		fmt.Fprintln(w, "WAL and db µs per delivery are the application's cluster's; \"own\" is walhook's own cluster's (two-databases)")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := "scenario\tfigure\ttarget\tmet\tdelivered\tWAL B/dlv (walhook)\tdb µs/dlv (walhook)"
	if len(r.Modes) > 1 {
		head = "mode\t" + head
	}
	if two {
		head += "\town WAL B/dlv\town µs/dlv"
	}
	fmt.Fprintln(tw, head+"\tdetails")
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
		line := fmt.Sprintf("%s\t%s %s\t%s\t%s\t%d/%d\t%s\t%s", res.Scenario, num(res.Figure), res.Unit, res.Target, met, res.Recorded, res.Expected,
			pair(res.WALPerDelivery, res.WalhookWALPerDelivery), pair(res.DBMicrosPerDelivery, res.WalhookDBMicrosPerDelivery))
		if len(r.Modes) > 1 {
			line = shortMode(res.Mode) + "\t" + line
		}
		if two {
			own, ownUS := "-", "-"
			if c := res.WalhookCluster; c != nil {
				own = num(c.WALPerDelivery)
				if c.WalhookDBMicrosPerDelivery != nil {
					ownUS = num(*c.WalhookDBMicrosPerDelivery)
				}
			}
			line += "\t" + own + "\t" + ownUS
		}
		fmt.Fprintln(tw, line+"\t"+strings.Join(det, " "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	for _, res := range r.Results {
		for _, f := range res.Failures {
			fmt.Fprintf(w, "FAIL %s%s: %s\n", res.Scenario, map[bool]string{true: " (" + string(res.Mode) + ")"}[len(r.Modes) > 1], f)
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAIL: %s\n", f)
	}
	return nil
}

// shortMode is the table's mode column: "one", "two", "-" (no database).
func shortMode(m Mode) string {
	switch m {
	case ModeOne:
		return "one"
	case ModeTwo:
		return "two"
	}
	return "-"
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

// env is what the scenarios share: the receiver, the sizes, and the deployment the current
// scenario runs in (embedded, so a scenario reads e.app, e.st, … of its mode).
type env struct {
	cfg   Config
	keys  string // keyring spec, the same in every deployment
	rc    *receiver
	cat   *catalog.Catalog
	sizes sizes
	// ceilingRate is the ceiling scenario's figure, which throughput-cdc compares with.
	ceilingRate float64
	// deps are the deployments of the run, in Config.Modes order.
	deps []*deployment
	*deployment
}

// deployment is walhook installed one way (Mode): the application's database, walhook's
// (the same one in ModeOne), their pools and the relay running against them.
type deployment struct {
	mode Mode
	// srcURL is the application's database (the capture's source), url walhook's.
	srcURL, url string
	slot        string
	// st is walhook's database (the relay's store); src the application's database as the
	// capture's source (ModeTwo; nil in ModeOne, where st is both).
	st, src *store.Store
	pool    *pgxpool.Pool // walhook's pool (the relay's)
	app     *pgxpool.Pool // the application's connections, in the source database
	// hist is the harness's connections to walhook's database: the history check and the
	// seeding of scale and backlog; srcHarness to the application's database (slot and WAL
	// positions, the counters); the same pool in ModeOne.
	hist, srcHarness *pgxpool.Pool
	// srcStats and ownStats read the clusters' counters (pg_stat_statements, WAL); ownStats is
	// walhook's own cluster, nil in ModeOne.
	srcStats, ownStats *clusterStats
	// cdcRate is throughput-cdc's figure, which scale compares with.
	cdcRate float64
	// stopRelay stops the deployment's in-process relay (nil: not running).
	stopRelay func() error
}

// Database names: ModeOne's database, ModeTwo's application database and walhook's own. They
// differ, so that with both modes the application's server holds both deployments' databases.
const (
	benchDatabase    = "walhook_bench"
	benchAppDatabase = "walhook_bench_app"
	benchOwnDatabase = "walhook_bench_own"
)

// Slot names: replication slots are per server, and with both modes the two deployments' source
// databases are on one server.
const (
	slotOne = "walhook"
	slotTwo = "walhook_two"
)

// Run runs the benchmark and returns its report. An error means the run could not be set up; a
// scenario that failed is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if len(cfg.Modes) == 0 {
		cfg.Modes = []Mode{ModeOne}
	}
	for i, m := range cfg.Modes {
		if (m != ModeOne && m != ModeTwo) || slices.Contains(cfg.Modes[:i], m) {
			return nil, fmt.Errorf("bench modes %v: want %s and/or %s, once each", cfg.Modes, ModeOne, ModeTwo)
		}
	}
	rep := &Report{Started: time.Now().UTC(), Quick: cfg.Quick, Modes: cfg.Modes, Machine: machine()}
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
	if err := e.deps[0].srcHarness.QueryRow(ctx, "SHOW server_version").Scan(&pgv); err == nil {
		rep.Machine.PostgreSQL = "PostgreSQL " + pgv
	}
	for _, s := range scenarios() {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, s.name) {
			continue
		}
		if s.all != nil {
			fmt.Fprintf(cfg.Progress, "bench: %s…\n", s.name)
			res, err := s.all(e, ctx)
			if ctx.Err() != nil {
				return rep, fmt.Errorf("run %s: %w", s.name, ctx.Err())
			}
			if err != nil {
				res = []Result{{Scenario: s.name, Failures: []string{err.Error()}}}
			}
			rep.Results = append(rep.Results, res...)
			continue
		}
		deps := e.deps
		if s.noDatabase {
			deps = deps[:1]
		}
		for _, d := range deps {
			res, err := e.runIn(ctx, d, s)
			if err != nil {
				return rep, err
			}
			if s.noDatabase {
				res.Mode = ""
			}
			rep.Results = append(rep.Results, res)
		}
	}
	for _, d := range e.deps {
		if err := d.stop(); err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("relay (%s): %s", d.mode, err))
		}
	}
	return rep, nil
}

// runIn runs scenario s in deployment d. An error means the run cannot go on.
func (e *env) runIn(ctx context.Context, d *deployment, s scenario) (Result, error) {
	if len(e.deps) > 1 && !s.noDatabase {
		fmt.Fprintf(e.cfg.Progress, "bench: %s (%s)…\n", s.name, d.mode)
	} else {
		fmt.Fprintf(e.cfg.Progress, "bench: %s…\n", s.name)
	}
	if err := e.use(ctx, d); err != nil {
		return Result{}, fmt.Errorf("run %s (%s): %w", s.name, d.mode, err)
	}
	if err := e.markStats(ctx); err != nil {
		return Result{}, err
	}
	res, err := s.run(e, ctx)
	if ctx.Err() != nil {
		return res, fmt.Errorf("run %s: %w", s.name, ctx.Err())
	}
	if err != nil {
		res = Result{Scenario: s.name, Failures: []string{err.Error()}}
	}
	if res.Scenario == "" {
		res.Scenario = s.name
	}
	res.Mode = d.mode
	if err := e.addDBFigures(ctx, &res); err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	return res, nil
}

// use makes d the current deployment with its relay running and caught up with its slot; any
// other deployment's relay is stopped first, so one relay runs at a time.
func (e *env) use(ctx context.Context, d *deployment) error {
	if err := e.stopOthers(d); err != nil {
		return err
	}
	e.deployment = d
	if d.stopRelay == nil {
		if err := e.startRelay(ctx); err != nil {
			return err
		}
	}
	// The slot may hold WAL written while the relay was stopped (application-impact's runs
	// without it, the other deployment's scenarios on the same server): the scenario must not
	// share the machine with that catch-up.
	return e.waitCaughtUp(ctx)
}

// stopOthers stops the relay of every deployment but keep (nil: all of them).
func (e *env) stopOthers(keep *deployment) error {
	for _, o := range e.deps {
		if o == keep {
			continue
		}
		if err := o.stop(); err != nil {
			return fmt.Errorf("stop relay (%s): %w", o.mode, err)
		}
	}
	return nil
}

// source is the application's database as the capture reads it: src, or st in ModeOne.
func (d *deployment) source() *store.Store {
	if d.src != nil {
		return d.src
	}
	return d.st
}

// stop stops the deployment's relay when it runs.
func (d *deployment) stop() error {
	if d.stopRelay == nil {
		return nil
	}
	err := d.stopRelay()
	d.stopRelay = nil
	return err
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

// open starts (or connects to) PostgreSQL — the application's server, and walhook's own for
// ModeTwo — creates each deployment's databases and the receiver. The returned cleanup stops
// everything it started, also after an error.
func (e *env) open(ctx context.Context) (func(), error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	two := slices.Contains(e.cfg.Modes, ModeTwo)
	appServer, ownServer := e.cfg.DatabaseURL, e.cfg.DatabaseURL
	if e.cfg.SourceDatabaseURL != "" {
		if appServer == "" {
			return cleanup, errors.New("a source database URL needs a database URL (walhook's server)")
		}
		appServer = e.cfg.SourceDatabaseURL
	}
	if appServer == "" {
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
		var err error
		if appServer, err = startCluster(ctx, filepath.Join(dir, "pgdata"), &stops); err != nil {
			return cleanup, err
		}
		if two {
			// walhook's own server: the same settings, on the same machine (and disk).
			if ownServer, err = startCluster(ctx, filepath.Join(dir, "pgdata-walhook"), &stops); err != nil {
				return cleanup, err
			}
		}
	}
	e.keys = crypt.GenerateKeySpec("bench1")
	keys, err := crypt.ParseKeyring(e.keys)
	if err != nil {
		return cleanup, fmt.Errorf("parse bench keys: %w", err)
	}
	if e.cat, err = catalog.Parse([]byte(catalogYAML)); err != nil {
		return cleanup, fmt.Errorf("parse bench catalog: %w", err)
	}
	for _, m := range e.cfg.Modes {
		d := &deployment{mode: m}
		e.deps = append(e.deps, d)
		var err error
		if m == ModeOne {
			err = e.openOne(ctx, d, appServer, keys, &stops)
		} else {
			err = e.openTwo(ctx, d, appServer, ownServer, keys, &stops)
		}
		if err != nil {
			return cleanup, fmt.Errorf("set up %s: %w", m, err)
		}
		if err := e.cat.Sync(ctx, d.source(), d.st); err != nil {
			return cleanup, fmt.Errorf("store bench catalog: %w", err)
		}
	}
	if e.rc, err = newReceiver(ctx); err != nil {
		return cleanup, err
	}
	stops = append(stops, e.rc.close)
	stops = append(stops, func() { _ = e.stopOthers(nil) })
	return cleanup, nil
}

// startCluster starts a private cluster in dir and returns its superuser URL; its stop is
// appended to stops.
func startCluster(ctx context.Context, dir string, stops *[]func()) (string, error) {
	// Settings of a production-like server: durable (fsync on) so the history's cost is
	// real, a WAL large enough that a benchmark does not measure checkpoints.
	// TCP on 127.0.0.1: the bench's connections do not depend on a socket file in /tmp.
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, TCP: true, Durable: true, Settings: map[string]string{
		"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min",
		"max_connections": "200",
		// The database's time per delivery (Result.DBMicrosPerDelivery) and the split of
		// WAL between walhook and the application come from pg_stat_statements.
		"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "10000",
		"pg_stat_statements.track_utility": "off",
	}})
	if err != nil {
		return "", fmt.Errorf("start PostgreSQL: %w", err)
	}
	*stops = append(*stops, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = cl.Stop(sctx)
	})
	return cl.TCPURL("postgres"), nil
}

// openOne sets up ModeOne: one database holds the application's table and walhook's tables.
func (e *env) openOne(ctx context.Context, d *deployment, server string, keys *crypt.Keyring, stops *[]func()) error {
	url, drop, err := createDatabase(ctx, server, benchDatabase)
	if err != nil {
		return err
	}
	*stops = append(*stops, drop)
	d.srcURL, d.url, d.slot = url, url, slotOne
	if d.pool, err = openPool(ctx, url, 20, appNameRelay); err != nil {
		return err
	}
	*stops = append(*stops, d.pool.Close)
	if d.app, err = openPool(ctx, url, 16, appNameApplication); err != nil {
		return err
	}
	*stops = append(*stops, d.app.Close)
	if d.hist, err = openPool(ctx, url, 4, appNameHarness); err != nil {
		return err
	}
	*stops = append(*stops, d.hist.Close)
	d.srcHarness = d.hist
	d.st = store.New(d.pool, keys)
	if _, err := d.st.MigrateUp(ctx); err != nil {
		return err
	}
	if _, err := d.hist.Exec(ctx, appSchema); err != nil {
		return fmt.Errorf("create application table: %w", err)
	}
	d.srcStats = e.enableStats(ctx, d.hist, "app")
	return nil
}

// openTwo sets up ModeTwo: the application's database on appServer (its table and the
// source-side schema), walhook's own on ownServer.
func (e *env) openTwo(ctx context.Context, d *deployment, appServer, ownServer string, keys *crypt.Keyring, stops *[]func()) error {
	srcURL, drop, err := createDatabase(ctx, appServer, benchAppDatabase)
	if err != nil {
		return err
	}
	*stops = append(*stops, drop)
	url, drop, err := createDatabase(ctx, ownServer, benchOwnDatabase)
	if err != nil {
		return err
	}
	*stops = append(*stops, drop)
	d.srcURL, d.url, d.slot = srcURL, url, slotTwo
	if d.pool, err = openPool(ctx, url, 20, appNameRelay); err != nil {
		return err
	}
	*stops = append(*stops, d.pool.Close)
	if d.app, err = openPool(ctx, srcURL, 16, appNameApplication); err != nil {
		return err
	}
	*stops = append(*stops, d.app.Close)
	if d.hist, err = openPool(ctx, url, 4, appNameHarness); err != nil {
		return err
	}
	*stops = append(*stops, d.hist.Close)
	if d.srcHarness, err = openPool(ctx, srcURL, 4, appNameHarness); err != nil {
		return err
	}
	*stops = append(*stops, d.srcHarness.Close)
	d.st = store.New(d.pool, keys)
	if _, err := d.st.MigrateUp(ctx); err != nil {
		return err
	}
	srcPool, err := openPool(ctx, srcURL, 4, appNameRelay)
	if err != nil {
		return err
	}
	*stops = append(*stops, srcPool.Close)
	d.src = store.New(srcPool, keys)
	// The source-side schema (walhook.emit, the outbox, the emit keys), as `walhook migrate`
	// installs it with a source.
	if _, err := d.src.MigrateSourceUp(ctx); err != nil {
		return fmt.Errorf("migrate source: %w", err)
	}
	if _, err := d.srcHarness.Exec(ctx, appSchema); err != nil {
		return fmt.Errorf("create application table: %w", err)
	}
	d.srcStats = e.enableStats(ctx, d.srcHarness, "app")
	d.ownStats = e.enableStats(ctx, d.hist, "own")
	return nil
}

// openPool opens a pool of conns connections named name (application_name: see cpu.go).
func openPool(ctx context.Context, url string, conns int32, name string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pc.MaxConns = conns
	pc.ConnConfig.RuntimeParams["application_name"] = name
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

// createDatabase creates a fresh database name (dropping a leftover one and its slots) on the
// server of adminURL and returns its URL and a function that drops it.
func createDatabase(ctx context.Context, adminURL, name string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", func() {}, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	_, _ = conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", name)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", func() {}, fmt.Errorf("drop old bench database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", func() {}, fmt.Errorf("create bench database %s: %w", name, err)
	}
	u := replaceDatabase(adminURL, name)
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		c, err := pgx.Connect(dctx, adminURL)
		if err != nil {
			return
		}
		defer c.Close(dctx)
		_, _ = c.Exec(dctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", name)
		_, _ = c.Exec(dctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	}
	return u, drop, nil
}

// relayConfig is the relay's configuration in every scenario: the defaults, loopback allowed
// (the SSRF guard's explicit allow-list), a 5 s attempt timeout, and a short retry schedule so the
// isolation scenario's hanging endpoint is retried within the run; the deployment's slot and, in
// ModeTwo, its source.
func relayConfig(instance string, cat *catalog.Catalog, slot string, src *store.Store) relay.Config {
	return relay.Config{
		InstanceID: instance,
		Dispatch: dispatch.Config{
			SenderConfig: dispatch.SenderConfig{
				Version: "bench", AttemptTimeout: 5 * time.Second,
				AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			},
			Schedule: []time.Duration{0, time.Second, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second},
		},
		// src nil: walhook's database is the source (ModeOne).
		Capture: capture.Config{Catalog: cat, Slot: slot, Source: src},
	}
}

// startRelay runs the real relay of the current deployment in this process until stopRelay.
func (e *env) startRelay(ctx context.Context) error {
	rl, err := relay.New(relayConfig("bench", e.cat, e.slot, e.src), e.st, e.cfg.Log, prometheus.NewRegistry())
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
		err := e.srcHarness.QueryRow(ctx, `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1`, e.slot).Scan(&active)
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
