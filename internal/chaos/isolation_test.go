package chaos_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/admin"
	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestTenantIsolationEndToEnd gives companies 1 and 2 active webhooks on the same events, each
// with its own receiver, writes events for company 1 only through all three sources (a table
// insert, walhook.emit and the outbox), runs the real relay process, and requires that company 1's
// receiver gets every event and company 2's nothing — and that company 2's token cannot read
// company 1's history (every route with another company's token: admin.TestPermissionMatrix).
func TestTenantIsolationEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newTestFixture(t)
	dev, err := os.ReadFile("../../cmd/walhook/devdata/catalog.yaml")
	require.NoError(t, err)
	cat, err := catalog.Parse(append(dev, "\n  - key: invoice.paid\n    description: An invoice was paid\n    source: outbox\n"...))
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, f.srcSt, f.st))

	ra, rb := newReceiver(t), newReceiver(t)
	hooks := map[string][]webhook.Webhook{}
	for company, r := range map[string]*receiver{"1": ra, "2": rb} {
		for _, ev := range []string{"contact.created", "invoice.paid"} {
			w, err := f.st.WebhookCreate(ctx, webhook.Webhook{CompanyID: company, Name: ev, URL: r.URL(),
				Method: webhook.MethodPost, EventKeys: []string{ev}, RawData: true, Active: true}, nil)
			require.NoError(t, err)
			hooks[company] = append(hooks[company], w)
		}
	}

	relay := xtest.Serve(t, f.env(), relayArgs("iso")...)
	f.waitSlotReader(ctx, "", time.Minute)
	const inserts, emits, outbox = 20, 10, 10
	require.NoError(t, f.insert(ctx, "1", 0, inserts))
	_, err = f.src.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', jsonb_build_object('n', g)) FROM generate_series(1, $1::int) g`, emits)
	require.NoError(t, err)
	_, err = f.src.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key, payload)
		SELECT '1', 'invoice.paid', jsonb_build_object('n', g) FROM generate_series(1, $1::int) g`, outbox)
	require.NoError(t, err)

	n := inserts + emits + outbox
	f.waitDelivered(ra, n, 2*time.Minute, relay)
	_, events, _ := ra.counts()
	require.Equal(t, n, events, "company 1's receiver got every event")
	unique, events, _ := rb.counts()
	require.Zero(t, unique, "company 2's receiver got nothing")
	require.Zero(t, events)
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery WHERE company_id = '2' OR webhook_id IN ($1, $2)`,
		hooks["2"][0].ID, hooks["2"][1].ID))
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.event WHERE company_id <> '1'`))
	require.Zero(t, f.count(`SELECT count(*) FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id
		WHERE d.company_id <> e.company_id`), "no delivery carries another company's event")

	// Company 2's token on company 1's history answers 404; company 1's own token reads it.
	token := func(company string) string {
		m, err := f.st.MemberCreate(ctx, store.Member{CompanyID: company, Email: "owner@" + company + ".test", IsOwner: true})
		require.NoError(t, err)
		tok, _, err := f.st.APITokenCreate(ctx, company, m.ID, "iso", nil)
		require.NoError(t, err)
		return tok
	}
	ta, tb := token("1"), token("2")
	srv := httptest.NewServer(admin.New(admin.Config{API: true}, f.st, nil, zerolog.Nop(), prometheus.NewRegistry()).Handler())
	t.Cleanup(srv.Close)
	get := func(tok, path string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	var deliveryID int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT id FROM walhook.delivery WHERE company_id = '1' LIMIT 1`).Scan(&deliveryID))
	for _, w := range hooks["1"] {
		path := fmt.Sprintf("/v1/webhooks/%d/deliveries", w.ID)
		require.Equal(t, http.StatusOK, get(ta, path))
		require.Equal(t, http.StatusNotFound, get(tb, path))
	}
	pub, err := f.st.DeliveryPublicID(ctx, "1", deliveryID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, get(ta, "/v1/deliveries/"+pub))
	require.Equal(t, http.StatusNotFound, get(tb, "/v1/deliveries/"+pub))
	foreign, err := f.st.DeliveryPublicID(ctx, "2", deliveryID) // company 1's row, named as company 2's
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, get(tb, "/v1/deliveries/"+foreign))
}
