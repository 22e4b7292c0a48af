package capture

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) {
	if helperMode() {
		runHelper()
		return
	}
	xtest.Main(m)
}

const testCatalog = `
events:
  - key: contact.created
    table: contacts
    operations: [insert]
    tenant_column: company_id
  - key: contact.updated
    table: contacts
    operations: [update]
    tenant_column: company_id
    columns: [name, email]
  - key: contact.changed
    table: contacts
    operations: [update]
    tenant_column: company_id
  - key: contact.deleted
    table: contacts
    operations: [delete]
    tenant_column: company_id
  - key: thing.created
    table: things
    operations: [insert]
    tenant_column: company_id
  - key: invoice.paid
    source: outbox
`

const testSchema = `
CREATE TABLE contacts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text, name text, email text, note text);
ALTER TABLE contacts REPLICA IDENTITY FULL;
CREATE TABLE things (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text NOT NULL,
    n numeric, f float8, i8 bigint, b boolean, ts timestamptz, t timestamp, d date, u uuid, j jsonb, js json,
    ia int[], ta text[], na numeric[], tsa timestamptz[], by bytea, iv interval, big text);
`

// fixture is a database with the test catalog, companies 1 and 2, and active webhooks of
// company 1 on every event (two on contact.created), and the application's database with the
// test's tables: the same database, or with WALHOOK_TEST_TWO_DATABASES=1 one of its own
// (xtest.Source). Application writes go to app; walhook's tables are read on pool.
type fixture struct {
	st   *store.Store
	pool *pgxpool.Pool
	cat  *catalog.Catalog
	slot string
	url  string
	// src, app and appURL are the application's database (st, pool and url with one database).
	src    *store.Store
	app    *pgxpool.Pool
	appURL string
	// helperKeys is the keyring spec of the helper processes (spawn)
	helperKeys string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	url := xtest.DatabaseURL(t)
	pool := xtest.PoolOn(t, url)
	st := store.New(pool, xtest.Keys())
	src, appURL := xtest.Source(t, st, url)
	_, err := src.Pool().Exec(ctx, testSchema)
	require.NoError(t, err)
	cat, err := catalog.Parse([]byte(testCatalog))
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, src, st))
	for _, id := range []string{"1", "2"} {
		_, err := st.CompanyCreate(ctx, id, "Company "+id)
		require.NoError(t, err)
	}
	for _, key := range []string{"contact.created", "contact.created", "contact.updated", "contact.changed", "contact.deleted", "thing.created", "invoice.paid"} {
		_, err := st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: key, URL: "https://example.com/" + key,
			Method: webhook.MethodPost, EventKeys: []string{key}, RawData: true, Active: true}, nil)
		require.NoError(t, err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &fixture{st: st, pool: pool, cat: cat, slot: "t_" + hex.EncodeToString(b), url: url, src: src, app: src.Pool(), appURL: appURL}
}

func (f *fixture) config() Config {
	cfg := Config{Slot: f.slot, Publication: f.slot, Catalog: f.cat, InstanceID: "test-" + f.slot,
		StatusInterval: 200 * time.Millisecond, LeaseTTL: 3 * time.Second}
	if f.src != f.st {
		cfg.Source = f.src
	}
	return cfg
}

// start runs capture until the returned stop is called (or the test ends).
func (f *fixture) start(t *testing.T, cfg Config, reg *prometheus.Registry, hook func(*Capture)) (stop func()) {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	c, err := New(cfg, f.st, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), reg)
	require.NoError(t, err)
	if hook != nil {
		hook(c)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once atomic.Bool
	stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return stop
}

// startStreaming starts capture with cfg (start) and waits until it streams (waitStreaming).
func (f *fixture) startStreaming(t *testing.T, cfg Config, reg *prometheus.Registry) (stop func()) {
	t.Helper()
	stop = f.start(t, cfg, reg, nil)
	f.waitStreaming(t)
	return stop
}

// startPolling starts capture with cfg in poll mode and waits until the source's capture mode
// says poll (so walhook.emit writes outbox rows from then on).
func (f *fixture) startPolling(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Mode = store.CapturePoll
	f.start(t, cfg, nil, nil)
	require.Eventually(t, func() bool {
		m, err := f.src.CaptureModeGet(t.Context())
		return err == nil && m == store.CapturePoll
	}, 10*time.Second, 10*time.Millisecond)
}

// newStreaming is a new fixture whose capture, of f.config(), streams (startStreaming), and the
// registry of that capture's metrics.
func newStreaming(t *testing.T) (*fixture, *prometheus.Registry) {
	t.Helper()
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	f.startStreaming(t, f.config(), reg)
	return f, reg
}

// prepare creates cfg's publication and slot, as a capture's start would, so that writes made
// before the capture runs are in the slot for it to read.
func (f *fixture) prepare(t *testing.T, cfg Config) {
	t.Helper()
	require.NoError(t, (&Capture{cfg: mustDefaults(t, cfg), st: f.st, src: f.src, log: zerolog.Nop()}).Prepare(t.Context()))
}

// fanOut is one fan-out commit of a capture: the position it reported (0 for a part that does not
// end its transaction) and how many events walhook.event held once it had committed.
type fanOut struct {
	end    uint64
	stored int
}

// fanOuts runs capture with cfg until walhook.event holds n events and a fan-out has reported the
// end of a transaction, and returns every fan-out commit in order: for tests of a transaction
// stored in parts.
func (f *fixture) fanOuts(t *testing.T, cfg Config, n int) []fanOut {
	t.Helper()
	var mu sync.Mutex
	var commits []fanOut
	f.start(t, cfg, nil, func(c *Capture) {
		c.afterCommit = func(end uint64) {
			var stored int
			_ = f.pool.QueryRow(t.Context(), "SELECT count(*) FROM walhook.event").Scan(&stored)
			mu.Lock()
			defer mu.Unlock()
			commits = append(commits, fanOut{end: end, stored: stored})
		}
	})
	f.waitEvents(t, n)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(commits) > 0 && commits[len(commits)-1].end != 0
	}, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(commits)
}

// waitStreaming waits until a capture reads the slot (so writes from now on are captured, and
// the start-up outbox sweep is over). A slot is active while CREATE_REPLICATION_SLOT still
// builds its snapshot (it waits for every running transaction of the cluster, such as another
// test's open lock); writes then are never decoded. It is ready once confirmed_flush_lsn is set.
func (f *fixture) waitStreaming(t *testing.T) {
	t.Helper()
	waitUntil(t, func() bool {
		// Active alone is not enough: a slot is active while CREATE_REPLICATION_SLOT still builds
		// its snapshot, and writes begun before it is consistent are never decoded (the test
		// then waits forever). confirmed_flush_lsn is set once it is consistent.
		s, err := f.src.CaptureSlotStatus(t.Context(), f.slot)
		return err == nil && s.Active && s.ConfirmedFlushLSN != ""
	}, "capture streams from slot %s", f.slot)
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.pool.QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

// appCount is count on the application's database.
func (f *fixture) appCount(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.app.QueryRow(t.Context(), q, args...).Scan(&n))
	return n
}

// waitEvents waits until the events table holds n rows.
func (f *fixture) waitEvents(t *testing.T, n int) {
	t.Helper()
	f.waitEventsWithin(t, n, waitFor)
}

// outboxDump lists the outbox rows and the events' source keys, for a failure message.
func (f *fixture) outboxDump(t *testing.T) string {
	t.Helper()
	var outbox, events string
	require.NoError(t, f.app.QueryRow(t.Context(), `SELECT coalesce((SELECT string_agg(format('%s %s %s %s', id, company_id, event_key, payload), '; ') FROM walhook.outbox), '')`).Scan(&outbox))
	require.NoError(t, f.pool.QueryRow(t.Context(), `SELECT coalesce((SELECT string_agg(source_key || ' ' || event_key, ', ' ORDER BY id) FROM walhook.event), '')`).Scan(&events))
	return outbox + " | events: " + events
}

func (f *fixture) payload(t *testing.T, eventKey string, nth int) map[string]any {
	t.Helper()
	var p []byte
	require.NoError(t, f.pool.QueryRow(t.Context(),
		"SELECT payload FROM walhook.event WHERE event_key = $1 ORDER BY id OFFSET $2 LIMIT 1", eventKey, nth).Scan(&p))
	var m map[string]any
	require.NoError(t, json.Unmarshal(p, &m))
	return m
}

func TestEmitPaths(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	var woken atomic.Int64
	cfg := f.config()
	cfg.Wake = func() { woken.Add(1) }
	f.prepare(t, cfg)
	f.startStreaming(t, cfg, reg)

	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := f.app.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	// (a) a mapped table write
	exec(`INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Ada', 'ada@example.com')`)
	// UPDATE of a column outside contact.updated's columns: only contact.changed fires
	exec(`UPDATE contacts SET note = 'x' WHERE name = 'Ada'`)
	// UPDATE of a listed column: both fire
	exec(`UPDATE contacts SET email = 'ada@lovelace.org' WHERE name = 'Ada'`)
	exec(`DELETE FROM contacts WHERE name = 'Ada'`)
	// (b) an outbox row, (c) walhook.emit
	exec(`INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ('1', 'invoice.paid', '{"amount": 12.5}')`)
	exec(`SELECT walhook.emit('1', 'invoice.paid', '{"amount": 7}')`)
	// a rolled-back transaction emits nothing
	tx, err := f.app.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'Rolled back'); SELECT walhook.emit('1', 'invoice.paid', '{}')`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	// bad data: NULL tenant, unknown company, unknown event, a message not written by walhook.emit
	exec(`INSERT INTO contacts (company_id, name) VALUES (NULL, 'nobody')`)
	exec(`INSERT INTO contacts (company_id, name) VALUES ('404', 'stranger')`)
	exec(`SELECT walhook.emit('1', 'no.such_event', '{}')`)
	exec(`SELECT pg_logical_emit_message(true, 'walhook', 'not json')`)
	exec(`INSERT INTO walhook.outbox (company_id, event_key) VALUES ('1', 'contact.created')`)
	// …and capture goes on
	exec(`INSERT INTO contacts (company_id, name) VALUES ('2', 'Last')`)

	// created(Ada), changed, updated+changed, deleted, outbox, emit, created(Last) = 8
	f.waitEvents(t, 8)
	for key, n := range map[string]int{"contact.created": 2, "contact.changed": 2, "contact.updated": 1, "contact.deleted": 1, "invoice.paid": 2} {
		require.Equal(t, n, f.count(t, "SELECT count(*) FROM walhook.event WHERE event_key = $1", key), key)
	}
	// deliveries: company 1 has two webhooks on contact.created, one on each other event;
	// company 2 has none.
	require.Equal(t, 2+2+1+1+2, f.count(t, "SELECT count(*) FROM walhook.delivery WHERE state = 'pending'"))
	// Consumed outbox rows are deleted in the fan-out transaction, or shortly after: the stream
	// can deliver a transaction a moment before it is visible to new snapshots, and the delete of
	// its outbox row is then retried (commitLoop's outboxLeft). Before that retry existed, the
	// skipped outbox row above stayed behind in about 1 run of 8.
	f.waitOutboxEmpty(t)
	// Wake runs right after the commit that made the events visible: wait for it.
	require.Eventually(t, func() bool { return woken.Load() > 0 }, 10*time.Second, 20*time.Millisecond, "the dispatcher is woken")

	created := f.payload(t, "contact.created", 0)
	require.Regexp(t, `^evt_[0-9a-f]{32}$`, created["id"])
	// Event ids are a keyed digest of the source position: not the plain SHA-256 that would give
	// an outbox row id or a WAL position back to anyone trying candidates.
	var outboxKey, outboxEnvID string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT source_key, payload->>'id' FROM walhook.event WHERE source_key LIKE 'outbox:%'`).Scan(&outboxKey, &outboxEnvID))
	plain := sha256.Sum256([]byte(outboxKey))
	require.NotEqual(t, "evt_"+hex.EncodeToString(plain[:16]), outboxEnvID)
	ids, err := f.st.PublicIDs(ctx)
	require.NoError(t, err)
	require.Equal(t, ids.Event(outboxKey), outboxEnvID)
	require.Equal(t, "contact.created", created["type"])
	require.Equal(t, "1", created["company_id"])
	require.NotEmpty(t, created["occurred_at"])
	require.Equal(t, "Ada", created["data"].(map[string]any)["name"])
	require.NotContains(t, created, "previous")
	updated := f.payload(t, "contact.updated", 0)
	require.Equal(t, "ada@lovelace.org", updated["data"].(map[string]any)["email"])
	require.Equal(t, "ada@example.com", updated["previous"].(map[string]any)["email"])
	deleted := f.payload(t, "contact.deleted", 0)
	require.Equal(t, "Ada", deleted["data"].(map[string]any)["name"])
	var amount float64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT (payload->'data'->>'amount')::float8 FROM walhook.event WHERE source_key LIKE 'outbox:%'`).Scan(&amount))
	require.InDelta(t, 12.5, amount, 0)
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT (payload->'data'->>'amount')::float8 FROM walhook.event WHERE event_key = 'invoice.paid' AND source_key LIKE 'wal:%'`).Scan(&amount))
	require.InDelta(t, 7, amount, 0)

	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_skipped_total", "unknown_company") == 1
	}, 10*time.Second, 20*time.Millisecond)
	for reason, n := range map[string]float64{"null_tenant": 1, "unknown_event": 2, "forged": 1, "bad_payload": 0} {
		require.InDelta(t, n, xtest.Sample(t, reg, "walhook_capture_skipped_total", reason), 0, reason)
	}
}

func mustDefaults(t *testing.T, cfg Config) Config {
	t.Helper()
	require.NoError(t, cfg.defaults())
	return cfg
}

func TestTypesRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, _ := newStreaming(t)
	_, err := f.app.Exec(ctx, `INSERT INTO things (company_id, n, f, i8, b, ts, t, d, u, j, js, ia, ta, na, tsa, by, iv, big)
		VALUES ('1', 12345678901234567890.123456789, 1.5, 9007199254740993, true, '2026-11-27 11:00:00.123+01', '2026-11-27 10:00:00',
		'2026-11-27', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, "two", null]}', '{"x":1}', '{1,NULL,3}', '{"a b","c\"d",NULL}',
		'{1.10,NaN}', '{"2026-01-01 00:00:00+00"}', '\x0102', '1 day 02:00:00', NULL)`)
	require.NoError(t, err)
	f.waitEvents(t, 1)
	var raw []byte
	require.NoError(t, f.pool.QueryRow(ctx, "SELECT payload->'data' FROM walhook.event").Scan(&raw))
	require.JSONEq(t, `{"id":1,"company_id":"1","n":12345678901234567890.123456789,"f":1.5,"i8":9007199254740993,"b":true,
		"ts":"2026-11-27T10:00:00.123Z","t":"2026-11-27T10:00:00","d":"2026-11-27","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"j":{"k":[1,"two",null]},"js":{"x":1},"ia":[1,null,3],"ta":["a b","c\"d",null],"na":[1.10,"NaN"],
		"tsa":["2026-01-01T00:00:00Z"],"by":"AQI=","iv":"1 day 02:00:00","big":null}`, string(raw))
	// the stored jsonb keeps numeric's digits
	var n string
	require.NoError(t, f.pool.QueryRow(ctx, "SELECT payload->'data'->>'n' FROM walhook.event").Scan(&n))
	require.Equal(t, "12345678901234567890.123456789", n)
}

func TestUnchangedToastFromOldRow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, _ := newStreaming(t)
	// a value large enough to be TOASTed out of line; the update does not touch it
	_, err := f.app.Exec(ctx, `ALTER TABLE contacts ALTER COLUMN note SET STORAGE EXTERNAL;
		INSERT INTO contacts (company_id, name, note) VALUES ('1', 'Big', repeat('x', 100000));
		UPDATE contacts SET name = 'Bigger' WHERE name = 'Big'`)
	require.NoError(t, err)
	f.waitEvents(t, 3) // created, updated, changed
	data := f.payload(t, "contact.updated", 0)["data"].(map[string]any)
	require.Equal(t, "Bigger", data["name"])
	require.Len(t, data["note"], 100000, "REPLICA IDENTITY FULL sends the old row, which has the value")
}

func TestReplayAfterCancelBeforeAck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	cfg.StatusInterval = time.Hour // never report a flush position: every restart replays
	cfg.BatchEvents = 50
	f.prepare(t, cfg)
	_, err := f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) SELECT '1', 'c' || g FROM generate_series(1, 200) g`)
	require.NoError(t, err)
	for i := range 50 {
		_, err := f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', jsonb_build_object('n', $1::int))`, i)
		require.NoError(t, err)
	}

	// First run: killed (cancelled) right after its first fan-out commit, before any ack.
	killed := make(chan struct{})
	var once atomic.Bool
	stop := f.start(t, cfg, nil, func(c *Capture) {
		c.afterCommit = func(uint64) {
			if !once.Swap(true) {
				close(killed)
			}
		}
	})
	<-killed
	stop()
	first := f.count(t, "SELECT count(*) FROM walhook.event")
	require.Positive(t, first)
	f.waitInactive(t) // the walsender ends a moment after the connection closes

	// Restart: the slot replays from the unacknowledged position; every event exactly once.
	f.start(t, cfg, nil, nil)
	f.waitEvents(t, 250)
	require.Equal(t, 250, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
	require.Equal(t, 250*1+200, f.count(t, "SELECT count(*) FROM walhook.delivery"), "two webhooks per contact, one per invoice")
	// and a replay of everything stores nothing new: a contact written now is decoded after the
	// whole replay, so once its event is stored the replay is over.
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'after the replay')`)
	require.NoError(t, err)
	waitUntil(t, func() bool {
		return f.count(t, "SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'after the replay'") == 1
	}, "the contact written after the restart is captured")
	require.Equal(t, 251, f.count(t, "SELECT count(*) FROM walhook.event"))
	require.Equal(t, 251, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
}

// TestLargeTransactionInParts: a transaction larger than a part (partEvents, here BatchEvents =
// 50; the first part a fifth of it) is stored in parts as it is decoded: the first fan-out
// commits the first part (10 events, with whatever later parts were decoded meanwhile) and
// reports no position (the transaction is not finished), and the position is reported only
// with the part that ends it. Every event is stored once.
func TestLargeTransactionInParts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	cfg.BatchEvents = 50
	f.prepare(t, cfg)
	_, err := f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) SELECT '1', 'c' || g FROM generate_series(1, 200) g`)
	require.NoError(t, err)
	parts := f.fanOuts(t, cfg, 200)
	require.Zero(t, parts[0].end, "the first part is stored before the transaction is read to its end, and acknowledges nothing")
	require.GreaterOrEqual(t, parts[0].stored, 10, "the first part")
	require.Less(t, parts[0].stored, 200, "the first fan-out stores a part of the transaction, not all of it")
	for i, p := range parts[:len(parts)-1] {
		require.Zero(t, p.end, "part %d of %d reported a position", i+1, len(parts))
	}
	require.Equal(t, 200, f.count(t, "SELECT count(DISTINCT source_key) FROM walhook.event"))
}

func TestPollMode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	cfg.PollBatch = 10
	f.startPolling(t, cfg)
	_, err := f.app.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload) SELECT '1', 'invoice.paid', jsonb_build_object('n', g) FROM generate_series(1, 25) g`)
	require.NoError(t, err)
	var lsn *string
	require.NoError(t, f.app.QueryRow(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"via": "emit"}')::text`).Scan(&lsn))
	require.Nil(t, lsn, "in poll mode walhook.emit writes an outbox row")
	f.waitEvents(t, 26)
	require.Equal(t, 26, f.count(t, "SELECT count(*) FROM walhook.delivery"))
	// With two databases the consumed rows are deleted in the source after the events commit in
	// walhook's database, so the outbox empties a moment after the events are seen.
	f.waitOutboxEmpty(t)
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'via' = 'emit'`))
}

// TestBulk captures 10,000 rows written in one transaction and 10,000 single-row transactions,
// all written before capture starts, and logs the capture rate (run with -v).
func TestBulk(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	cfg := f.config()
	f.prepare(t, cfg)
	_, err := f.app.Exec(ctx, `INSERT INTO things (company_id, n, j) SELECT '1', g, jsonb_build_object('g', g) FROM generate_series(1, 10000) g`)
	require.NoError(t, err)
	conn, err := f.app.Acquire(ctx)
	require.NoError(t, err)
	for i := 0; i < 10000; i += 1000 {
		b := &pgxBatch{}
		for j := range 1000 {
			b.Queue(`INSERT INTO things (company_id, n) VALUES ('1', $1)`, i+j)
		}
		require.NoError(t, conn.SendBatch(ctx, &b.Batch).Close())
	}
	conn.Release()

	start := time.Now()
	f.start(t, cfg, nil, nil)
	f.waitEvents(t, 20000)
	elapsed := time.Since(start)
	require.Equal(t, 20000, f.count(t, "SELECT count(*) FROM walhook.delivery"))
	t.Logf("captured 20000 events (10000 in one transaction + 10000 single-row transactions) with 20000 deliveries in %v: %.0f events/s",
		elapsed.Round(time.Millisecond), 20000/elapsed.Seconds())
}

// TestSeveralEvents captures events for a webhook subscribed to two trigger events: it gets a
// delivery of each (and none of an event it is not subscribed to), each event's envelope type
// is its own key, and another company's webhook subscribed to the same events gets nothing.
func TestSeveralEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	both := []string{"contact.deleted", "contact.created"}
	multi, err := f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: "multi", URL: "https://example.com/multi",
		Method: webhook.MethodPost, EventKeys: both, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	other, err := f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "2", Name: "multi", URL: "https://example.com/other",
		Method: webhook.MethodPost, EventKeys: both, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	f.prepare(t, f.config())
	f.startStreaming(t, f.config(), nil)

	for _, q := range []string{
		`INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Ada', 'ada@example.com')`,
		`UPDATE contacts SET note = 'x' WHERE name = 'Ada'`, // contact.changed: not subscribed
		`DELETE FROM contacts WHERE name = 'Ada'`,
	} {
		_, err := f.app.Exec(ctx, q)
		require.NoError(t, err)
	}
	f.waitEvents(t, 3)

	rows, err := f.pool.Query(ctx, `SELECT d.event_key, e.payload->>'type' FROM walhook.delivery d
		JOIN walhook.event e ON e.id = d.event_id WHERE d.webhook_id = $1 ORDER BY d.event_key`, multi.ID)
	require.NoError(t, err)
	var got [][2]string
	for rows.Next() {
		var k, typ string
		require.NoError(t, rows.Scan(&k, &typ))
		got = append(got, [2]string{k, typ})
	}
	require.NoError(t, rows.Err())
	require.Equal(t, [][2]string{{"contact.created", "contact.created"}, {"contact.deleted", "contact.deleted"}}, got)
	require.Zero(t, f.count(t, "SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1", other.ID),
		"another company's webhook on the same events gets nothing")
	require.Zero(t, f.count(t, "SELECT count(*) FROM walhook.delivery WHERE company_id = '2'"))
}
