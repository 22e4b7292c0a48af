package admin

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWebhookRateLimit sets, reads, changes and removes a webhook's rate limit through create,
// get, list, PATCH, PUT and duplicate; a value that is not a whole number is refused naming the
// field, and nothing is written.
func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	none := e.must(201, "POST", "/v1/webhooks", e.manager, hookBody("unlimited"))
	require.Contains(t, none, "rate_limit")
	require.Nil(t, none["rate_limit"], "no limit by default")

	body := hookBody("limited")
	body["rate_limit"] = 50
	created := e.must(201, "POST", "/v1/webhooks", e.manager, body)
	require.Equal(t, 50.0, created["rate_limit"])
	path := fmt.Sprintf("/v1/webhooks/%d", int64(created["id"].(float64)))
	require.Equal(t, 50.0, e.must(200, "GET", path, e.viewer, nil)["rate_limit"])
	list := e.must(200, "GET", "/v1/webhooks", e.viewer, nil)["items"].([]any)
	limits := map[string]any{}
	for _, it := range list {
		m := it.(map[string]any)
		limits[m["name"].(string)] = m["rate_limit"]
	}
	require.Equal(t, map[string]any{"limited": 50.0, "unlimited": nil}, limits)

	// PATCH without the field keeps it; with a number changes it; with null removes it.
	require.Equal(t, 50.0, e.must(200, "PATCH", path, e.manager, map[string]any{"active": true})["rate_limit"])
	require.Equal(t, 1000.0, e.must(200, "PATCH", path, e.manager, map[string]any{"rate_limit": 1000})["rate_limit"])
	dup := e.must(201, "POST", path+"/duplicate", e.manager, nil)
	require.Equal(t, 1000.0, dup["rate_limit"], "the copy keeps the limit")
	require.Nil(t, e.must(200, "PATCH", path, e.manager, map[string]any{"rate_limit": nil})["rate_limit"])
	e.must(200, "PATCH", path, e.manager, map[string]any{"rate_limit": 7})
	require.Nil(t, e.must(200, "PUT", path, e.manager, hookBody("limited"))["rate_limit"], "PUT without it: no limit")

	for _, bad := range []any{1.5, "50", true, 1e30} {
		r := e.do("PATCH", path, e.manager, map[string]any{"rate_limit": bad})
		require.Equal(t, 400, r.status, "%v: %s", bad, r.raw)
		require.Contains(t, r.fieldErrors(t), "rate_limit", "%v: %s", bad, r.raw)
	}
	for _, bad := range []any{0, -1, 1001, 1e12} {
		r := e.do("PATCH", path, e.manager, map[string]any{"rate_limit": bad})
		require.Equal(t, 422, r.status, "%v: %s", bad, r.raw)
		require.Contains(t, r.fieldErrors(t)["rate_limit"], "from 1 to 1000")
	}
	stored, err := e.st.WebhookGet(e.ctx, "acme", int64(created["id"].(float64)))
	require.NoError(t, err)
	require.Nil(t, stored.RateLimit, "refused changes wrote nothing")

	audit := e.must(200, "GET", fmt.Sprintf("/v1/audit?object_type=webhook&object_id=%d&limit=1", int64(created["id"].(float64))), e.viewer, nil)
	require.Contains(t, fmt.Sprint(audit["items"]), "rate_limit", "the audit log names the changed field")
}
