package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/admin"
	"github.com/walhook/walhook/relay"
)

// shutdownConfig is the process-level stop sequence of serve, relay and admin.
type shutdownConfig struct {
	// Delay is how long, after the first SIGTERM/SIGINT, /readyz answers 503 while everything
	// keeps running, so load balancers and Kubernetes endpoints stop routing here before the
	// relay stops. Default 0; 5s suits Kubernetes.
	Delay time.Duration
	// Timeout is the budget the relay gets to stop once told to: dispatch stops claiming and
	// lets attempts in flight finish, capture reports its last committed LSN. Default 30s.
	Timeout time.Duration
}

func (c *shutdownConfig) register(fs *flag.FlagSet) {
	durationVar(fs, &c.Delay, "shutdown-delay", 0, "on SIGTERM, how long /readyz answers 503 before the relay is told to stop (5s suits Kubernetes)")
	durationVar(fs, &c.Timeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long the relay gets to finish attempts in flight and stop")
}

// runUntilStopped runs the relay (when rl is not nil) and the admin server until ctx is cancelled
// (the first signal) or one of them fails, then stops them in this order:
//
//  1. readiness turns false: /readyz answers 503, and keeps doing so for cfg.Delay while the
//     relay still runs, so traffic drains away;
//  2. the relay's context is cancelled: it stops claiming, attempts in flight finish (dispatch
//     bounds each by its own per-attempt timeout), capture acks what it committed; it gets
//     cfg.Timeout to return;
//  3. the HTTP server stops last (within --http-shutdown-timeout), so /metrics and /readyz answer
//     throughout the drain.
//
// A second signal exits at once (see signalContext). The relay and the server run on contexts
// detached from ctx so that each is cancelled only at its step.
func runUntilStopped(ctx context.Context, cfg shutdownConfig, log zerolog.Logger, rl *relay.Relay, srv *admin.Server, started func(net.Addr)) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()

	relayDone := make(chan error, 1)
	relayRunning := rl != nil
	if relayRunning {
		go func() { relayDone <- rl.Run(relayCtx) }()
	}
	adminDone := make(chan error, 1)
	adminRunning := true
	go func() { adminDone <- srv.Run(adminCtx, started) }()

	var relayErr, adminErr error
	select {
	case <-ctx.Done():
	case relayErr = <-relayDone:
		relayRunning = false
	case adminErr = <-adminDone:
		adminRunning = false
	}
	srv.SetStopping()
	if ctx.Err() != nil {
		log.Info().Dur("delay", cfg.Delay).Dur("timeout", cfg.Timeout).Msg("stopping: readiness off")
		if cfg.Delay > 0 && relayRunning && adminRunning {
			t := time.NewTimer(cfg.Delay)
			select {
			case <-t.C:
			case relayErr = <-relayDone:
				relayRunning = false
			case adminErr = <-adminDone:
				adminRunning = false
			}
			t.Stop()
		}
	}

	stopRelay()
	if relayRunning {
		t := time.NewTimer(cfg.Timeout)
		select {
		case relayErr = <-relayDone:
			log.Info().Msg("relay stopped")
		case <-t.C:
			relayErr = fmt.Errorf("stop relay: still running after --shutdown-timeout %v", cfg.Timeout)
		}
		t.Stop()
	}
	stopAdmin()
	if adminRunning {
		adminErr = <-adminDone
	}
	return errors.Join(relayErr, adminErr)
}
