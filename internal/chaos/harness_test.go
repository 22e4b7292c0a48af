package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// full reports whether the full sizes run (make chaos).
func full() bool { return os.Getenv("WALHOOK_CHAOS_FULL") == "1" }

// size picks the reduced or the full size.
func size(reduced, fullSize int) int {
	if full() {
		return fullSize
	}
	return reduced
}

// receiver is an HTTP endpoint that de-duplicates deliveries by webhook-id and counts
// duplicates. While down, its listener is closed (connection refused).
type receiver struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *http.Server
	seen   map[string]int // webhook-id → requests
	events map[string]bool
	dups   int
	last   time.Time
	delay  time.Duration // each answer waits this long (a slow endpoint)
}

// slow makes every answer wait d.
func (r *receiver) slow(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &receiver{t: t, addr: ln.Addr().String(), seen: map[string]int{}, events: map[string]bool{}}
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	var env struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&env)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.seen[id]++
	if r.seen[id] > 1 {
		r.dups++
	}
	r.events[env.ID] = true
	r.last = time.Now()
	delay := r.delay
	r.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// down closes the listener and every connection: requests are refused until up.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same address.
func (r *receiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	require.NoError(r.t, err)
	r.serve(ln)
}

// counts returns distinct webhook-ids, distinct envelope ids and duplicate requests.
func (r *receiver) counts() (unique, events, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), len(r.events), r.dups
}

// duplicated returns the webhook-ids received more than once.
func (r *receiver) duplicated() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, n := range r.seen {
		if n > 1 {
			ids = append(ids, id)
		}
	}
	return ids
}

func (r *receiver) lastAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// fixture is one test's walhook database and the application's database it captures from: the
// demo contacts table and its catalog, companies "1" and "2", and the store that created them (its
// keys are the relay's). With one database (the default) the two are the same; with
// WALHOOK_TEST_TWO_DATABASES=1 (xtest.TwoDatabases) the application's rows, walhook.emit and
// walhook.outbox are in a database of their own, and the relays get --source-database-url.
type fixture struct {
	t    *testing.T
	url  string        // walhook's database
	pool *pgxpool.Pool // walhook's database: events, deliveries, attempts, leases
	st   *store.Store
	// srcURL, src and srcSt are the application's database: contacts, walhook.emit,
	// walhook.outbox, the slot. The same as url, pool and st with one database.
	srcURL string
	src    *pgxpool.Pool
	srcSt  *store.Store
	spec   string
	slot   string
}

var slotSeq sync.Mutex
var slotN int

// mode names the run's mode in figures.
func mode() string {
	if xtest.TwoDatabases() {
		return "two databases"
	}
	return "one database"
}

// newTestFixture is a fixture on fresh databases of the test cluster: walhook's, and the
// application's apart from it when xtest.TwoDatabases.
func newTestFixture(t *testing.T) *fixture {
	t.Helper()
	url := xtest.DatabaseURL(t)
	return newFixture(t, url, xtest.SourceURL(t, url))
}

// newReceiverFixture is a test fixture (newTestFixture) whose company "1" has a webhook to a
// receiver of its own (newReceiver).
func newReceiverFixture(t *testing.T) (*fixture, *receiver) {
	t.Helper()
	f := newTestFixture(t)
	r := newReceiver(t)
	f.webhook("1", r.URL())
	return f, r
}

// newFixture is a fixture on walhook's database at url capturing from the application's at srcURL
// (url itself for one database), with companies "1" and "2".
func newFixture(t *testing.T, url, srcURL string) *fixture {
	t.Helper()
	return newFixtureWith(t, url, srcURL, "1", "2")
}

// newFixtureWith is newFixture with the given companies provisioned in walhook's database.
func newFixtureWith(t *testing.T, url, srcURL string, companies ...string) *fixture {
	t.Helper()
	ctx := t.Context()
	spec := crypt.GenerateKeySpec("chaos")
	keys, err := crypt.ParseKeyring(spec)
	require.NoError(t, err)
	open := func(url string) (*pgxpool.Pool, *store.Store) {
		pool, err := pgxpool.New(ctx, url)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool, store.New(pool, keys)
	}
	pool, st := open(url)
	_, err = st.MigrateUp(ctx)
	require.NoError(t, err)
	src, srcSt := pool, st
	if srcURL != url {
		src, srcSt = open(srcURL)
		_, err = srcSt.MigrateSourceUp(ctx)
		require.NoError(t, err)
		var own bool
		require.NoError(t, src.QueryRow(ctx, `SELECT to_regclass('walhook.event') IS NOT NULL`).Scan(&own))
		require.False(t, own, "the application's database holds none of walhook's own tables")
	}
	_, err = src.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.contacts (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text NOT NULL, name text NOT NULL,
		email text, created_at timestamptz NOT NULL DEFAULT now());
		ALTER TABLE public.contacts REPLICA IDENTITY FULL`)
	require.NoError(t, err)
	cat, err := catalog.Load("../../cmd/walhook/devdata/catalog.yaml")
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, srcSt, st))
	for _, c := range companies {
		_, err = st.CompanyCreate(ctx, c, "Company "+c)
		require.NoError(t, err)
	}
	slotSeq.Lock()
	slotN++
	slot := fmt.Sprintf("chaos_%d_%d", os.Getpid(), slotN)
	slotSeq.Unlock()
	return &fixture{t: t, url: url, pool: pool, st: st, srcURL: srcURL, src: src, srcSt: srcSt, spec: spec, slot: slot}
}

// two reports whether the application's database is apart from walhook's.
func (f *fixture) two() bool { return f.srcURL != f.url }

// webhook creates an active contact.created webhook of company to url.
func (f *fixture) webhook(company, url string) webhook.Webhook {
	f.t.Helper()
	w, err := f.st.WebhookCreate(f.t.Context(), webhook.Webhook{CompanyID: company, Name: "hook " + url,
		URL: url, Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true, Active: true}, nil)
	require.NoError(f.t, err)
	return w
}

// env is the environment of a relay on this fixture.
func (f *fixture) env() []string {
	env := []string{"WALHOOK_DATABASE_URL=" + f.url, "WALHOOK_ENCRYPTION_KEYS=" + f.spec,
		"WALHOOK_SLOT=" + f.slot, "WALHOOK_PUBLICATION=" + f.slot, "WALHOOK_ALLOW_PRIVATE_CIDRS=127.0.0.0/8"}
	if f.two() {
		env = append(env, "WALHOOK_SOURCE_DATABASE_URL="+f.srcURL)
	}
	return env
}

// relayArgs are the flags every chaos relay runs with: short timeouts so a killed relay's leases
// come back quickly, and a retry schedule that fits a test.
func relayArgs(id string, extra ...string) []string {
	return append([]string{"relay", "--instance-id", id, "--attempt-timeout", "2s", "--dispatch-lease", "8s",
		"--dispatch-poll-interval", "200ms", "--retry-schedule", "0s,500ms,1s,1s,2s,2s,2s,2s,2s,2s,2s,2s",
		"--retry-jitter", "-1", "--capture-status-interval", "200ms"}, extra...)
}

// insert inserts n contacts of company from index from in the application's database, 100
// single-row transactions per batch.
func (f *fixture) insert(ctx context.Context, company string, from, n int) error {
	for i := from; i < from+n; i += 100 {
		b := &pgx.Batch{}
		for j := i; j < min(i+100, from+n); j++ {
			b.Queue(`INSERT INTO contacts (company_id, name) VALUES ($1, $2)`, company, fmt.Sprint("c", j))
		}
		if err := f.src.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("insert contacts: %w", err)
		}
	}
	return nil
}

// count runs a count query on walhook's database.
func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.pool.QueryRow(f.t.Context(), query, args...).Scan(&n))
	return n
}

// waitDelivered waits until n events exist and every delivery has succeeded, and the receiver
// saw n distinct deliveries; it fails if a relay in ps exits meanwhile.
func (f *fixture) waitDelivered(r *receiver, n int, within time.Duration, ps ...*xtest.Proc) {
	f.t.Helper()
	f.waitReceived(r, n, n, within, ps...)
}

// waitFirst waits until the receiver got at least one delivery, failing after within with the
// same account as waitDelivered.
func (f *fixture) waitFirst(r *receiver, n int, within time.Duration, ps ...*xtest.Proc) {
	f.t.Helper()
	f.waitReceived(r, n, 1, within, ps...)
}

// waitReceived waits until the receiver counted want distinct deliveries (all n, with the
// history complete, when want == n).
func (f *fixture) waitReceived(r *receiver, n, want int, within time.Duration, ps ...*xtest.Proc) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var events, pending, succeeded, failed int
		err := f.pool.QueryRow(f.t.Context(), `SELECT (SELECT count(*) FROM walhook.event),
			count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'succeeded'),
			count(*) FILTER (WHERE state = 'failed') FROM walhook.delivery`).Scan(&events, &pending, &succeeded, &failed)
		unique, _, _ := r.counts()
		if want < n && unique >= want {
			return
		}
		if err == nil && events == n && pending == 0 && succeeded == n && unique == n {
			return
		}
		require.Zero(f.t, failed, "deliveries failed")
		for _, p := range ps {
			if p.Exited() {
				f.t.Fatalf("relay exited: %v\n%s", p.Err(), p.Logs())
			}
		}
		if time.Now().After(deadline) {
			logs := ""
			for _, p := range ps {
				logs += p.Logs()
			}
			f.t.Fatalf("after %v, waiting for %d received: events %d/%d, pending %d (%s), succeeded %d, received %d (err %v); attempts that did not succeed: %s\n%s",
				within, want, events, n, pending, f.pendingBreakdown(), succeeded, unique, err, f.failedAttempts(), xtest.Tail(logs, 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pendingBreakdown says why pending deliveries are not delivered yet: due and free to claim,
// leased (being sent, or left by a killed relay), or scheduled for a later retry.
func (f *fixture) pendingBreakdown() string {
	var due, leased, scheduled int
	var nextIn float64
	err := f.pool.QueryRow(f.t.Context(), `SELECT
		count(*) FILTER (WHERE next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())),
		count(*) FILTER (WHERE lease_until >= now()),
		count(*) FILTER (WHERE next_attempt_at > now() AND (lease_until IS NULL OR lease_until < now())),
		coalesce(extract(epoch FROM max(next_attempt_at) - now()), 0)::float8
		FROM walhook.delivery WHERE state = 'pending'`).Scan(&due, &leased, &scheduled, &nextIn)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("due and unleased %d, leased %d, scheduled later %d (last due in %.1fs)", due, leased, scheduled, nextIn)
}

// failedAttempts counts the attempts that did not succeed, by status and error.
func (f *fixture) failedAttempts() string {
	rows, err := f.pool.Query(f.t.Context(), `SELECT coalesce(response_status::text, '-'),
		coalesce(left(regexp_replace(error, '[0-9]+', 'N', 'g'), 100), ''), count(*)
		FROM walhook.attempt WHERE outcome <> 'succeeded' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	out := "none"
	for i := 0; rows.Next(); i++ {
		var status, msg string
		var n int
		if err := rows.Scan(&status, &msg, &n); err != nil {
			return err.Error()
		}
		if i == 0 {
			out = ""
		} else {
			out += "; "
		}
		out += fmt.Sprintf("%d× status %s %q", n, status, msg)
	}
	return out
}

// report logs a figure, and prints it on stdout in full runs so `make chaos` shows it, with the
// mode (one database or two).
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	if full() {
		fmt.Printf("FIGURE %s (%s): %s\n", t.Name(), mode(), fmt.Sprintf(format, args...))
	}
}
