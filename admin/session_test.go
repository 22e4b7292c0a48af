package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLogoutRevokesTheToken: POST /v1/logout revokes the token it is called with, which answers
// 401 afterwards; the member's other tokens keep working.
func TestLogoutRevokesTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok := e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "browser"})["token"].(string)
	e.must(200, "GET", "/v1/me", tok, nil)
	e.must(204, "POST", "/v1/logout", tok, nil)
	r := e.do("GET", "/v1/me", tok, nil)
	require.Equal(t, 401, r.status, "%s", r.raw)
	require.Equal(t, 401, e.do("POST", "/v1/logout", tok, nil).status, "a second sign-out is a 401 too")
	e.must(200, "GET", "/v1/me", e.viewer, nil)
	audit := e.must(200, "GET", "/v1/audit?object_type=api_token", e.owner, nil)
	require.Contains(t, fmt.Sprint(audit), "sign-out")

	// A web session from a sign-in link ends the same way.
	code, err := e.st.LoginCodeCreate(e.ctx, "acme", e.viewerM.ID, time.Hour)
	require.NoError(t, err)
	session := e.must(200, "POST", "/v1/login", "", map[string]any{"code": code})["token"].(string)
	e.must(204, "POST", "/v1/logout", session, nil)
	require.Equal(t, 401, e.do("GET", "/v1/webhooks", session, nil).status)
}

// TestTokenMaxLifetime: API tokens live at most the configured lifetime, which a token asked for
// without one gets; past its expiry a token answers 401; without a cap a token may never expire.
func TestTokenMaxLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.restart(Config{TokenMaxLifetime: 90 * 24 * time.Hour})
	before := time.Now()
	tok := e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "default"})
	exp, err := time.Parse(time.RFC3339Nano, tok["expires_at"].(string))
	require.NoError(t, err)
	require.False(t, exp.Before(before.Add(90*24*time.Hour)), "expires %s", exp)
	require.False(t, exp.After(time.Now().Add(90*24*time.Hour)), "expires %s", exp)
	short := e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "short", "expires_in_days": 7})
	exp, err = time.Parse(time.RFC3339Nano, short["expires_at"].(string))
	require.NoError(t, err)
	require.False(t, exp.After(time.Now().Add(7*24*time.Hour)))
	r := e.do("POST", "/v1/tokens", e.viewer, map[string]any{"name": "long", "expires_in_days": 91})
	require.Equal(t, 422, r.status, "%s", r.raw)
	require.Contains(t, r.fieldErrors(t)["expires_in_days"], "at most 90")

	// Expired: 401.
	past := time.Now().Add(-time.Minute)
	expired, _, err := e.st.APITokenCreate(e.ctx, "acme", e.viewerM.ID, "old", &past)
	require.NoError(t, err)
	r = e.do("GET", "/v1/me", expired, nil)
	require.Equal(t, 401, r.status)
	require.Contains(t, r.obj(t)["detail"], "expired")

	// No cap (the operator's --token-max-lifetime 0): a token without expires_in_days never expires.
	e.restart(Config{})
	forever := e.must(201, "POST", "/v1/tokens", e.viewer, map[string]any{"name": "forever"})
	require.Nil(t, forever["expires_at"])
}

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestFailedAuthIsHeldOff: past the limit of failed token checks and sign-ins from one address,
// that address gets 429 with Retry-After — even with a valid token — for a delay that doubles;
// other addresses are not affected; X-Forwarded-For counts only from a trusted proxy.
func TestFailedAuthIsHeldOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := e.restart(Config{AuthFailures: AuthFailureConfig{Limit: 3, Window: time.Minute, MaxDelay: 8 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	s.throttle.now = clock.Now
	// answer is what the tests read of a response.
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	send := func(method, path, token, xff string, body any) answer {
		t.Helper()
		req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, nil)
		require.NoError(t, err)
		if body != nil {
			req, err = http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, jsonBody(t, body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return answer{res.StatusCode, res.Header}
	}
	const a, b = "198.51.100.7", "198.51.100.8"
	// Two unknown tokens and one unknown sign-in code: 401 each.
	require.Equal(t, 401, send("GET", "/v1/me", "whk_guess1", a, nil).StatusCode)
	require.Equal(t, 401, send("GET", "/v1/me", "whk_guess2", a, nil).StatusCode)
	require.Equal(t, 401, send("POST", "/v1/login", "", a, map[string]any{"code": "whl_guess"}).StatusCode)
	// Held off for 1 s: even a valid token, and a sign-in.
	res := send("GET", "/v1/me", e.viewer, a, nil)
	require.Equal(t, 429, res.StatusCode)
	require.Equal(t, "1", res.Header.Get("Retry-After"))
	require.Equal(t, 429, send("POST", "/v1/login", "", a, map[string]any{"code": "whl_guess"}).StatusCode)
	// Another address is not.
	require.Equal(t, 200, send("GET", "/v1/me", e.viewer, b, nil).StatusCode)
	// After the delay, one more failure doubles it.
	clock.Add(time.Second)
	require.Equal(t, 200, send("GET", "/v1/me", e.viewer, a, nil).StatusCode)
	require.Equal(t, 401, send("GET", "/v1/me", "whk_guess3", a, nil).StatusCode)
	require.Equal(t, "2", send("GET", "/v1/me", e.viewer, a, nil).Header.Get("Retry-After"))
	clock.Add(2 * time.Second)
	for _, want := range []string{"4", "8", "8"} { // capped at MaxDelay
		require.Equal(t, 401, send("GET", "/v1/me", "whk_guess", a, nil).StatusCode)
		require.Equal(t, want, send("GET", "/v1/me", e.viewer, a, nil).Header.Get("Retry-After"))
		clock.Add(8 * time.Second)
	}
	// Forgotten a window after the last hold-off.
	clock.Add(time.Minute + time.Second)
	for range 2 {
		require.Equal(t, 401, send("GET", "/v1/me", "whk_guess", a, nil).StatusCode)
	}
	require.Equal(t, 200, send("GET", "/v1/me", e.viewer, a, nil).StatusCode)

	// Without trusted proxies X-Forwarded-For is ignored: the peer (127.0.0.1) is held off
	// whatever the header says.
	s = e.restart(Config{AuthFailures: AuthFailureConfig{Limit: 2}})
	s.throttle.now = clock.Now
	require.Equal(t, 401, send("GET", "/v1/me", "whk_guess", a, nil).StatusCode)
	require.Equal(t, 401, send("GET", "/v1/me", "whk_guess", b, nil).StatusCode)
	require.Equal(t, 429, send("GET", "/v1/me", e.viewer, "203.0.113.9", nil).StatusCode)
	require.Equal(t, 429, send("GET", "/v1/me", e.viewer, "", nil).StatusCode)
}

// TestThrottleKeysAndMemory: IPv6 clients count per /64, the trusted-proxy chain is read from the
// right, and the table never grows past MaxAddresses.
func TestThrottleKeysAndMemory(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := newThrottle(AuthFailureConfig{Limit: 1, MaxAddresses: 50,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, clock.Now)
	key := func(remote string, xff ...string) string {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		return th.client(r).String()
	}
	require.Equal(t, "192.0.2.1/32", key("192.0.2.1:5000"))
	require.Equal(t, "2001:db8:1:2::/64", key("[2001:db8:1:2:aaaa::1]:443"))
	require.Equal(t, "192.0.2.1/32", key("[::ffff:192.0.2.1]:1"))
	require.Equal(t, "192.0.2.1/32", key("192.0.2.1:5000", "203.0.113.5"), "an untrusted peer's header is ignored")
	require.Equal(t, "203.0.113.5/32", key("10.0.0.2:5000", "198.51.100.1, 203.0.113.5"), "the rightmost untrusted hop")
	require.Equal(t, "203.0.113.5/32", key("10.0.0.2:5000", "198.51.100.1", "203.0.113.5, 10.0.0.9"), "trusted hops are skipped")
	require.Equal(t, "10.0.0.9/32", key("10.0.0.2:5000", "junk, 10.0.0.9"), "a malformed hop stops the walk")

	for i := range 1000 {
		th.fail(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32))
		clock.Add(time.Millisecond)
	}
	require.LessOrEqual(t, len(th.seen), 50)
	last := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 3, 231}), 32)
	require.Positive(t, th.wait(last), "the newest address is still held off")
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return bytes.NewReader(raw)
}
