package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

// ChildEnv, when set in the environment, makes the executable run the bench's child relay
// (RunChild) instead of its usual work; its value is the child's configuration (JSON).
const ChildEnv = "WALHOOK_BENCH_RELAY_CHILD"

type childConfig struct {
	DatabaseURL string `json:"database_url"`
	// SourceURL is the application's database in ModeTwo (empty: DatabaseURL is both).
	SourceURL string `json:"source_url,omitempty"`
	Slot      string `json:"slot"`
	Keys      string `json:"keys"`
}

// RunChild runs the relay of the backlog scenario in this process until ctx is cancelled, with
// the configuration in the ChildEnv variable.
func RunChild(ctx context.Context) error {
	var cc childConfig
	if err := json.Unmarshal([]byte(os.Getenv(ChildEnv)), &cc); err != nil {
		return fmt.Errorf("parse %s: %w", ChildEnv, err)
	}
	keys, err := crypt.ParseKeyring(cc.Keys)
	if err != nil {
		return fmt.Errorf("parse keys: %w", err)
	}
	pool, err := openPool(ctx, cc.DatabaseURL, 20, appNameRelay)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool, keys)
	var src *store.Store
	if cc.SourceURL != "" {
		spool, err := openPool(ctx, cc.SourceURL, 4, appNameRelay)
		if err != nil {
			return err
		}
		defer spool.Close()
		src = store.New(spool, keys)
	}
	cat, err := catalog.FromStore(ctx, st)
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Str("process", "bench-child").Logger()
	rl, err := relay.New(relayConfig("bench-child", cat, cc.Slot, src), st, log, prometheus.NewRegistry())
	if err != nil {
		return fmt.Errorf("build relay: %w", err)
	}
	if err := rl.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run relay: %w", err)
	}
	return nil
}

// backlog queues backlogEvents × 10 deliveries while no relay runs (the receiver is, for walhook,
// down), then starts the relay in a child process and measures the drain rate and the child's
// peak RSS. The queue is seeded with SQL in two statements, as a long outage would leave it.
func (e *env) backlog(ctx context.Context) (Result, error) {
	company := companyID("backlog")
	ids, err := e.setupCompany(ctx, company, "item.created", e.paths(company, 10))
	if err != nil {
		return Result{}, err
	}
	if err := e.stop(); err != nil {
		return Result{}, err
	}
	defer func() {
		if e.stopRelay == nil {
			_ = e.startRelay(ctx)
		}
	}()
	n := e.sizes.backlogEvents
	want := n * len(ids)
	if _, err := e.hist.Exec(ctx, `
		INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		SELECT 'bench:backlog:' || g, $1, 'item.created',
		       jsonb_build_object('id', 'evt_b' || g, 'type', 'item.created', 'company_id', $1::text, 'occurred_at', now(),
		                          'data', jsonb_build_object('id', g, 'n', g, 'body', $2::text)), now()
		FROM generate_series(1, $3::int) g`, company, body, n); err != nil {
		return Result{}, fmt.Errorf("seed events: %w", err)
	}
	if _, err := e.hist.Exec(ctx, `
		INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key)
		SELECT $1, w.id, ev.id, ev.occurred_at, ev.event_key
		FROM walhook.event ev CROSS JOIN unnest($2::bigint[]) AS w(id)
		WHERE ev.company_id = $1
		ORDER BY ev.id, w.id`, company, ids); err != nil {
		return Result{}, fmt.Errorf("seed deliveries: %w", err)
	}
	if _, err := e.hist.Exec(ctx, `VACUUM ANALYZE walhook.delivery`); err != nil {
		return Result{}, fmt.Errorf("vacuum: %w", err)
	}
	// WAL and database time per delivery count the drain, not the seeding.
	if err := e.markStats(ctx); err != nil {
		return Result{}, err
	}
	done := e.rc.reset(want, false)
	var res Result
	res.Figures = map[string]float64{}
	start := time.Now()
	var stop func() (int, error)
	if e.cfg.Exe != "" {
		stop, err = e.startChild(ctx)
	} else {
		err = e.startRelay(ctx)
		stop = func() (int, error) { return 0, e.stop() }
	}
	if err != nil {
		return Result{}, err
	}
	s := e.received(ctx, &res, done, want)
	e.verify(ctx, &res, company, want)
	hwm, err := stop()
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	res.Received, res.Seconds = s.unique, s.last.Sub(start).Seconds()
	res.Figure, res.Unit = float64(s.unique)/res.Seconds, "deliveries/s"
	res.Figures["queued"] = float64(want)
	if hwm > 0 {
		mb := float64(hwm) / 1024
		res.Figures["peak_rss_mb"] = mb
		met := mb <= 256 && res.Figure >= 10_000
		res.Met, res.Target = &met, "drain ≥ 10000/s, peak RSS ≤ 256 MB"
	} else {
		res.Target = "drain ≥ 10000/s, peak RSS ≤ 256 MB (not measured: relay in process)"
	}
	return res, nil
}

// startChild starts the child relay; the returned stop ends it and returns its peak RSS in KiB.
func (e *env) startChild(ctx context.Context) (func() (int, error), error) {
	cc := childConfig{DatabaseURL: e.url, Slot: e.slot, Keys: e.keys}
	if e.src != nil {
		cc.SourceURL = e.srcURL
	}
	cfg, err := json.Marshal(cc)
	if err != nil {
		return nil, fmt.Errorf("encode child config: %w", err)
	}
	cmd := exec.CommandContext(ctx, e.cfg.Exe, e.cfg.ExeArgs...) //nolint:gosec // our own executable
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(cfg))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child relay: %w", err)
	}
	if err := e.waitStreaming(ctx); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return func() (int, error) {
		hwm := vmHWM(cmd.Process.Pid)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			return hwm, fmt.Errorf("child relay: %w", err)
		}
		return hwm, nil
	}, nil
}

// vmHWM is a process's peak resident set size in KiB (0 when unknown).
func vmHWM(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb
		}
	}
	return 0
}
