package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQuotas: past each per-company limit the API answers 409 (or 422 for a list in the body)
// naming the limit and its value, and stores nothing; duplicates count, and another company has
// its own allowance.
func TestQuotas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.restart(Config{Quotas: Quotas{Webhooks: 2, OAuthCredentials: 1, APITokens: 4, HeadersPerWebhook: 2, ParamsPerWebhook: 1}})
	count := func(table, company string) int {
		var n int
		require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.`+table+` WHERE company_id = $1`, company).Scan(&n))
		return n
	}
	over := func(r resp, status int, limit string, max float64) {
		t.Helper()
		require.Equal(t, status, r.status, "%s", r.raw)
		p := r.obj(t)
		require.Equal(t, limit, p["limit"], "%s", r.raw)
		require.Equal(t, max, p["max"], "%s", r.raw)
		require.Contains(t, p["detail"], limit)
	}

	// Webhooks: two, then 409 for a third and for a duplicate.
	first := e.must(201, "POST", "/v1/webhooks", e.manager, hookBody("one"))
	e.must(201, "POST", "/v1/webhooks", e.manager, hookBody("two"))
	over(e.do("POST", "/v1/webhooks", e.manager, hookBody("three")), 409, "webhooks_per_company", 2)
	over(e.do("POST", fmt.Sprintf("/v1/webhooks/%d/duplicate", int64(first["id"].(float64))), e.manager, nil), 409, "webhooks_per_company", 2)
	require.Equal(t, 2, count("webhook", "acme"))
	e.must(201, "POST", "/v1/webhooks", e.other, hookBody("other's"))
	// Deleting one makes room.
	e.must(204, "DELETE", fmt.Sprintf("/v1/webhooks/%d", int64(first["id"].(float64))), e.manager, nil)
	e.must(201, "POST", "/v1/webhooks", e.manager, hookBody("three"))

	// Headers and parameters per webhook: 422 naming the list, on create and update alike.
	b := hookBody("many")
	b["headers"] = []map[string]any{{"key": "A", "value": "1"}, {"key": "B", "value": "2"}, {"key": "C", "value": "3"}}
	r := e.do("POST", "/v1/webhooks", e.other, b)
	over(r, 422, "headers_per_webhook", 2)
	require.Contains(t, r.fieldErrors(t), "headers")
	b = hookBody("many")
	b["raw_data"] = false
	b["params"] = []map[string]any{{"key": "a", "path": "data.a"}, {"key": "b", "path": "data.b"}}
	r = e.do("PATCH", fmt.Sprintf("/v1/webhooks/%d", int64(e.must(200, "GET", "/v1/webhooks", e.manager, nil)["items"].([]any)[0].(map[string]any)["id"].(float64))), e.manager, b)
	over(r, 422, "params_per_webhook", 1)
	require.Contains(t, r.fieldErrors(t), "params")

	// OAuth credentials.
	e.must(201, "POST", "/v1/oauth", e.manager, oauthBody("one"))
	over(e.do("POST", "/v1/oauth", e.manager, oauthBody("two")), 409, "oauth_credentials_per_company", 1)
	require.Equal(t, 1, count("oauth_credential", "acme"))

	// Active API tokens: acme has three (owner, manager, viewer); revoked ones do not count.
	tok := e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "fourth"})
	over(e.do("POST", "/v1/tokens", e.viewer, map[string]any{"name": "fifth"}), 409, "api_tokens_per_company", 4)
	require.Equal(t, 4, count("api_token", "acme"))
	e.must(204, "DELETE", fmt.Sprintf("/v1/tokens/%d", int64(tok["id"].(float64))), e.viewer, nil)
	e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "fifth"})
}

// TestQuotaConcurrentCreates: many creates at once cannot overshoot a quota: the count and the
// insert happen under the company's row lock.
func TestQuotaConcurrentCreates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.restart(Config{Quotas: Quotas{Webhooks: 3, OAuthCredentials: 2}})
	const n = 16
	post := func(path string, body any) int {
		raw, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.URL+path, bytes.NewReader(raw))
		if err != nil {
			return -1
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.manager)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			return -1
		}
		res.Body.Close()
		return res.StatusCode
	}
	statuses := make([]int, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			statuses[i] = post("/v1/webhooks", hookBody(fmt.Sprintf("race %d", i)))
		}()
		go func() {
			defer wg.Done()
			statuses[n+i] = post("/v1/oauth", oauthBody(fmt.Sprintf("race %d", i)))
		}()
	}
	wg.Wait()
	tally := func(ss []int) map[int]int {
		m := map[int]int{}
		for _, s := range ss {
			m[s]++
		}
		return m
	}
	require.Equal(t, map[int]int{201: 3, 409: n - 3}, tally(statuses[:n]))
	require.Equal(t, map[int]int{201: 2, 409: n - 2}, tally(statuses[n:]))
	var hooks, creds int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT (SELECT count(*) FROM walhook.webhook WHERE company_id = 'acme'),
		(SELECT count(*) FROM walhook.oauth_credential WHERE company_id = 'acme')`).Scan(&hooks, &creds))
	require.Equal(t, 3, hooks)
	require.Equal(t, 2, creds)
}
