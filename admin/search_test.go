package admin

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// histEvent records an event of a company as capture does: its envelope's id is the public id of
// its source position. It answers the row id and the public id.
func (e *env) histEvent(company, key string, occurred time.Time, data string) (int64, string) {
	e.t.Helper()
	ids, err := e.st.PublicIDs(e.ctx)
	require.NoError(e.t, err)
	src := fmt.Sprintf("test:%d", seq.Add(1))
	pub := ids.Event(src)
	env := fmt.Sprintf(`{"id":%q,"type":%q,"company_id":%q,"occurred_at":%q,"data":%s}`,
		pub, key, company, occurred.Format(time.RFC3339Nano), data)
	var id int64
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, src, company, key, env, occurred).Scan(&id))
	return id, pub
}

// histDelivery records a delivery of an event to w: state, the last HTTP status (0: none) and
// how many attempts were made.
func (e *env) histDelivery(w webhook.Webhook, eventID int64, key, state string, status, attempts int, created time.Time) int64 {
	e.t.Helper()
	var code *int
	if status != 0 {
		code = &status
	}
	var id int64
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, attempts,
		last_status_code, created_at) SELECT $1, $2, $3, e.occurred_at, $4, $5, $6, $7, $8 FROM walhook.event e WHERE e.id = $3 RETURNING id`,
		w.CompanyID, w.ID, eventID, key, state, attempts, code, created).Scan(&id))
	return id
}

// ids of a history page's items, in order.
func pageIDs(page map[string]any) []string {
	out := []string{}
	for _, it := range page["items"].([]any) {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// TestHistorySearch: each filter of the history listing, their combinations, and keyset
// pagination with filters; the text search is bounded and says where it stopped.
func TestHistorySearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("search", func(w *webhook.Webhook) { w.Active = true })
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	type row struct {
		key, state    string
		status, tries int
		data          string
	}
	rows := []row{
		{"contact.created", "succeeded", 200, 1, `{"name":"Ada Lovelace"}`},
		{"contact.created", "failed", 404, 3, `{"name":"Grace Hopper"}`},
		{"contact.created", "failed", 503, 3, `{"name":"Ada Byron"}`},
		{"contact.created", "failed", 0, 3, `{"name":"Alan Turing"}`}, // refused: no HTTP answer
		{"contact.created", "pending", 0, 0, `{"name":"Edsger"}`},     // not tried yet
		{"contact.updated", "succeeded", 201, 1, `{"name":"ADA"}`},    // the webhook listens to it later on
		{"contact.created", "failed", 500, 2, `{"name":"Barbara"}`},
	}
	pub := make([]string, len(rows)) // delivery public ids
	evt := make([]string, len(rows)) // event public ids
	for i, r := range rows {
		at := base.Add(time.Duration(i) * 10 * time.Minute)
		ev, p := e.histEvent("acme", r.key, at, r.data)
		evt[i] = p
		pub[i] = e.pub("acme", e.histDelivery(w, ev, r.key, r.state, r.status, r.tries, at))
	}
	// The other company's event with the same text and its own webhook's delivery.
	ow, err := e.st.WebhookCreate(e.ctx, webhook.Webhook{CompanyID: "other", Name: "o", URL: "https://hooks.example.com/o",
		Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true}, &e.otherM.ID)
	require.NoError(t, err)
	oev, opub := e.histEvent("other", "contact.created", base, `{"name":"Ada of other"}`)
	e.histDelivery(ow, oev, "contact.created", "failed", 503, 1, base)

	hp := fmt.Sprintf("/v1/webhooks/%d/deliveries", w.ID)
	get := func(q string) map[string]any { return e.must(200, "GET", hp+"?"+q, e.viewer, nil) }
	ids := func(q string) []string { return pageIDs(get(q)) }
	since := base.Add(15 * time.Minute).Format(time.RFC3339)
	until := base.Add(45 * time.Minute).Format(time.RFC3339)

	// Each filter alone.
	require.Equal(t, []string{pub[6], pub[4], pub[3], pub[2], pub[1], pub[0]}, ids("event=contact.created"))
	require.Equal(t, 400, e.do("GET", hp+"?event=contact.updated", e.viewer, nil).status, "not one of its events today")
	e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.manager, map[string]any{"events": []string{"contact.created", "contact.updated"}})
	require.Equal(t, []string{pub[5]}, ids("event=contact.updated"), "one of its events now")
	require.Equal(t, []string{pub[2]}, ids("event_id="+evt[2]))
	require.Equal(t, []string{pub[5]}, ids("event_id="+evt[5]))
	require.Empty(t, ids("event_id="+opub), "another company's event")
	require.Empty(t, ids("event_id=evt_"+strings.Repeat("0", 32)), "no such event")
	require.Equal(t, []string{pub[1]}, ids("http_status=404"))
	require.Equal(t, []string{pub[6], pub[2]}, ids("http_status=5xx"))
	require.Equal(t, []string{pub[5], pub[0]}, ids("http_status=2xx"))
	require.Equal(t, []string{pub[1]}, ids("http_status=4xx"))
	require.Empty(t, ids("http_status=3xx"))
	require.Equal(t, []string{pub[3]}, ids("http_status=none"), "tried without an HTTP answer; the pending one was never tried")
	require.Equal(t, []string{pub[4], pub[3], pub[2]}, ids("since="+since+"&until="+until))
	require.Equal(t, []string{pub[5], pub[2], pub[0]}, ids("q=%22ada"), "case-insensitive, this company only (the quote keeps the needle out of the ids)")
	require.Equal(t, []string{pub[0]}, ids("q="+url.QueryEscape("Ada Lovelace")))
	require.Equal(t, []string{pub[1]}, ids("q="+url.QueryEscape(`"name": "Grace`)), "the envelope's JSON text")
	require.Empty(t, ids("q=other"))

	// Combinations.
	require.Equal(t, []string{pub[2], pub[0]}, ids("q=%22ada&event=contact.created"))
	require.Equal(t, []string{pub[5], pub[0]}, ids("q=%22ada&http_status=2xx"))
	require.Equal(t, []string{pub[2]}, ids("q=%22ada&status=failed&http_status=5xx"))
	require.Equal(t, []string{pub[2]}, ids("http_status=5xx&since="+since+"&until="+until))
	require.Equal(t, []string{pub[3], pub[2]}, ids("status=failed&since="+since+"&until="+until))
	require.Empty(t, ids("event_id="+evt[2]+"&http_status=4xx"))
	require.Empty(t, ids("event_id="+evt[2]+"&since="+base.Add(time.Hour).Format(time.RFC3339)), "the event's delivery is older")
	require.Equal(t, []string{pub[2]}, ids("event_id="+evt[2]+"&q=byron&status=failed"))
	require.Empty(t, ids("event_id="+evt[5]+"&event=contact.created"))

	// The totals count the time range only.
	require.Equal(t, map[string]any{"triggered": 7.0, "succeeded": 2.0, "failed": 4.0, "pending": 1.0}, get("http_status=404")["totals"])

	// Keyset pagination keeps the filters.
	walk := func(q string) []string {
		var got []string
		cur := ""
		for range 10 {
			page := get(q + cur)
			require.False(t, page["truncated"].(bool))
			got = append(got, pageIDs(page)...)
			next, _ := page["next_cursor"].(string)
			if next == "" {
				return got
			}
			cur = "&cursor=" + next
		}
		t.Fatal("pagination does not end")
		return nil
	}
	require.Equal(t, []string{pub[6], pub[2]}, walk("limit=1&http_status=5xx"))
	require.Equal(t, []string{pub[5], pub[2], pub[0]}, walk("limit=1&q=%22ada"))
	require.Equal(t, []string{pub[6], pub[3], pub[2], pub[1]}, walk("limit=3&status=failed"))
	require.Equal(t, []string{pub[4], pub[3], pub[2]}, walk("limit=2&since="+since+"&until="+until))

	// The other company's owner sees none of it.
	require.Equal(t, 404, e.do("GET", hp+"?q=%22ada", e.other, nil).status)
}

// TestHistorySearchBounded: the text search reads at most store.MaxHistoryScan rows per page; a
// page that stops there says so (truncated, scanned_until) and its cursor continues the search.
func TestHistorySearchBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("bounded", nil)
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	// 2,100 deliveries, one a second; only the 30 oldest carry the needle.
	const n, hits = store.MaxHistoryScan + 100, 30
	_, err := e.pool.Exec(e.ctx, `
		WITH ev AS (
			INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
			SELECT 'bulk:' || i, 'acme', 'contact.created',
			       jsonb_build_object('id', 'evt_' || lpad(to_hex(i), 32, '0'), 'data',
			                          jsonb_build_object('name', CASE WHEN i <= $3 THEN 'needle ' || i ELSE 'hay ' || i END)),
			       $2::timestamptz + i * interval '1 second'
			FROM generate_series(1, $4::int) i
			RETURNING id, occurred_at
		)
		INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, attempts, created_at)
		SELECT 'acme', $1, id, occurred_at, 'contact.created', 'succeeded', 1, occurred_at FROM ev`, w.ID, base, hits, n)
	require.NoError(t, err)
	hp := fmt.Sprintf("/v1/webhooks/%d/deliveries?q=needle&limit=20", w.ID)

	first := e.must(200, "GET", hp, e.viewer, nil)
	require.Empty(t, first["items"], "the 2,000 newest hold no needle")
	require.True(t, first["truncated"].(bool))
	scanned, err := time.Parse(time.RFC3339Nano, first["scanned_until"].(string))
	require.NoError(t, err)
	require.True(t, scanned.Equal(base.Add((n-store.MaxHistoryScan+1)*time.Second)), "the last row read: %s", scanned)
	require.NotNil(t, first["next_cursor"])

	second := e.must(200, "GET", hp+"&cursor="+first["next_cursor"].(string), e.viewer, nil)
	require.Len(t, second["items"], 20)
	require.False(t, second["truncated"].(bool))
	require.Nil(t, second["scanned_until"])
	third := e.must(200, "GET", hp+"&cursor="+second["next_cursor"].(string), e.viewer, nil)
	require.Len(t, third["items"], hits-20)
	require.Nil(t, third["next_cursor"])
	require.False(t, third["truncated"].(bool))

	// Without text nothing is bounded that way: a full page of the newest.
	plain := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d/deliveries?limit=500", w.ID), e.viewer, nil)
	require.Len(t, plain["items"], 500)
	require.False(t, plain["truncated"].(bool))
}

// TestReplayWindow: preview and replay of each mode, events from before the webhook existed
// included, other types' and another company's events never, nothing queued twice, the limits.
func TestReplayWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now().UTC()
	day := 24 * time.Hour
	// Events that happened before the webhook existed.
	e1, _ := e.histEvent("acme", "contact.created", now.Add(-10*day), `{"n":1}`)
	e2, _ := e.histEvent("acme", "contact.created", now.Add(-5*day), `{"n":2}`)
	e3, _ := e.histEvent("acme", "contact.created", now.Add(-3*day), `{"n":3}`)
	e4, _ := e.histEvent("acme", "contact.created", now.Add(-1*day), `{"n":4}`)
	e5, _ := e.histEvent("acme", "contact.created", now.Add(-4*day), `{"n":5}`)
	eUpd, _ := e.histEvent("acme", "contact.updated", now.Add(-2*day), `{"n":6}`)
	eOther, _ := e.histEvent("other", "contact.created", now.Add(-2*day), `{"n":7}`)
	eOld, _ := e.histEvent("acme", "contact.created", now.Add(-40*day), `{"n":8}`) // outside the window
	w := e.newWebhook("replay", func(w *webhook.Webhook) { w.Active = true })
	d3 := e.histDelivery(w, e3, "contact.created", "failed", 500, 3, now.Add(-3*day))
	d4 := e.histDelivery(w, e4, "contact.created", "succeeded", 200, 1, now.Add(-1*day))
	d5 := e.histDelivery(w, e5, "contact.created", "pending", 0, 0, now.Add(-4*day))

	preview := fmt.Sprintf("/v1/webhooks/%d/replay/preview", w.ID)
	replay := fmt.Sprintf("/v1/webhooks/%d/replay", w.ID)
	body := func(mode string) map[string]any {
		return map[string]any{"mode": mode, "since": now.Add(-11 * day), "until": now.Add(time.Minute)}
	}
	count := func(mode string) float64 {
		return e.must(200, "POST", preview, e.manager, body(mode))["count"].(float64)
	}
	deliveries := func() map[int64]string {
		return queryMap[int64, string](t, e, `SELECT event_id, state FROM walhook.delivery WHERE webhook_id = $1`, w.ID)
	}
	before := deliveries()

	// Previews count and change nothing.
	require.Equal(t, 2.0, count("never_sent"), "e1 and e2, from before the webhook existed")
	require.Equal(t, 1.0, count("failed"), "e3")
	require.Equal(t, 4.0, count("all"), "e1 to e4; e5 is pending already")
	p := e.must(200, "POST", preview, e.manager, body("all"))
	require.Equal(t, float64(store.MaxReplay), p["max"])
	require.Equal(t, "all", p["mode"])
	require.Equal(t, before, deliveries())

	// failed: e3 again; a second click queues nothing.
	r := e.must(202, "POST", replay, e.manager, body("failed"))
	require.Equal(t, 1.0, r["queued"])
	require.Equal(t, 0.0, e.must(202, "POST", replay, e.manager, body("failed"))["queued"])
	require.Equal(t, 0.0, count("failed"))
	var st string
	var due, resync bool
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT state, next_attempt_at <= now(), resync_at IS NOT NULL FROM walhook.delivery WHERE id = $1`, d3).Scan(&st, &due, &resync))
	require.Equal(t, "pending", st)
	require.True(t, due)
	require.True(t, resync, "its attempts say trigger resync")

	// never_sent: new deliveries for e1 and e2; twice is once.
	require.Equal(t, 2.0, e.must(202, "POST", replay, e.manager, body("never_sent"))["queued"])
	require.Equal(t, 0.0, e.must(202, "POST", replay, e.manager, body("never_sent"))["queued"])
	var company string
	var n int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT min(company_id), count(*) FROM walhook.delivery
		WHERE webhook_id = $1 AND event_id = ANY($2) AND state = 'pending' AND resync_at IS NOT NULL AND next_attempt_at <= now()`,
		w.ID, []int64{e1, e2}).Scan(&company, &n))
	require.Equal(t, 2, n)
	require.Equal(t, "acme", company)

	// all: only e4 is left (the rest is pending).
	require.Equal(t, 1.0, count("all"))
	require.Equal(t, 1.0, e.must(202, "POST", replay, e.manager, body("all"))["queued"])
	require.Equal(t, 0.0, e.must(202, "POST", replay, e.manager, body("all"))["queued"])
	got := deliveries()
	require.Equal(t, map[int64]string{e1: "pending", e2: "pending", e3: "pending", e4: "pending", e5: "pending"}, got)
	for _, ev := range []int64{eUpd, eOther, eOld} {
		require.NotContains(t, got, ev, "another type's, another company's or an older event")
	}
	_ = d4
	_ = d5

	// The audit log names each replay.
	var audits int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.audit_log
		WHERE company_id = 'acme' AND action = 'deliveries_replayed' AND object_id = $1 AND member_id = $2`, w.ID, e.managerM.ID).Scan(&audits))
	require.Equal(t, 6, audits)

	// Another company's webhook on the same events: its replay never sees acme's events.
	ow, err := e.st.WebhookCreate(e.ctx, webhook.Webhook{CompanyID: "other", Name: "o", URL: "https://hooks.example.com/o",
		Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true, Active: true}, &e.otherM.ID)
	require.NoError(t, err)
	oq := e.must(202, "POST", fmt.Sprintf("/v1/webhooks/%d/replay", ow.ID), e.other, body("all"))
	require.Equal(t, 1.0, oq["queued"], "only its own event")
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1 AND event_id <> $2`, ow.ID, eOther).Scan(&n))
	require.Zero(t, n)
	require.Equal(t, 404, e.do("POST", replay, e.other, body("all")).status)
	require.Equal(t, 403, e.do("POST", replay, e.viewer, body("all")).status)

	// A webhook of two events replays both, and only its company's.
	w2 := e.newWebhook("replay-two", func(w *webhook.Webhook) {
		w.Active = true
		w.EventKeys = []string{"contact.created", "contact.updated"}
	})
	require.Equal(t, 6.0, e.must(202, "POST", fmt.Sprintf("/v1/webhooks/%d/replay", w2.ID), e.manager, body("never_sent"))["queued"], "e1 to e5 and eUpd")
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1 AND event_id = ANY($2)`,
		w2.ID, []int64{e1, e2, e3, e4, e5, eUpd}).Scan(&n))
	require.Equal(t, 6, n)

	// Limits: a window longer than 31 days; more events than one replay sends.
	long := e.do("POST", preview, e.manager, map[string]any{"mode": "all", "since": now.Add(-32 * day), "until": now})
	require.Equal(t, 422, long.status)
	require.Contains(t, long.fieldErrors(t)["since"], "31 days")
	_, err = e.pool.Exec(e.ctx, `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		SELECT 'many:' || i, 'acme', 'contact.created', '{}', $1::timestamptz + i * interval '1 millisecond'
		FROM generate_series(1, $2::int) i`, now.Add(-20*day), store.MaxReplay+1)
	require.NoError(t, err)
	window := map[string]any{"mode": "never_sent", "since": now.Add(-21 * day), "until": now.Add(-19 * day)}
	for _, path := range []string{preview, replay} {
		over := e.do("POST", path, e.manager, window)
		require.Equal(t, 422, over.status, "%s", over.raw)
		require.Equal(t, "replay_deliveries", over.obj(t)["limit"])
		require.Equal(t, float64(store.MaxReplay), over.obj(t)["max"])
		require.Contains(t, over.fieldErrors(t), "since")
	}
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.delivery WHERE webhook_id = $1`, w.ID).Scan(&n))
	require.Equal(t, 5, n, "nothing queued past the limit")
	window["until"] = now.Add(-20*day + store.MaxReplay*time.Millisecond)
	require.Equal(t, float64(store.MaxReplay-1), e.must(200, "POST", preview, e.manager, window)["count"], "a narrower window fits")

	// An off webhook: 409, as a resync.
	e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.manager, map[string]any{"active": false})
	for _, path := range []string{preview, replay} {
		off := e.do("POST", path, e.manager, body("all"))
		require.Equal(t, 409, off.status)
		require.Equal(t, `webhook "replay" is off: turn it on before replaying its events`, off.obj(t)["detail"])
	}
}
