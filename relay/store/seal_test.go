package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestSealedValueMovedIsRefused: a sealed value copied with SQL into another company's row, or
// another row of the same company, does not open there. The row still reads (listings do not
// fail), with the secret empty and SealError saying why.
func TestSealedValueMovedIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	wa := seedWebhook(t, s, "a", "A", webhook.Header{Key: "X-Key", Value: "a-header-secret", Secret: true})
	wa2 := seedWebhook(t, s, "a", "A2")
	wb := seedWebhook(t, s, "b", "B", webhook.Header{Key: "X-Key", Value: "b-header-secret", Secret: true})
	ca := seedCredential(t, s, "a", "ca", "a-client-secret")
	cb := seedCredential(t, s, "b", "cb", "b-client-secret")

	// Company A's secrets copied into B's rows, and A's signing secret into A's other webhook.
	for q, ids := range map[string][2]int64{
		`UPDATE walhook.webhook SET signing_secret_enc = (SELECT signing_secret_enc FROM walhook.webhook WHERE id = $1),
		        secret_headers_enc = (SELECT secret_headers_enc FROM walhook.webhook WHERE id = $1) WHERE id = $2`: {wa.ID, wb.ID},
		`UPDATE walhook.webhook SET signing_secret_enc = (SELECT signing_secret_enc FROM walhook.webhook WHERE id = $1) WHERE id = $2 AND true`: {wa.ID, wa2.ID},
		`UPDATE walhook.oauth_credential SET client_secret_enc = (SELECT client_secret_enc FROM walhook.oauth_credential WHERE id = $1),
		        code_enc = (SELECT code_enc FROM walhook.oauth_credential WHERE id = $1) WHERE id = $2`: {ca.ID, cb.ID},
	} {
		_, err := b.pool.Exec(ctx, q, ids[0], ids[1])
		require.NoError(t, err)
	}

	got, err := s.WebhookGet(ctx, "b", wb.ID)
	require.NoError(t, err)
	require.Empty(t, got.Secret, "A's signing secret does not open in B's webhook")
	require.Empty(t, got.Headers[0].Value, "A's secret header does not open in B's webhook")
	require.Contains(t, got.SealError, "the signing secret does not open: it was changed or moved here from another row, company or column")
	require.Contains(t, got.SealError, "the secret header values does not open")
	got, err = s.WebhookGet(ctx, "a", wa2.ID)
	require.NoError(t, err)
	require.Empty(t, got.Secret, "nor in another webhook of A")
	require.Contains(t, got.SealError, "the signing secret does not open")

	page, err := s.WebhookListPage(ctx, "b", store.WebhookFilter{})
	require.NoError(t, err, "B's listing still reads")
	require.Len(t, page, 1)
	creds, err := s.OAuthCredentialList(ctx, "b")
	require.NoError(t, err, "B's credentials still read")
	require.Len(t, creds, 1)
	require.Empty(t, creds[0].ClientSecret)
	require.Empty(t, creds[0].Code)
	require.Equal(t, "refresh-cb", creds[0].RefreshToken, "B's own refresh token still opens")
	require.Contains(t, creds[0].SealError, "the client secret does not open")
	require.Contains(t, creds[0].SealError, "the authorization code does not open")

	// A's own rows are untouched.
	got, err = s.WebhookGet(ctx, "a", wa.ID)
	require.NoError(t, err)
	require.Equal(t, wa.Secret, got.Secret)
	require.Equal(t, "a-header-secret", got.Headers[0].Value)
	require.Empty(t, got.SealError)

	// The relay's reads (every company at once) do not fail either.
	hooks, err := s.DispatchWebhooks(ctx, []int64{wa.ID, wb.ID})
	require.NoError(t, err)
	require.Len(t, hooks, 2)
}

// TestResealUpgradesAndRotates: values sealed as version 1 and values sealed with an old key are
// re-sealed with the first key and the row binding, in batches, idempotently; after it the old
// key can leave the keyring and every secret still opens, public ids unchanged.
func TestResealUpgradesAndRotates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := xtest.Pool(t)
	spec1, spec2 := crypt.GenerateKeySpec("k1"), crypt.GenerateKeySpec("k2")
	keys1, err := crypt.ParseKeyring(spec1)
	require.NoError(t, err)
	s1 := store.New(pool, keys1)
	seed(t, s1, contactCreated(), "a", "b")

	// Sealed with k1 as version 2: a webhook with a secret header, rotated (previous secret); a
	// credential with client secret, code, refresh token and a cached access token.
	w1 := seedWebhook(t, s1, "a", "w1", webhook.Header{Key: "X-Key", Value: "header-w1", Secret: true})
	w1, err = s1.WebhookRotateSecret(ctx, "a", w1.ID, time.Hour, nil)
	require.NoError(t, err)
	c1 := seedCredential(t, s1, "a", "c1", "secret-c1")
	exp := time.Now().Add(time.Hour)
	require.NoError(t, s1.DispatchOAuthTokenSave(ctx, c1, "access-c1", "", &exp))
	// Sealed as version 1 with k1, as before the upgrade: a webhook's signing secret and a
	// credential's client secret.
	w2 := seedWebhook(t, s1, "b", "w2")
	_, err = pool.Exec(ctx, `UPDATE walhook.webhook SET signing_secret_enc = $1 WHERE id = $2`,
		xtest.SealV1(t, spec1, []byte("whsec_v1secret"), "webhook.signing_secret"), w2.ID)
	require.NoError(t, err)
	c2 := seedCredential(t, s1, "b", "c2", "")
	_, err = pool.Exec(ctx, `UPDATE walhook.oauth_credential SET client_secret_enc = $1, code_enc = NULL, refresh_token_enc = NULL WHERE id = $2`,
		xtest.SealV1(t, spec1, []byte("secret-c2-v1"), "oauth.client_secret"), c2.ID)
	require.NoError(t, err)
	// The public-id key, sealed with k1.
	ids1, err := s1.PublicIDs(ctx)
	require.NoError(t, err)
	pub := ids1.Delivery("a", 42)

	// Refusing version-1 values before the reseal makes them unreadable, saying why.
	refusing, err := crypt.ParseKeyring(spec1)
	require.NoError(t, err)
	refusing.RefuseUnbound()
	g, err := store.New(pool, refusing).WebhookGet(ctx, "b", w2.ID)
	require.NoError(t, err)
	require.Contains(t, g.SealError, "sealed before secrets were bound to their row, and --open-unbound-secrets is off")

	// Rotate: k2 first, k1 still there. Batches of one row.
	keys21, err := crypt.ParseKeyring(spec2 + "," + spec1)
	require.NoError(t, err)
	s21 := store.New(pool, keys21)
	var tables []string
	got, err := s21.Reseal(ctx, 1, func(table string, _ store.ResealCounts) { tables = append(tables, table) })
	require.NoError(t, err)
	// w1: signing, previous, headers (3); w2: signing (1); c1: client secret, code, refresh,
	// access (4); c2: client secret (1); the id key (1).
	require.Equal(t, store.ResealCounts{Resealed: 10}, got)
	require.Equal(t, []string{"id_key", "webhook", "webhook", "webhook", "oauth_credential", "oauth_credential", "oauth_credential"}, tables)
	again, err := s21.Reseal(ctx, 500, nil)
	require.NoError(t, err)
	require.Equal(t, store.ResealCounts{Current: 10}, again, "idempotent")

	var stale int
	require.NoError(t, pool.QueryRow(ctx, `
		SELECT count(*) FROM (
		    SELECT signing_secret_enc AS v FROM walhook.webhook UNION ALL SELECT previous_secret_enc FROM walhook.webhook
		    UNION ALL SELECT secret_headers_enc FROM walhook.webhook UNION ALL SELECT client_secret_enc FROM walhook.oauth_credential
		    UNION ALL SELECT code_enc FROM walhook.oauth_credential UNION ALL SELECT refresh_token_enc FROM walhook.oauth_credential
		    UNION ALL SELECT access_token_enc FROM walhook.oauth_credential UNION ALL SELECT extra_params_enc FROM walhook.oauth_credential
		    UNION ALL SELECT key_enc FROM walhook.id_key) s
		WHERE v IS NOT NULL AND substring(v from 1 for 4) <> '\x02026b32'::bytea`).Scan(&stale))
	require.Zero(t, stale, "every value is version 2 with key k2")

	// k1 removed, and version-1 values refused: everything opens.
	keys2, err := crypt.ParseKeyring(spec2)
	require.NoError(t, err)
	keys2.RefuseUnbound()
	s2 := store.New(pool, keys2)
	g1, err := s2.WebhookGet(ctx, "a", w1.ID)
	require.NoError(t, err)
	require.Empty(t, g1.SealError)
	require.Equal(t, w1.Secret, g1.Secret)
	require.Equal(t, w1.PreviousSecret, g1.PreviousSecret)
	require.Equal(t, "header-w1", g1.Headers[0].Value)
	g2, err := s2.WebhookGet(ctx, "b", w2.ID)
	require.NoError(t, err)
	require.Empty(t, g2.SealError)
	require.Equal(t, "whsec_v1secret", g2.Secret)
	gc1, err := s2.OAuthCredentialGet(ctx, "a", c1.ID)
	require.NoError(t, err)
	require.Empty(t, gc1.SealError)
	require.Equal(t, []string{"secret-c1", "code-c1", "refresh-c1", "access-c1"}, []string{gc1.ClientSecret, gc1.Code, gc1.RefreshToken, gc1.AccessToken})
	gc2, err := s2.OAuthCredentialGet(ctx, "b", c2.ID)
	require.NoError(t, err)
	require.Empty(t, gc2.SealError)
	require.Equal(t, "secret-c2-v1", gc2.ClientSecret)
	ids2, err := s2.PublicIDs(ctx)
	require.NoError(t, err)
	require.Equal(t, pub, ids2.Delivery("a", 42), "public ids survive the rotation")

	// Without the reseal, removing k1 would have left them unreadable: a fresh database proves
	// the keyring alone is not what made them open.
	s1b := store.New(xtest.Pool(t), keys1)
	seed(t, s1b, contactCreated(), "a")
	w := seedWebhook(t, s1b, "a", "w")
	gw, err := store.New(s1b.Pool(), keys2).WebhookGet(ctx, "a", w.ID)
	require.NoError(t, err)
	require.Contains(t, gw.SealError, "a key the keyring (--encryption-keys) no longer holds")
}

// TestResealLeavesUnreadableValues: a value moved from another row is counted and left as it is.
func TestResealLeavesUnreadableValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	wa := seedWebhook(t, s, "a", "A")
	wb := seedWebhook(t, s, "b", "B")
	_, err := b.pool.Exec(ctx, `UPDATE walhook.webhook SET signing_secret_enc = (SELECT signing_secret_enc FROM walhook.webhook WHERE id = $1) WHERE id = $2`, wa.ID, wb.ID)
	require.NoError(t, err)
	got, err := s.Reseal(ctx, 10, nil)
	require.NoError(t, err)
	require.Equal(t, store.ResealCounts{Current: 1, Unreadable: 1}, got)
}

// TestPublicIDs: a delivery's public id decodes back only for its company; row ids and garbage
// are ErrNotFound; two stores on one database agree (the key is stored, not per process).
func TestPublicIDs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, pool := xtest.Store(t)
	pub, err := s.DeliveryPublicID(ctx, "a", 7)
	require.NoError(t, err)
	require.Regexp(t, `^msg_[a-z2-7]{26}$`, pub)
	id, err := s.DeliveryIDFromPublic(ctx, "a", pub)
	require.NoError(t, err)
	require.Equal(t, int64(7), id)
	for _, bad := range []string{"7", "msg_7", pub + "x"} {
		_, err = s.DeliveryIDFromPublic(ctx, "a", bad)
		require.ErrorIs(t, err, store.ErrNotFound, bad)
	}
	_, err = s.DeliveryIDFromPublic(ctx, "b", pub)
	require.ErrorIs(t, err, store.ErrNotFound, "another company's id")
	other, err := store.New(pool, xtest.Keys()).DeliveryPublicID(ctx, "a", 7)
	require.NoError(t, err)
	require.Equal(t, pub, other, "replicas agree")
}
