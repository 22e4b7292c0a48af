package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestHealthAndOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		res, err := e.srv.Client().Get(e.srv.URL + p)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, p)
	}
}

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cred := e.newOAuth("acme", "CRM")

	body := hookBody("New contacts")
	body["headers"] = []map[string]any{{"key": "X-Plain", "value": "p"}, {"key": "X-Api-Key", "value": "header-secret", "secret": true}}
	body["oauth_id"] = cred.ID
	created := e.must(201, "POST", "/v1/webhooks", e.manager, body)
	id := int64(created["id"].(float64))
	require.Equal(t, false, created["active"], "active defaults to false")
	require.Equal(t, true, created["raw_data"], "raw_data defaults to true")
	require.Regexp(t, `^whsec_`, created["secret"], "a manager sees the signing secret")
	require.Equal(t, webhook.Mask, created["headers"].([]any)[1].(map[string]any)["value"], "secret header masked")
	require.NotContains(t, fmt.Sprint(created), "header-secret")
	require.Equal(t, float64(e.managerM.ID), created["created_by"])

	got := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d", id), e.viewer, nil)
	require.Nil(t, got["secret"], "a member without manage_webhooks does not see the signing secret")
	require.Equal(t, map[string]any{"triggered": 0.0, "succeeded": 0.0, "failed": 0.0, "pending": 0.0}, got["counts"])

	// PATCH turns it on and keeps everything else, secret header value included.
	p := e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", id), e.manager, map[string]any{"active": true})
	require.Equal(t, true, p["active"])
	require.Equal(t, "New contacts", p["name"])
	stored, err := e.st.WebhookGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, "header-secret", stored.Headers[1].Value)
	require.True(t, stored.Active)

	// PUT replaces; sending the mask back keeps the secret header; active omitted → off.
	put := hookBody("Renamed")
	put["headers"] = []map[string]any{{"key": "X-Api-Key", "value": webhook.Mask, "secret": true}}
	put["raw_data"] = false
	put["params"] = []map[string]any{{"key": "email", "path": "data.email"}}
	u := e.must(200, "PUT", fmt.Sprintf("/v1/webhooks/%d", id), e.owner, put)
	require.Equal(t, "Renamed", u["name"])
	require.Equal(t, false, u["active"])
	require.Nil(t, u["oauth_id"])
	require.Equal(t, float64(e.ownerM.ID), u["updated_by"])
	stored, err = e.st.WebhookGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, []webhook.Header{{Key: "X-Api-Key", Value: "header-secret", Secret: true}}, stored.Headers)
	require.Equal(t, []webhook.Param{{Key: "email", Path: "data.email"}}, stored.Params)

	// Duplicate: "Copy of …", off, a new signing secret.
	e.must(200, "PATCH", fmt.Sprintf("/v1/webhooks/%d", id), e.manager, map[string]any{"active": true})
	dup := e.must(201, "POST", fmt.Sprintf("/v1/webhooks/%d/duplicate", id), e.manager, nil)
	require.Equal(t, "Copy of Renamed", dup["name"])
	require.Equal(t, false, dup["active"])
	require.NotEqual(t, u["secret"], dup["secret"])
	dupStored, err := e.st.WebhookGet(e.ctx, "acme", int64(dup["id"].(float64)))
	require.NoError(t, err)
	require.Equal(t, stored.Headers, dupStored.Headers, "the copy keeps the secret header value")

	// Rotate: a new secret, the old one still valid for a while.
	rot := e.must(200, "POST", fmt.Sprintf("/v1/webhooks/%d/rotate-secret", id), e.manager, nil)
	require.NotEqual(t, u["secret"], rot["secret"])
	require.NotNil(t, rot["previous_secret_expires_at"])
	stored, err = e.st.WebhookGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, u["secret"], stored.PreviousSecret)

	// Test a saved webhook: no event captured yet, so the catalog sample in an envelope.
	res := e.must(200, "POST", fmt.Sprintf("/v1/webhooks/%d/test", id), e.manager, nil)
	require.Equal(t, true, res["succeeded"])
	var envl webhook.Envelope
	require.NoError(t, json.Unmarshal(e.tester.last().payload, &envl))
	require.Equal(t, "contact.created", envl.Type)
	require.Equal(t, "acme", envl.CompanyID)
	require.JSONEq(t, `{"id":1,"name":"Ada","email":"ada@example.com"}`, string(envl.Data))
	// With a captured event, the latest real one.
	e.newDelivery(stored, "succeeded", time.Now())
	e.must(200, "POST", fmt.Sprintf("/v1/webhooks/%d/test?payload=latest", id), e.manager, nil)
	require.Contains(t, string(e.tester.last().payload), "ada@example.com")
	require.Contains(t, string(e.tester.last().payload), `"n"`)
	require.Equal(t, 400, e.do("POST", fmt.Sprintf("/v1/webhooks/%d/test?payload=bogus", id), e.manager, nil).status)

	// Test an unsaved body, with the credential attached.
	unsaved := hookBody("Draft")
	unsaved["oauth_id"] = cred.ID
	e.must(200, "POST", "/v1/webhooks/test?payload=sample", e.manager, unsaved)
	last := e.tester.last()
	require.Equal(t, "Draft", last.w.Name)
	require.NotNil(t, last.cred)
	require.Equal(t, "client-secret-value", last.cred.ClientSecret)
	require.Regexp(t, `^whsec_`, last.w.Secret)

	// Delete, then it is gone.
	e.must(204, "DELETE", fmt.Sprintf("/v1/webhooks/%d", id), e.manager, nil)
	e.must(404, "GET", fmt.Sprintf("/v1/webhooks/%d", id), e.manager, nil)
	e.must(404, "DELETE", fmt.Sprintf("/v1/webhooks/%d", id), e.manager, nil)
	e.must(404, "GET", "/v1/webhooks/abc", e.manager, nil)

	// The audit log tells who did what.
	audit := e.must(200, "GET", fmt.Sprintf("/v1/audit?object_type=webhook&object_id=%d", id), e.viewer, nil)
	var actions []string
	for _, it := range audit["items"].([]any) {
		m := it.(map[string]any)
		actions = append(actions, fmt.Sprintf("%s by %s", m["action"], m["member_email"]))
	}
	require.Equal(t, []string{
		"deleted by dev@acme.test", "secret_rotated by dev@acme.test", "updated by dev@acme.test",
		"updated by owner@acme.test", "updated by dev@acme.test", "created by dev@acme.test",
	}, actions)
	// Paginated the same way.
	page := e.must(200, "GET", fmt.Sprintf("/v1/audit?object_type=webhook&object_id=%d&limit=4", id), e.viewer, nil)
	require.Len(t, page["items"], 4)
	page = e.must(200, "GET", fmt.Sprintf("/v1/audit?object_type=webhook&object_id=%d&limit=4&cursor=%s", id, page["next_cursor"]), e.viewer, nil)
	require.Len(t, page["items"], 2)
	require.Nil(t, page["next_cursor"])
}

func TestWebhookListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now().UTC()
	var hooks []webhook.Webhook
	for i, name := range []string{"delta", "alpha", "charlie", "bravo", "echo"} {
		hooks = append(hooks, e.newWebhook(name, func(w *webhook.Webhook) {
			w.Active = i%2 == 0
			if name == "echo" {
				w.EventKeys = []string{"contact.updated"}
			}
		}))
	}
	e.newWebhook("zulu of other", func(w *webhook.Webhook) { w.CompanyID = "other" })
	// Sent times and statuses as dispatch records them.
	for i, h := range hooks[:3] {
		st := "succeeded"
		if i == 1 {
			st = "failed"
		}
		_, err := e.pool.Exec(e.ctx, `UPDATE walhook.webhook SET last_sent_at = $1, last_status = $2 WHERE id = $3`,
			now.Add(time.Duration(i)*time.Minute), st, h.ID)
		require.NoError(t, err)
	}
	e.newDelivery(hooks[0], "succeeded", now)
	e.newDelivery(hooks[0], "failed", now)
	e.newDelivery(hooks[0], "pending", now)

	names := func(q string) []string {
		var out []string
		cursor := ""
		for range 10 {
			path := "/v1/webhooks?limit=2&" + q
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			page := e.must(200, "GET", path, e.viewer, nil)
			for _, it := range page["items"].([]any) {
				out = append(out, it.(map[string]any)["name"].(string))
			}
			if page["next_cursor"] == nil {
				return out
			}
			cursor = page["next_cursor"].(string)
		}
		t.Fatal("too many pages")
		return nil
	}
	require.Equal(t, []string{"alpha", "bravo", "charlie", "delta", "echo"}, names(""))
	require.Equal(t, []string{"charlie", "alpha", "delta", "echo", "bravo"}, names("sort=last_sent"), "never sent last, newest id first")
	require.Equal(t, []string{"charlie", "delta", "echo"}, names("active=true"))
	require.Equal(t, []string{"echo"}, names("event=contact.updated"))
	require.Equal(t, []string{"alpha"}, names("last_status=failed"))
	require.Equal(t, []string{"charlie", "delta"}, names("last_status=succeeded&sort=last_sent"))

	page := e.must(200, "GET", "/v1/webhooks?event=contact.created&limit=500", e.viewer, nil)
	var delta map[string]any
	for _, it := range page["items"].([]any) {
		if it.(map[string]any)["name"] == "delta" {
			delta = it.(map[string]any)
		}
	}
	require.Equal(t, map[string]any{"triggered": 3.0, "succeeded": 1.0, "failed": 1.0, "pending": 1.0}, delta["counts"])
	require.Equal(t, "succeeded", delta["last_status"])
	require.NotNil(t, delta["last_sent_at"])

	for _, q := range []string{"sort=size", "active=maybe", "last_status=ok", "limit=0", "limit=501", "cursor=!!!", "cursor=e30"} {
		require.Equal(t, 400, e.do("GET", "/v1/webhooks?"+q, e.viewer, nil).status, q)
	}
	// A name cursor is refused for the last_sent order.
	first := e.must(200, "GET", "/v1/webhooks?limit=1", e.viewer, nil)
	r := e.do("GET", "/v1/webhooks?sort=last_sent&cursor="+first["next_cursor"].(string), e.viewer, nil)
	require.Equal(t, 400, r.status)
	require.Contains(t, r.fieldErrors(t)["cursor"], "another listing")
}

func TestHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	w := e.newWebhook("hist", func(w *webhook.Webhook) {
		w.Active = true
		w.Headers = []webhook.Header{{Key: "X-Api-Key", Value: "key-value", Secret: true}}
	})
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	var ids []int64
	states := []string{"succeeded", "failed", "failed", "pending", "succeeded", "failed"}
	for i, st := range states {
		ids = append(ids, e.newDelivery(w, st, base.Add(time.Duration(i)*20*time.Minute)))
	}
	hp := fmt.Sprintf("/v1/webhooks/%d/deliveries", w.ID)
	all := e.must(200, "GET", hp, e.viewer, nil)
	require.Equal(t, map[string]any{"triggered": 6.0, "succeeded": 2.0, "failed": 3.0, "pending": 1.0}, all["totals"])
	items := all["items"].([]any)
	require.Len(t, items, 6)
	require.Equal(t, e.pub("acme", ids[5]), items[0].(map[string]any)["id"], "newest first")
	require.Regexp(t, `^evt_\d+$`, items[0].(map[string]any)["event_id"], "the envelope's id")
	require.Equal(t, "contact.created", items[0].(map[string]any)["event"])
	require.Equal(t, 500.0, items[0].(map[string]any)["last_status_code"])

	failed := e.must(200, "GET", hp+"?status=failed&limit=2", e.viewer, nil)
	require.Len(t, failed["items"], 2)
	require.Equal(t, 3.0, failed["totals"].(map[string]any)["failed"])
	more := e.must(200, "GET", hp+"?status=failed&limit=2&cursor="+failed["next_cursor"].(string), e.viewer, nil)
	require.Len(t, more["items"], 1)
	require.Nil(t, more["next_cursor"])
	since := base.Add(30 * time.Minute).Format(time.RFC3339)
	until := base.Add(70 * time.Minute).Format(time.RFC3339)
	ranged := e.must(200, "GET", hp+"?since="+since+"&until="+until, e.viewer, nil)
	require.Equal(t, map[string]any{"triggered": 2.0, "succeeded": 0.0, "failed": 1.0, "pending": 1.0}, ranged["totals"])
	require.Equal(t, 400, e.do("GET", hp+"?status=lost", e.viewer, nil).status)
	require.Equal(t, 400, e.do("GET", hp+"?since=yesterday", e.viewer, nil).status)

	// One delivery: payload, request headers masked (Authorization and the secret header), attempts.
	d := e.must(200, "GET", "/v1/deliveries/"+e.pub("acme", ids[1]), e.viewer, nil)
	require.Equal(t, e.pub("acme", ids[1]), d["id"])
	require.Equal(t, "failed", d["state"])
	require.Equal(t, "ada@example.com", d["payload"].(map[string]any)["data"].(map[string]any)["email"])
	hdrs := d["request"].(map[string]any)["headers"].(map[string]any)
	require.Equal(t, webhook.Mask, hdrs["Authorization"])
	require.Equal(t, webhook.Mask, hdrs["X-Api-Key"])
	require.Equal(t, "application/json", hdrs["Content-Type"])
	att := d["attempt_list"].([]any)
	require.Len(t, att, 1)
	require.Equal(t, 500.0, att[0].(map[string]any)["response_status"])
	require.Equal(t, webhook.Mask, att[0].(map[string]any)["request"].(map[string]any)["headers"].(map[string]any)["Authorization"])
	require.NotContains(t, string(e.do("GET", "/v1/deliveries/"+e.pub("acme", ids[1]), e.viewer, nil).raw), "live-token")
	// Row ids are not ids of the API.
	for _, p := range []string{fmt.Sprintf("/v1/deliveries/%d", ids[1]), fmt.Sprintf("/v1/deliveries/msg_%d", ids[1])} {
		r := e.do("GET", p, e.viewer, nil)
		require.Equal(t, 404, r.status, p)
		require.Equal(t, 404, e.do("POST", p+"/resync", e.manager, nil).status, p)
	}

	// Resync one: pending again, due now, dispatch woken.
	conn, err := e.pool.Acquire(e.ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(e.ctx, "LISTEN walhook_deliveries")
	require.NoError(t, err)
	rs := e.must(202, "POST", "/v1/deliveries/"+e.pub("acme", ids[1])+"/resync", e.manager, nil)
	require.Equal(t, "pending", rs["state"])
	require.Equal(t, e.pub("acme", ids[1]), rs["id"])
	n, err := conn.Conn().WaitForNotification(e.ctx)
	require.NoError(t, err)
	require.Equal(t, "walhook_deliveries", n.Channel)
	var state string
	var due bool
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT state, next_attempt_at <= now() FROM walhook.delivery WHERE id = $1`, ids[1]).Scan(&state, &due))
	require.Equal(t, "pending", state)
	require.True(t, due)
	// Being sent right now: 409.
	_, err = e.pool.Exec(e.ctx, `UPDATE walhook.delivery SET lease_until = now() + interval '1 minute' WHERE id = $1`, ids[3])
	require.NoError(t, err)
	require.Equal(t, 409, e.do("POST", "/v1/deliveries/"+e.pub("acme", ids[3])+"/resync", e.manager, nil).status)

	// Bulk: the failed ones in the window, counted.
	rp := fmt.Sprintf("/v1/webhooks/%d/deliveries/resync", w.ID)
	bulk := e.must(202, "POST", rp, e.manager, map[string]any{"status": "failed", "since": base.Add(30 * time.Minute)})
	require.Equal(t, 2.0, bulk["resynced"])
	require.Equal(t, 0.0, e.must(202, "POST", rp, e.manager, map[string]any{"status": "failed", "since": base})["resynced"])
	r := e.do("POST", rp, e.manager, map[string]any{"status": "succeeded"})
	require.Equal(t, 422, r.status)
	require.Equal(t, map[string]string{"status": "must be failed", "since": "is required"}, r.fieldErrors(t))

	// The series for the chart.
	stats := e.must(200, "GET", fmt.Sprintf("/v1/webhooks/%d/stats?bucket=hour&since=%s", w.ID, base.Format(time.RFC3339)), e.viewer, nil)
	var total float64
	for _, b := range stats["series"].([]any) {
		total += b.(map[string]any)["triggered"].(float64)
	}
	require.Equal(t, 6.0, total)
	require.Equal(t, 400, e.do("GET", fmt.Sprintf("/v1/webhooks/%d/stats?bucket=week", w.ID), e.viewer, nil).status)

	// Another company sees none of it.
	require.Equal(t, 404, e.do("GET", hp, e.other, nil).status)
	require.Equal(t, 404, e.do("GET", "/v1/deliveries/"+e.pub("acme", ids[0]), e.other, nil).status)
	require.Equal(t, 404, e.do("POST", "/v1/deliveries/"+e.pub("acme", ids[0])+"/resync", e.other, nil).status)
	// Nor does its own public id for the same row open acme's delivery.
	require.Equal(t, 404, e.do("GET", "/v1/deliveries/"+e.pub("other", ids[0]), e.other, nil).status)
}

func TestRolesMembersTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	role := e.must(201, "POST", "/v1/roles", e.owner, map[string]any{"name": "Support"})
	rid := int64(role["id"].(float64))
	require.Equal(t, []any{}, role["permissions"])
	// The viewer gets the role, then the role gets the permission: the viewer may now create.
	e.must(200, "PATCH", fmt.Sprintf("/v1/members/%d", e.viewerM.ID), e.owner, map[string]any{"role_id": rid})
	require.Equal(t, 403, e.do("POST", "/v1/webhooks", e.viewer, hookBody("x")).status)
	e.must(200, "PUT", fmt.Sprintf("/v1/roles/%d/permissions", rid), e.owner, map[string]any{"permissions": []string{"manage_webhooks"}})
	e.must(201, "POST", "/v1/webhooks", e.viewer, hookBody("x"))
	e.must(200, "PUT", fmt.Sprintf("/v1/roles/%d/permissions", rid), e.owner, map[string]any{"permissions": []string{}})
	r := e.do("POST", "/v1/webhooks", e.viewer, hookBody("y"))
	require.Equal(t, 403, r.status)
	require.Contains(t, r.obj(t)["detail"], "manage_webhooks")

	r = e.do("PUT", fmt.Sprintf("/v1/roles/%d/permissions", rid), e.owner, map[string]any{"permissions": []string{"root"}})
	require.Equal(t, 422, r.status)
	require.Contains(t, r.fieldErrors(t), "permissions[0]")
	require.Equal(t, 409, e.do("POST", "/v1/roles", e.owner, map[string]any{"name": "Support"}).status)
	// A role of another company cannot be assigned.
	otherRole, err := e.st.RoleCreate(e.ctx, "other", "Theirs")
	require.NoError(t, err)
	r = e.do("PATCH", fmt.Sprintf("/v1/members/%d", e.viewerM.ID), e.owner, map[string]any{"role_id": otherRole.ID})
	require.Equal(t, 404, r.status)
	require.Contains(t, r.fieldErrors(t), "role_id")
	e.must(200, "PATCH", fmt.Sprintf("/v1/members/%d", e.viewerM.ID), e.owner, map[string]any{"role_id": nil})

	members := e.must(200, "GET", "/v1/members", e.viewer, nil)
	require.Len(t, members["items"], 3)
	roles := e.must(200, "GET", "/v1/roles", e.owner, nil)
	require.Len(t, roles["items"], 2)

	// Tokens: a member makes one, sees it once, revokes it.
	tok := e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "laptop", "expires_in_days": 30})
	plain := tok["token"].(string)
	require.NotEmpty(t, plain)
	e.must(200, "GET", "/v1/me", plain, nil)
	mine := e.must(200, "GET", "/v1/tokens", e.viewer, nil)
	require.Len(t, mine["items"], 2)
	for _, it := range mine["items"].([]any) {
		require.Nil(t, it.(map[string]any)["token"], "listed tokens never carry the secret")
	}
	require.Len(t, e.must(200, "GET", "/v1/tokens", e.owner, nil)["items"], 4)
	require.Equal(t, 404, e.do("DELETE", fmt.Sprintf("/v1/tokens/%d", int64(tok["id"].(float64))), e.manager, nil).status, "not the manager's token")
	e.must(204, "DELETE", fmt.Sprintf("/v1/tokens/%d", int64(tok["id"].(float64))), e.viewer, nil)
	require.Equal(t, 401, e.do("GET", "/v1/me", plain, nil).status, "a revoked token is refused")
}

func TestRequestBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	big := `{"name":"` + strings.Repeat("a", maxBody) + `"}`
	r := e.do("POST", "/v1/webhooks", e.owner, big)
	require.Equal(t, 413, r.status)

	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.URL+"/v1/webhooks", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.owner)
	req.Header.Set("Content-Type", "text/plain")
	res, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 415, res.StatusCode)

	for body, field := range map[string]string{
		`{"name":"x","colour":"red"}`: "colour",
		`{"name":1}`:                  "name",
		`{"name":"x"} {"name":"y"}`:   "",
		`{"name":`:                    "",
		``:                            "",
		`{"headers":[{"key":"a","value":"b","x":1}]}`: "x",
	} {
		r := e.do("POST", "/v1/webhooks", e.owner, body)
		require.Equal(t, 400, r.status, body)
		if field != "" {
			require.Contains(t, r.fieldErrors(t), field, body)
		}
	}
	// Nothing was half-written.
	list, err := e.st.WebhookList(e.ctx, "acme", 0, 100)
	require.NoError(t, err)
	require.Empty(t, list)
}

// TestTenantBodyIDs: an id of another company inside a body answers 404 and writes nothing.
func TestTenantBodyIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	theirs := e.newOAuth("other", "theirs")
	body := hookBody("x")
	body["oauth_id"] = theirs.ID
	r := e.do("POST", "/v1/webhooks", e.owner, body)
	require.Equal(t, 404, r.status)
	require.Contains(t, r.fieldErrors(t), "oauth_id")
	w := e.newWebhook("mine", nil)
	r = e.do("PATCH", fmt.Sprintf("/v1/webhooks/%d", w.ID), e.owner, map[string]any{"oauth_id": theirs.ID, "name": "changed"})
	require.Equal(t, 404, r.status)
	got, err := e.st.WebhookGet(e.ctx, "acme", w.ID)
	require.NoError(t, err)
	require.Equal(t, "mine", got.Name)
	require.Nil(t, got.OAuthID)
	list, err := e.st.WebhookList(e.ctx, "acme", 0, 100)
	require.NoError(t, err)
	require.Len(t, list, 1)
	audit, err := e.st.AuditList(e.ctx, "acme", store.AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, audit, "no audit row for a refused change")
}
