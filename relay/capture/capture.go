package capture

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/leader"
	"github.com/walhook/walhook/relay/store"
)

// Config configures capture. The zero value of every field but Catalog is a usable default.
type Config struct {
	// Mode is "wal" (logical replication; default) or "poll" (outbox polling only).
	Mode store.CaptureMode
	// Slot is the logical replication slot's name. Default "walhook".
	Slot string
	// Publication is the publication's name. Default "walhook".
	Publication string
	// Catalog is the trigger-event catalog. Required.
	Catalog *catalog.Catalog
	// InstanceID names this replica in the leader lease. Default: set by the relay.
	InstanceID string
	// BatchEvents caps the events of one fan-out transaction; consecutive source transactions
	// are batched up to it. Default 5000.
	BatchEvents int
	// StatusInterval is how often the flush position is reported to the server (also the
	// receive deadline). Default 1s; keep it well under the server's wal_sender_timeout (60s).
	StatusInterval time.Duration
	// ConnectTimeout bounds opening the replication connection. Default 10s.
	ConnectTimeout time.Duration
	// CommitTimeout bounds one fan-out transaction. Default 60s.
	CommitTimeout time.Duration
	// PollInterval is, in poll mode, the longest wait between two claims when no NOTIFY arrives.
	// Default 1s.
	PollInterval time.Duration
	// PollBatch is how many outbox rows one claim takes. Default 1000.
	PollBatch int
	// LeaseTTL is the capture leader's lease; a standby takes over at most LeaseTTL plus a third
	// of it after the leader dies. Default 6s.
	LeaseTTL time.Duration
	// LagInterval is how often the leader refreshes walhook_replication_lag_bytes. Default 10s.
	LagInterval time.Duration
	// Wake, when not nil, is called after a fan-out transaction that created deliveries commits
	// (the in-process dispatcher's Wake). Other replicas are woken by NOTIFY walhook_deliveries.
	Wake func()
}

var namePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) defaults() error {
	if c.Mode == "" {
		c.Mode = store.CaptureWAL
	}
	if c.Mode != store.CaptureWAL && c.Mode != store.CapturePoll {
		return fmt.Errorf("capture mode %q: want wal or poll", c.Mode)
	}
	if c.Slot == "" {
		c.Slot = "walhook"
	}
	if c.Publication == "" {
		c.Publication = "walhook"
	}
	if !namePattern.MatchString(c.Slot) || !namePattern.MatchString(c.Publication) {
		return fmt.Errorf("slot %q / publication %q: want lowercase letters, digits and _ (at most 63)", c.Slot, c.Publication)
	}
	if c.Catalog == nil {
		return errors.New("capture: a catalog is required")
	}
	if c.BatchEvents <= 0 {
		c.BatchEvents = 5000
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.PollBatch <= 0 {
		c.PollBatch = 1000
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 6 * time.Second
	}
	if c.LagInterval <= 0 {
		c.LagInterval = 10 * time.Second
	}
	return nil
}

type metrics struct {
	events       *prometheus.CounterVec
	deliveries   prometheus.Counter
	skipped      *prometheus.CounterVec
	decodeErrors prometheus.Counter
	transactions prometheus.Counter
	batch        prometheus.Histogram
	lag          prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_capture_events_total", Help: "Events captured and stored, by source (table, outbox, message) and event key.",
		}, []string{"source", "event"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_capture_deliveries_total", Help: "Deliveries created by fan-out.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_capture_skipped_total", Help: "Bad source data skipped, by reason (null_tenant, unknown_company, unknown_event, bad_payload, forged: a logical message with walhook's prefix not signed by walhook.emit).",
		}, []string{"reason"}),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_capture_decode_errors_total", Help: "Replication messages that could not be decoded (skipped).",
		}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_capture_transactions_total", Help: "Source transactions processed.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "walhook_capture_commit_seconds", Help: "Duration of one fan-out transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walhook_replication_lag_bytes", Help: "Server WAL position minus the slot's confirmed flush position (leader only).",
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.deliveries, m.skipped, m.decodeErrors, m.transactions, m.batch, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register capture metrics: %w", err)
		}
	}
	for _, r := range []string{skipNullTenant, skipUnknownCompany, skipUnknownEvent, skipBadPayload, skipForged} {
		m.skipped.WithLabelValues(r)
	}
	return m, nil
}

// Capture reads the application's events into walhook.event and walhook.delivery.
type Capture struct {
	cfg     Config
	st      *store.Store
	log     zerolog.Logger
	m       *metrics
	elector *leader.Elector
	limiter logLimiter
	// forgedLog is forged messages' own limiter, so other bad data cannot hide a forgery from
	// the log.
	forgedLog logLimiter

	// afterCommit, for tests, runs after each fan-out transaction commits, before its LSN is
	// reported.
	afterCommit func(endLSN uint64)
}

// New builds capture. reg receives its metrics (and the leader gauge).
func New(cfg Config, st *store.Store, log zerolog.Logger, reg prometheus.Registerer) (*Capture, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Capture{cfg: cfg, st: st, log: log.With().Str("part", "capture").Logger(), m: m}
	if cfg.Mode == store.CaptureWAL {
		lm, err := leader.NewMetrics(reg)
		if err != nil {
			return nil, err
		}
		if cfg.InstanceID == "" {
			return nil, errors.New("capture: InstanceID is required in wal mode")
		}
		c.elector, err = leader.New(leader.Config{Name: "capture:" + cfg.Slot, Holder: cfg.InstanceID, TTL: cfg.LeaseTTL}, "capture", st, c.log, lm)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Leading reports whether this replica is the capture leader (always false in poll mode).
func (c *Capture) Leading() bool { return c.elector != nil && c.elector.Leading() }

// Run captures until ctx is cancelled. In WAL mode only the elected leader streams; the others
// wait to take over. In poll mode every replica polls.
func (c *Capture) Run(ctx context.Context) error {
	if err := c.st.CaptureModeSet(ctx, c.cfg.Mode); err != nil {
		return fmt.Errorf("record capture mode: %w", err)
	}
	c.log.Info().Str("mode", string(c.cfg.Mode)).Str("slot", c.cfg.Slot).Str("catalog", c.cfg.Catalog.String()).Msg("capture starting")
	if c.cfg.Mode == store.CapturePoll {
		return c.poll(ctx)
	}
	c.warnUndetectedMoves(ctx)
	return c.elector.Run(ctx, c.lead)
}

// warnUndetectedMoves logs the tables where a row moved to another company cannot be told
// (catalog.UndetectedMoves). A failed look-up is logged and capture goes on: the warning is
// advice, and the tables are validated again when the catalog is synced.
func (c *Capture) warnUndetectedMoves(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	warnings, err := c.cfg.Catalog.UndetectedMoves(qctx, c.st)
	if err != nil {
		c.log.Warn().Err(err).Msg("cannot check the catalog's tables for company moves")
		return
	}
	for _, w := range warnings {
		c.log.Warn().Msg(w)
	}
}

// streamRetryMax caps the wait between two replication sessions, so capture resumes within a
// couple of seconds of PostgreSQL coming back (a restart, a failover).
const streamRetryMax = 2 * time.Second

// lead is the leader's work: stream, restarting with capped backoff after an error, and keep the
// lag gauge fresh, until leadership ends. The backoff starts over after a session that lasted
// longer than the cap (it connected and streamed), so a second outage waits no longer than the
// first.
func (c *Capture) lead(ctx context.Context) error {
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		c.watchLag(ctx)
	}()
	defer func() { <-lagDone }()
	backoff := 250 * time.Millisecond
	for {
		started := time.Now()
		err := c.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > streamRetryMax {
			backoff = 250 * time.Millisecond
		}
		c.limiter.log(c.log.Warn().Err(err).Dur("retry_in", backoff), "replication stream stopped; restarting")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, streamRetryMax)
	}
}

func (c *Capture) watchLag(ctx context.Context) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if s, err := c.st.CaptureSlotStatus(qctx, c.cfg.Slot); err == nil {
			c.m.lag.Set(float64(s.LagBytes))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logLimiter lets a loop log an error at most once per interval.
type logLimiter struct {
	mu   sync.Mutex
	last time.Time
}

func (l *logLimiter) log(e *zerolog.Event, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.last) < 10*time.Second {
		e.Discard()
		return
	}
	l.last = time.Now()
	e.Msg(msg)
}
