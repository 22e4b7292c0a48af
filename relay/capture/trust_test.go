package capture

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/webhook"
)

// lowRole creates a LOGIN role with no privileges beyond PUBLIC's and returns its name and a
// connection to f's application database as it; the test's grants to it in either database are
// dropped with it.
func (f *fixture) lowRole(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	role, conn := xtest.LoginRole(t, f.appURL, f.app, f.pool)
	var super bool
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super))
	require.False(t, super)
	return role, conn
}

func requireDenied(t *testing.T, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "42501", "%s: want permission denied, got %v", what, err)
}

// TestForgedMessagesRefused shows, with a real low-privilege role, that a logical message with
// walhook's prefix written without walhook.emit makes no event and no delivery, whatever it
// holds (a well-formed event, a \u0000, bytes that are not UTF-8, a wrong MAC, an unknown key),
// and does not stop capture; that the role cannot emit, write the outbox or read the key
// without grants; and that with the EXECUTE grant walhook.emit works for it.
func TestForgedMessagesRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, reg := newStreaming(t)
	role, low := f.lowRole(t)
	// USAGE on the schema, so what refuses below is the missing privilege on each object.
	_, err := f.app.Exec(ctx, "GRANT USAGE ON SCHEMA walhook TO "+role)
	require.NoError(t, err)

	forgeries := []string{
		`SELECT pg_logical_emit_message(true, 'walhook', '{"company_id":"1","event":"invoice.paid","payload":{"forged":1}}')`,
		`SELECT pg_logical_emit_message(false, 'walhook', '{"company_id":"1","event":"invoice.paid","payload":{"forged":2}}')`,
		`SELECT pg_logical_emit_message(true, 'walhook', '{"company_id":"1","event":"invoice.paid","payload":{"x":"\u0000"}}')`,
		`SELECT pg_logical_emit_message(true, 'walhook', '\x00ff7b22fe'::bytea)`,
		`SELECT pg_logical_emit_message(true, 'walhook', '{"mac": "1:' || repeat('ab', 32) || '", "company_id":"1","event":"invoice.paid","payload":{}}')`,
		`SELECT pg_logical_emit_message(true, 'walhook', '{"mac": "99999:' || repeat('ab', 32) || '", "company_id":"1","event":"invoice.paid","payload":{}}')`,
		`SELECT pg_logical_emit_message(true, 'walhook', '{"mac": "1:' || repeat('ab', 32) || '", ')`,
	}
	for _, q := range forgeries {
		_, err := low.Exec(ctx, q)
		require.NoError(t, err, "any role may write a logical message: %s", q)
	}
	_, err = low.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"by":"low"}')`)
	requireDenied(t, err, "walhook.emit without EXECUTE")
	_, err = low.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key) VALUES ('1', 'invoice.paid')`)
	requireDenied(t, err, "outbox insert without INSERT")
	_, err = low.Exec(ctx, `SELECT * FROM walhook.emit_key`)
	requireDenied(t, err, "reading the key")

	// Capture goes on: the owner's emit and a table write after the forgeries are captured.
	_, err = f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"by":"owner"}')`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'After')`)
	require.NoError(t, err)
	f.waitEvents(t, 2)

	// With the grant, the role emits (and still cannot read the key).
	_, err = f.app.Exec(ctx, "GRANT EXECUTE ON FUNCTION walhook.emit(text, text, jsonb) TO "+role)
	require.NoError(t, err)
	_, err = low.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"by":"low"}')`)
	require.NoError(t, err)
	_, err = low.Exec(ctx, `SELECT * FROM walhook.emit_key`)
	requireDenied(t, err, "reading the key with EXECUTE on walhook.emit")
	f.waitEvents(t, 3)

	rows, err := f.pool.Query(ctx, `SELECT event_key || ' ' || coalesce(payload->'data'->>'by', payload->'data'->>'name') FROM walhook.event ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"invoice.paid owner", "contact.created After", "invoice.paid low"}, got)
	require.Equal(t, 2, f.count(t, "SELECT count(*) FROM walhook.delivery WHERE event_key = 'invoice.paid'"))
	require.Eventually(t, func() bool {
		return xtest.Sample(t, reg, "walhook_capture_skipped_total", "forged") == float64(len(forgeries))
	}, 10*time.Second, 20*time.Millisecond, "forged: %v", xtest.Sample(t, reg, "walhook_capture_skipped_total", "forged"))
	require.Zero(t, xtest.Sample(t, reg, "walhook_capture_decode_errors_total", ""))
}

// TestUnsignedBeforeUpgrade: a message of the old, unsigned walhook.emit written before
// migration 0010 (simulated by moving its recorded position past the message) is still captured;
// the same message written after it is refused.
func TestUnsignedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	f.prepare(t, f.config())
	const old = `SELECT pg_logical_emit_message(true, 'walhook', jsonb_build_object('company_id', '1', 'event', 'invoice.paid', 'payload', jsonb_build_object('n', $1::int))::text)`
	_, err := f.app.Exec(ctx, old, 1)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `UPDATE walhook.capture_setting SET unsigned_before = pg_current_wal_insert_lsn()`)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, old, 2)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"n": 3}')`)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	f.start(t, f.config(), reg, nil)
	f.waitEvents(t, 2)
	rows, err := f.pool.Query(ctx, `SELECT (payload->'data'->>'n')::int FROM walhook.event ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 3}, got)
	require.Eventually(t, func() bool { return xtest.Sample(t, reg, "walhook_capture_skipped_total", "forged") == 1 }, 10*time.Second, 20*time.Millisecond)
}

// TestEmitKeyRotation: after a rotation walhook.emit signs with the new key and a running
// capture accepts it; after a second one (and a message signed with the newest key, which makes
// the capture reload), a message signed with the first (deleted) key is refused while one signed
// with the previous key is still accepted.
func TestEmitKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f, reg := newStreaming(t)
	emit := func(n int) {
		t.Helper()
		_, err := f.app.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', jsonb_build_object('n', $1::int))`, n)
		require.NoError(t, err)
	}
	stored := func() map[int32][]byte {
		t.Helper()
		ks, _, err := f.src.EmitKeys(ctx)
		require.NoError(t, err)
		k, err := newEmitKeys(ks, "")
		require.NoError(t, err)
		return k.keys
	}
	key1 := stored()[1]
	require.Len(t, key1, 64)
	emit(1)
	id, err := RotateEmitKey(ctx, f.src)
	require.NoError(t, err)
	require.Equal(t, int32(2), id)
	emit(2) // signed with key 2, which the running capture did not know
	f.waitEvents(t, 2)
	key2 := stored()[2]
	id, err = RotateEmitKey(ctx, f.src)
	require.NoError(t, err)
	require.Equal(t, int32(3), id)
	keys := stored()
	require.Len(t, keys, 2, "a rotation keeps the new key and the previous one")
	require.Contains(t, keys, int32(2))
	require.Contains(t, keys, int32(3))
	content := func(n int) []byte {
		return []byte(`{"company_id":"1","event":"invoice.paid","payload":{"n":` + string(rune('0'+n)) + `}}`)
	}
	emit(3)
	_, err = f.app.Exec(ctx, `SELECT pg_logical_emit_message(true, 'walhook', $1::bytea)`, signMessage(1, key1, content(4)))
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `SELECT pg_logical_emit_message(true, 'walhook', $1::bytea)`, signMessage(2, key2, content(5)))
	require.NoError(t, err)
	f.waitEvents(t, 4)
	rows, err := f.pool.Query(ctx, `SELECT (payload->'data'->>'n')::int FROM walhook.event ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 5}, got)
	require.InDelta(t, 1, xtest.Sample(t, reg, "walhook_capture_skipped_total", "forged"), 0)
}

// TestPollModeEmitByGrantee: in poll mode walhook.emit writes an outbox row as its owner, so a
// role granted only EXECUTE emits without INSERT on walhook.outbox.
func TestPollModeEmitByGrantee(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	f.startPolling(t, f.config())
	role, low := f.lowRole(t)
	_, err := f.app.Exec(ctx, "GRANT USAGE ON SCHEMA walhook TO "+role+"; GRANT EXECUTE ON FUNCTION walhook.emit(text, text, jsonb) TO "+role)
	require.NoError(t, err)
	_, err = low.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key) VALUES ('1', 'invoice.paid')`)
	requireDenied(t, err, "outbox insert without INSERT")
	_, err = low.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"via": "grantee"}')`)
	require.NoError(t, err)
	f.waitEvents(t, 1)
	require.Equal(t, 1, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'via' = 'grantee'`))
}

// FuzzVerifyMessage feeds arbitrary logical-message content to the verifier: it never panics,
// accepts only content whose MAC verifies under the key, and accepts every message signed with
// it.
func FuzzVerifyMessage(f *testing.F) {
	key := make([]byte, 64)
	copy(key, "fuzz key, 32 bytes long........")
	ring := &keyring{cur: &emitKeys{keys: map[int32][]byte{1: key}, newest: 1}}
	f.Add([]byte(`{"company_id":"1","event":"e","payload":{}}`))
	f.Add([]byte(`{"mac": "1:` + hex.EncodeToString(make([]byte, 32)) + `", "a": 1}`))
	f.Add([]byte(`{"mac": "-1:x", `))
	f.Add(signMessage(1, key, []byte(`{"x":"\u0000"}`)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx := t.Context()
		content, ok, err := ring.verify(ctx, pglogrepl.LSN(1), msg)
		require.NoError(t, err)
		if ok {
			id, _, _, _ := parseSigned(msg)
			require.Equal(t, string(signMessage(id, key, content)), string(msg))
		}
		if len(msg) > 0 && msg[0] == '{' { // walhook.emit signs JSON objects
			content, ok, err = ring.verify(ctx, pglogrepl.LSN(1), signMessage(1, key, msg))
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, string(msg), string(content))
		}
	})
}

// moveCatalog adds to the test catalog a table with only an update event (notes) and one with
// the default replica identity (tasks), with webhooks of companies 1 and 2 on every event of
// contacts, notes and tasks.
const moveCatalog = testCatalog + `
  - key: note.updated
    table: notes
    operations: [update]
    tenant_column: company_id
  - key: task.updated
    table: tasks
    operations: [update]
    tenant_column: company_id
`

// TestTenantMove moves rows between companies through the real slot and checks what each
// company receives (docs/reliability.md, "Tenants never mixed").
func TestTenantMove(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	_, err := f.app.Exec(ctx, `
		CREATE TABLE notes (id bigint PRIMARY KEY, company_id text, body text);
		ALTER TABLE notes REPLICA IDENTITY FULL;
		CREATE TABLE tasks (id bigint PRIMARY KEY, company_id text, title text);`)
	require.NoError(t, err)
	cat, err := catalog.Parse([]byte(moveCatalog))
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, f.src, f.st))
	f.cat = cat
	for _, key := range []string{"contact.created", "contact.updated", "contact.changed", "contact.deleted", "note.updated", "task.updated"} {
		_, err := f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "2", Name: key, URL: "https://example.com/2/" + key,
			Method: webhook.MethodPost, EventKeys: []string{key}, RawData: true, Active: true}, nil)
		require.NoError(t, err)
	}
	_, err = f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: "note", URL: "https://example.com/1/note.updated",
		Method: webhook.MethodPost, EventKeys: []string{"note.updated"}, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	_, err = f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: "task", URL: "https://example.com/1/task.updated",
		Method: webhook.MethodPost, EventKeys: []string{"task.updated"}, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	_, err = f.app.Exec(ctx, `INSERT INTO notes VALUES (1, '1', 'secret of 1'); INSERT INTO tasks VALUES (1, '1', 'task of 1')`)
	require.NoError(t, err)
	f.prepare(t, f.config())
	f.startStreaming(t, f.config(), nil)

	exec := func(q string) {
		t.Helper()
		_, err := f.app.Exec(ctx, q)
		require.NoError(t, err)
	}
	exec(`INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Ada', 'ada@one.example')`)
	// the move: company and email change in one UPDATE
	exec(`UPDATE contacts SET company_id = '2', email = 'ada@two.example' WHERE name = 'Ada'`)
	// notes has only an update event: company 2 gets it without previous, company 1 nothing
	exec(`UPDATE notes SET company_id = '2', body = 'note of 2' WHERE id = 1`)
	// …and an update that stays in company 2 shows previous
	exec(`UPDATE notes SET body = 'note of 2, edited' WHERE id = 1`)
	// default replica identity: the old row carries only the key (and only because it changed);
	// whose it was cannot be told, so previous is left out
	exec(`UPDATE tasks SET id = 2, company_id = '2', title = 'task of 2' WHERE id = 1`)
	// a NULL tenant is nobody: from NULL to 2 is a creation for 2, from 1 to NULL a deletion for 1
	exec(`INSERT INTO contacts (company_id, name) VALUES (NULL, 'Bo')`)
	exec(`INSERT INTO contacts (company_id, name) VALUES ('1', 'Cy')`)
	exec(`UPDATE contacts SET company_id = '2' WHERE name = 'Bo'`)
	exec(`UPDATE contacts SET company_id = NULL WHERE name = 'Cy'`)
	f.waitEvents(t, 9)

	type got struct {
		Company, Event string
		Data           map[string]any
		Previous       map[string]any
	}
	rows, err := f.pool.Query(ctx, `SELECT company_id, event_key, payload->'data', payload->'previous' FROM walhook.event ORDER BY source_key`)
	require.NoError(t, err)
	var events []got
	for rows.Next() {
		var g got
		var data, prev []byte
		require.NoError(t, rows.Scan(&g.Company, &g.Event, &data, &prev))
		require.NoError(t, json.Unmarshal(data, &g.Data))
		if prev != nil {
			require.NoError(t, json.Unmarshal(prev, &g.Previous))
		}
		events = append(events, g)
	}
	require.NoError(t, rows.Err())
	contact1 := map[string]any{"id": float64(1), "company_id": "1", "name": "Ada", "email": "ada@one.example", "note": nil}
	contact2 := map[string]any{"id": float64(1), "company_id": "2", "name": "Ada", "email": "ada@two.example", "note": nil}
	require.Equal(t, []got{
		{Company: "1", Event: "contact.created", Data: contact1},
		// the move: company 1 a deletion of its row, company 2 a creation; no update to anyone
		{Company: "2", Event: "contact.created", Data: contact2},
		{Company: "1", Event: "contact.deleted", Data: contact1},
		{Company: "2", Event: "note.updated", Data: map[string]any{"id": float64(1), "company_id": "2", "body": "note of 2"}},
		{Company: "2", Event: "note.updated", Data: map[string]any{"id": float64(1), "company_id": "2", "body": "note of 2, edited"},
			Previous: map[string]any{"id": float64(1), "company_id": "2", "body": "note of 2"}},
		{Company: "2", Event: "task.updated", Data: map[string]any{"id": float64(2), "company_id": "2", "title": "task of 2"}},
		{Company: "1", Event: "contact.created", Data: map[string]any{"id": float64(3), "company_id": "1", "name": "Cy", "email": nil, "note": nil}},
		{Company: "2", Event: "contact.created", Data: map[string]any{"id": float64(2), "company_id": "2", "name": "Bo", "email": nil, "note": nil}},
		{Company: "1", Event: "contact.deleted", Data: map[string]any{"id": float64(3), "company_id": "1", "name": "Cy", "email": nil, "note": nil}},
	}, events)
	// (ordered by source key: within the move, "…:contact.created" sorts before "…:contact.deleted:old")
	// deliveries follow the events: each company's webhooks only
	require.Equal(t, 0, f.count(t, `SELECT count(*) FROM walhook.delivery d JOIN walhook.webhook w ON w.id = d.webhook_id WHERE w.company_id <> d.company_id`))
	require.Equal(t, 2*(2+1), f.count(t, `SELECT count(*) FROM walhook.delivery WHERE company_id = '1'`), "company 1: two webhooks on contact.created, one on contact.deleted")
	// the events of a move carry opaque ids like every other, never their source position
	require.Equal(t, 0, f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->>'id' !~ '^evt_[0-9a-f]{32}$'`))
}
