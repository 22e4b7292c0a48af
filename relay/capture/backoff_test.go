package capture

import (
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

func TestRestartBackoff(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var b restartBackoff
	// PostgreSQL down: never more than 2 s, however long it lasts.
	for _, want := range []time.Duration{ms(250), ms(500), ms(1000), ms(2000), ms(2000), ms(2000), ms(2000), ms(2000), ms(2000)} {
		require.Equal(t, want, b.next(reasonConnect, false))
	}
	// The same failure after connecting, again and again: 2 s for five tries, then up to 30 s.
	for _, want := range []time.Duration{ms(250), ms(500), ms(1000), ms(2000), ms(2000), ms(4000), ms(8000), ms(16000), ms(30000), ms(30000)} {
		require.Equal(t, want, b.next(reasonPermission, false))
	}
	// Another reason, or a session that streamed, starts over.
	require.Equal(t, ms(250), b.next(reasonSlotInUse, false))
	require.Equal(t, ms(500), b.next(reasonSlotInUse, false))
	require.Equal(t, ms(250), b.next(reasonSlotInUse, true))
}

// TestSlotInUseCountedAndResumes holds capture's slot with another replication connection:
// capture fails with SQLSTATE 55006, counts it under walhook_capture_failures_total{reason=
// "slot_in_use"}, and streams as soon as the slot is free.
func TestSlotInUseCountedAndResumes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	f.prepare(t, cfg)
	pcfg, err := pgconn.ParseConfig(f.appURL)
	require.NoError(t, err)
	pcfg.RuntimeParams["replication"] = "database"
	holder, err := pgconn.ConnectConfig(ctx, pcfg)
	require.NoError(t, err)
	require.NoError(t, pglogrepl.StartReplication(ctx, holder, f.slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '2'", "publication_names '" + f.slot + "'"}}))

	reg := prometheus.NewRegistry()
	f.start(t, cfg, reg, nil)
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_failures_total", reasonSlotInUse) >= 2
	}, 20*time.Second, 20*time.Millisecond)
	require.Zero(t, f.count(t, "SELECT count(*) FROM walhook.capture_quarantine"))
	require.NoError(t, holder.Close(ctx))

	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'after the slot is free')`)
	require.NoError(t, err)
	f.waitEventsWithin(t, 1, 20*time.Second)
}
