package main

import (
	"context"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestQuarantineCommands quarantines two events the way capture does (the error is PostgreSQL's
// own refusal of each), then works them with the CLI: list and show them; a retry while the cause
// is still there keeps the event with attempts+1; once the cause is fixed a retry stores the
// event and its delivery and empties its row; drop deletes one for good.
func TestQuarantineCommands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	pool := xtest.PoolOn(t, db)
	st := store.New(pool, xtest.Keys())
	cat, err := catalog.Parse([]byte("events:\n  - key: invoice.paid\n    source: outbox\n"))
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, st, st))
	_, err = st.CompanyCreate(ctx, "1", "Acme")
	require.NoError(t, err)
	_, err = st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "1", Name: "paid", URL: "https://example.com/paid",
		Method: webhook.MethodPost, EventKeys: []string{"invoice.paid"}, RawData: true, Active: true}, nil)
	require.NoError(t, err)
	run := func(args ...string) (string, error) {
		return runOn(ctx, db, runQuarantine, args...)
	}
	quarantine := func(sourceKey, payload string) {
		t.Helper()
		e := store.CaptureEvent{SourceKey: sourceKey, CompanyID: "1", EventKey: "invoice.paid", Payload: []byte(payload),
			OccurredAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
		_, cause := st.CaptureCommit(ctx, store.CaptureBatch{Events: []store.CaptureEvent{e}})
		require.True(t, store.Permanent(cause), "%v", cause)
		added, err := st.CaptureQuarantineAdd(ctx, e, cause)
		require.NoError(t, err)
		require.True(t, added)
	}
	// jsonb refuses \u0000: no fix exists. A CHECK constraint refuses the other: the operator can fix it.
	quarantine("wal:0000000001000000:1:invoice.paid", `{"id":"evt_a","type":"invoice.paid","data":{"memo":"a\u0000b"}}`)
	_, err = pool.Exec(ctx, `ALTER TABLE walhook.event ADD CONSTRAINT test_no_poison CHECK (payload->'data'->>'name' IS DISTINCT FROM 'poison') NOT VALID`)
	require.NoError(t, err)
	quarantine("outbox:7", `{"id":"evt_b","type":"invoice.paid","data":{"name":"poison"}}`)
	again, err := st.CaptureQuarantineAdd(ctx, store.CaptureEvent{SourceKey: "outbox:7", Payload: []byte("{}")}, context.Canceled)
	require.NoError(t, err)
	require.False(t, again, "a replayed position is quarantined once")

	out, err := run("list")
	require.NoError(t, err)
	ids := regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+1\s+invoice\.paid\s+1\s`).FindAllStringSubmatch(out, -1)
	require.Len(t, ids, 2, out)
	idA, idB := ids[0][1], ids[1][1]
	require.Equal(t, "wal:0000000001000000:1:invoice.paid", ids[0][2])
	require.Equal(t, "outbox:7", ids[1][2])
	require.Contains(t, out, "SQLSTATE 22P05: unsupported Unicode escape sequence")
	require.Contains(t, out, "SQLSTATE 23514")

	out, err = run("show", idA)
	require.NoError(t, err)
	require.Contains(t, out, "sqlstate    22P05\n")
	require.Contains(t, out, `payload     {"id":"evt_a","type":"invoice.paid","data":{"memo":"a\u0000b"}}`)
	require.Contains(t, out, "occurred_at 2026-11-27T10:00:00Z\n")

	// Still refused: kept, attempts+1.
	_, err = run("retry", idB)
	require.ErrorContains(t, err, "still refused")
	_, err = run(idB, "show") // the verb first is required
	require.ErrorContains(t, err, "unknown quarantine command")
	out, err = run("show", "--log-level", "warn", idB)
	require.NoError(t, err)
	require.Contains(t, out, "attempts    2\n")
	require.Contains(t, out, "test_no_poison")

	// Cause fixed: stored with its delivery, gone from the quarantine.
	_, err = pool.Exec(ctx, `ALTER TABLE walhook.event DROP CONSTRAINT test_no_poison`)
	require.NoError(t, err)
	out, err = run("retry", idB)
	require.NoError(t, err)
	require.Contains(t, out, "stored: 1 new event, 1 deliveries")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id
		WHERE e.source_key = 'outbox:7' AND d.state = 'pending'`).Scan(&n))
	require.Equal(t, 1, n)
	_, err = run("show", idB)
	require.ErrorContains(t, err, "no quarantined event "+idB)

	_, err = run("retry", idA)
	require.ErrorContains(t, err, "22P05")
	out, err = run("show", idA)
	require.NoError(t, err)
	require.Contains(t, out, "attempts    2\n")

	out, err = run("drop", idA)
	require.NoError(t, err)
	require.Contains(t, out, "dropped")
	out, err = run("list")
	require.NoError(t, err)
	require.Equal(t, "no quarantined events\n", out)
	_, err = run("drop", idA)
	require.ErrorContains(t, err, "no quarantined event")
	_, err = run("retry", "abc")
	require.ErrorContains(t, err, "want a quarantine id")
	_, err = run("retry")
	require.ErrorContains(t, err, "want a quarantine id")
	require.Error(t, runQuarantine(ctx, nil, io.Discard))
}
