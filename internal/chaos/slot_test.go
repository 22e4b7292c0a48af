package chaos_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
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
	ctx := xtest.Context(t)
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

	first := start(t, f.env(), relayArgs("first")...)
	f.waitSlotReader(ctx, "", time.Minute)
	_, err = f.src.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'before')`)
	require.NoError(t, err)
	f.waitDelivered(r, 1, time.Minute, first)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	<-first.done

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

	relay := start(t, f.env(), relayArgs("second")...)
	lostGauge := `walhook_replication_slot_wal_status{status="lost"}`
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := httpGet(t, "http://"+relay.addr+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "replication slot "+f.slot+" is lost") {
			require.Contains(t, body, "walhook slot recreate --slot "+f.slot+" --yes")
			break
		}
		require.False(t, relay.exited(), "relay exited on a lost slot:\n%s", relay.logs())
		require.True(t, time.Now().Before(deadline), "/readyz still %d %q a minute after starting on a lost slot\n%s", code, body, tail(relay.logs(), 4000))
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, 1.0, relay.metric(t, lostGauge))
	require.Equal(t, 0.0, relay.metric(t, `walhook_replication_slot_wal_status{status="reserved"}`))
	// Logged by the stream attempt that met the lost slot.
	for !strings.Contains(relay.logs(), "replication slot lost: capture is stopped; recreate the slot with `walhook slot recreate --yes`") {
		require.True(t, time.Now().Before(deadline), "no error log for the lost slot\n%s", tail(relay.logs(), 4000))
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, relay.logs(), `"level":"error"`)
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
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, body := httpGet(t, "http://"+relay.addr+"/readyz")
		if code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "/readyz still %d %q after the slot was recreated", code, body)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, 0.0, relay.metric(t, lostGauge))
}

// slotCommand runs `walhook slot <args> --slot <f's slot>` against f's database and returns its
// standard output; it must succeed.
func slotCommand(t *testing.T, f *fixture, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xtest.Walhook(t), append(append([]string{"slot"}, args...), "--slot", f.slot)...)
	cmd.Env = append(os.Environ(), "WALHOOK_DATABASE_URL="+f.url)
	if f.two() {
		cmd.Env = append(cmd.Env, "WALHOOK_SOURCE_DATABASE_URL="+f.srcURL)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "walhook slot %v: %s", args, stderr.String())
	return string(out)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
