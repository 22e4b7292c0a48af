package dispatch_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestSecretsAtRest stores every kind of secret walhook keeps — a webhook's signing secret and
// secret header, an OAuth credential's client secret, code and refresh token, the access and
// refresh tokens the dispatcher fetches from a real token endpoint and caches, and API tokens —
// then dumps the database with pg_dump and requires that no plaintext appears in the dump and that
// API tokens appear only as their SHA-256 hash.
func TestSecretsAtRest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())

	const (
		clientSecret = "client-secret-plain-7f3a9c"
		code         = "auth-code-plain-5d21e8"
		accessToken  = "access-token-plain-c04b17"
		issuedRefr   = "refresh-token-issued-plain-9e6d42"
		headerValue  = "secret-header-plain-a81f03"
		bearerValue  = "bearer-header-plain-6b0e4d"  // credential-looking, not marked secret
		paramValue   = "extra-param-plain-2c9f51"    // extra parameter marked secret
		passwordVal  = "password-param-plain-e47a08" // credential-looking extra parameter
	)
	ts := newTokenServer(t, func(form url.Values, _ int) (int, string) {
		if form.Get("grant_type") != "authorization_code" || form.Get("code") != code || form.Get("client_secret") != clientSecret ||
			form.Get("tenant_key") != paramValue || form.Get("password") != passwordVal {
			return http.StatusBadRequest, `{"error":"invalid_grant"}`
		}
		return http.StatusOK, token(accessToken, 3600, issuedRefr)
	})
	cred, err := b.st.OAuthCredentialCreate(b.ctx, webhook.OAuthCredential{CompanyID: company, Name: "crm",
		TokenURL: ts.URL + "/token", GrantType: webhook.GrantAuthorizationCode, ClientID: "client-id",
		ClientSecret: clientSecret, Code: code, ExtraParams: []webhook.KeyValue{
			{Key: "tenant_key", Value: paramValue, Secret: true}, {Key: "password", Value: passwordVal},
		}}, nil)
	require.NoError(t, err)
	rc := newReceiver(t, nil)
	w := b.hook(t, webhook.Webhook{URL: rc.URL + "/in", OAuthID: &cred.ID, RawData: true,
		Headers: []webhook.Header{{Key: "X-Api-Key", Value: headerValue, Secret: true}, {Key: "X-Partner-Auth", Value: bearerValue}}})
	require.True(t, strings.HasPrefix(w.Secret, "whsec_"))

	// A real delivery through the dispatcher: it fetches the token, caches it and sends.
	id := b.enqueue(t, w.ID)[0]
	b.waitState(t, id, webhook.DeliverySucceeded)
	reqs := rc.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "Bearer "+accessToken, reqs[0].Header.Get("Authorization"))
	require.Equal(t, headerValue, reqs[0].Header.Get("X-Api-Key"))
	require.Equal(t, bearerValue, reqs[0].Header.Get("X-Partner-Auth"))
	saved, err := b.st.OAuthCredentialGet(b.ctx, company, cred.ID)
	require.NoError(t, err)
	require.Equal(t, accessToken, saved.AccessToken, "the access token is cached in the database")
	require.Equal(t, issuedRefr, saved.RefreshToken, "the issued refresh token is kept")

	// A second credential whose refresh token the user typed.
	typedRefresh := "refresh-token-typed-plain-31b7c5"
	_, err = b.st.OAuthCredentialCreate(b.ctx, webhook.OAuthCredential{CompanyID: company, Name: "erp",
		TokenURL: ts.URL + "/token", GrantType: webhook.GrantRefreshToken, ClientID: "client-id",
		ClientSecret: clientSecret, RefreshToken: typedRefresh}, nil)
	require.NoError(t, err)

	// API tokens.
	m, err := b.st.MemberCreate(b.ctx, store.Member{CompanyID: company, Email: "owner@c1.test", IsOwner: true})
	require.NoError(t, err)
	var apiTokens []string
	for _, name := range []string{"ci", "laptop"} {
		tok, _, err := b.st.APITokenCreate(b.ctx, company, m.ID, name, nil)
		require.NoError(t, err)
		apiTokens = append(apiTokens, tok)
	}

	out, err := exec.CommandContext(b.ctx, filepath.Join(xtest.Cluster(t).BinDir(), "pg_dump"), "--no-owner",
		"--dbname", b.pool.Config().ConnString()).Output()
	require.NoError(t, err)
	dump := string(out)
	require.Contains(t, dump, "COPY walhook.oauth_credential", "the dump holds the data")
	require.Contains(t, dump, "client-id", "the dump holds the data")

	plaintexts := map[string]string{
		"OAuth client secret": clientSecret, "OAuth code": code, "cached access token": accessToken,
		"issued refresh token": issuedRefr, "typed refresh token": typedRefresh, "secret header value": headerValue,
		"credential-looking header value": bearerValue, "secret extra parameter": paramValue, "credential-looking extra parameter": passwordVal,
		"signing secret": w.Secret, "signing secret key": strings.TrimPrefix(w.Secret, "whsec_"),
	}
	for i, tok := range apiTokens {
		plaintexts[fmt.Sprint("API token ", i)] = tok
		plaintexts[fmt.Sprint("API token body ", i)] = strings.TrimPrefix(tok, crypt.TokenPrefix)
		require.Contains(t, dump, hex.EncodeToString(crypt.HashToken(tok)), "API token %d is stored as its SHA-256", i)
	}
	for what, secret := range plaintexts {
		require.NotContains(t, dump, secret, "%s in plaintext in the dump", what)
	}
}
