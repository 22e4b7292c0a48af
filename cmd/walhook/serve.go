package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/admin"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
)

// serveConfig is the configuration of serve, relay and admin.
type serveConfig struct {
	common commonConfig
	admin  admin.Config
	relay  relay.Config
	// shutdown is the stop sequence on SIGTERM/SIGINT.
	shutdown shutdownConfig
	// migrate applies pending migrations at start. Default true.
	migrate bool
	// capture holds the capture flags that are not part of relay.Config (the catalog path).
	capture captureFlags
	// prepareCapture sets up the publication and the replication slot before the service
	// announces itself (walhook dev), so a write made right after "running" is captured; serve
	// leaves it to the capture leader, which retries while the database refuses.
	prepareCapture bool
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	c.common.register(fs)
	c.common.registerSource(fs)
	fs.StringVar(&c.admin.Addr, "addr", "127.0.0.1:8080", "listen address of the admin service, /healthz, /readyz and /metrics")
	durationVar(fs, &c.admin.ShutdownTimeout, "http-shutdown-timeout", 10e9, "how long in-flight HTTP requests get to finish on shutdown")
	registerAdmin(fs, &c.admin)
	fs.StringVar(&c.relay.InstanceID, "instance-id", "", "name of this replica in leases and logs (default hostname-pid)")
	fs.BoolVar(&c.migrate, "migrate", true, "apply pending schema migrations at start")
	registerRetention(fs, &c.relay.Retention)
	registerDispatch(fs, &c.relay.Dispatch)
	registerCapture(fs, &c.capture, &c.relay.Capture)
	c.shutdown.register(fs)
}

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	return serveMode(ctx, args, stdout, true, true)
}

func runRelay(ctx context.Context, args []string, stdout io.Writer) error {
	return serveMode(ctx, args, stdout, true, false)
}

func runAdmin(ctx context.Context, args []string, stdout io.Writer) error {
	return serveMode(ctx, args, stdout, false, true)
}

func serveMode(ctx context.Context, args []string, _ io.Writer, withRelay, withAPI bool) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := parseFlagsOnly(fs, args, "Usage: walhook serve|relay|admin [flags]"); err != nil {
		return err
	}
	log, err := cfg.common.logger(os.Stderr)
	if err != nil {
		return err
	}
	st, pool, err := cfg.common.open(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	src, closeSrc, err := cfg.common.openSource(ctx, log, st)
	if err != nil {
		return err
	}
	defer closeSrc()
	if src != st {
		cfg.relay.Capture.Source = src
	}
	return serve(ctx, cfg, st, log, withRelay, withAPI, nil)
}

// serve runs the relay and/or the admin service over an open store until ctx is cancelled. The
// application's database is cfg.relay.Capture.Source when walhook keeps its own apart (nil: st).
func serve(ctx context.Context, cfg serveConfig, st *store.Store, log zerolog.Logger, withRelay, withAPI bool, started func(net.Addr)) error {
	src := cfg.relay.Capture.Source
	if cfg.migrate {
		applied, err := st.MigrateUp(ctx)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			log.Info().Ints("versions", applied).Msg("migrations applied")
		}
		if src != nil {
			if applied, err = src.MigrateSourceUp(ctx); err != nil {
				return fmt.Errorf("migrate the source database: %w", err)
			}
			if len(applied) > 0 {
				log.Info().Ints("versions", applied).Msg("source database migrations applied")
			}
		}
	} else {
		// An older binary must not run against a schema a newer one changed.
		if err := st.MigrationCheck(ctx); err != nil {
			return err
		}
		if src != nil {
			if err := src.SourceMigrationCheck(ctx); err != nil {
				return err
			}
		}
	}
	// A database `walhook split` moved is the application's only: walhook's data (and its
	// pending deliveries) continue from walhook's own database.
	if err := st.MovedCheck(ctx); err != nil {
		return err
	}
	// A relay started with --source-database-url and one without must never share walhook's
	// database: the one reading the wrong database could hold the capture lease.
	if withRelay {
		if src != nil {
			if err := store.SourceMovedCheck(ctx, src, st); err != nil {
				return err
			}
		}
		if err := st.CaptureSourceCheck(ctx, src != nil); err != nil {
			return err
		}
	}
	if err := loadCatalog(ctx, &cfg, st, log, withRelay); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var ready []admin.ReadyFunc
	var rl *relay.Relay
	if withRelay {
		var err error
		if rl, err = relay.New(cfg.relay, st, log, reg); err != nil {
			return err
		}
		ready = append(ready, func(context.Context) error { return rl.Check() })
		if cfg.prepareCapture {
			if err := rl.Prepare(ctx); err != nil {
				return err
			}
		}
	}
	cfg.admin.API = withAPI
	// Test sends go through a sender like the dispatcher's, with the same settings and SSRF
	// allow-list (which also lets webhook URLs name those networks); token fetches are counted by
	// the relay's sender, so this one registers no metrics.
	cfg.admin.AllowNets = cfg.relay.Dispatch.AllowPrivate
	tester := dispatch.NewSender(cfg.relay.Dispatch.SenderConfig, st, nil)
	srv := admin.New(cfg.admin, st, tester, log, reg, ready...)

	return runUntilStopped(ctx, cfg.shutdown, log, rl, srv, started)
}
