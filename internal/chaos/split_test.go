package chaos_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// walhookRun runs a walhook command to its end and returns its output and error.
func walhookRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xtest.Walhook(t), args...) //nolint:gosec // our own binary
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("walhook did not stop within a minute of SIGTERM\n%s", tail(p.logs(), 4000))
	}
	require.NoError(t, p.err, "clean exit\n%s", tail(p.logs(), 4000))
}

// TestSplitDeliversExactlyOnce moves a running single-database installation to two databases:
// a relay delivers to one receiver that answers and one that is down (its deliveries pending,
// retried); it stops; the application keeps writing while walhook split copies walhook's data
// into a new database; a relay with both URLs then delivers the rest. Every event reaches both
// receivers exactly once across the two phases (by webhook-id), none is lost, secrets open and
// public ids are unchanged in the new database. Along the way: split refuses while the relay
// runs, and a new database that holds data; a relay on the old database alone refuses to start.
func TestSplitDeliversExactlyOnce(t *testing.T) {
	t.Parallel()
	ctx := xtest.Context(t)
	f := newFixture(t, xtest.DatabaseURL(t))
	up, down := newReceiver(t), newReceiver(t)
	down.down()
	wUp := f.webhook("1", up.URL())
	wDown := f.webhook("1", down.URL())
	// Retries long enough to outlast the stop, the split and the start (about 80 s).
	args := relayArgs("one", "--retry-schedule", "0s,500ms,1s,2s,3s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s")
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	relay := start(t, f.env(), args...)
	f.waitSlotReader(ctx, "", time.Minute)
	phase("relay on one database reads the slot")

	newURL := xtest.DatabaseURL(t)
	split := func(extra ...string) (string, error) {
		return walhookRun(t, append([]string{"split", "--database-url", newURL, "--source-database-url", f.url, "--slot", f.slot,
			"--log-format", "json"}, extra...)...)
	}
	out, err := split("--yes")
	require.Error(t, err, "split refuses while a relay runs:\n%s", out)
	require.Contains(t, out, "dispatcher replica(s) run on it")

	n := size(200, 2000)
	require.NoError(t, f.insert(ctx, "1", 0, n))
	f.waitFirst(up, n, time.Minute, relay)
	for u, _, _ := up.counts(); u < n; u, _, _ = up.counts() {
		require.False(t, relay.exited(), "relay exited:\n%s", relay.logs())
		time.Sleep(20 * time.Millisecond)
	}
	require.Positive(t, f.count(`SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1 AND state = 'pending' AND attempts > 0`, wDown.ID),
		"the down receiver's deliveries are pending, retried")
	phase("first events delivered")
	relay.stop(t)
	phase("relay stopped")
	var pendingID int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT id FROM walhook.delivery WHERE webhook_id = $1 AND state = 'pending' ORDER BY id LIMIT 1`, wDown.ID).Scan(&pendingID))
	publicID, err := f.st.DeliveryPublicID(ctx, "1", pendingID)
	require.NoError(t, err)

	// A new database that holds walhook data is refused.
	dirty := xtest.DatabaseURL(t)
	dirtyPool, err := pgxpool.New(ctx, dirty)
	require.NoError(t, err)
	_, err = dirtyPool.Exec(ctx, `INSERT INTO walhook.company (id, name) VALUES ('x', 'X')`)
	require.NoError(t, err)
	dirtyPool.Close()
	out, err = walhookRun(t, "split", "--database-url", dirty, "--source-database-url", f.url, "--slot", f.slot, "--yes")
	require.Error(t, err)
	require.Contains(t, out, "holds walhook data (in company)")

	// The application keeps writing during the split.
	written := make(chan error, 1)
	go func() { written <- f.insert(ctx, "1", n, n) }()
	out, err = split()
	require.NoError(t, err, out)
	require.Contains(t, out, "Nothing changed")
	out, err = split("--yes")
	require.NoError(t, err, out)
	require.Contains(t, out, "capture continues from")
	require.NoError(t, <-written)
	phase("split done")
	report(t, "split output:\n%s", out)

	// A relay on the old database alone refuses to start.
	lone, _ := spawn(t, f.env(), relayArgs("lone")...)
	<-lone.done
	require.Error(t, lone.err)
	require.Contains(t, lone.logs(), "moved to two databases by walhook split")
	require.Contains(t, lone.logs(), "--source-database-url")

	// Two databases: the rest is delivered from the new one.
	env := append(f.env(), "WALHOOK_DATABASE_URL="+newURL, "WALHOOK_SOURCE_DATABASE_URL="+f.url)
	down.up()
	args[2] = "two"
	relay = start(t, env, args...)
	phase("relay on two databases started")
	require.NoError(t, f.insert(ctx, "1", 2*n, n))
	total := 3 * n
	newPool, err := pgxpool.New(ctx, newURL)
	require.NoError(t, err)
	t.Cleanup(newPool.Close)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		uUp, _, _ := up.counts()
		uDown, _, _ := down.counts()
		var events, succeeded int
		require.NoError(t, newPool.QueryRow(ctx, `SELECT (SELECT count(*) FROM walhook.event),
			(SELECT count(*) FROM walhook.delivery WHERE state = 'succeeded')`).Scan(&events, &succeeded))
		if uUp == total && uDown == total && events == total && succeeded == 2*total {
			break
		}
		require.False(t, relay.exited(), "relay exited:\n%s", relay.logs())
		require.True(t, time.Now().Before(deadline), "after 3m: received %d and %d of %d, events %d, succeeded %d of %d\n%s",
			uUp, uDown, total, events, succeeded, 2*total, tail(relay.logs(), 6000))
		time.Sleep(100 * time.Millisecond)
	}
	phase("everything delivered")
	_, _, dupsUp := up.counts()
	_, _, dupsDown := down.counts()
	require.Zero(t, dupsUp, "no delivery repeated")
	require.Zero(t, dupsDown, "no delivery repeated")
	var stray int
	require.NoError(t, newPool.QueryRow(ctx, `SELECT count(*) FROM walhook.delivery WHERE state <> 'succeeded'`).Scan(&stray))
	require.Zero(t, stray)

	newStore := store.New(newPool, f.st.Keys())
	for _, w := range []int64{wUp.ID, wDown.ID} {
		got, err := newStore.WebhookGet(ctx, "1", w)
		require.NoError(t, err)
		require.Empty(t, got.SealError, "the signing secret opens in the new database")
		want := wUp.Secret
		if w == wDown.ID {
			want = wDown.Secret
		}
		require.Equal(t, want, got.Secret)
	}
	got, err := newStore.DeliveryPublicID(ctx, "1", pendingID)
	require.NoError(t, err)
	require.Equal(t, publicID, got, "public ids unchanged")
	relay.stop(t)

	// What the split left behind goes.
	out, err = split("--drop-moved", "--yes")
	require.NoError(t, err, out)
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery`))
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.event`))
	report(t, "split with the relay stopped: %d events before, %d during, %d after; each receiver got %d, none twice (one receiver down until after the split)",
		n, n, n, total)
}
