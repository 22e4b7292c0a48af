package bench

import (
	"context"
	"errors"

	"github.com/walhook/walhook/relay/capture"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
)

// captureConfig is capture's part of relayConfig.
func captureConfig(cat *catalog.Catalog, slot string, src *store.Store) capture.Config {
	_ = src
	return capture.Config{Catalog: cat, Slot: slot}
}

// migrateSource installs the source-side schema in the application's database (ModeTwo).
func migrateSource(ctx context.Context, src *store.Store) error {
	_, _ = ctx, src
	return errors.New("two-databases mode needs capture's source support (branch two)")
}
