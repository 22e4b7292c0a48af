package bench

import (
	"context"
	"crypto/md5" //nolint:gosec // matches the generator's md5(), not security
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/retention"
	"github.com/walhook/walhook/relay/store"
)

// Layouts of the history scenario.
const (
	// LayoutPlain is the schema before migration 0029 (the migrations, then 0029 reverted): one
	// table each for event, delivery and attempt; retention deletes rows, with the 0028
	// statements (history_sql.go).
	LayoutPlain = "plain"
	// LayoutPartitioned is the schema the migrations make: the three history tables in weekly
	// partitions by the event's time (migration 0029); claims and retention are walhook's own
	// (store.DispatchClaim, retention.RunOnce), and retention drops whole weeks.
	LayoutPartitioned = "partitioned"
)

// HistoryConfig configures `walhook bench history`. The zero value of every field is a usable
// default.
type HistoryConfig struct {
	// Deliveries is the number of deliveries of history built (two per event, 1.2 attempts
	// each). Default 1,000,000.
	Deliveries int64
	// Days is the time the history spans, ending today at 00:00 UTC; at least 7 (retention removes
	// the first week). Default 60.
	Days int
	// Companies is the number of companies (three webhooks each). Default 300.
	Companies int
	// Pending is the number of newest deliveries left pending and due. Default 5,000.
	Pending int64
	// Layouts are the layouts measured, in this order. Default plain, then partitioned.
	Layouts []string
	// Samples is the number of timed runs of each claim and history query. Default 200.
	Samples int
	// DatabaseURL, when set, is a PostgreSQL to use instead of a private cluster; a database
	// per layout is created and dropped in it.
	DatabaseURL string
	// Dir holds the private cluster. Default: a temporary directory, removed at the end.
	Dir string
	// Keep leaves the last layout's database (walhook_bench_history) in place for inspection,
	// with DatabaseURL only (a private cluster is removed anyway).
	Keep bool
	// Progress receives a line per step. Default: discarded.
	Progress io.Writer
}

// HistoryReport is a run of the history scenario.
type HistoryReport struct {
	Started    time.Time       `json:"started"`
	Machine    Machine         `json:"machine"`
	Deliveries int64           `json:"deliveries"`
	Events     int64           `json:"events"`
	Attempts   int64           `json:"attempts"`
	Days       int             `json:"days"`
	Companies  int             `json:"companies"`
	Webhooks   int             `json:"webhooks"`
	Samples    int             `json:"samples"`
	Results    []HistoryResult `json:"results"`
}

// HistoryResult is one layout's figures.
type HistoryResult struct {
	Layout string `json:"layout"`
	// LoadSeconds is the time to insert the rows, IndexSeconds to build the keys and indexes
	// afterwards, VacuumSeconds the VACUUM (FREEZE, ANALYZE) that follows.
	LoadSeconds   float64 `json:"load_seconds"`
	IndexSeconds  float64 `json:"index_seconds"`
	VacuumSeconds float64 `json:"vacuum_seconds"`
	// Bytes is each table's size with its indexes and TOAST (every partition), and Partitions
	// the number of partitions of each table, the default one included (0: not partitioned).
	Bytes      map[string]int64 `json:"bytes"`
	Partitions int              `json:"partitions"`
	// Retention is one run removing the history's first week (Monday to Monday, UTC): the
	// partitions' first week, and the rows of the same time in the plain layout.
	Retention RetentionCost `json:"retention"`
	// Claim says which claim was timed: the 0028 text of DispatchClaim (plain) or the store's.
	Claim string `json:"claim"`
	// Latency is each measured statement's time in milliseconds (median, p99, max).
	Latency map[string]Percentiles `json:"latency_ms"`
	// NotMeasured gives, for the statements left out in this layout, the reason.
	NotMeasured map[string]string `json:"not_measured,omitempty"`
}

// RetentionCost is what one retention run cost.
type RetentionCost struct {
	// Method is what removed the rows: the 0028 row deletes in the old runner's batch loop
	// (plain) or retention.RunOnce (partitioned).
	Method string `json:"method"`
	// Cutoff is the end of the history's first week: what is older goes.
	Cutoff time.Time `json:"cutoff"`
	// Deliveries, Events and Attempts are the rows removed: each table's count before the run
	// less its count after it (taken after the vacuums, so as not to disturb their figures).
	Deliveries int64 `json:"deliveries"`
	Events     int64 `json:"events"`
	Attempts   int64 `json:"attempts"`
	// Weeks are the weeks RunOnce dropped and PendingMoved the pending deliveries it moved into
	// the default partition with them (partitioned; none in the generated first week).
	Weeks        int   `json:"weeks,omitempty"`
	PendingMoved int64 `json:"pending_moved,omitempty"`
	// Seconds and WALBytes are the run's time and the WAL it wrote (the whole cluster).
	Seconds  float64 `json:"seconds"`
	WALBytes int64   `json:"wal_bytes"`
	// VacuumSeconds and VacuumWALBytes are those of the VACUUM of the three tables that follows:
	// the work the run leaves to autovacuum (off in the scenario's cluster).
	VacuumSeconds  float64 `json:"vacuum_seconds"`
	VacuumWALBytes int64   `json:"vacuum_wal_bytes"`
	// IndexVacuumSeconds and IndexVacuumWALBytes are a second VACUUM with INDEX_CLEANUP ON: a
	// plain VACUUM skips the index pass while fewer than 2% of a table's pages hold dead rows
	// (PostgreSQL 14+), which one day of sixty is; the pass comes in a later run, when enough
	// days have accumulated, and costs a scan of every index of the table.
	IndexVacuumSeconds  float64 `json:"index_vacuum_seconds"`
	IndexVacuumWALBytes int64   `json:"index_vacuum_wal_bytes"`
	// Left are the deliveries older than the cutoff still there after the run: plain, by
	// created_at (those changed after the cutoff, as a retry late in the week); partitioned, by
	// event_at (none: the week went whole).
	Left int64 `json:"left"`
}

// Percentiles summarise timed samples, in milliseconds.
type Percentiles struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Percentiles{N: len(s), Median: ms(s[len(s)/2]), P99: ms(s[(len(s)*99)/100]), Max: ms(s[len(s)-1])}
}

// The measured statements, in the table's order.
var historyStatements = []string{
	"claim", "history newest page", "history deep page", "history by event id",
	"history series 30d", "history detail",
}

func (c *HistoryConfig) defaults() error {
	if c.Deliveries <= 0 {
		c.Deliveries = 1_000_000
	}
	c.Deliveries += c.Deliveries % 2 // two deliveries an event
	if c.Days <= 0 {
		c.Days = 60
	}
	if c.Days < 7 {
		return fmt.Errorf("days (%d) must be at least 7: retention removes the history's first week", c.Days)
	}
	if c.Companies <= 0 {
		c.Companies = 300
	}
	if c.Pending <= 0 {
		c.Pending = 5000
	}
	if c.Pending >= c.Deliveries {
		return fmt.Errorf("pending deliveries (%d) must be fewer than deliveries (%d)", c.Pending, c.Deliveries)
	}
	if len(c.Layouts) == 0 {
		c.Layouts = []string{LayoutPlain, LayoutPartitioned}
	}
	for _, l := range c.Layouts {
		if l != LayoutPlain && l != LayoutPartitioned {
			return fmt.Errorf("layout %q: want %s or %s", l, LayoutPlain, LayoutPartitioned)
		}
	}
	if c.Samples <= 0 {
		c.Samples = 200
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// RunHistory builds the history in each layout in turn and measures retention, claims and the
// history API on it (package doc; docs/benchmarks.md, "Issue 17: history at scale").
func RunHistory(ctx context.Context, cfg HistoryConfig) (*HistoryReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	events := cfg.Deliveries / 2
	rep := &HistoryReport{
		Started: time.Now().UTC(), Machine: machine(), Deliveries: cfg.Deliveries, Events: events,
		Days: cfg.Days, Companies: cfg.Companies, Webhooks: cfg.Companies * 3,
		Samples: cfg.Samples,
	}
	adminURL, stop, err := historyCluster(ctx, cfg)
	defer stop()
	if err != nil {
		return rep, err
	}
	for _, layout := range cfg.Layouts {
		res, attempts, err := runHistoryLayout(ctx, cfg, adminURL, layout, rep)
		if err != nil {
			return rep, fmt.Errorf("layout %s: %w", layout, err)
		}
		rep.Attempts = attempts
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// historyCluster starts the private cluster (or takes the given URL) and returns its admin URL.
func historyCluster(ctx context.Context, cfg HistoryConfig) (string, func(), error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, func() {}, nil
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "walhook-bench-history-")
		if err != nil {
			return "", stop, fmt.Errorf("create bench dir: %w", err)
		}
		if err := os.Chmod(tmp, 0o755); err != nil { //nolint:gosec // the postgres user must traverse it
			return "", stop, fmt.Errorf("chmod bench dir: %w", err)
		}
		stops = append(stops, func() { _ = os.RemoveAll(tmp) })
		dir = tmp
	}
	// Durable, as bench's cluster (full-page writes count in the retention's WAL), with
	// autovacuum off so that the VACUUM after a retention run is measured, not raced.
	cl, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "pgdata"), TCP: true, Durable: true, Settings: map[string]string{
		"shared_buffers": "1GB", "max_wal_size": "8GB", "checkpoint_timeout": "15min",
		"maintenance_work_mem": "512MB", "autovacuum": "off", "max_parallel_maintenance_workers": "0",
		"max_parallel_workers_per_gather": "0",
	}})
	if err != nil {
		return "", stop, fmt.Errorf("start PostgreSQL: %w", err)
	}
	stops = append(stops, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = cl.Stop(sctx)
	})
	return cl.TCPURL("postgres"), stop, nil
}

// histEnv is one layout's database.
type histEnv struct {
	cfg    HistoryConfig
	layout string
	pool   *pgxpool.Pool
	st     *store.Store
	start  time.Time // the history's first instant (a day boundary)
	step   time.Duration
	events int64
}

func (h *histEnv) progress(format string, args ...any) {
	fmt.Fprintf(h.cfg.Progress, "%s [%s] %s\n", time.Now().UTC().Format("15:04:05"), h.layout, fmt.Sprintf(format, args...))
}

func runHistoryLayout(ctx context.Context, cfg HistoryConfig, adminURL, layout string, rep *HistoryReport) (HistoryResult, int64, error) {
	res := HistoryResult{Layout: layout, Latency: map[string]Percentiles{}, Bytes: map[string]int64{}, NotMeasured: map[string]string{}}
	url, drop, err := createDatabase(ctx, adminURL, "walhook_bench_history")
	if !cfg.Keep {
		defer drop()
	}
	if err != nil {
		return res, 0, err
	}
	pool, err := openPool(ctx, url, 4, "walhook-bench-history")
	if err != nil {
		return res, 0, err
	}
	defer pool.Close()
	keys, err := crypt.ParseKeyring(crypt.GenerateKeySpec("bench1"))
	if err != nil {
		return res, 0, fmt.Errorf("parse bench keys: %w", err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	h := &histEnv{
		cfg: cfg, layout: layout, pool: pool, st: store.New(pool, keys),
		start:  today.Add(-time.Duration(cfg.Days) * 24 * time.Hour),
		events: rep.Events,
	}
	h.step = time.Duration(cfg.Days) * 24 * time.Hour / time.Duration(h.events)
	if _, err := h.st.MigrateUp(ctx); err != nil {
		return res, 0, err
	}
	if rep.Machine.PostgreSQL == "" {
		_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&rep.Machine.PostgreSQL)
	}
	switch layout {
	case LayoutPlain:
		// The layout of 0028: 0029's down migration puts the three tables back as they were
		// (the migrations after it reverted first).
		reverted, err := h.st.MigrateDownTo(ctx, 28)
		if err != nil {
			return res, 0, fmt.Errorf("revert migration 0029: %w", err)
		}
		if !slices.Contains(reverted, 29) {
			return res, 0, fmt.Errorf("layout plain is the schema before migration 0029, but reverting to 0028 reverted %v", reverted)
		}
	case LayoutPartitioned:
		// The migration made the weeks from this one to two ahead; the history's weeks come
		// before, as 0029 makes them for an existing history.
		if _, err := pool.Exec(ctx, historyWeeks, h.start); err != nil {
			return res, 0, fmt.Errorf("create the history's weeks: %w", err)
		}
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'walhook.delivery'::regclass`).Scan(&res.Partitions); err != nil {
			return res, 0, fmt.Errorf("count partitions: %w", err)
		}
	}
	attempts, err := h.load(ctx, &res)
	if err != nil {
		return res, 0, err
	}
	for _, t := range []string{"event", "delivery", "attempt"} {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass)), pg_total_relation_size($1::regclass))::bigint`, "walhook."+t).Scan(&n); err != nil {
			return res, 0, fmt.Errorf("size of %s: %w", t, err)
		}
		res.Bytes[t] = n
	}
	h.progress("sizes: event %s, delivery %s, attempt %s", gib(res.Bytes["event"]), gib(res.Bytes["delivery"]), gib(res.Bytes["attempt"]))
	if err := h.measureReads(ctx, &res); err != nil {
		return res, 0, err
	}
	if err := h.retention(ctx, &res); err != nil {
		return res, 0, err
	}
	return res, attempts, nil
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// load inserts the history in chunks with the keys and indexes dropped, builds them, and
// vacuums (freezes) and analyses the tables, then checkpoints: the measurements start from a
// settled table, as a long-lived installation's would be.
func (h *histEnv) load(ctx context.Context, res *HistoryResult) (int64, error) {
	cfg := h.cfg
	if _, err := h.pool.Exec(ctx, genCompanies, cfg.Companies); err != nil {
		return 0, fmt.Errorf("generate companies: %w", err)
	}
	if _, err := h.pool.Exec(ctx, genEventTypes); err != nil {
		return 0, fmt.Errorf("generate event types: %w", err)
	}
	if _, err := h.pool.Exec(ctx, genWebhooks, cfg.Companies); err != nil {
		return 0, fmt.Errorf("generate webhooks: %w", err)
	}
	if _, err := h.pool.Exec(ctx, genWebhookSeq, cfg.Companies); err != nil {
		return 0, fmt.Errorf("set webhook id sequence: %w", err)
	}
	type ddl struct{ drop, create string }
	var keys []ddl
	rows, err := h.pool.Query(ctx, historyKeys)
	if err != nil {
		return 0, fmt.Errorf("list keys: %w", err)
	}
	for rows.Next() {
		var k ddl
		var order int
		if err := rows.Scan(&k.drop, &k.create, &order); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list keys: %w", err)
		}
		// A partitioned table's index reads "ON ONLY" (the parent alone); built on the parent,
		// it is built on every partition.
		k.create = strings.Replace(k.create, " ON ONLY ", " ON ", 1)
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list keys: %w", err)
	}
	for i := len(keys) - 1; i >= 0; i-- { // foreign keys first
		if _, err := h.pool.Exec(ctx, keys[i].drop); err != nil {
			return 0, fmt.Errorf("%s: %w", keys[i].drop, err)
		}
	}

	var extraCol, extraVal string
	if h.layout == LayoutPartitioned {
		extraCol, extraVal = ", event_at", ", x.at"
	}
	delSQL := fmt.Sprintf(genDeliveries, extraCol, extraVal)
	attSQL := fmt.Sprintf(genAttempts, extraCol, extraVal)
	step := h.step.String()
	firstPending := cfg.Deliveries - cfg.Pending + 1
	const chunk = 1_000_000 // deliveries per statement
	began := time.Now()
	var attempts int64
	for lo := int64(1); lo <= cfg.Deliveries; lo += chunk {
		hi := min(lo+chunk-1, cfg.Deliveries)
		if _, err := h.pool.Exec(ctx, genEvents, (lo+1)/2, hi/2, cfg.Companies, h.start, step); err != nil {
			return 0, fmt.Errorf("generate events: %w", err)
		}
		if _, err := h.pool.Exec(ctx, delSQL, lo, hi, cfg.Companies, h.start, step, firstPending); err != nil {
			return 0, fmt.Errorf("generate deliveries: %w", err)
		}
		tag, err := h.pool.Exec(ctx, attSQL, lo, hi, cfg.Companies, h.start, step, firstPending)
		if err != nil {
			return 0, fmt.Errorf("generate attempts: %w", err)
		}
		attempts += tag.RowsAffected()
		el := time.Since(began).Seconds()
		h.progress("loaded %d/%d deliveries (%.0f deliveries/s, %.0fs)", hi, cfg.Deliveries, float64(hi)/el, el)
	}
	res.LoadSeconds = time.Since(began).Seconds()
	for _, seq := range []string{"event", "delivery"} {
		if _, err := h.pool.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('walhook.%s', 'id'), (SELECT max(id) FROM walhook.%[1]s))`, seq)); err != nil {
			return 0, fmt.Errorf("set %s id sequence: %w", seq, err)
		}
	}
	began = time.Now()
	for _, k := range keys {
		t := time.Now()
		if _, err := h.pool.Exec(ctx, k.create); err != nil {
			return 0, fmt.Errorf("%s: %w", k.create, err)
		}
		h.progress("%.0fs: %s", time.Since(t).Seconds(), k.create)
	}
	res.IndexSeconds = time.Since(began).Seconds()
	began = time.Now()
	if _, err := h.pool.Exec(ctx, `VACUUM (FREEZE, ANALYZE) walhook.event, walhook.delivery, walhook.attempt, walhook.webhook, walhook.company`); err != nil {
		return 0, fmt.Errorf("vacuum: %w", err)
	}
	res.VacuumSeconds = time.Since(began).Seconds()
	if _, err := h.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	h.progress("load %.0fs, keys and indexes %.0fs, vacuum %.0fs", res.LoadSeconds, res.IndexSeconds, res.VacuumSeconds)
	return attempts, nil
}

// measureReads times claims and history reads, each Samples times, on random webhooks.
func (h *histEnv) measureReads(ctx context.Context, res *HistoryResult) error {
	rng := rand.New(rand.NewPCG(17, uint64(len(h.layout)))) //nolint:gosec // sample choice, not security
	n := h.cfg.Samples
	timed := func(name string, f func() error) error {
		ds := make([]time.Duration, 0, n)
		for range n {
			t := time.Now()
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			ds = append(ds, time.Since(t))
		}
		res.Latency[name] = percentiles(ds)
		h.progress("%s: median %.2f ms, p99 %.2f ms", name, res.Latency[name].Median, res.Latency[name].P99)
		return nil
	}
	// Claims: 100 deliveries, at most 20 a webhook, given back after each (DispatchRelease, the
	// same text in both layouts), so every claim finds the same due set.
	claimed := 0
	claim := func() error {
		cs, err := h.st.DispatchClaim(ctx, store.ClaimParams{Limit: 100, PerWebhook: 20, Lease: 30 * time.Second, Token: "bench:1"})
		if err != nil {
			return err
		}
		claimed = len(cs)
		ids := make([]int64, len(cs))
		tokens := make([]string, len(cs))
		for i, c := range cs {
			ids[i], tokens[i] = c.ID, c.LeaseToken
		}
		return h.st.DispatchRelease(ctx, ids, tokens)
	}
	res.Claim = "store.DispatchClaim"
	if h.layout == LayoutPlain {
		res.Claim = "DispatchClaim of 0028 (plainClaim)"
		claim = func() error {
			ids, err := h.plainClaim(ctx, "bench:1")
			if err != nil {
				return err
			}
			claimed = len(ids)
			tokens := make([]string, len(ids))
			for i := range tokens {
				tokens[i] = "bench:1"
			}
			return h.st.DispatchRelease(ctx, ids, tokens)
		}
	}
	if err := timed("claim", claim); err != nil {
		return err
	}
	if claimed == 0 {
		return errors.New("claim: nothing claimed")
	}

	// The history reads are the store's own calls. Their queries join by (id, event_at) since
	// migration 0029, so on the plain layout only the series, whose text 0029 left alone, runs;
	// the others would need their 0028 texts and the store's code around them copied here.
	if h.layout == LayoutPlain {
		for _, s := range []string{"history newest page", "history deep page", "history by event id", "history detail"} {
			res.NotMeasured[s] = "the store's queries need migration 0029's event_at (their 0028 texts are not kept)"
		}
		return h.historySeries(ctx, timed, rng)
	}
	// History: a random event's company and one of its webhooks, as the generator made them.
	if err := timed("history newest page", func() error {
		co, w, _ := h.pick(rng)
		page, _, err := h.st.HistoryList(ctx, co, w, store.HistoryFilter{Limit: 50})
		if err == nil && len(page.Items) == 0 {
			err = errors.New("empty page")
		}
		return err
	}); err != nil {
		return err
	}
	if err := timed("history deep page", func() error {
		co, w, k := h.pick(rng)
		at := h.start.Add(time.Duration(k-1) * h.step)
		page, _, err := h.st.HistoryList(ctx, co, w, store.HistoryFilter{Limit: 50, BeforeAt: &at, BeforeID: 1 << 62})
		if err == nil && len(page.Items) == 0 && k > 1000 {
			err = errors.New("empty page")
		}
		return err
	}); err != nil {
		return err
	}
	if err := timed("history by event id", func() error {
		co, w, k := h.pick(rng)
		id := fmt.Sprintf("evt_%x", md5sum(k))
		page, _, err := h.st.HistoryList(ctx, co, w, store.HistoryFilter{Limit: 50, EventPublicID: &id})
		if err == nil && len(page.Items) != 1 {
			err = fmt.Errorf("event %d of webhook %d: %d deliveries found, want 1", k, w, len(page.Items))
		}
		return err
	}); err != nil {
		return err
	}
	if err := h.historySeries(ctx, timed, rng); err != nil {
		return err
	}
	return timed("history detail", func() error {
		co, w, k := h.pick(rng)
		// The delivery of event k to webhook w is 2k-1 or 2k (generator: webhook of 2k-1 is
		// (k+1)%3, of 2k is k%3).
		_ = w
		_, err := h.st.HistoryGet(ctx, co, 2*k)
		return err
	})
}

// pick is a random event k, its company and one of its webhooks, as the generator made them.
func (h *histEnv) pick(rng *rand.Rand) (company string, webhookID int64, k int64) {
	k = 1 + rng.Int64N(h.events)
	c := k%int64(h.cfg.Companies) + 1
	return fmt.Sprintf("co_%d", c), (c-1)*3 + k%3 + 1, k
}

// historySeries times HistorySeries by day over the history's last 30 days.
func (h *histEnv) historySeries(ctx context.Context, timed func(string, func() error) error, rng *rand.Rand) error {
	until := h.start.Add(time.Duration(h.cfg.Days) * 24 * time.Hour)
	since := until.Add(-30 * 24 * time.Hour)
	return timed("history series 30d", func() error {
		co, w, _ := h.pick(rng)
		_, err := h.st.HistorySeries(ctx, co, w, "day", since, until)
		return err
	})
}

// plainClaim runs the 0028 DispatchClaim with the store's parameters for a claim of 100 (scan
// 400, at most 20 a webhook, a 30 s lease) and reads every row as the store does; it returns
// the ids claimed.
func (h *histEnv) plainClaim(ctx context.Context, token string) ([]int64, error) {
	rows, err := h.pool.Query(ctx, plainClaim, []int64{}, 400, []int64{}, []int64{}, 20, 100, 30.0, token)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		id, ok := vals[0].(int64)
		if !ok {
			return nil, fmt.Errorf("claimed id: got %T", vals[0])
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// firstWeekEnd is the end of the history's first week (Monday 00:00 UTC, walhook.history_week):
// the retention run's cutoff in both layouts.
func (h *histEnv) firstWeekEnd() time.Time {
	monday := h.start.Add(-time.Duration((int(h.start.Weekday())+6)%7) * 24 * time.Hour)
	return monday.Add(7 * 24 * time.Hour)
}

// retention removes the history's first week — plain: the 0028 row deletes in the old runner's
// loop; partitioned: the real retention.RunOnce with MaxAge set so that its cutoff is the end of
// that week — then vacuums the three tables; each is timed and its WAL counted.
func (h *histEnv) retention(ctx context.Context, res *HistoryResult) error {
	cut := h.firstWeekEnd()
	rc := &res.Retention
	rc.Cutoff = cut
	before, err := h.historyCounts(ctx)
	if err != nil {
		return err
	}
	if _, err := h.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	lsn0, err := h.walLSN(ctx)
	if err != nil {
		return err
	}
	began := time.Now()
	if h.layout == LayoutPlain {
		rc.Method = fmt.Sprintf("0028 row deletes, batches of %d", retention.DefaultBatchSize)
		if err := h.plainRetention(ctx, cut, retention.DefaultBatchSize); err != nil {
			return err
		}
	} else {
		rc.Method = "retention.RunOnce"
		// MaxAge from now: the runner's own now() comes an instant later, so its cutoff falls
		// just after the week's end and the week is past it.
		r, err := retention.New(retention.Config{MaxAge: time.Since(cut), BatchSize: retention.DefaultBatchSize, Pause: -1},
			h.st, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			return err
		}
		out, err := r.RunOnce(ctx)
		if err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		if out.Busy || out.Skipped {
			// A lock not granted (nothing else runs here): the run measured nothing.
			return fmt.Errorf("retention: a lock was not granted (busy %t, skipped %t)", out.Busy, out.Skipped)
		}
		rc.Weeks, rc.PendingMoved = out.Weeks, out.PendingMoved
	}
	rc.Seconds = time.Since(began).Seconds()
	lsn1, err := h.walLSN(ctx)
	if err != nil {
		return err
	}
	rc.WALBytes = lsn1 - lsn0
	h.progress("retention (%s): %.1fs, %s of WAL", rc.Method, rc.Seconds, mib(rc.WALBytes))
	began = time.Now()
	if _, err := h.pool.Exec(ctx, `VACUUM walhook.event, walhook.delivery, walhook.attempt`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	rc.VacuumSeconds = time.Since(began).Seconds()
	lsn2, err := h.walLSN(ctx)
	if err != nil {
		return err
	}
	rc.VacuumWALBytes = lsn2 - lsn1
	h.progress("vacuum after retention: %.1fs, %s of WAL", rc.VacuumSeconds, mib(rc.VacuumWALBytes))
	began = time.Now()
	if _, err := h.pool.Exec(ctx, `VACUUM (INDEX_CLEANUP ON) walhook.event, walhook.delivery, walhook.attempt`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	rc.IndexVacuumSeconds = time.Since(began).Seconds()
	lsn3, err := h.walLSN(ctx)
	if err != nil {
		return err
	}
	rc.IndexVacuumWALBytes = lsn3 - lsn2
	h.progress("vacuum (index cleanup on) after it: %.1fs, %s of WAL", rc.IndexVacuumSeconds, mib(rc.IndexVacuumWALBytes))
	after, err := h.historyCounts(ctx)
	if err != nil {
		return err
	}
	rc.Deliveries, rc.Events, rc.Attempts = before[0]-after[0], before[1]-after[1], before[2]-after[2]
	left := `SELECT count(*) FROM walhook.delivery WHERE event_at < $1`
	if h.layout == LayoutPlain {
		left = `SELECT count(*) FROM walhook.delivery WHERE created_at < $1`
	}
	if err := h.pool.QueryRow(ctx, left, cut).Scan(&rc.Left); err != nil {
		return fmt.Errorf("count rows left: %w", err)
	}
	h.progress("retention removed %d deliveries, %d events, %d attempts; %d deliveries older than the cutoff left",
		rc.Deliveries, rc.Events, rc.Attempts, rc.Left)
	return nil
}

// historyCounts counts the deliveries, events and attempts.
func (h *histEnv) historyCounts(ctx context.Context) ([3]int64, error) {
	var n [3]int64
	err := h.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM walhook.delivery), (SELECT count(*) FROM walhook.event),
	        (SELECT count(*) FROM walhook.attempt)`).Scan(&n[0], &n[1], &n[2])
	if err != nil {
		return n, fmt.Errorf("count history rows: %w", err)
	}
	return n, nil
}

// plainRetention is the retention runner of 0028 (relay/retention at 511b22a) without its lock:
// finished deliveries created and changed before cutoff (their attempts by cascade), then events
// captured before it that no delivery references, each a DELETE of at most batch rows repeated
// until one deletes fewer, with no pause between them.
func (h *histEnv) plainRetention(ctx context.Context, cutoff time.Time, batch int) error {
	for _, stmt := range []string{plainRetentionDeliveries, plainRetentionEvents} {
		for {
			tag, err := h.pool.Exec(ctx, stmt, cutoff, batch)
			if err != nil {
				return fmt.Errorf("retention (0028 row deletes): %w", err)
			}
			if tag.RowsAffected() < int64(batch) {
				break
			}
		}
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (h *histEnv) walLSN(ctx context.Context) (int64, error) {
	var n int64
	if err := h.pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0')::bigint`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read WAL position: %w", err)
	}
	return n, nil
}

// WriteJSON writes the report to path, creating its directory.
func (r *HistoryReport) WriteJSON(path string) error { return writeJSON(path, r) }

// WriteTable prints the report as a table, a column per layout.
func (r *HistoryReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "walhook bench history on %d CPUs, %d MB, %s, PostgreSQL %s\n", r.Machine.CPUs, r.Machine.MemoryMB, r.Machine.GoVersion, r.Machine.PostgreSQL)
	fmt.Fprintf(w, "%d deliveries, %d events, %d attempts over %d days; %d companies, %d webhooks; %d samples a statement\n",
		r.Deliveries, r.Events, r.Attempts, r.Days, r.Companies, r.Webhooks, r.Samples)
	fmt.Fprintln(w, "plain: the schema before migration 0029 (0028's claim and row deletes); partitioned: the migrations' weekly partitions (store.DispatchClaim, retention.RunOnce)")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := []string{"measure"}
	for _, res := range r.Results {
		head = append(head, res.Layout)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	row := func(name string, f func(HistoryResult) string) {
		cells := []string{name}
		for _, res := range r.Results {
			cells = append(cells, f(res))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("load / keys+indexes / vacuum s", func(x HistoryResult) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f", x.LoadSeconds, x.IndexSeconds, x.VacuumSeconds)
	})
	row("size event / delivery / attempt", func(x HistoryResult) string {
		return fmt.Sprintf("%s / %s / %s", gib(x.Bytes["event"]), gib(x.Bytes["delivery"]), gib(x.Bytes["attempt"]))
	})
	row("partitions a table (default included)", func(x HistoryResult) string { return fmt.Sprint(x.Partitions) })
	row("retention: cutoff (first week's end)", func(x HistoryResult) string { return x.Retention.Cutoff.Format(time.DateOnly) })
	row("retention: deliveries / events / attempts removed", func(x HistoryResult) string {
		return fmt.Sprintf("%d / %d / %d", x.Retention.Deliveries, x.Retention.Events, x.Retention.Attempts)
	})
	row("retention: deliveries older than the cutoff left", func(x HistoryResult) string { return fmt.Sprint(x.Retention.Left) })
	row("retention: weeks dropped / pending moved", func(x HistoryResult) string {
		if x.Layout == LayoutPlain {
			return "- (row deletes)"
		}
		return fmt.Sprintf("%d / %d", x.Retention.Weeks, x.Retention.PendingMoved)
	})
	row("retention: time s", func(x HistoryResult) string { return fmt.Sprintf("%.2f", x.Retention.Seconds) })
	row("retention: WAL", func(x HistoryResult) string { return mib(x.Retention.WALBytes) })
	row("retention: WAL bytes / delivery removed", func(x HistoryResult) string {
		if x.Retention.Deliveries == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(x.Retention.WALBytes)/float64(x.Retention.Deliveries))
	})
	row("vacuum after: time s", func(x HistoryResult) string { return fmt.Sprintf("%.2f", x.Retention.VacuumSeconds) })
	row("vacuum after: WAL", func(x HistoryResult) string { return mib(x.Retention.VacuumWALBytes) })
	row("vacuum (index cleanup on): time s", func(x HistoryResult) string { return fmt.Sprintf("%.2f", x.Retention.IndexVacuumSeconds) })
	row("vacuum (index cleanup on): WAL", func(x HistoryResult) string { return mib(x.Retention.IndexVacuumWALBytes) })
	for _, s := range historyStatements {
		row(s+" ms (median / p99)", func(x HistoryResult) string {
			p, ok := x.Latency[s]
			if !ok {
				if _, skipped := x.NotMeasured[s]; skipped {
					return "not measured (*)"
				}
				return "-"
			}
			return fmt.Sprintf("%.2f / %.2f", p.Median, p.P99)
		})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		fmt.Fprintf(w, "claim (%s): %s\n", res.Layout, res.Claim)
		// One line a reason, the statements in the table's order.
		var whys []string
		of := map[string][]string{}
		for _, s := range historyStatements {
			if why, ok := res.NotMeasured[s]; ok {
				if len(of[why]) == 0 {
					whys = append(whys, why)
				}
				of[why] = append(of[why], s)
			}
		}
		for _, why := range whys {
			fmt.Fprintf(w, "(*) %s, not measured: %s: %s\n", res.Layout, strings.Join(of[why], ", "), why)
		}
	}
	return nil
}

// md5sum is PostgreSQL's md5(k::text), the generator's event public id ("evt_" || md5(k::text)).
func md5sum(k int64) [16]byte {
	return md5.Sum([]byte(strconv.FormatInt(k, 10))) //nolint:gosec // matches the generator's md5(), not security
}
