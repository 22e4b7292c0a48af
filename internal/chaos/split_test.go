package chaos_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestSplitDeliversExactlyOnce moves a running single-database installation to two databases:
// a relay delivers to one receiver that answers and one that is down (its deliveries pending,
// retried); it stops; the application keeps writing while walhook split copies walhook's data
// into a new database; a relay with both URLs then delivers the rest. Every event reaches both
// receivers exactly once across the two phases (by webhook-id), none is lost, secrets open and
// public ids are unchanged in the new database. Along the way: split refuses while the relay
// runs, and a new database that holds data; a relay on the old database alone refuses to start.
func TestSplitDeliversExactlyOnce(t *testing.T) {
	t.Parallel()
	if xtest.TwoDatabases() {
		t.Skip("the split starts from one database and ends with two: it runs in the one-database pass")
	}
	ctx := t.Context()
	url := xtest.DatabaseURL(t)
	f := newFixture(t, url, url)
	up, down := newReceiver(t), newReceiver(t)
	down.down()
	wUp := f.webhook("1", up.URL())
	wDown := f.webhook("1", down.URL())
	// Retries long enough to outlast the stop, the split and the start (about 80 s).
	args := relayArgs("one", "--retry-schedule", "0s,500ms,1s,2s,3s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s,5s")
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	relay := xtest.Serve(t, f.env(), args...)
	f.waitSlotReader(ctx, "", time.Minute)
	phase("relay on one database reads the slot")

	newURL := xtest.DatabaseURL(t)
	split := func(extra ...string) (int, string) {
		return xtest.Run(t, nil, append([]string{"split", "--database-url", newURL, "--source-database-url", f.url, "--slot", f.slot,
			"--log-format", "json"}, extra...)...)
	}
	code, out := split("--yes")
	require.NotZero(t, code, "split refuses while a relay runs:\n%s", out)
	require.Contains(t, out, "dispatcher replica(s) run on it")

	n := size(200, 2000)
	require.NoError(t, f.insert(ctx, "1", 0, n))
	f.waitFirst(up, n, time.Minute, relay)
	xtest.Eventually(t, time.Minute, 20*time.Millisecond, func() error {
		if relay.Exited() {
			return xtest.Stop(errors.New("relay exited"))
		}
		if u, _, _ := up.counts(); u < n {
			return fmt.Errorf("the receiver that answers got %d of %d", u, n)
		}
		return nil
	})
	require.Positive(t, f.count(`SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1 AND state = 'pending' AND attempts > 0`, wDown.ID),
		"the down receiver's deliveries are pending, retried")
	phase("first events delivered")
	require.Zero(t, relay.Stop(t, time.Minute), "clean exit")
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
	code, out = xtest.Run(t, nil, "split", "--database-url", dirty, "--source-database-url", f.url, "--slot", f.slot, "--yes")
	require.NotZero(t, code)
	require.Contains(t, out, "holds walhook data (in company)")

	// The application keeps writing, ten contacts at a time, until the split is done.
	splitDone := make(chan struct{})
	type result struct {
		n   int
		err error
	}
	written := make(chan result, 1)
	go func() {
		during := 0
		for {
			select {
			case <-splitDone:
				written <- result{during, nil}
				return
			default:
			}
			if err := f.insert(ctx, "1", n+during, 10); err != nil {
				written <- result{during, err}
				return
			}
			during += 10
			time.Sleep(5 * time.Millisecond)
		}
	}()
	code, out = split()
	require.Zero(t, code, out)
	require.Contains(t, out, "Nothing changed")
	code, out = split("--yes")
	close(splitDone)
	require.Zero(t, code, out)
	require.Contains(t, out, "capture continues from")
	w := <-written
	require.NoError(t, w.err)
	during := w.n
	phase("split done")
	report(t, "split output:\n%s", out)

	// A relay on the old database alone refuses to start.
	lone := xtest.Start(t, f.env(), xtest.ServeArgs(relayArgs("lone")...)...)
	require.NotZero(t, lone.Wait(t, 2*time.Minute))
	require.Contains(t, lone.Logs(), "moved to two databases by walhook split")
	require.Contains(t, lone.Logs(), "--source-database-url")

	// Two databases: the rest is delivered from the new one.
	env := append(f.env(), "WALHOOK_DATABASE_URL="+newURL, "WALHOOK_SOURCE_DATABASE_URL="+f.url)
	down.up()
	args[2] = "two"
	relay = xtest.Serve(t, env, args...)
	phase("relay on two databases started")
	require.NoError(t, f.insert(ctx, "1", n+during, n))
	total := 2*n + during
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
		require.False(t, relay.Exited(), "relay exited:\n%s", relay.Logs())
		require.True(t, time.Now().Before(deadline), "after 3m: received %d and %d of %d, events %d, succeeded %d of %d\n%s",
			uUp, uDown, total, events, succeeded, 2*total, xtest.Tail(relay.Logs(), 6000))
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
	require.Zero(t, relay.Stop(t, time.Minute), "clean exit")

	// What the split left behind goes.
	code, out = split("--drop-moved", "--yes")
	require.Zero(t, code, out)
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery`))
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.event`))
	report(t, "split with the relay stopped: %d events before, %d written during the split, %d after; each receiver got %d, none twice (one receiver down until after the split)",
		n, during, n, total)
}

// TestSplitScale measures walhook split on a generated history: WALHOOK_SPLIT_EVENTS events (one
// delivery each, 1.2 attempts per delivery, about 600-byte envelopes, 1% pending) in the old
// database. It reports the split's wall time and the walhook process's peak memory (from
// /usr/bin/time). Skipped unless the variable is set, e.g.
//
//	WALHOOK_SPLIT_EVENTS=1000000 nice -n 19 go test ./internal/chaos -run TestSplitScale -v -timeout 1h
func TestSplitScale(t *testing.T) {
	events, _ := strconv.Atoi(os.Getenv("WALHOOK_SPLIT_EVENTS"))
	if events <= 0 {
		t.Skip("set WALHOOK_SPLIT_EVENTS to measure")
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("needs /usr/bin/time")
	}
	ctx := t.Context()
	url := xtest.DatabaseURL(t)
	f := newFixture(t, url, url)
	w1 := f.webhook("1", "https://one.example/hook")
	w2 := f.webhook("2", "https://two.example/hook")
	began := time.Now()
	_, err := f.pool.Exec(ctx, `
INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at, captured_at)
SELECT 'gen:' || g, CASE WHEN g % 2 = 0 THEN '1' ELSE '2' END, 'contact.created',
    jsonb_build_object('id', 'evt_' || md5(g::text), 'type', 'contact.created', 'company_id', CASE WHEN g % 2 = 0 THEN '1' ELSE '2' END,
        'occurred_at', now() - make_interval(secs => g), 'data', jsonb_build_object('id', g, 'name', 'Contact ' || g,
        'email', 'c' || g || '@example.com', 'notes', repeat(md5(g::text), 12)), 'previous', NULL),
    now() - make_interval(secs => g), now() - make_interval(secs => g)
FROM generate_series(1, $1::int) g`, events)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `
INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, attempts, next_attempt_at, last_status_code, last_attempt_at, created_at, updated_at)
SELECT e.company_id, CASE WHEN e.company_id = '1' THEN $1::bigint ELSE $2::bigint END, e.id, e.occurred_at, e.event_key,
    CASE WHEN e.id % 100 = 0 THEN 'pending' ELSE 'succeeded' END, CASE WHEN e.id % 5 = 0 THEN 2 ELSE 1 END,
    e.captured_at, 200, e.captured_at, e.captured_at, e.captured_at
FROM walhook.event e`, w1.ID, w2.ID)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `
INSERT INTO walhook.attempt (delivery_id, event_at, company_id, webhook_id, n, started_at, duration_ms, request_method, request_url,
    request_headers, request_body, response_status, response_headers, response_body, outcome)
SELECT d.id, d.event_at, d.company_id, d.webhook_id, n, d.created_at, 40, 'POST', 'https://one.example/hook',
    '{"content-type": "application/json", "webhook-id": "msg_x", "webhook-signature": "v1,***"}', NULL,
    CASE WHEN n < d.attempts THEN 500 ELSE 200 END, '{"content-type": "text/plain"}', 'ok',
    CASE WHEN n < d.attempts OR d.state = 'pending' THEN 'retry' ELSE 'succeeded' END
FROM walhook.delivery d, generate_series(1, d.attempts) n`)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `VACUUM ANALYZE walhook.event, walhook.delivery, walhook.attempt`)
	require.NoError(t, err)
	var size string
	var rows int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT pg_size_pretty(sum(pg_total_relation_size(p.relid))), (SELECT count(*) FROM walhook.attempt) + 2 * $1::bigint
		FROM unnest(ARRAY['walhook.event', 'walhook.delivery', 'walhook.attempt']::regclass[]) t, pg_partition_tree(t) p`, events).Scan(&size, &rows))
	t.Logf("generated %d events, %d deliveries, %d attempts (%s with indexes) in %v", events, events, rows-2*int64(events), size, time.Since(began).Round(time.Second))

	newURL := xtest.DatabaseURL(t)
	// Not xtest.Run: /usr/bin/time runs walhook here, to report its peak RSS.
	cmd := exec.CommandContext(ctx, "/usr/bin/time", "-v", xtest.Walhook(t), "split", "--database-url", newURL, "--source-database-url", f.url,
		"--slot", f.slot, "--yes")
	began = time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(began)
	require.NoError(t, err, string(out))
	rss := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindStringSubmatch(string(out))
	require.NotNil(t, rss, string(out))
	report(t, "walhook split of %d events (%d deliveries, %d attempts; %d rows, %s): %v, %.0f s per million rows, walhook peak RSS %s kB",
		events, events, rows-2*int64(events), rows, size, took.Round(time.Second), took.Seconds()/float64(rows)*1e6, rss[1])
}
