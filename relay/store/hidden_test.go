package store_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// rawColumns reads a row's plain and sealed columns as stored, for tests that look for
// plaintext where it must not be.
func rawColumns(t *testing.T, q *pgxpool.Pool, table, plainCol, sealedCol string, id int64) (plain string, sealed []byte) {
	t.Helper()
	require.NoError(t, q.QueryRow(t.Context(),
		`SELECT `+plainCol+`::text, `+sealedCol+` FROM walhook.`+table+` WHERE id = $1`, id).Scan(&plain, &sealed))
	return plain, sealed
}

// TestHiddenValuesSealedAtRest: a header value and an OAuth extra parameter value that is hidden
// (marked secret, or with a credential-looking name) is nowhere in the row in plaintext, on
// create and on update; the store reads it back whole, with its secret flag; a plain value stays
// readable in its jsonb column.
func TestHiddenValuesSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	headers := []webhook.Header{
		{Key: "Authorization", Value: "Bearer raw-auth-value"},
		{Key: "X-Marked", Value: "raw-marked-value", Secret: true},
		{Key: "X-Plain", Value: "plain-header-value"},
		{Key: "X-Api-Key", Value: "raw-api-key-value"},
	}
	w := seedWebhook(t, s, "a", "w", headers...)
	params := []webhook.KeyValue{
		{Key: "password", Value: "raw-password-value"},
		{Key: "audience", Value: "plain-audience-value"},
		{Key: "tenant", Value: "raw-tenant-value", Secret: true},
		{Key: "client_assertion", Value: "raw-assertion-value"},
	}
	c, err := s.OAuthCredentialCreate(ctx, webhook.OAuthCredential{
		CompanyID: "a", Name: "c", TokenURL: "https://a.example/token", GrantType: webhook.GrantClientCredentials,
		ClientID: "cid", ClientSecret: "cs", ExtraParams: params,
	}, nil)
	require.NoError(t, err)

	check := func(what string, hs []webhook.Header, ps []webhook.KeyValue) {
		t.Helper()
		plain, sealed := rawColumns(t, b.pool, "webhook", "headers", "secret_headers_enc", w.ID)
		require.NotEmpty(t, sealed, what)
		for _, h := range hs {
			if h.Masked() {
				require.NotContains(t, plain, h.Value, what)
				require.NotContains(t, string(sealed), h.Value, what)
			} else {
				require.Contains(t, plain, h.Value, what)
			}
		}
		plain, sealed = rawColumns(t, b.pool, "oauth_credential", "extra_params", "extra_params_enc", c.ID)
		require.NotEmpty(t, sealed, what)
		for _, p := range ps {
			if p.Masked() {
				require.NotContains(t, plain, p.Value, what)
				require.NotContains(t, string(sealed), p.Value, what)
			} else {
				require.Contains(t, plain, p.Value, what)
			}
		}
		got, err := s.WebhookGet(ctx, "a", w.ID)
		require.NoError(t, err)
		require.Empty(t, got.SealError)
		require.Equal(t, hs, got.Headers, what)
		gc, err := s.OAuthCredentialGet(ctx, "a", c.ID)
		require.NoError(t, err)
		require.Empty(t, gc.SealError)
		require.Equal(t, ps, gc.ExtraParams, what)
	}
	check("create", headers, params)
	require.Equal(t, params, c.ExtraParams, "create answers the values")

	headers = []webhook.Header{{Key: "X-Plain", Value: "plain-2"}, {Key: "Cookie", Value: "sid=raw-cookie-2"}}
	w.Headers = headers
	_, err = s.WebhookUpdate(ctx, w, nil)
	require.NoError(t, err)
	params = []webhook.KeyValue{{Key: "api_key", Value: "raw-api-key-2"}, {Key: "resource", Value: "plain-resource-2"}}
	c.ExtraParams = params
	_, err = s.OAuthCredentialUpdate(ctx, c, nil)
	require.NoError(t, err)
	check("update", headers, params)
}

// TestHiddenValuesReadByTheRecord: which stored entries are sealed is read from the row, not
// from the word list: an entry sealed under a name the rule no longer hides still gets its
// value, and the entries after it theirs.
func TestHiddenValuesReadByTheRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	w := seedWebhook(t, s, "a", "w",
		webhook.Header{Key: "Authorization", Value: "Bearer one"},
		webhook.Header{Key: "X-Plain", Value: "plain"},
		webhook.Header{Key: "X-Token", Value: "two"})
	// As if the word list had shrunk (or the key been edited in SQL): the first entry's name no
	// longer looks like a credential.
	_, err := b.pool.Exec(ctx, `UPDATE walhook.webhook SET headers = jsonb_set(headers, '{0,key}', '"X-Renamed"') WHERE id = $1`, w.ID)
	require.NoError(t, err)
	got, err := s.WebhookGet(ctx, "a", w.ID)
	require.NoError(t, err)
	require.Equal(t, []webhook.Header{{Key: "X-Renamed", Value: "Bearer one"}, {Key: "X-Plain", Value: "plain"}, {Key: "X-Token", Value: "two"}}, got.Headers)
}

// TestResealSealsPlainHiddenValues: rows stored before hidden values were all sealed — a
// credential-looking header not marked secret and extra parameters in the jsonb column, a secret
// header recorded without "sealed" — read as they are; `keys reseal` seals the plain ones
// (counted in Sealed), after which the raw columns hold no plaintext and the values read the
// same; a second run seals nothing.
func TestResealSealsPlainHiddenValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	w := seedWebhook(t, s, "a", "w", webhook.Header{Key: "X-Marked", Value: "marked-secret", Secret: true})
	c := seedCredential(t, s, "a", "c", "cs")
	// The rows as an older walhook wrote them.
	_, err := b.pool.Exec(ctx, `UPDATE walhook.webhook SET headers = '[{"key":"X-Marked","value":"","secret":true},{"key":"Authorization","value":"Bearer legacy-token"},{"key":"X-Plain","value":"p"}]' WHERE id = $1`, w.ID)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE walhook.oauth_credential SET extra_params = '[{"key":"audience","value":"aud"},{"key":"password","value":"legacy-password"}]' WHERE id = $1`, c.ID)
	require.NoError(t, err)

	wantHeaders := []webhook.Header{{Key: "X-Marked", Value: "marked-secret", Secret: true}, {Key: "Authorization", Value: "Bearer legacy-token"}, {Key: "X-Plain", Value: "p"}}
	wantParams := []webhook.KeyValue{{Key: "audience", Value: "aud"}, {Key: "password", Value: "legacy-password"}}
	read := func(what string) {
		t.Helper()
		got, err := s.WebhookGet(ctx, "a", w.ID)
		require.NoError(t, err)
		require.Empty(t, got.SealError, what)
		require.Equal(t, wantHeaders, got.Headers, what)
		gc, err := s.OAuthCredentialGet(ctx, "a", c.ID)
		require.NoError(t, err)
		require.Empty(t, gc.SealError, what)
		require.Equal(t, wantParams, gc.ExtraParams, what)
	}
	read("before reseal")

	got, err := s.Reseal(ctx, 500, nil)
	require.NoError(t, err)
	require.Equal(t, 2, got.Sealed, "the Authorization header and the password parameter")
	require.Zero(t, got.Unreadable)
	read("after reseal")
	plain, sealed := rawColumns(t, b.pool, "webhook", "headers", "secret_headers_enc", w.ID)
	require.NotContains(t, plain, "legacy-token")
	require.NotContains(t, plain, "marked-secret")
	require.NotContains(t, string(sealed), "legacy-token")
	require.Contains(t, plain, `"p"`)
	plain, sealed = rawColumns(t, b.pool, "oauth_credential", "extra_params", "extra_params_enc", c.ID)
	require.NotContains(t, plain, "legacy-password")
	require.NotContains(t, string(sealed), "legacy-password")
	require.Contains(t, plain, "aud")

	again, err := s.Reseal(ctx, 500, nil)
	require.NoError(t, err)
	require.Equal(t, store.ResealCounts{Current: again.Current}, again, "idempotent: nothing left to seal or re-seal")
	read("after a second reseal")
}

// TestHiddenParamsMovedAreRefused: sealed extra parameter values copied with SQL into another
// company's credential do not open there: the hidden values read empty, SealError says why (so
// dispatch sends nothing with it), the plain ones still read.
func TestHiddenParamsMovedAreRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	cred := func(company, pw string) webhook.OAuthCredential {
		c, err := s.OAuthCredentialCreate(ctx, webhook.OAuthCredential{
			CompanyID: company, Name: "c", TokenURL: "https://" + company + ".example/token", GrantType: webhook.GrantClientCredentials,
			ClientID: "cid", ClientSecret: "cs", ExtraParams: []webhook.KeyValue{{Key: "password", Value: pw}, {Key: "audience", Value: "aud"}},
		}, nil)
		require.NoError(t, err)
		return c
	}
	ca, cb := cred("a", "pw-a"), cred("b", "pw-b")
	_, err := b.pool.Exec(ctx, `UPDATE walhook.oauth_credential SET extra_params_enc = (SELECT extra_params_enc FROM walhook.oauth_credential WHERE id = $1) WHERE id = $2`, ca.ID, cb.ID)
	require.NoError(t, err)
	got, err := s.OAuthCredentialGet(ctx, "b", cb.ID)
	require.NoError(t, err)
	require.Equal(t, []webhook.KeyValue{{Key: "password"}, {Key: "audience", Value: "aud"}}, got.ExtraParams)
	require.Contains(t, got.SealError, "the hidden extra parameter values does not open: it was changed or moved here")
	n, err := s.Reseal(ctx, 500, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n.Unreadable)
}
