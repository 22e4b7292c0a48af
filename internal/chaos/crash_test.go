package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/internal/xtest"
)

// TestKillNineDuringStream kills the relay with SIGKILL at random moments while events stream in
// (2 kills during 2,000 events; 10 during 20,000 with WALHOOK_CHAOS_FULL=1), restarting a new
// relay each time, as a supervisor would. Each kill waits up to a second for a moment when
// events are committed in walhook's database but not yet acknowledged to the slot (the stored
// capture position ahead of confirmed_flush_lsn); how many kills landed there is reported. Afterwards every event was delivered at least once,
// every delivery succeeded, none is pending, and the duplicates are counted and reported. The
// relays run with the default dispatch lease (2 minutes): the deliveries a killed relay had
// claimed come back through the replica heartbeat (the restarted relay is a new replica and
// releases its predecessor's claims), and the time until every one of them is sent is reported
// per kill.
//
// Duplicates come only from requests on the wire: every delivery the receiver got twice was
// claimed by a relay when it was killed (sent, its result not yet recorded), or has an attempt
// that did not succeed (the receiver got it, the relay did not get the answer in time). No event
// is stored twice, whatever the kill interrupted: with two databases (xtest.TwoDatabases) also
// between the commit in walhook's database and the acknowledgement to the application's.
func TestKillNineDuringStream(t *testing.T) {
	t.Parallel()
	kills, n := size(2, 10), size(2000, 20000)
	f, r := newReceiverFixture(t)

	ctx := t.Context()
	relay := xtest.Serve(t, f.env(), replicaArgs("r0")...)
	f.waitSlotReader(ctx, "", time.Minute) // the slot exists: every event from now on is captured
	produced := make(chan error, 1)
	go func() {
		// Spread the events over the kills: about 3 s of stream per kill.
		per := max(100, n/(kills*30))
		for i := 0; i < n; i += per {
			if err := f.insert(ctx, "1", i, min(per, n-i)); err != nil {
				produced <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		produced <- nil
	}()

	var recoveries []time.Duration
	// Every delivery a killed relay held when it was killed.
	held := map[int64]bool{}
	// Kills that left events stored but not yet acknowledged to the slot.
	inWindow := 0
	// Per kill: how long until every delivery the killed relay held was sent.
	perKill := make([]string, kills)
	var sentAfter []time.Duration
	var mu sync.Mutex
	var sending sync.WaitGroup
	for k := 1; k <= kills; k++ {
		time.Sleep(time.Duration(500+rand.IntN(2500)) * time.Millisecond)
		// Prefer the moment that matters most with two databases: events committed in walhook's
		// database, not yet acknowledged to the slot. Wait up to a second for it, then kill anyway.
		for wait := time.Now(); time.Since(wait) < time.Second && !f.aheadOfSlot(ctx); {
			time.Sleep(5 * time.Millisecond)
		}
		relay.Kill(t)
		killed := time.Now()
		if f.aheadOfSlot(ctx) {
			inWindow++
		}
		ids := f.heldBy(ctx, fmt.Sprintf("r%d.", k-1))
		for _, id := range ids {
			held[id] = true
		}
		perKill[k-1] = "none held"
		if len(ids) > 0 {
			sending.Add(1)
			go func() {
				defer sending.Done()
				took := f.untilSent(ctx, ids, killed, 3*time.Minute)
				mu.Lock()
				sentAfter = append(sentAfter, took)
				perKill[k-1] = fmt.Sprintf("%d held, sent within %v", len(ids), took.Round(100*time.Millisecond))
				mu.Unlock()
			}()
		}
		relay = xtest.Serve(t, f.env(), replicaArgs(fmt.Sprint("r", k))...)
		// Recovery: the new relay reads the slot (after the killed one's lease expired).
		f.waitSlotReader(ctx, fmt.Sprint("r", k-1), time.Minute)
		recoveries = append(recoveries, time.Since(killed))
	}
	require.NoError(t, <-produced)
	f.waitDelivered(r, n, 3*time.Minute, relay)
	sending.Wait()
	unique, events, dups := r.counts()
	require.Equal(t, n, events, "distinct event ids received")
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery WHERE state <> 'succeeded' OR lease_until > now() + interval '1 hour'`))
	// Duplicates only from requests on the wire.
	var retried []int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT delivery_id), '{}') FROM walhook.attempt
		WHERE outcome <> 'succeeded'`).Scan(&retried))
	onWire := maps.Clone(held)
	for _, id := range retried {
		onWire[id] = true
	}
	pub, err := f.st.PublicIDs(ctx)
	require.NoError(t, err)
	for _, webhookID := range r.duplicated() {
		id, ok := pub.ParseDelivery("1", webhookID)
		require.True(t, ok, "a duplicate with webhook-id %q, not a delivery of company 1", webhookID)
		require.True(t, onWire[id], "delivery %d (webhook-id %s) received twice, but it was neither held by a killed relay nor retried", id, webhookID)
	}
	report(t, "%d kill -9 during %d events: %d delivered (distinct webhook-id), none stored twice, %d duplicates (%.2f%%), each of a delivery held by a killed relay (%d held in all) or retried (%d), capture streaming again after each kill %v (max %v)",
		kills, n, unique, dups, 100*float64(dups)/float64(n), len(held), len(retried), round(recoveries), maxOf(recoveries))
	report(t, "%d of %d kills landed after a commit in walhook's database and before the slot's acknowledgement (stored position ahead of confirmed_flush_lsn): replayed, nothing stored twice",
		inWindow, kills)
	report(t, "every delivery sent within %v of a kill -9 (%d of %d kills found claims held; per kill: %s; lease 2m, heartbeat timeout 8s)",
		maxOf(sentAfter), len(sentAfter), kills, strings.Join(perKill, "; "))
}

// TestPostgresRestartMidStream restarts PostgreSQL under a streaming relay, once with a fast and
// once with an immediate shutdown. The relay process keeps running, reconnects by itself and
// every event is delivered, none stored twice. With two databases (xtest.TwoDatabases) each is a
// private cluster of its own and both are restarted so, one after the other: the application's
// (the replication connection, the outbox deletes) and walhook's (the fan-out, claims, results).
func TestPostgresRestartMidStream(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := privateCluster(t)
	type restart struct {
		what string
		c    *pgcluster.Cluster
		mode string
	}
	restarts := []restart{{"PostgreSQL", c, "fast"}, {"PostgreSQL", c, "immediate"}}
	srcURL := c.URL("postgres")
	if xtest.TwoDatabases() {
		src := privateCluster(t)
		srcURL = src.URL("postgres")
		restarts = []restart{{"the application's PostgreSQL", src, "fast"}, {"the application's PostgreSQL", src, "immediate"},
			{"walhook's PostgreSQL", c, "fast"}, {"walhook's PostgreSQL", c, "immediate"}}
	}
	f := newFixture(t, c.URL("postgres"), srcURL)
	r := newReceiver(t)
	f.webhook("1", r.URL())
	relay := xtest.Serve(t, f.env(), relayArgs("pg")...)
	f.waitSlotReader(ctx, "", time.Minute)

	per := size(500, 3000)
	total := 0
	for _, rs := range restarts {
		require.NoError(t, f.insert(ctx, "1", total, per))
		total += per
		// Mid-stream: shut down as soon as the first of these events reaches the receiver.
		xtest.Eventually(t, time.Minute, 5*time.Millisecond, func() error {
			if u, _, _ := r.counts(); u <= total-per {
				return fmt.Errorf("received %d, none of the last %d events", u, per)
			}
			return nil
		})
		require.NoError(t, rs.c.Shutdown(ctx, rs.mode))
		down := time.Now()
		time.Sleep(2 * time.Second) // the outage itself: PostgreSQL stays down this long
		require.NoError(t, rs.c.Restart(ctx))
		back := time.Now()
		f.pool.Reset()
		f.src.Reset()
		require.NoError(t, f.insert(ctx, "1", total, per))
		total += per
		// Recovered: every event of the first batch delivered, the last one after the shutdown;
		// then one written after the restart (the measure that also holds when the application's
		// database was the one down and dispatch went on sending what was captured before).
		wait := func(done func(int) bool) time.Duration {
			for u, _, _ := r.counts(); !done(u); u, _, _ = r.counts() {
				require.False(t, relay.Exited(), "relay exited after the %s shutdown of %s:\n%s", rs.mode, rs.what, relay.Logs())
				require.Less(t, time.Since(back), time.Minute, "not delivering a minute after %s came back (%s shutdown):\n%s", rs.what, rs.mode, xtest.Tail(relay.Logs(), 6000))
				time.Sleep(20 * time.Millisecond)
			}
			return time.Since(back).Round(100 * time.Millisecond)
		}
		again := wait(func(u int) bool { return !r.lastAt().Before(down) && u >= total-per })
		later := wait(func(u int) bool { return u > total-per })
		report(t, "%s, %s shutdown (down %v): delivering again %v after it was back, an event written after the restart delivered %v after it was back",
			rs.what, rs.mode, back.Sub(down).Round(100*time.Millisecond), again, later)
	}
	// Every event stored once and delivered (waitDelivered counts events and deliveries).
	f.waitDelivered(r, total, 2*time.Minute, relay)
	_, events, dups := r.counts()
	require.Equal(t, total, events, "distinct event ids received")
	report(t, "%d events across %d restarts: all delivered, none stored twice, %d duplicates", total, len(restarts), dups)
}

// privateCluster starts a PostgreSQL cluster for this test alone (one a test may shut down and
// restart, or reconfigure), stopped when the test ends.
func privateCluster(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "walhook-chaos-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := pgcluster.Start(t.Context(), pgcluster.Options{DataDir: dir + "/data", Port: 20000 + rand.IntN(20000)})
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Shutdown(sctx, "immediate")
	})
	return c
}

// TestLeaderKilledStandbyTakesOver runs two relays; the capture leader is killed with SIGKILL
// mid-stream and the standby takes the slot within 10 s (default --leader-ttl 6s). Nothing is lost.
func TestLeaderKilledStandbyTakesOver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, r := newReceiverFixture(t)
	// relayArgs' retry schedule: with the default one (5 s, 30 s, 2 m, …) a few attempts that time
	// out on a loaded machine are not due again within the wait below.
	procs := map[string]*xtest.Proc{"a": xtest.Serve(t, f.env(), relayArgs("a")...)}
	holder := f.waitSlotReader(ctx, "", 30*time.Second)
	require.Equal(t, "a", holder)
	procs["b"] = xtest.Serve(t, f.env(), relayArgs("b")...)

	n := size(2000, 10000)
	require.NoError(t, f.insert(ctx, "1", 0, n/2))
	f.waitFirst(r, n, time.Minute, procs["a"], procs["b"])
	procs["a"].Kill(t)
	killed := time.Now()
	produced := make(chan error, 1)
	go func() { produced <- f.insert(ctx, "1", n/2, n-n/2) }()
	require.Equal(t, "b", f.waitSlotReader(ctx, "a", 10*time.Second))
	took := time.Since(killed)
	require.NoError(t, <-produced)
	f.waitDelivered(r, n, 2*time.Minute, procs["b"])
	_, _, dups := r.counts()
	report(t, "leader killed: standby streaming from the slot %v after kill -9 (bound 10 s); %d events delivered in %v, %d duplicates; attempts that did not succeed: %s",
		took.Round(100*time.Millisecond), n, time.Since(killed).Round(100*time.Millisecond), dups, f.failedAttempts())
}

// waitSlotReader waits until a live capture lease is held by someone other than not, and the
// slot has an active reader; it returns the holder.
func (f *fixture) waitSlotReader(ctx context.Context, not string, within time.Duration) string {
	f.t.Helper()
	var holder string
	xtest.Eventually(f.t, within, 20*time.Millisecond, func() error {
		l, err := f.st.LeaseGet(ctx, "capture:"+f.slot)
		var active bool
		// A slot is active while CREATE_REPLICATION_SLOT still builds its snapshot too; a
		// transaction begun before it is consistent is never decoded. confirmed_flush_lsn is set
		// once it is, so only then is every event from now on captured.
		_ = f.src.QueryRow(ctx, `SELECT coalesce((SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = $1), false)`, f.slot).Scan(&active)
		if err != nil {
			return fmt.Errorf("capture lease: %w", err)
		}
		if !l.Live || l.Holder == not || !active {
			return fmt.Errorf("no new slot reader: capture lease %+v, slot read and consistent %t", l, active)
		}
		holder = l.Holder
		return nil
	})
	return holder
}

// aheadOfSlot reports whether the capture position stored in walhook's database is ahead of the
// slot's confirmed_flush_lsn in the application's: events committed, not yet acknowledged.
func (f *fixture) aheadOfSlot(ctx context.Context) bool {
	f.t.Helper()
	var stored, confirmed string
	err := f.pool.QueryRow(ctx, `SELECT lsn::text FROM walhook.capture_position WHERE slot = $1`, f.slot).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return false
	}
	require.NoError(f.t, err)
	require.NoError(f.t, f.src.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, f.slot).Scan(&confirmed))
	var ahead bool
	require.NoError(f.t, f.pool.QueryRow(ctx, `SELECT $1::pg_lsn > $2::pg_lsn`, stored, confirmed).Scan(&ahead))
	return ahead
}

// TestUnreachableAtStart starts relays while nothing listens on the database's address. One with
// --connect-timeout 3s retries with growing backoff, then exits non-zero with a clear error; the
// other keeps retrying until the database appears (a TCP forwarder to the cluster opens on that
// address), then runs: a database that starts late does not crash-loop walhook. With two
// databases (xtest.TwoDatabases) walhook's database is there and the application's is the one
// that is not (--source-database-url).
func TestUnreachableAtStart(t *testing.T) {
	t.Parallel()
	c := xtest.Cluster(t)
	f := newTestFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens here now
	url, variable, flag := f.url, "WALHOOK_DATABASE_URL", "--database-url"
	if f.two() {
		url, variable, flag = f.srcURL, "WALHOOK_SOURCE_DATABASE_URL", "--source-database-url"
	}
	dbName := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(dbName, '?'); i >= 0 {
		dbName = dbName[:i]
	}
	tcpURL := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=2", pgcluster.Superuser, addr, dbName)
	env := append(f.env(), variable+"="+tcpURL)

	t.Run("gives up with a clear error", func(t *testing.T) {
		p := xtest.Start(t, env, xtest.ServeArgs("relay", "--connect-timeout", "3s")...)
		require.NotZero(t, p.Wait(t, time.Minute), "relay exits non-zero once --connect-timeout 3s is over")
		require.Error(t, p.Err())
		logs := p.Logs()
		require.Contains(t, logs, "PostgreSQL unreachable, retrying")
		require.Contains(t, logs, "connect to PostgreSQL (gave up after")
		require.Contains(t, logs, `"retry_in":500`, "backoff grows: 250ms, 500ms, …")
		require.Contains(t, logs, `"database":"`+flag+`"`, "the log names the unreachable database")
		require.NotContains(t, logs, "panic")
	})

	t.Run("runs once the database appears", func(t *testing.T) {
		p := xtest.Start(t, env, xtest.ServeArgs("relay", "--connect-timeout", "2m")...)
		// Its fourth try fails too (about 1.75s in: the one with --connect-timeout 3s gave up
		// there, its next retry due past the deadline); this one goes on.
		p.WaitLog(t, regexp.MustCompile(`"attempt":4,.*PostgreSQL unreachable, retrying`), time.Minute)
		require.False(t, p.Exited(), "relay exited while the database was unreachable:\n%s", p.Logs())
		fwd := forward(t, addr, c.SocketDir(), c.Port())
		defer fwd.Close()
		p.WaitListening(t, time.Minute)
		require.Equal(t, http.StatusOK, p.Status(t, "/healthz"))
	})
}

// forward listens on addr and forwards each connection to the cluster's Unix socket.
func forward(t *testing.T, addr, sockDir string, port int) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	var wg sync.WaitGroup
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", fmt.Sprintf("%s/.s.PGSQL.%d", sockDir, port))
			if err != nil {
				_ = in.Close()
				continue
			}
			wg.Add(2)
			pipe := func(a, b net.Conn) {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					k, err := a.Read(buf)
					if k > 0 {
						if _, werr := b.Write(buf[:k]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = a.Close()
				_ = b.Close()
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Millisecond)
	}
	return out
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(100 * time.Millisecond)
}
