package chaos_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

// TestReceiverDownThenBack takes the receiver down (connection refused) while events stream,
// brings it back before the retry schedule ends, and checks every delivery succeeds: retried,
// none marked failed.
func TestReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, r := newReceiverFixture(t)
	relay := xtest.Serve(t, f.env(), relayArgs("rx")...) // schedule: about 20 s of retries
	f.waitSlotReader(ctx, "", time.Minute)
	n := size(500, 2000)
	require.NoError(t, f.insert(ctx, "1", 0, n/2))
	f.waitFirst(r, n, time.Minute, relay)
	r.down()
	downAt := time.Now()
	require.NoError(t, f.insert(ctx, "1", n/2, n-n/2))
	// Down until every event is captured and every delivery still pending (the second half's,
	// and any of the first half's not sent yet) was refused four times (0s, 500ms, 1s, 1s into
	// the schedule: 2.5 s at least), none failing meanwhile.
	xtest.Eventually(t, 2*time.Minute, 100*time.Millisecond, func() error {
		if failed := f.count(`SELECT count(*) FROM walhook.delivery WHERE state = 'failed'`); failed > 0 {
			return xtest.Stop(fmt.Errorf("%d deliveries failed before the schedule ended", failed))
		}
		if relay.Exited() {
			return xtest.Stop(errors.New("relay exited"))
		}
		events := f.count(`SELECT count(*) FROM walhook.event`)
		fewer := f.count(`SELECT count(*) FROM walhook.delivery WHERE state = 'pending' AND attempts < 4`)
		if events < n || fewer > 0 {
			return fmt.Errorf("%d of %d events captured, %d pending deliveries tried fewer than four times", events, n, fewer)
		}
		return nil
	})
	down := time.Since(downAt)
	r.up()
	f.waitDelivered(r, n, 2*time.Minute, relay)
	retried := f.count(`SELECT count(*) FROM walhook.delivery WHERE attempts > 1`)
	require.Positive(t, retried, "deliveries were retried while the receiver was down")
	require.Positive(t, f.count(`SELECT count(*) FROM walhook.attempt WHERE outcome = 'retry' AND error <> ''`),
		"the refused attempts are recorded with their error")
	report(t, "receiver down %v: %d of %d deliveries retried, all delivered, none failed", down.Round(100*time.Millisecond), retried, n)
}

// TestHostileReceivers points webhooks at receivers that misbehave — a slow-loris that dribbles
// its headers, an endless response body, a redirect to the metadata address 169.254.169.254, a
// TLS server whose handshake never finishes — and checks that each attempt is bounded by
// --attempt-timeout, recorded on the attempt, and that the relay's goroutines and memory (its
// /metrics) return to their baseline afterwards.
func TestHostileReceivers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newTestFixture(t)
	stop := make(chan struct{})
	var conns sync.WaitGroup
	t.Cleanup(func() { close(stop); conns.Wait() })

	slowloris := rawServer(t, stop, &conns, func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nX-Slow: "))
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	})
	tlsHang := rawServer(t, stop, &conns, func(net.Conn) { <-stop }) // accepts, never answers
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	redirect := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusFound))
	t.Cleanup(redirect.Close)

	relay := xtest.Serve(t, f.env(), relayArgs("hostile", "--retry-schedule", "0s,500ms")...)
	// The baseline is taken once the relay runs all it runs: ready, and capture reading the slot.
	relay.WaitStatus(t, "/readyz", http.StatusOK, time.Minute)
	f.waitSlotReader(ctx, "", time.Minute)
	baseG := relay.Metric(t, "go_goroutines")
	baseHeap := relay.Metric(t, "go_memstats_heap_inuse_bytes")
	baseRSS := relay.Metric(t, "process_resident_memory_bytes")

	hooks := map[string]string{
		"slow-loris":       "http://" + slowloris + "/",
		"tls-never":        "https://" + tlsHang + "/",
		"endless-body":     endless.URL + "/",
		"redirect-to-meta": redirect.URL + "/",
	}
	const per = 20
	ids := map[string]int64{}
	for name, url := range hooks {
		w := f.webhook("1", url)
		ids[name] = w.ID
		_, err := f.pool.Exec(ctx, `
WITH e AS (
  INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
  SELECT 'hostile:' || $1 || ':' || g, '1', 'contact.created', '{"type":"contact.created"}', now()
  FROM generate_series(1, $2::int) g RETURNING id, occurred_at
)
INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key) SELECT '1', $3, e.id, e.occurred_at, 'contact.created' FROM e`,
			name, per, w.ID)
		require.NoError(t, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for f.count(`SELECT count(*) FROM walhook.delivery WHERE state = 'pending'`) > 0 {
		require.True(t, time.Now().Before(deadline), "deliveries still pending after 2m\n%s", xtest.Tail(relay.Logs(), 4000))
		require.False(t, relay.Exited(), "relay exited:\n%s", relay.Logs())
		time.Sleep(200 * time.Millisecond)
	}
	for name, id := range ids {
		var attempts, longest, errs, maxBody int
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(duration_ms), 0),
			count(*) FILTER (WHERE error <> '' OR response_status IS NOT NULL), coalesce(max(length(response_body)), 0)
			FROM walhook.attempt WHERE webhook_id = $1`, id).Scan(&attempts, &longest, &errs, &maxBody))
		require.GreaterOrEqual(t, attempts, per, "%s: every delivery has its attempts recorded", name)
		require.Equal(t, attempts, errs, "%s: every attempt records an error or a status", name)
		require.LessOrEqual(t, longest, 2000+1500, "%s: attempts are bounded by --attempt-timeout 2s", name)
		require.LessOrEqual(t, maxBody, 16384+64, "%s: response body kept up to 16 KiB", name)
		report(t, "%s: %d attempts, longest %d ms, longest body kept %d bytes", name, attempts, longest, maxBody)
	}
	var status int
	var errText string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT coalesce(response_status, 0), coalesce(error, '') FROM walhook.attempt
		WHERE webhook_id = $1 LIMIT 1`, ids["redirect-to-meta"]).Scan(&status, &errText))
	require.Equal(t, http.StatusFound, status, "a redirect is a failure and is not followed (%s)", errText)
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1 AND state = 'succeeded'`, ids["redirect-to-meta"]))

	// Goroutines and memory come back: idle connections close, nothing leaks per attempt.
	endless.CloseClientConnections()
	redirect.CloseClientConnections()
	var g, heap, rss float64
	deadline = time.Now().Add(time.Minute)
	for {
		g = relay.Metric(t, "go_goroutines")
		heap = relay.Metric(t, "go_memstats_heap_inuse_bytes")
		rss = relay.Metric(t, "process_resident_memory_bytes")
		if g <= baseG+3 && heap <= baseHeap+16<<20 {
			break
		}
		require.True(t, time.Now().Before(deadline), "goroutines %v (baseline %v), heap in use %v (baseline %v) a minute after the hostile attempts",
			g, baseG, heap, baseHeap)
		time.Sleep(500 * time.Millisecond)
	}
	require.LessOrEqual(t, rss, baseRSS+64<<20, "resident memory")
	report(t, "after %d hostile deliveries: goroutines %v (baseline %v), heap in use %.1f MiB (baseline %.1f), RSS %.1f MiB (baseline %.1f)",
		per*len(hooks), g, baseG, heap/(1<<20), baseHeap/(1<<20), rss/(1<<20), baseRSS/(1<<20))
}

// rawServer accepts TCP connections on 127.0.0.1 and hands each to handle until stop closes.
func rawServer(t *testing.T, stop <-chan struct{}, conns *sync.WaitGroup, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() {
		<-stop
		_ = ln.Close()
	}()
	// conns.Add must happen before the test's conns.Wait: this cleanup (registered after the
	// test's, so run before it) closes the listener and waits for the accept loop to end.
	accepting := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-accepting
	})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				done := make(chan struct{})
				go func() {
					select {
					case <-stop:
						_ = c.Close()
					case <-done:
					}
				}()
				handle(c)
				close(done)
			}()
		}
	}()
	return fmt.Sprint(ln.Addr())
}
