package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/relay/capture"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
)

// captureFlags are the capture settings that do not live in capture.Config.
type captureFlags struct {
	// catalog is the path of the trigger-event catalog (YAML). Default: none, use the catalog
	// already stored in the database.
	catalog string
}

// registerCapture registers the capture flags (package capture documents each setting).
func registerCapture(fs *flag.FlagSet, f *captureFlags, c *capture.Config) {
	fs.StringVar(&f.catalog, "catalog", "", "trigger-event catalog file (YAML), validated and stored at start (default: the catalog already stored)")
	c.Mode = store.CaptureWAL
	fs.Func("capture-mode", "how events are read: wal (logical replication) or poll (outbox polling, no replication rights) (default wal)", func(s string) error {
		if s != string(store.CaptureWAL) && s != string(store.CapturePoll) {
			return fmt.Errorf("want wal or poll, got %q", s)
		}
		c.Mode = store.CaptureMode(s)
		return nil
	})
	fs.StringVar(&c.Slot, "slot", "walhook", "logical replication slot name")
	fs.StringVar(&c.Publication, "publication", "walhook", "publication name (kept covering the catalog's tables and walhook.outbox)")
	fs.IntVar(&c.BatchEvents, "capture-batch", 5000, "events stored at most by one fan-out transaction")
	durationVar(fs, &c.StatusInterval, "capture-status-interval", time.Second, "how often the committed position is reported to PostgreSQL")
	durationVar(fs, &c.PollInterval, "capture-poll-interval", time.Second, "poll mode: longest wait between outbox claims without a notification")
	fs.IntVar(&c.PollBatch, "capture-poll-batch", 1000, "poll mode: outbox rows claimed at most at once")
	fs.IntVar(&c.MaxEventBytes, "capture-max-event-bytes", capture.DefaultMaxEventBytes, "largest event (envelope bytes) captured; a larger one is quarantined as too_large without its payload")
	durationVar(fs, &c.LeaseTTL, "leader-ttl", 6*time.Second, "capture leader lease; a standby takes over within 4/3 of it after the leader dies")
}

// loadCatalog loads the catalog at start: from --catalog (validated against the application's
// database and stored in walhook's, so the admin API lists it) or, without one, the catalog
// already stored. The relay's capture runs on it.
func loadCatalog(ctx context.Context, cfg *serveConfig, st *store.Store, log zerolog.Logger, withRelay bool) error {
	var cat *catalog.Catalog
	var err error
	if cfg.capture.catalog != "" {
		if cat, err = catalog.Load(cfg.capture.catalog); err != nil {
			return err
		}
		src := cfg.relay.Capture.Source
		if src == nil {
			src = st
		}
		if err := cat.Sync(ctx, src, st); err != nil {
			return fmt.Errorf("%s: %w", cfg.capture.catalog, err)
		}
		log.Info().Str("file", cfg.capture.catalog).Int("events", cat.Len()).Msg("catalog loaded")
	} else if cat, err = catalog.FromStore(ctx, st); err != nil {
		return err
	}
	if withRelay {
		if cat.Len() == 0 {
			log.Warn().Msg("the trigger-event catalog is empty: give one with --catalog")
		}
		cfg.relay.Capture.Catalog = cat
	}
	return nil
}
