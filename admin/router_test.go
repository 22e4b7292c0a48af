package admin

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRouterErrorsAreProblems: the router's own 404 and 405 under /v1 are problem details too.
func TestRouterErrorsAreProblems(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/nope", 404, ""},
		{"DELETE", "/v1/me", 405, "GET, HEAD"},
		{"PUT", "/v1/webhooks", 405, "GET, HEAD, POST"},
	} {
		r := e.do(c.method, c.path, e.owner, nil)
		require.Equal(t, c.status, r.status, c.path)
		require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), c.path)
		require.Equal(t, c.allow, r.header.Get("Allow"), c.path)
		var p problem
		require.NoError(t, json.Unmarshal(r.raw, &p))
		require.Equal(t, c.status, p.Status)
		require.NotEmpty(t, p.Detail)
	}
}
