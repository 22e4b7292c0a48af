package chaos_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/webhook"
)

// TestSlotLostThenRecreated lets PostgreSQL invalidate capture's slot (a private cluster, since
// max_slot_wal_keep_size is cluster-wide): with the relay stopped, the cap lowered to 1MB and WAL
// switched and checkpointed until pg_replication_slots.wal_status = 'lost'. A relay started on
// the lost slot says so plainly — an error log naming `walhook slot recreate`, the gauge
// walhook_replication_slot_wal_status{status="lost"} at 1, /readyz 503 with the reason — and
// never asks PostgreSQL to stream from it (no START_REPLICATION error in the server log).
// `walhook slot recreate --yes` brings capture back without restarting the relay: a contact
// inserted afterwards and an outbox row left over from the lost period are delivered; the
// contact written into the lost WAL is not (the documented loss).
func TestSlotLostThenRecreated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := privateCluster(t)
	// The slot and the WAL are the application's: its database is on the private cluster, and
	// walhook's is one of the test cluster's with two databases.
	url := c.URL("postgres")
	if xtest.TwoDatabases() {
		url = xtest.DatabaseURL(t)
	}
	f := newFixture(t, url, c.URL("postgres"))
	r := newReceiver(t)
	f.webhook("1", r.URL())
	_, err := f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: "notes", URL: r.URL(), Method: webhook.MethodPost,
		EventKeys: []string{"contact.note_added"}, RawData: true, Active: true}, nil)
	require.NoError(t, err)

	first := xtest.Serve(t, f.env(), relayArgs("first")...)
	f.waitSlotReader(ctx, "", time.Minute)
	_, err = f.src.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'before')`)
	require.NoError(t, err)
	f.waitDelivered(r, 1, time.Minute, first)
	first.Stop(t, time.Minute)

	// The relay is down: the slot falls behind until PostgreSQL gives up on it.
	_, err = f.src.Exec(ctx, `ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`)
	require.NoError(t, err)
	_, err = f.src.Exec(ctx, `SELECT pg_reload_conf()`)
	require.NoError(t, err)
	_, err = f.src.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'in the lost WAL')`)
	require.NoError(t, err)
	walStatus := func() string {
		var s string
		require.NoError(t, f.src.QueryRow(ctx, `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1`, f.slot).Scan(&s))
		return s
	}
	switches := 0
	for ; walStatus() != "lost"; switches++ {
		require.Less(t, switches, 20, "slot not invalidated after %d WAL switches and checkpoints (wal_status %s)", switches, walStatus())
		_, err = f.src.Exec(ctx, `CREATE TABLE IF NOT EXISTS filler (x text); INSERT INTO filler SELECT repeat('x', 100) FROM generate_series(1, 1000)`)
		require.NoError(t, err)
		_, err = f.src.Exec(ctx, `SELECT pg_switch_wal()`)
		require.NoError(t, err)
		_, err = f.src.Exec(ctx, `CHECKPOINT`)
		require.NoError(t, err)
	}
	_, err = f.src.Exec(ctx, `ALTER SYSTEM RESET max_slot_wal_keep_size`)
	require.NoError(t, err)
	_, err = f.src.Exec(ctx, `SELECT pg_reload_conf()`)
	require.NoError(t, err)
	// Written while the slot is lost: not in any stream, swept from the outbox once capture runs.
	_, err = f.src.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ('1', 'contact.note_added', '{"note": "left over"}')`)
	require.NoError(t, err)

	relay := xtest.Serve(t, f.env(), relayArgs("second")...)
	lostGauge := `walhook_replication_slot_wal_status{status="lost"}`
	xtest.Eventually(t, time.Minute, 100*time.Millisecond, func() error {
		if relay.Exited() {
			return xtest.Stop(errors.New("relay exited on a lost slot"))
		}
		code, body, err := relay.Get(ctx, "/readyz")
		if err != nil {
			return fmt.Errorf("GET /readyz: %w", err)
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "replication slot "+f.slot+" is lost") {
			return fmt.Errorf("/readyz answers %d %q after starting on a lost slot", code, body)
		}
		if !strings.Contains(body, "walhook slot recreate --slot "+f.slot+" --yes") {
			return xtest.Stop(fmt.Errorf("/readyz does not say how to recreate the slot: %q", body))
		}
		return nil
	})
	require.Equal(t, 1.0, relay.Metric(t, lostGauge))
	require.Equal(t, 0.0, relay.Metric(t, `walhook_replication_slot_wal_status{status="reserved"}`))
	// Logged by the stream attempt that met the lost slot.
	relay.WaitLog(t, regexp.MustCompile(`"level":"error".*replication slot lost: capture is stopped; recreate the slot with `+"`walhook slot recreate --yes`"), time.Minute)
	serverLog, err := os.ReadFile(c.DataDir() + "/server.log")
	require.NoError(t, err)
	// PostgreSQL answers START_REPLICATION on an invalidated slot with an error with this detail.
	require.NotContains(t, string(serverLog), "This slot has been invalidated", "capture never asks to stream from a lost slot")

	status := slotCommand(t, f, "status")
	require.Contains(t, status, "wal_status      lost")
	require.Contains(t, status, "walhook slot recreate --slot "+f.slot+" --yes")
	out := slotCommand(t, f, "recreate", "--yes")
	recreated := time.Now()
	t.Logf("walhook slot recreate --yes:\n%s", out)
	require.Contains(t, out, "Changes committed between the lost slot's last confirmed position ")
	require.Contains(t, out, "created replication slot "+f.slot)
	require.Contains(t, out, "were NOT captured")
	require.Contains(t, out, "Outbox rows still in walhook.outbox are not lost")
	require.Equal(t, "reserved", walStatus())
	_, err = f.src.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'after')`)
	require.NoError(t, err)

	// The same relay process, without a restart: the outbox row and the new contact.
	f.waitDelivered(r, 3, time.Minute, relay)
	report(t, "slot lost after %d WAL switches with max_slot_wal_keep_size 1MB: /readyz 503 with the reason; after `walhook slot recreate --yes` the running relay delivered the new contact and the left-over outbox row within %v",
		switches, time.Since(recreated).Round(100*time.Millisecond))
	require.Equal(t, 0, f.count(`SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'in the lost WAL'`))
	require.Equal(t, 1, f.count(`SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'after'`))
	require.Equal(t, 1, f.count(`SELECT count(*) FROM walhook.event WHERE payload->'data'->>'note' = 'left over'`))
	relay.WaitStatus(t, "/readyz", http.StatusOK, 30*time.Second)
	require.Equal(t, 0.0, relay.Metric(t, lostGauge))
}

// slotCommand runs `walhook slot <args> --slot <f's slot>` against f's database and returns its
// output; it must succeed.
func slotCommand(t *testing.T, f *fixture, args ...string) string {
	t.Helper()
	env := []string{"WALHOOK_DATABASE_URL=" + f.url}
	if f.two() {
		env = append(env, "WALHOOK_SOURCE_DATABASE_URL="+f.srcURL)
	}
	code, out := xtest.Run(t, env, append(append([]string{"slot"}, args...), "--slot", f.slot)...)
	require.Zero(t, code, "walhook slot %v:\n%s", args, out)
	return out
}
