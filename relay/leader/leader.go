package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/internal/lograte"
	"github.com/walhook/walhook/relay/internal/metric"
	"github.com/walhook/walhook/relay/store"
)

// Config configures an Elector.
type Config struct {
	// Name is the lease (the role). Required, e.g. "capture:walhook".
	Name string
	// Holder names this replica. Required; unique per process.
	Holder string
	// TTL is how long a lease lasts without renewal. Default 6s.
	TTL time.Duration
	// Renew is how often the leader renews and a follower tries to acquire. Default TTL/3.
	Renew time.Duration
	// Timeout bounds each lease query. Default Renew.
	Timeout time.Duration
}

// Elector runs lead only while this replica holds the lease.
type Elector struct {
	cfg   Config
	st    *store.Store
	log   zerolog.Logger
	gauge prometheus.Gauge

	mu      sync.Mutex
	leading bool

	// afterAttempt, for tests, runs after each attempt to acquire the lease while following,
	// with its outcome.
	afterAttempt func(ok bool, err error)
}

// Metrics are the elector's collectors, shared by every role of a process.
type Metrics struct {
	leader *prometheus.GaugeVec
}

// NewMetrics registers the leader gauge on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	b := metric.NewBuilder(reg)
	m := &Metrics{leader: b.GaugeVec(metric.Opts{
		Name:   "walhook_leader",
		Help:   "1 when this replica leads the role (the capture leader reads the replication slot).",
		Shared: true,
	}, "role")}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("register leader metrics: %w", err)
	}
	return m, nil
}

// New returns an elector for cfg.Name; role is the metric label (bounded: a fixed role name).
func New(cfg Config, role string, st *store.Store, log zerolog.Logger, m *Metrics) (*Elector, error) {
	if cfg.Name == "" || cfg.Holder == "" {
		return nil, errors.New("leader: Name and Holder are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 6 * time.Second
	}
	if cfg.Renew <= 0 || cfg.Renew >= cfg.TTL {
		cfg.Renew = cfg.TTL / 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.Renew
	}
	return &Elector{cfg: cfg, st: st, log: log.With().Str("lease", cfg.Name).Logger(), gauge: m.leader.WithLabelValues(role)}, nil
}

// Leading reports whether this replica leads now.
func (e *Elector) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

func (e *Elector) setLeading(v bool) {
	e.mu.Lock()
	e.leading = v
	e.mu.Unlock()
	if v {
		e.gauge.Set(1)
	} else {
		e.gauge.Set(0)
	}
}

func (e *Elector) acquire(ctx context.Context) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	ok, err := e.st.LeaseAcquire(qctx, e.cfg.Name, e.cfg.Holder, e.cfg.TTL)
	if err != nil {
		return false, fmt.Errorf("acquire lease: %w", err)
	}
	return ok, nil
}

// Run elects until ctx is cancelled: while it holds the lease, lead runs with a context cancelled
// when leadership ends. Run returns nil when ctx is cancelled.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	defer e.setLeading(false)
	tick := time.NewTicker(e.cfg.Renew)
	defer tick.Stop()
	unreachable := lograte.Limiter{Every: time.Minute}
	for {
		ok, err := e.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			unreachable.Msg(e.log.Warn().Err(err), "leader election: cannot reach the lease")
		}
		if e.afterAttempt != nil {
			e.afterAttempt(ok, err)
		}
		if ok {
			e.lead(ctx, lead, tick)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// lead runs lead while renewing, and steps down as doc.go describes.
func (e *Elector) lead(ctx context.Context, lead func(ctx context.Context) error, tick *time.Ticker) {
	e.setLeading(true)
	e.log.Info().Msg("became leader")
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lead(lctx) }()
	lastRenew := time.Now()
	reason := ""
loop:
	for {
		select {
		case err := <-done:
			done = nil
			if err != nil && !errors.Is(err, context.Canceled) {
				reason = "lead failed: " + err.Error()
			} else {
				reason = "lead returned"
			}
			break loop
		case <-ctx.Done():
			reason = "stopping"
			break loop
		case <-tick.C:
			ok, err := e.acquire(ctx)
			switch {
			case ok:
				lastRenew = time.Now()
			case err == nil:
				reason = "lease taken by another replica"
				break loop
			case time.Since(lastRenew) > e.cfg.TTL-e.cfg.Renew:
				reason = "cannot renew the lease: " + err.Error()
				break loop
			}
		}
	}
	cancel()
	if done != nil {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			e.log.Warn().Err(err).Msg("lead stopped with an error")
		}
	}
	e.setLeading(false)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
	defer rcancel()
	if err := e.st.LeaseRelease(rctx, e.cfg.Name, e.cfg.Holder); err != nil {
		e.log.Warn().Err(err).Msg("release lease")
	}
	e.log.Info().Str("reason", reason).Msg("stepped down")
}
