package chaos_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/webhook"
)

// TestCells runs two walhook installations ("cells") on one application database, as
// docs/operations.md describes past one walhook database: each cell has a walhook database of its
// own, its own relay process, its own slot and publication on the application's database, and a
// disjoint set of companies. The application writes for companies of both cells — table inserts,
// walhook.emit and outbox rows, some transactions holding all four companies' rows — and each
// company's receiver gets every one of its events exactly once, from its own cell (the webhook-id
// is a delivery of that cell), while the other cell skips them as unknown_company
// (walhook_capture_skipped_total{reason="unknown_company"} grows by at least as many) and stores
// nothing of them. The shared outbox drains: both cells decode each row's INSERT from their own
// slot, and deleting a row the other cell already deleted is no error. WAL mode only: in poll
// mode each cell would claim and delete the other's outbox rows.
//
// The application's database is always apart here, so the test runs in the one-database pass
// only (make chaos, make test) and skips itself with WALHOOK_TEST_TWO_DATABASES=1.
func TestCells(t *testing.T) {
	if xtest.TwoDatabases() {
		t.Skip("TestCells always keeps the application's database apart: it runs in the one-database pass")
	}
	t.Parallel()
	ctx := t.Context()
	app := xtest.SeparateSourceURL(t)
	cells := map[string]*fixture{
		"a": newFixtureWith(t, xtest.DatabaseURL(t), app, "a1", "a2"),
		"b": newFixtureWith(t, xtest.DatabaseURL(t), app, "b1", "b2"),
	}
	companies := map[string][]string{"a": {"a1", "a2"}, "b": {"b1", "b2"}}
	receivers := map[string]*receiver{}
	for name, f := range cells {
		f.slot = fmt.Sprintf("cell_%s_%d", name, os.Getpid())
		for _, c := range companies[name] {
			receivers[c] = newReceiver(t)
			_, err := f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: c, Name: "cell " + name, URL: receivers[c].URL(),
				Method: webhook.MethodPost, EventKeys: []string{"contact.created", "contact.note_added"}, RawData: true, Active: true}, nil)
			require.NoError(t, err)
		}
	}
	// A generous attempt timeout (and the default lease, which must exceed three of them): exactly
	// once means no attempt cut short on a loaded machine.
	relays := map[string]*xtest.Proc{}
	for name, f := range cells {
		relays[name] = xtest.Serve(t, f.env(), replicaArgs("cell-"+name, "--capture-mode", "wal", "--attempt-timeout", "30s")...)
	}
	for _, f := range cells {
		f.waitSlotReader(ctx, "", time.Minute)
	}

	// Per company: single-row inserts, then rounds of one transaction holding, for every company
	// of both cells, a contact, a walhook.emit and an outbox row.
	inserts, rounds := size(100, 1000), size(10, 100)
	all := []string{"a1", "a2", "b1", "b2"}
	for _, c := range all {
		require.NoError(t, cells["a"].insert(ctx, c, 0, inserts))
	}
	src := cells["a"].src
	for i := range rounds {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		for _, c := range all {
			b.Queue(`INSERT INTO contacts (company_id, name) VALUES ($1, $2)`, c, fmt.Sprint("mixed", i))
			b.Queue(`SELECT walhook.emit($1, 'contact.note_added', jsonb_build_object('emitted', $2::int))`, c, i)
			b.Queue(`INSERT INTO walhook.outbox (company_id, event_key, payload) VALUES ($1, 'contact.note_added', jsonb_build_object('outbox', $2::int))`, c, i)
		}
		b.Queue("COMMIT")
		require.NoError(t, src.SendBatch(ctx, b).Close())
	}
	n := inserts + 3*rounds // events per company

	for name, f := range cells {
		f.waitCell(receivers, companies[name], n, 3*time.Minute, relays[name])
	}
	for name, f := range cells {
		ids, err := f.st.PublicIDs(ctx)
		require.NoError(t, err)
		for _, c := range companies[name] {
			unique, events, dups := receivers[c].counts()
			require.Equal(t, n, unique, "company %s: every delivery received", c)
			require.Equal(t, n, events, "company %s: every event received", c)
			require.Zero(t, dups, "company %s: nothing received twice", c)
			// From its own cell: every webhook-id is a succeeded delivery of this company in this cell.
			var got []int64
			for _, public := range receivers[c].ids() {
				id, ok := ids.ParseDelivery(c, public)
				require.True(t, ok, "company %s received webhook-id %q, not a delivery of cell %s", c, public, name)
				got = append(got, id)
			}
			require.Equal(t, n, f.count(`SELECT count(*) FROM walhook.delivery WHERE id = ANY($1) AND company_id = $2 AND state = 'succeeded'`, got, c))
		}
		require.Zero(t, f.count(`SELECT count(*) FROM walhook.event WHERE NOT company_id = ANY($1)`, companies[name]),
			"cell %s stored another cell's events", name)
		require.Equal(t, 2*n, f.count(`SELECT count(*) FROM walhook.event`), "cell %s: every event of its companies stored once", name)
		require.Equal(t, 2*n, f.count(`SELECT count(*) FROM walhook.attempt`), "cell %s: one attempt per delivery", name)
		skipped := relays[name].Metric(t, `walhook_capture_skipped_total{reason="unknown_company"}`)
		require.GreaterOrEqual(t, skipped, float64(2*n), "cell %s skips the other cell's events as unknown_company", name)
		report(t, "cell %s: %d events of its 2 companies delivered exactly once, the other cell's %d skipped (unknown_company %v)",
			name, 2*n, 2*n, skipped)
	}
	// The shared outbox drains: each row deleted by whichever cell came first.
	xtest.Eventually(t, time.Minute, 100*time.Millisecond, func() error {
		var left int
		if err := src.QueryRow(ctx, `SELECT count(*) FROM walhook.outbox`).Scan(&left); err != nil {
			return xtest.Stop(err)
		}
		if left > 0 {
			return fmt.Errorf("%d outbox rows left in the application's database after delivery", left)
		}
		return nil
	})
}

// waitCell waits until the cell's walhook database holds n events per company in companies, every
// delivery succeeded, and each company's receiver counted n distinct deliveries; it fails if the
// relay exits meanwhile.
func (f *fixture) waitCell(receivers map[string]*receiver, companies []string, n int, within time.Duration, relay *xtest.Proc) {
	f.t.Helper()
	want := n * len(companies)
	deadline := time.Now().Add(within)
	for {
		var events, pending, succeeded int
		err := f.pool.QueryRow(f.t.Context(), `SELECT (SELECT count(*) FROM walhook.event),
			count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'succeeded')
			FROM walhook.delivery`).Scan(&events, &pending, &succeeded)
		received := 0
		for _, c := range companies {
			unique, _, _ := receivers[c].counts()
			received += min(unique, n)
		}
		if err == nil && events == want && pending == 0 && succeeded == want && received == want {
			return
		}
		require.Zero(f.t, f.count(`SELECT count(*) FROM walhook.delivery WHERE state = 'failed'`), "deliveries failed")
		if relay.Exited() {
			f.t.Fatalf("relay exited: %v\n%s", relay.Err(), relay.Logs())
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("after %v: events %d/%d, pending %d (%s), succeeded %d, received %d (err %v); attempts that did not succeed: %s\n%s",
				within, events, want, pending, f.pendingBreakdown(), succeeded, received, err, f.failedAttempts(), xtest.Tail(relay.Logs(), 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ids returns the webhook-ids received, sorted.
func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.seen))
	for id := range r.seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
