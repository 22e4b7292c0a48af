package admin

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLoginCode: a sign-in code is exchanged once for a token of its member that expires; a
// spent, expired or unknown code answers 401; concurrent exchanges of one code yield one token.
func TestLoginCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	code, err := e.st.LoginCodeCreate(e.ctx, "acme", e.viewerM.ID, time.Hour)
	require.NoError(t, err)
	require.Regexp(t, `^whl_`, code)

	out := e.must(200, "POST", "/v1/login", "", map[string]any{"code": code})
	token, _ := out["token"].(string)
	require.Regexp(t, `^whk_`, token)
	exp, err := time.Parse(time.RFC3339Nano, out["expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(webSessionTTL), exp, time.Minute)
	me := e.must(200, "GET", "/v1/me", token, nil)
	require.Equal(t, "viewer@acme.test", me["member"].(map[string]any)["email"], "the token speaks for the code's member")

	again := e.do("POST", "/v1/login", "", map[string]any{"code": code})
	require.Equal(t, 401, again.status, "a code is spent on first use")
	require.Contains(t, string(again.raw), "already used or has expired")

	expired, err := e.st.LoginCodeCreate(e.ctx, "acme", e.viewerM.ID, -time.Second)
	require.NoError(t, err)
	require.Equal(t, 401, e.do("POST", "/v1/login", "", map[string]any{"code": expired}).status)
	require.Equal(t, 401, e.do("POST", "/v1/login", "", map[string]any{"code": "whl_nope"}).status)
	require.Equal(t, 400, e.do("POST", "/v1/login", "", map[string]any{"code": code, "extra": 1}).status)

	var n int
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT count(*) FROM walhook.login_code WHERE position(convert_to($1, 'UTF8') in code_hash) > 0`, code).Scan(&n))
	require.Zero(t, n, "codes are stored hashed")

	// Ten concurrent exchanges of one fresh code: exactly one succeeds.
	race, err := e.st.LoginCodeCreate(e.ctx, "acme", e.ownerM.ID, time.Hour)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := e.do("POST", "/v1/login", "", map[string]any{"code": race}).status
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, map[int]int{200: 1, 401: 9}, statuses)
}
