package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

type pgxBatch struct{ pgx.Batch }

// The crash tests re-execute the test binary as a relay: TestMain sees helperEnv and runs
// runHelper instead of the tests.
const (
	helperEnv    = "WALHOOK_CAPTURE_HELPER" // the instance id
	helperDBEnv  = "WALHOOK_CAPTURE_HELPER_DB"
	helperSrcEnv = "WALHOOK_CAPTURE_HELPER_SOURCE" // the application's database (the same URL with one database)
	helperSlot   = "WALHOOK_CAPTURE_HELPER_SLOT"
	helperKeys   = "WALHOOK_CAPTURE_HELPER_KEYS" // one keyring for every helper: they share the public-id key
)

func helperMode() bool { return os.Getenv(helperEnv) != "" }

func runHelper() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := helper(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
}

func helper(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv(helperDBEnv))
	if err != nil {
		return err
	}
	defer pool.Close()
	keys, err := crypt.ParseKeyring(os.Getenv(helperKeys))
	if err != nil {
		return err
	}
	st := store.New(pool, keys)
	cat, err := catalog.FromStore(ctx, st)
	if err != nil {
		return err
	}
	var src *store.Store
	if u := os.Getenv(helperSrcEnv); u != os.Getenv(helperDBEnv) {
		spool, err := pgxpool.New(ctx, u)
		if err != nil {
			return err
		}
		defer spool.Close()
		src = store.New(spool, keys)
	}
	slot := os.Getenv(helperSlot)
	c, err := New(Config{Slot: slot, Publication: slot, Catalog: cat, InstanceID: os.Getenv(helperEnv),
		StatusInterval: 100 * time.Millisecond, BatchEvents: 200, Source: src}, st, zerolog.New(os.Stderr).Level(zerolog.WarnLevel), prometheus.NewRegistry())
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// spawn starts a relay process running capture on f's database; it is killed at the end. The
// child is this test binary again (not the walhook binary of xtest.Start): it runs capture alone,
// with the test's catalog and settings, which no walhook command does.
func (f *fixture) spawn(t *testing.T, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if f.helperKeys == "" {
		f.helperKeys = crypt.GenerateKeySpec("helper")
	}
	cmd.Env = append(os.Environ(), helperEnv+"="+id, helperDBEnv+"="+f.url, helperSrcEnv+"="+f.appURL, helperSlot+"="+f.slot, helperKeys+"="+f.helperKeys)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitFor bounds every wait on a condition in these tests: far above what any of them takes on
// a loaded machine, so that a capture that stopped fails the test with what it waited for
// instead of hanging it until the test binary's timeout.
const waitFor = time.Minute

// waitUntil polls cond until it holds, and fails the test with the message if it does not
// within waitFor.
func waitUntil(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	if !within(t, waitFor, cond) {
		t.Fatalf("not within %v: "+format, append([]any{waitFor}, args...)...)
	}
}

// waitOutboxEmpty waits until the application's outbox is empty: every row consumed and deleted
// (with two databases the delete comes a moment after the events commit in walhook's database).
// On failure it shows the rows left, as they are then.
func (f *fixture) waitOutboxEmpty(t *testing.T) {
	t.Helper()
	if !within(t, waitFor, func() bool { return f.appCount(t, "SELECT count(*) FROM walhook.outbox") == 0 }) {
		t.Fatalf("consumed outbox rows are not deleted within %v: %s", waitFor, f.outboxDump(t))
	}
}

// within polls cond (in the test's goroutine, so cond may use require) until it holds or d has
// passed, and reports whether it held.
func within(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-poll.C:
		}
	}
	return true
}

func (f *fixture) waitHolder(t *testing.T, holder string) {
	t.Helper()
	waitUntil(t, func() bool {
		l, err := f.st.LeaseGet(t.Context(), "capture:"+f.slot)
		return err == nil && l.Live && l.Holder == holder
	}, "%s holds the capture lease", holder)
}

func (f *fixture) insertContacts(t *testing.T, from, n int) {
	t.Helper()
	ctx := t.Context()
	for i := from; i < from+n; i += 100 {
		b := &pgxBatch{}
		for j := i; j < min(i+100, from+n); j++ {
			b.Queue(`INSERT INTO contacts (company_id, name) VALUES ('1', $1)`, fmt.Sprint("c", j))
		}
		require.NoError(t, f.app.SendBatch(ctx, &b.Batch).Close())
	}
}

// TestKillLeaderStandbyTakesOver runs two relay processes: one leads and streams; it is killed
// with SIGKILL in the middle of a stream of single-row transactions (so after commits it had not
// acknowledged); the standby takes over from the slot's confirmed position and every event is
// stored exactly once. Then the killed one is restarted and becomes the standby.
func TestKillLeaderStandbyTakesOver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	f.prepare(t, f.config())
	a := f.spawn(t, "a")
	f.waitHolder(t, "a")
	f.waitStreaming(t)
	f.spawn(t, "b")

	f.insertContacts(t, 0, 2000)
	waitUntil(t, func() bool { return f.count(t, "SELECT count(*) FROM walhook.event") > 0 }, "a leads and stores events")
	require.NoError(t, a.Process.Kill()) // SIGKILL: no ack, no lease release
	killed := time.Now()
	_ = a.Wait()
	f.insertContacts(t, 2000, 1000)
	f.waitHolder(t, "b")
	t.Logf("standby took over %v after kill -9 (lease TTL %v)", time.Since(killed).Round(100*time.Millisecond), 6*time.Second)
	f.waitEvents(t, 3000)

	f.spawn(t, "a") // restarted: stays standby while b leads
	f.insertContacts(t, 3000, 500)
	f.waitEvents(t, 3500)
	require.Equal(t, 3500, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
	require.Equal(t, 3500, f.count(t, "SELECT count(DISTINCT payload->'data'->>'name') FROM walhook.event"))
	require.Equal(t, 7000, f.count(t, "SELECT count(*) FROM walhook.delivery"), "two webhooks per contact")
	l, err := f.st.LeaseGet(ctx, "capture:"+f.slot)
	require.NoError(t, err)
	require.Equal(t, "b", l.Holder)
}
