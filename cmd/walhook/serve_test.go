package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

// TestRelayTwoDatabases runs `walhook relay` with walhook's database apart from the
// application's: it migrates the source set at start (the application's database was never
// migrated), validates the catalog against the application's tables, and captures a table write
// and an outbox row from the application's database into walhook's, deleting the outbox row in
// the application's.
func TestRelayTwoDatabases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	srcURL := xtest.SeparateSourceURL(t)
	src := xtest.SourceStore(t, srcURL)
	_, err := src.MigrateSourceDown(ctx, 0)
	require.NoError(t, err)
	_, err = src.Pool().Exec(ctx, `CREATE TABLE public.contacts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text, name text)`)
	require.NoError(t, err)
	wh := xtest.SourceStore(t, db) // a store over walhook's database
	_, err = wh.CompanyCreate(ctx, "1", "Acme")
	require.NoError(t, err)
	catalogFile := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catalogFile, []byte(`events:
  - key: contact.created
    table: contacts
    operations: [insert]
    tenant_column: company_id
  - key: invoice.paid
    source: outbox
`), 0o600))
	slot := fmt.Sprintf("relay_two_%d", os.Getpid())

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runRelay(rctx, []string{"--database-url", db, "--source-database-url", srcURL,
			"--encryption-keys", crypt.GenerateKeySpec("k"), "--catalog", catalogFile, "--slot", slot, "--publication", slot,
			"--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "warn"}, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("walhook relay did not stop in 30s")
		}
	})
	// Streaming once the slot is consistent (capture's leader creates it): writes from then on are captured.
	require.Eventually(t, func() bool {
		s, err := src.CaptureSlotStatus(ctx, slot)
		return err == nil && s.Active && s.ConfirmedFlushLSN != ""
	}, 60*time.Second, 50*time.Millisecond)
	sts, err := src.SourceMigrationStatuses(ctx)
	require.NoError(t, err)
	require.NotNil(t, sts[0].AppliedAt, "relay migrated the application's database")

	_, err = src.Pool().Exec(ctx, `INSERT INTO public.contacts (company_id, name) VALUES ('1', 'Ada');
		INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ('1', 'invoice.paid', '{"n": 1}')`)
	require.NoError(t, err)
	count := func(st *store.Store, q string) int {
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, q).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool {
		return count(wh, `SELECT count(*) FROM walhook.event`) == 2 && count(src, `SELECT count(*) FROM walhook.outbox`) == 0
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, count(wh, `SELECT count(*) FROM walhook.event WHERE event_key = 'contact.created' AND payload->'data'->>'name' = 'Ada'`))
	require.Equal(t, 1, count(wh, `SELECT count(*) FROM walhook.capture_position WHERE slot = '`+slot+`'`), "the position is stored in walhook's database")
	require.Equal(t, 0, count(src, `SELECT count(*) FROM pg_tables WHERE schemaname = 'walhook' AND tablename IN ('event', 'delivery', 'capture_position')`),
		"nothing of walhook's own in the application's database")
}

// TestSourceSearchPath: walhook's sessions on the application's database search pg_catalog only
// (sourceSearchPath), so no object a role of the application creates in public is ever resolved
// for walhook; walhook's own database keeps the default.
func TestSourceSearchPath(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	srcURL := xtest.SeparateSourceURL(t)
	cfg := commonConfig{DatabaseURL: db, SourceDatabaseURL: srcURL, ConnectTimeout: 10 * time.Second}
	wh := xtest.SourceStore(t, db)
	src, closeSrc, err := cfg.openSource(ctx, zerolog.Nop(), wh)
	require.NoError(t, err)
	defer closeSrc()
	var path string
	require.NoError(t, src.Pool().QueryRow(ctx, "SHOW search_path").Scan(&path))
	require.Equal(t, "pg_catalog, pg_temp", path)
	_, err = src.MigrateSourceUp(ctx)
	require.NoError(t, err, "the source set names everything it touches")

	// The same database under another URL is refused.
	cfg.SourceDatabaseURL = db + "?application_name=other"
	_, _, err = cfg.openSource(ctx, zerolog.Nop(), wh)
	require.ErrorContains(t, err, "names walhook's own database")
}

// TestRelayRefusesTheOtherCaptureSource: walhook's database records whether capture reads it or
// an application's database apart (migration 0028), and a relay or slot command started the other
// way is refused before it takes the capture lease or touches a slot.
func TestRelayRefusesTheOtherCaptureSource(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keys := crypt.GenerateKeySpec("k")
	relay := func(db string, extra ...string) error {
		args := append([]string{"--database-url", db, "--encryption-keys", keys, "--addr", "127.0.0.1:0",
			"--log-format", "json", "--log-level", "error"}, extra...)
		// Refused at once; a relay that started anyway stops after 20 s, and the test fails.
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return runRelay(rctx, args, io.Discard)
	}

	apart := xtest.DatabaseURL(t)
	wh := xtest.SourceStore(t, apart)
	require.NoError(t, wh.CaptureSourceCheck(ctx, true), "first record: apart")
	require.NoError(t, wh.CaptureSourceCheck(ctx, true), "the same again")
	err := relay(apart)
	require.ErrorIs(t, err, store.ErrCaptureSource)
	require.ErrorContains(t, err, "start with --source-database-url")
	err = runSlot(ctx, []string{"status", "--database-url", apart, "--log-format", "json"}, io.Discard)
	require.ErrorIs(t, err, store.ErrCaptureSource, "slot commands too")

	self := xtest.DatabaseURL(t)
	require.NoError(t, xtest.SourceStore(t, self).CaptureSourceCheck(ctx, false))
	err = relay(self, "--source-database-url", xtest.SeparateSourceURL(t))
	require.ErrorIs(t, err, store.ErrCaptureSource)
	require.ErrorContains(t, err, "start without --source-database-url")
}

// TestRelayRefusesUnfinishedSplit: while walhook split copies into walhook's new database (or
// after it died past marking the old one), a relay started on the new database with the old one
// as its source is refused: it would skip every event as of an unknown company and acknowledge
// the slot past them. A source marked as moved to another database is refused too.
func TestRelayRefusesUnfinishedSplit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	newURL, oldURL, otherURL := xtest.DatabaseURL(t), xtest.DatabaseURL(t), xtest.DatabaseURL(t)
	relay := func(db string) error {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return runRelay(rctx, []string{"--database-url", db, "--source-database-url", oldURL, "--encryption-keys", crypt.GenerateKeySpec("k"),
			"--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "error"}, io.Discard)
	}
	tag := func(url string) string {
		var s string
		require.NoError(t, xtest.SourceStore(t, url).Pool().QueryRow(ctx, `SELECT format('(system %s, database oid %s)',
			(SELECT system_identifier FROM pg_control_system()), (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&s))
		return s
	}
	old := xtest.SourceStore(t, oldURL)
	_, err := old.Pool().Exec(ctx, `UPDATE walhook.capture_setting SET moved_at = now(), moved_to = 'postgres://walhook@new:5432/walhook ' || $1`, tag(newURL))
	require.NoError(t, err)

	var refused *store.SplitRefusedError
	err = relay(newURL)
	require.ErrorAs(t, err, &refused)
	require.ErrorContains(t, err, "has not finished")
	err = relay(otherURL)
	require.ErrorAs(t, err, &refused)
	require.ErrorContains(t, err, "not to this walhook database")
}
