// Package relay composes walhook's long-running parts — capture (leader only), fan-out, dispatch
// and maintenance — into one Run(ctx) error. Each part is a runner; Run starts them together and
// stops them all when ctx is cancelled or when one fails.
package relay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/capture"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/retention"
	"github.com/walhook/walhook/relay/store"
)

// Config configures the relay.
type Config struct {
	// InstanceID names this replica in leases and logs. Default: hostname-pid.
	InstanceID string
	// Retention configures the deletion of old history (see package retention).
	Retention retention.Config
	// Dispatch configures delivery (see package dispatch); its InstanceID defaults to InstanceID.
	Dispatch dispatch.Config
	// Capture configures capture (see package capture). Capture runs when Capture.Catalog is set;
	// its InstanceID defaults to InstanceID, its Wake and Dispatcher (the in-memory hand-off) to
	// the dispatcher. Capture.Source, when set, is the application's database (walhook's own is
	// the store the relay is built with); the relay's other parts never use it.
	Capture capture.Config
}

// runner is one long-running part of the relay.
type runner struct {
	name string
	run  func(ctx context.Context) error
}

// Relay runs the relay's parts.
type Relay struct {
	cfg     Config
	store   *store.Store
	log     zerolog.Logger
	reg     prometheus.Registerer
	runners []runner
	running atomic.Bool
	// dispatch sends deliveries; capture calls its Wake after committing new ones.
	dispatch *dispatch.Dispatcher
	// capture is nil when the relay runs without a catalog.
	capture *capture.Capture
	// retention keeps the history's age, and creates its partitions ahead (also at start).
	retention *retention.Retention
}

// New builds a relay. reg receives the relay's metrics.
func New(cfg Config, st *store.Store, log zerolog.Logger, reg prometheus.Registerer) (*Relay, error) {
	if cfg.InstanceID == "" {
		host, _ := os.Hostname()
		cfg.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	r := &Relay{cfg: cfg, store: st, log: log.With().Str("instance", cfg.InstanceID).Logger(), reg: reg}
	var err error
	if r.retention, err = retention.New(cfg.Retention, st, r.log, reg); err != nil {
		return nil, err
	}
	r.runners = append(r.runners, runner{"retention", r.retention.Run})
	if cfg.Dispatch.InstanceID == "" {
		cfg.Dispatch.InstanceID = cfg.InstanceID
	}
	if r.dispatch, err = dispatch.New(cfg.Dispatch, st, r.log, reg); err != nil {
		return nil, err
	}
	r.runners = append(r.runners, runner{"dispatch", r.dispatch.Run})
	if cfg.Capture.Catalog != nil {
		if cfg.Capture.InstanceID == "" {
			cfg.Capture.InstanceID = cfg.InstanceID
		}
		if cfg.Capture.Wake == nil && r.dispatch != nil {
			cfg.Capture.Wake = r.dispatch.Wake
		}
		if cfg.Capture.Dispatcher == nil && r.dispatch != nil {
			cfg.Capture.Dispatcher = r.dispatch
		}
		cp, err := capture.New(cfg.Capture, st, r.log, reg)
		if err != nil {
			return nil, err
		}
		r.capture = cp
		r.runners = append(r.runners, runner{"capture", cp.Run})
	}
	return r, nil
}

// Prepare sets up what capture reads, the publication and the replication slot
// (capture.Prepare), before anything runs: a write committed after it returns is captured.
// `walhook dev` runs it before it says it is running; serve leaves it to the capture leader, which
// prepares at the start of every stream and retries while the database refuses. It does nothing
// without capture or in poll mode.
func (r *Relay) Prepare(ctx context.Context) error {
	if r.capture == nil || r.cfg.Capture.Mode == store.CapturePoll {
		return nil
	}
	if err := r.capture.Prepare(ctx); err != nil {
		return fmt.Errorf("prepare capture: %w", err)
	}
	return nil
}

// Ready reports whether the relay is running.
func (r *Relay) Ready() bool { return r.running.Load() }

// Check says why the relay cannot do its work, nil when it can (for /readyz): it is not running,
// or capture's replication slot was invalidated by PostgreSQL (capture.SlotLostError: an
// operator must recreate it, so the replica says so where orchestrators and probes look).
func (r *Relay) Check() error {
	if !r.running.Load() {
		return errors.New("relay not running")
	}
	if r.capture != nil {
		if err := r.capture.Check(); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
	}
	return nil
}

// Run runs every part until ctx is cancelled (returns nil) or a part fails (returns its error
// after stopping the others). Before any part starts, it creates the history's partitions of this
// week and the next two (retention.EnsurePartitions), so that what capture writes lands in weeks
// retention can drop whole; a failure there is logged, not fatal: the rows then go to the default
// partitions, which retention empties row by row, and the retention loop tries again.
func (r *Relay) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Running (ready) from here: the partitions only decide where new history lands.
	r.running.Store(true)
	defer r.running.Store(false)
	if err := r.retention.EnsurePartitions(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn().Err(err).Msg("history partitions not created ahead at start; new history goes to the default partitions until retention creates them")
	}
	r.log.Info().Int("parts", len(r.runners)).Msg("relay running")

	var wg sync.WaitGroup
	errs := make(chan error, len(r.runners))
	for _, p := range r.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%s: %w", p.name, err)
				errs <- err
				cancel(err)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
