package dispatch_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// SSRF: every address class is refused at dial time with a clear attempt error, including a
// hostname that resolves to loopback; a redirect to a private address is not followed.
func TestSSRFRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.AllowPrivate = nil
	b.run(t, cfg)
	rc := newReceiver(t, nil)
	u, err := url.Parse(rc.URL)
	require.NoError(t, err)
	for target, reason := range map[string]string{
		"http://localhost:" + u.Port() + "/": "loopback",
		rc.URL:                               "loopback",
		"http://[::1]:9/":                    "loopback",
		"http://10.0.0.1:9/":                 "private (RFC 1918)",
		"http://172.16.0.1:9/":               "private (RFC 1918)",
		"http://192.168.0.1:9/":              "private (RFC 1918)",
		"http://169.254.1.1:9/":              "link-local",
		"http://100.64.0.1:9/":               "shared (CGNAT)",
		"http://[fd00::1]:9/":                "unique-local (IPv6)",
		"http://[fe80::1]:9/":                "link-local",
		"http://224.0.0.1:9/":                "multicast",
		"http://0.0.0.0:9/":                  "unspecified",
		"http://169.254.169.254/latest/":     "cloud metadata",
		"http://[fd00:ec2::254]/":            "cloud metadata",
		"http://[::7f00:1]:9/":               "IPv4-compatible (deprecated)",
		"http://[2002:7f00:1::1]:9/":         "6to4-embedded loopback",
		"http://[64:ff9b:1::7f00:1]:9/":      "local-use NAT64",
		"http://[fec0::1]:9/":                "site-local (deprecated)",
	} {
		w := b.hook(t, webhook.Webhook{URL: target, RawData: true})
		id := b.enqueue(t, w.ID)[0]
		b.waitState(t, id, webhook.DeliveryFailed)
		as := b.attempts(t, id)
		require.Len(t, as, 1, target)
		require.NotNil(t, as[0].Error, target)
		require.Contains(t, *as[0].Error, "refused to connect", target)
		require.Contains(t, *as[0].Error, reason+" address", target)
	}
	require.Zero(t, rc.hits.Load(), "nothing reached the loopback receiver")
}

func TestRedirectToPrivateNotFollowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.AllowPrivate = loopback[:1]
	b.run(t, cfg)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, w.ID)[0]
	d := b.waitState(t, id, webhook.DeliveryFailed)
	require.Equal(t, http.StatusFound, *d.LastStatusCode)
	require.Contains(t, *d.LastError, "not followed")
}

// tokenServer is an OAuth token endpoint that counts fetches by grant.
type tokenServer struct {
	*receiver
	mu     sync.Mutex
	grants []url.Values
}

func newTokenServer(t *testing.T, answer func(form url.Values, n int) (int, string)) *tokenServer {
	ts := &tokenServer{}
	ts.receiver = newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		form := r.URL.Query()
		if r.Method == http.MethodPost {
			rb := ts.requests()
			form, _ = url.ParseQuery(string(rb[len(rb)-1].Body))
		}
		ts.mu.Lock()
		ts.grants = append(ts.grants, form)
		n := len(ts.grants)
		ts.mu.Unlock()
		code, body := answer(form, n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	})
	return ts
}

func (ts *tokenServer) fetches() []url.Values {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]url.Values(nil), ts.grants...)
}

func token(access string, expiresIn int, refresh string) string {
	m := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": expiresIn}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestOAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())
	bearer := func(rc *receiver) []string {
		var out []string
		for _, r := range rc.requests() {
			out = append(out, r.Header.Get("Authorization"))
		}
		return out
	}
	cred := func(ts *tokenServer, c webhook.OAuthCredential) *webhook.OAuthCredential {
		c.CompanyID, c.TokenURL = company, ts.URL+"/token"
		if c.Name == "" {
			c.Name = fmt.Sprintf("cred %d", b.seq.Add(1))
		}
		out, err := b.st.OAuthCredentialCreate(b.ctx, c, nil)
		require.NoError(t, err)
		return &out
	}

	t.Run("client_credentials, cached and shared", func(t *testing.T) {
		ts := newTokenServer(t, func(url.Values, int) (int, string) { return http.StatusOK, token("cc-token", 3600, "") })
		c := cred(ts, webhook.OAuthCredential{GrantType: webhook.GrantClientCredentials, ClientID: "id", ClientSecret: "sec", Scope: "hooks"})
		rc := newReceiver(t, nil)
		w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, OAuthID: &c.ID})
		var ids []int64
		for range 6 {
			ids = append(ids, b.enqueue(t, w.ID)...)
		}
		b.waitAll(t, ids, webhook.DeliverySucceeded)
		f := ts.fetches()
		require.Len(t, f, 1, "one fetch for every delivery")
		require.Equal(t, "client_credentials", f[0].Get("grant_type"))
		require.Equal(t, "sec", f[0].Get("client_secret"))
		require.Equal(t, "hooks", f[0].Get("scope"))
		for _, h := range bearer(rc) {
			require.Equal(t, "Bearer cc-token", h)
		}
		a := b.attempts(t, ids[0])[0]
		require.Equal(t, "Bearer "+webhook.Mask, headerMap(t, a.RequestHeaders)["Authorization"])
	})

	t.Run("hidden extra parameters and headers are sealed at rest and sent in clear", func(t *testing.T) {
		ts := newTokenServer(t, func(url.Values, int) (int, string) { return http.StatusOK, token("xp-token", 3600, "") })
		c := cred(ts, webhook.OAuthCredential{GrantType: webhook.GrantClientCredentials, ClientID: "id", ClientSecret: "sec",
			ExtraParams: []webhook.KeyValue{
				{Key: "password", Value: "pw-sent"}, {Key: "tenant", Value: "tenant-sent", Secret: true},
				{Key: "audience", Value: "aud-sent"},
			}})
		var sealed []byte
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT extra_params_enc FROM walhook.oauth_credential WHERE id = $1`, c.ID).Scan(&sealed))
		require.NotEmpty(t, sealed, "the hidden values are sealed")
		rc := newReceiver(t, nil)
		w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, OAuthID: &c.ID,
			Headers: []webhook.Header{{Key: "X-Api-Key", Value: "api-key-sent"}}})
		id := b.enqueue(t, w.ID)[0]
		b.waitState(t, id, webhook.DeliverySucceeded)
		f := ts.fetches()
		require.Len(t, f, 1)
		require.Equal(t, "pw-sent", f[0].Get("password"))
		require.Equal(t, "tenant-sent", f[0].Get("tenant"))
		require.Equal(t, "aud-sent", f[0].Get("audience"))
		reqs := rc.requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "api-key-sent", reqs[0].Header.Get("X-Api-Key"))
		require.Equal(t, "Bearer xp-token", reqs[0].Header.Get("Authorization"))
		require.Equal(t, webhook.Mask, headerMap(t, b.attempts(t, id)[0].RequestHeaders)["X-Api-Key"], "masked in history")
	})

	t.Run("authorization_code then refresh, over GET", func(t *testing.T) {
		ts := newTokenServer(t, func(form url.Values, n int) (int, string) {
			if n == 1 {
				return http.StatusOK, token("code-token", 1, "r1") // expires within the skew: refreshed next time
			}
			return http.StatusOK, token("refreshed-token", 3600, "")
		})
		c := cred(ts, webhook.OAuthCredential{GrantType: webhook.GrantAuthorizationCode, Method: "GET", ClientID: "id", Code: "the-code"})
		rc := newReceiver(t, nil)
		w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, OAuthID: &c.ID})
		b.waitState(t, b.enqueue(t, w.ID)[0], webhook.DeliverySucceeded)
		b.waitState(t, b.enqueue(t, w.ID)[0], webhook.DeliverySucceeded)
		f := ts.fetches()
		require.Len(t, f, 2)
		require.Equal(t, "authorization_code", f[0].Get("grant_type"))
		require.Equal(t, "the-code", f[0].Get("code"))
		require.Equal(t, "refresh_token", f[1].Get("grant_type"))
		require.Equal(t, "r1", f[1].Get("refresh_token"))
		require.Equal(t, []string{"Bearer code-token", "Bearer refreshed-token"}, bearer(rc))
		saved, err := b.st.OAuthCredentialGet(b.ctx, company, c.ID)
		require.NoError(t, err)
		require.Equal(t, "refreshed-token", saved.AccessToken, "the token is saved for other replicas")
		require.Equal(t, "r1", saved.RefreshToken, "the issued refresh token is kept")
	})

	t.Run("refresh_token grant; 401 fetches once more and retries once", func(t *testing.T) {
		ts := newTokenServer(t, func(_ url.Values, n int) (int, string) {
			if n == 1 {
				return http.StatusOK, token("revoked", 3600, "")
			}
			return http.StatusOK, token("fresh", 3600, "")
		})
		c := cred(ts, webhook.OAuthCredential{GrantType: webhook.GrantRefreshToken, RefreshToken: "given-refresh", ClientID: "id"})
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
			if r.Header.Get("Authorization") == "Bearer revoked" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, OAuthID: &c.ID})
		id := b.enqueue(t, w.ID)[0]
		d := b.waitState(t, id, webhook.DeliverySucceeded)
		require.Equal(t, 1, d.Attempts, "the 401 retry is part of the same attempt")
		f := ts.fetches()
		require.Len(t, f, 2)
		require.Equal(t, "refresh_token", f[0].Get("grant_type"))
		require.Equal(t, "given-refresh", f[0].Get("refresh_token"))
		require.Equal(t, []string{"Bearer revoked", "Bearer fresh"}, bearer(rc))
	})

	t.Run("a hidden extra parameter echoed by the token endpoint is masked in history", func(t *testing.T) {
		ts := newTokenServer(t, func(form url.Values, _ int) (int, string) {
			desc := "unknown api_key " + form.Get("api_key") + " for tenant " + form.Get("tenant")
			b, _ := json.Marshal(map[string]string{"error": "invalid_client", "error_description": desc})
			return http.StatusBadRequest, string(b)
		})
		c := cred(ts, webhook.OAuthCredential{GrantType: webhook.GrantClientCredentials, ClientID: "id",
			ExtraParams: []webhook.KeyValue{
				{Key: "api_key", Value: "echoed-api-key-value"}, {Key: "tenant", Value: "echoed-tenant-value", Secret: true},
			}})
		rc := newReceiver(t, nil)
		w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, OAuthID: &c.ID})
		id := b.enqueue(t, w.ID)[0]
		d := b.waitState(t, id, webhook.DeliveryFailed)
		as := b.attempts(t, id)
		require.NotEmpty(t, as)
		require.NotNil(t, as[0].Error)
		require.Contains(t, *as[0].Error, "invalid_client", "the endpoint's answer is kept")
		for _, text := range []string{*as[0].Error, *d.LastError} {
			require.NotContains(t, text, "echoed-api-key-value")
			require.NotContains(t, text, "echoed-tenant-value")
		}
	})

	t.Run("token endpoint down is an attempt error and retries", func(t *testing.T) {
		ts := newTokenServer(t, func(url.Values, int) (int, string) {
			return http.StatusServiceUnavailable, `{"error":"temporarily_unavailable","error_description":"maintenance"}`
		})
		c := cred(ts, webhook.OAuthCredential{GrantType: webhook.GrantClientCredentials, ClientID: "id", ClientSecret: "s"})
		rc := newReceiver(t, nil)
		w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true, OAuthID: &c.ID})
		id := b.enqueue(t, w.ID)[0]
		b.waitState(t, id, webhook.DeliveryFailed)
		as := b.attempts(t, id)
		require.Len(t, as, 3)
		require.Equal(t, webhook.OutcomeRetry, as[0].Outcome)
		require.True(t, strings.Contains(*as[0].Error, "fetch oauth token") && strings.Contains(*as[0].Error, "maintenance"), *as[0].Error)
		require.Zero(t, rc.hits.Load())
	})
}
