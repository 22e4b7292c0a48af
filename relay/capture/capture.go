package capture

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/internal/lograte"
	"github.com/walhook/walhook/relay/internal/metric"
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
	// Source is the application's database, when walhook keeps its own apart from it (nil: the
	// same store). Capture reads it: the replication connection, the slot and the publication,
	// the emit keys and capture_setting, the catalog's tables, and walhook.outbox (claimed,
	// LISTENed on, and deleted there once their events are committed in walhook's database).
	// Events, deliveries, quarantine, the leader lease, public ids and the stored position stay
	// in the store capture is built with. See "Two databases" in doc.go.
	Source *store.Store
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
	// MaxEventBytes caps one event (its envelope, in bytes). A larger one is never rendered nor
	// delivered: it is quarantined as too_large without its payload (see "Bad data" in doc.go).
	// Default 1 MiB (DefaultMaxEventBytes).
	MaxEventBytes int
	// LeaseTTL is the capture leader's lease; a standby takes over at most LeaseTTL plus a third
	// of it after the leader dies. Default 6s.
	LeaseTTL time.Duration
	// LagInterval is how often the leader refreshes walhook_replication_lag_bytes. Default 10s.
	LagInterval time.Duration
	// Wake, when not nil, is called after a fan-out transaction that created deliveries commits
	// (the in-process dispatcher's Wake). Other replicas are woken by NOTIFY walhook_deliveries.
	Wake func()
	// Dispatcher, when not nil, is the dispatcher in this process: the capture leader hands it
	// fresh deliveries in memory instead of leaving them to be claimed (see handoff.go in package
	// dispatch). The relay sets it; in poll mode it is not used.
	Dispatcher LocalDispatcher
}

// LocalDispatcher is what capture needs of the dispatcher in its process to hand it fresh
// deliveries: a plan for the next fan-out transaction (nil: hand nothing over), and the
// deliveries inserted under it, once committed.
type LocalDispatcher interface {
	HandoffPlan() *store.Handoff
	Take(ctx context.Context, handed []store.Claimed)
}

// DefaultMaxEventBytes is Config.MaxEventBytes's default, 1 MiB: what receivers commonly accept
// in one webhook request (docs/operations.md, "Event size"), and small enough that a relay's
// memory stays a small multiple of it per event.
const DefaultMaxEventBytes = 1 << 20

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
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
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
	// quarantined counts events set aside because PostgreSQL refused their data, by
	// store.FailureClass, or because they were larger than MaxEventBytes (too_large); quarantineRows is how many are in walhook.capture_quarantine now.
	quarantined    *prometheus.CounterVec
	quarantineRows prometheus.Gauge
	// failures counts replication sessions that ended in an error, by failureReason.
	failures *prometheus.CounterVec
	// epoch is the source epoch capture reads in; epochs counts the epochs it started, by
	// reason (epoch.go).
	epoch  prometheus.Gauge
	epochs *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	b := metric.NewBuilder(reg)
	m := &metrics{
		events: b.CounterVec(metric.Opts{
			Name: "walhook_capture_events_total",
			Help: "Events captured and stored, by source (table, outbox, message) and event key.",
		}, "source", "event"),
		deliveries: b.Counter(metric.Opts{
			Name: "walhook_capture_deliveries_total",
			Help: "Deliveries created by fan-out.",
		}),
		skipped: b.CounterVec(metric.Opts{
			Name: "walhook_capture_skipped_total",
			Help: "Bad source data skipped, by reason (null_tenant, unknown_company, unknown_event, bad_payload, forged: a logical message with walhook's prefix not signed by walhook.emit).",
		}, "reason"),
		decodeErrors: b.Counter(metric.Opts{
			Name: "walhook_capture_decode_errors_total",
			Help: "Replication messages that could not be decoded (skipped).",
		}),
		transactions: b.Counter(metric.Opts{
			Name: "walhook_capture_transactions_total",
			Help: "Source transactions processed.",
		}),
		batch: b.Histogram(metric.Opts{
			Name: "walhook_capture_commit_seconds",
			Help: "Duration of one fan-out transaction.",
		}, prometheus.ExponentialBuckets(0.001, 2, 14)),
		lag: b.Gauge(metric.Opts{
			Name: "walhook_replication_lag_bytes",
			Help: "Server WAL position minus the slot's confirmed flush position (leader only).",
		}),
		quarantined: b.CounterVec(metric.Opts{
			Name: "walhook_capture_quarantined_total",
			Help: "Events set aside in walhook.capture_quarantine because PostgreSQL refused their data, by reason (data_exception, integrity_violation, program_limit), or because they exceeded --capture-max-event-bytes (too_large, kept without payload).",
		}, "reason"),
		quarantineRows: b.Gauge(metric.Opts{
			Name: "walhook_capture_quarantine_rows",
			Help: "Events in walhook.capture_quarantine now (refreshed every lag interval).",
		}),
		failures: b.CounterVec(metric.Opts{
			Name: "walhook_capture_failures_total",
			Help: "Replication sessions that ended in an error, by reason (connect, permission, slot_in_use, slot_lost, prepare, stream, commit).",
		}, "reason"),
		epoch: b.Gauge(metric.Opts{
			Name: "walhook_capture_source_epoch",
			Help: "The source epoch capture reads in: how many times the application's database was found replaced, restored or rewound (source keys of epoch N > 0 start with e<N>:).",
		}),
		epochs: b.CounterVec(metric.Opts{
			Name: "walhook_capture_epochs_total",
			Help: "Source epochs capture started, by reason (other_cluster, slot_missing, rewound): the application's database was not the one capture read before.",
		}, "reason"),
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("register capture metrics: %w", err)
	}
	metric.Preset(m.skipped, skipNullTenant, skipUnknownCompany, skipUnknownEvent, skipBadPayload, skipUnstorable, skipForged)
	metric.Preset(m.quarantined, append(store.FailureClasses(), quarantineTooLarge)...)
	metric.Preset(m.failures, reasonConnect, reasonPermission, reasonSlotInUse, reasonPrepare, reasonStart, reasonStream, reasonCommit, reasonSlotLost)
	metric.Preset(m.epochs, epochOtherCluster, epochSlotMissing, epochRewound)
	return m, nil
}

// Capture reads the application's events into walhook.event and walhook.delivery.
type Capture struct {
	cfg Config
	st  *store.Store
	// src is the application's database (Config.Source; st when there is one database).
	src     *store.Store
	log     zerolog.Logger
	m       *metrics
	elector *leader.Elector
	limiter lograte.Limiter
	// slot is the leader's view of the slot's wal_status (nil in poll mode).
	slot *slotWatch
	// forgedLog is forged messages' own limiter, so other bad data cannot hide a forgery from
	// the log.
	forgedLog lograte.Limiter
	// tooLargeLog is oversized events' own limiter (events over MaxEventBytes).
	tooLargeLog lograte.Limiter

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
	c := &Capture{cfg: cfg, st: st, src: cfg.Source, log: log.With().Str("part", "capture").Logger(), m: m}
	if c.src == nil {
		c.src = st
	}
	if cfg.Mode == store.CaptureWAL {
		lm, err := leader.NewMetrics(reg)
		if err != nil {
			return nil, err
		}
		if cfg.InstanceID == "" {
			return nil, errors.New("capture: InstanceID is required in wal mode")
		}
		if c.slot, err = newSlotWatch(cfg.Slot, reg); err != nil {
			return nil, err
		}
		c.elector, err = leader.New(leader.Config{Name: "capture:" + cfg.Slot, Holder: cfg.InstanceID, TTL: cfg.LeaseTTL}, "capture", st, c.log, lm)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// twoDatabases reports whether the application's database is not walhook's (Config.Source).
func (c *Capture) twoDatabases() bool { return c.source() != c.st }

// source is the application's database (Config.Source, or walhook's own).
func (c *Capture) source() *store.Store {
	if c.src == nil { // a Capture built by hand in a test
		return c.st
	}
	return c.src
}

// Check reports why capture cannot work, for /readyz: a *SlotLostError while this replica leads
// and PostgreSQL has invalidated the slot; nil otherwise.
func (c *Capture) Check() error {
	return c.slot.check()
}

// Run captures until ctx is cancelled. In WAL mode only the elected leader streams; the others
// wait to take over. In poll mode every replica polls.
func (c *Capture) Run(ctx context.Context) error {
	if err := c.source().CaptureModeSet(ctx, c.cfg.Mode); err != nil {
		return fmt.Errorf("record capture mode: %w", err)
	}
	c.log.Info().Str("mode", string(c.cfg.Mode)).Str("slot", c.cfg.Slot).Str("catalog", c.cfg.Catalog.String()).Msg("capture starting")
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		c.watchQuarantine(ctx)
	}()
	defer func() { <-watched }()
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
	warnings, err := c.cfg.Catalog.UndetectedMoves(qctx, c.source())
	if err != nil {
		c.log.Warn().Err(err).Msg("cannot check the catalog's tables for company moves")
		return
	}
	for _, w := range warnings {
		c.log.Warn().Msg(w)
	}
}

// watchQuarantine keeps walhook_capture_quarantine_rows fresh (every replica: an operator's
// retry or drop lowers it wherever it runs) until ctx ends.
func (c *Capture) watchQuarantine(ctx context.Context) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if n, err := c.st.CaptureQuarantineCount(qctx); err == nil {
			c.m.quarantineRows.Set(float64(n))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Restart backoff of the replication session. The wait starts at streamRetryMin and doubles
// up to streamRetryMax, so capture resumes within a couple of seconds of PostgreSQL coming back
// (a restart, a failover; the chaos suite measures it). Only when the same failure recurs after
// PostgreSQL answered (failureReason other than "connect": a missing privilege, a slot held by
// someone else, a publication that cannot be changed) more than streamRepeatsFast times in a row
// does the cap grow to streamRetryRepeated: such a failure does not go away in two seconds, and
// restarting hot only loads the database and the logs. The reason is counted in
// walhook_capture_failures_total{reason} and logged (rate-limited). A session that streamed
// longer than streamRetryMax starts the backoff over.
const (
	streamRetryMin      = 250 * time.Millisecond
	streamRetryMax      = 2 * time.Second
	streamRetryRepeated = 30 * time.Second
	streamRepeatsFast   = 5
)

// lead is the leader's work: stream, restarting with backoff after an error (see streamRetryMin),
// and keep the lag gauge fresh, until leadership ends. A lost slot (slot.go) is re-checked every
// slotLostRetry instead: it does not come back by itself.
func (c *Capture) lead(ctx context.Context) error {
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		c.watchLag(ctx)
	}()
	defer func() {
		<-lagDone
		c.slot.set("") // only the leader reports the slot
	}()
	var b restartBackoff
	for {
		started := time.Now()
		err := c.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		var lost *SlotLostError
		if errors.As(err, &lost) {
			c.m.failures.WithLabelValues(reasonSlotLost).Inc()
			wait = slotLostRetry
			c.slot.lostLog(lost, c.log)
		} else {
			reason := failureReason(err)
			c.m.failures.WithLabelValues(reason).Inc()
			wait = b.next(reason, time.Since(started) > streamRetryMax)
			c.limiter.Msg(c.log.Warn().Err(err).Str("reason", reason).Int("in_a_row", b.repeats).Dur("retry_in", wait),
				"replication stream stopped; restarting")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// restartBackoff is the wait between replication sessions; see streamRetryMin.
type restartBackoff struct {
	last    string // the previous failure's reason
	repeats int    // consecutive failures with that reason
	wait    time.Duration
}

// next returns the wait before the next session after a failure with reason; streamed says the
// failed session had been streaming (it lasted longer than streamRetryMax).
func (b *restartBackoff) next(reason string, streamed bool) time.Duration {
	if streamed || reason != b.last {
		b.last, b.repeats, b.wait = reason, 0, 0
	}
	b.repeats++
	capAt := streamRetryMax
	if reason != reasonConnect && b.repeats > streamRepeatsFast {
		capAt = streamRetryRepeated
	}
	if b.wait == 0 {
		b.wait = streamRetryMin
	} else {
		b.wait = min(b.wait*2, capAt)
	}
	return b.wait
}

// Why a replication session ended (walhook_capture_failures_total{reason}): a bounded set.
const (
	reasonConnect    = "connect"     // the replication connection could not be opened
	reasonPermission = "permission"  // SQLSTATE 42501: a privilege is missing
	reasonSlotInUse  = "slot_in_use" // SQLSTATE 55006: another process reads the slot
	reasonPrepare    = "prepare"     // the publication or the slot could not be set up
	reasonStart      = "start"       // START_REPLICATION refused
	reasonStream     = "stream"      // the stream broke (connection lost, server ended it)
	reasonCommit     = "commit"      // a fan-out transaction failed transiently
	reasonSlotLost   = "slot_lost"   // PostgreSQL invalidated the slot (slot.go); re-checked, not restarted hot
)

// sessionError is an error that ended a replication session, with the stage it ended in (one of
// the reasons above).
type sessionError struct {
	stage string
	err   error
}

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

// failureReason classifies why a session ended: a missing privilege and a slot in use by its
// SQLSTATE, whatever the stage; otherwise the stage.
func failureReason(err error) string {
	switch store.SQLState(err) {
	case "42501":
		return reasonPermission
	case "55006":
		return reasonSlotInUse
	}
	var se *sessionError
	if errors.As(err, &se) {
		return se.stage
	}
	return reasonStream
}

func (c *Capture) watchLag(ctx context.Context) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if s, err := c.source().CaptureSlotStatus(qctx, c.cfg.Slot); err == nil {
			c.m.lag.Set(float64(s.LagBytes))
			_ = c.slot.observe(s, c.log) // a lost slot also stops the stream, which logs it
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
