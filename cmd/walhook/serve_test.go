package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

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
