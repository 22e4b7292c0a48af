package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// TestBootstrap makes a company, its owner and a token with the CLI, as the README shows, and the
// token authenticates as the owner.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	run := func(f func(context.Context, []string, io.Writer) error, args ...string) (string, error) {
		return runOn(ctx, db, f, args...)
	}
	out, err := run(runCompany, "create", "--id", "42", "--name", "Acme")
	require.NoError(t, err)
	require.Contains(t, out, "company 42 (Acme) created")
	_, err = run(runCompany, "create", "--id", "42", "--name", "Again")
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = run(runCompany, "create", "--id", "43")
	require.ErrorContains(t, err, "--id and --name are required")
	_, err = run(runCompany, "delete", "--id", "43", "--name", "x")
	require.ErrorContains(t, err, "want: company create")

	out, err = run(runMember, "add", "--company", "42", "--email", "owner@acme.test", "--owner")
	require.NoError(t, err)
	require.Contains(t, out, "owner=true")
	// The verb may also come after the flags, as before.
	var buf bytes.Buffer
	require.NoError(t, runMember(ctx, []string{"--database-url", db, "--company", "42", "--email", "dev@acme.test", "add"}, &buf))
	_, err = run(runMember, "add", "--company", "nope", "--email", "x@y.test")
	require.Error(t, err)

	token, err := run(runToken, "create", "--company", "42", "--email", "owner@acme.test", "--ttl", "24h")
	require.NoError(t, err)
	_, err = run(runToken, "create", "--company", "42", "--email", "ghost@acme.test")
	require.ErrorIs(t, err, store.ErrNotFound)
	// Tokens expire (90 days unless --ttl says otherwise); never only with --no-expiry.
	_, err = run(runToken, "create", "--company", "42", "--email", "owner@acme.test", "--ttl", "0")
	require.ErrorContains(t, err, "--no-expiry")
	_, err = run(runToken, "create", "--company", "42", "--email", "owner@acme.test", "--name", "default")
	require.NoError(t, err)
	_, err = run(runToken, "create", "--company", "42", "--email", "owner@acme.test", "--name", "forever", "--no-expiry")
	require.NoError(t, err)
	expiries := map[string]*time.Time{}
	tpool := xtest.PoolOn(t, db)
	rows, err := tpool.Query(ctx, `SELECT name, expires_at FROM walhook.api_token WHERE company_id = '42'`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		var e *time.Time
		require.NoError(t, rows.Scan(&n, &e))
		expiries[n] = e
	}
	require.NoError(t, rows.Err())
	require.Nil(t, expiries["forever"])
	require.NotNil(t, expiries["default"])
	require.WithinRange(t, *expiries["default"], time.Now().Add(89*24*time.Hour), time.Now().Add(91*24*time.Hour))

	pool := xtest.PoolOn(t, db)
	p, err := store.New(pool, xtest.Keys()).Authenticate(ctx, strings.TrimSpace(token))
	require.NoError(t, err)
	require.Equal(t, "42", p.CompanyID)
	require.True(t, p.IsOwner)
	require.True(t, p.Can(webhook.PermManageWebhooks))

	// A platform token belongs to no company, is printed once and authenticates as the platform.
	pt, err := run(runToken, "create", "--platform", "--name", "hostapp", "--ttl", "24h")
	require.NoError(t, err)
	pt = strings.TrimSpace(pt)
	require.True(t, strings.HasPrefix(pt, "whp_"), pt)
	pp, err := store.New(pool, xtest.Keys()).PlatformAuthenticate(ctx, pt)
	require.NoError(t, err)
	require.Equal(t, "platform:hostapp", pp.Actor())
	_, err = store.New(pool, xtest.Keys()).Authenticate(ctx, pt)
	require.ErrorIs(t, err, store.ErrNotFound, "a platform token is no member's token")
	var pexp *time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT expires_at FROM walhook.platform_token WHERE name = 'hostapp'`).Scan(&pexp))
	require.WithinRange(t, *pexp, time.Now().Add(23*time.Hour), time.Now().Add(25*time.Hour))
	_, err = run(runToken, "create", "--platform", "--company", "42", "--email", "owner@acme.test")
	require.ErrorContains(t, err, "without --company and --email")
	_, err = run(runToken, "create", "--platform", "--ttl", "0")
	require.ErrorContains(t, err, "--no-expiry")

	// Listed without its secret, revoked by id, and then it no longer authenticates.
	list, err := run(runToken, "list", "--platform")
	require.NoError(t, err)
	require.Contains(t, list, pt[:10])
	require.Contains(t, list, "hostapp")
	require.NotContains(t, list, pt)
	var pid int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT id FROM walhook.platform_token WHERE name = 'hostapp'`).Scan(&pid))
	out, err = run(runToken, "revoke", "--platform", "--id", strconv.FormatInt(pid, 10))
	require.NoError(t, err)
	require.Contains(t, out, "revoked")
	_, err = store.New(pool, xtest.Keys()).PlatformAuthenticate(ctx, pt)
	require.ErrorIs(t, err, store.ErrNotFound, "a revoked platform token")
	_, err = run(runToken, "revoke", "--platform", "--id", strconv.FormatInt(pid, 10))
	require.ErrorIs(t, err, store.ErrNotFound, "revoked twice")
	_, err = run(runToken, "list")
	require.ErrorContains(t, err, "--platform")
}

// TestKeysReseal: `walhook keys reseal` moves secrets sealed with an old key to the first key,
// seals hidden values stored in plain, prints the counts, and after it the old key can leave
// --encryption-keys.
func TestKeysReseal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	pool := xtest.PoolOn(t, db)
	old, next := crypt.GenerateKeySpec("old"), crypt.GenerateKeySpec("new")
	oldKeys, err := crypt.ParseKeyring(old)
	require.NoError(t, err)
	st := store.New(pool, oldKeys)
	require.NoError(t, st.EventTypeSync(ctx, []webhook.EventType{{Key: "contact.created", Source: webhook.SourceOutbox}}))
	_, err = st.CompanyCreate(ctx, "42", "Acme")
	require.NoError(t, err)
	w, err := st.WebhookCreate(ctx, webhook.Webhook{CompanyID: "42", Name: "h", URL: "https://acme.example/", Method: webhook.MethodPost, EventKeys: []string{"contact.created"}}, nil)
	require.NoError(t, err)
	// A credential-looking header stored in plain, as walhook did before it sealed every hidden
	// value: the reseal seals it too.
	_, err = pool.Exec(ctx, `UPDATE walhook.webhook SET headers = '[{"key":"Authorization","value":"Bearer plain-token"}]' WHERE id = $1`, w.ID)
	require.NoError(t, err)

	reseal := func(keys string) (string, error) {
		return runOn(ctx, db, runKeys, "reseal", "--encryption-keys", keys, "--batch-size", "1")
	}
	out, err := reseal(next + "," + old)
	require.NoError(t, err)
	require.Equal(t, "resealed 1, already current 0, unreadable 0, changed meanwhile 0, plain values sealed 1 (key new)\n", out)
	out, err = reseal(next + "," + old)
	require.NoError(t, err)
	require.Equal(t, "resealed 0, already current 2, unreadable 0, changed meanwhile 0, plain values sealed 0 (key new)\n", out)
	var headers string
	require.NoError(t, pool.QueryRow(ctx, `SELECT headers::text FROM walhook.webhook WHERE id = $1`, w.ID).Scan(&headers))
	require.NotContains(t, headers, "plain-token")

	newKeys, err := crypt.ParseKeyring(next)
	require.NoError(t, err)
	got, err := store.New(pool, newKeys).WebhookGet(ctx, "42", w.ID)
	require.NoError(t, err)
	require.Empty(t, got.SealError)
	require.Equal(t, w.Secret, got.Secret)
	require.Equal(t, []webhook.Header{{Key: "Authorization", Value: "Bearer plain-token"}}, got.Headers)

	// With only a key that sealed nothing, the values are unreadable: the command says so and fails.
	out, err = reseal(crypt.GenerateKeySpec("other"))
	require.ErrorContains(t, err, "2 sealed values did not open")
	require.Contains(t, out, "unreadable 2")
	require.ErrorContains(t, runKeys(ctx, []string{"rotate"}, io.Discard), "want: keys reseal")
}

// TestEmitKeyRotate rotates the emit key with the CLI: the new key is the newest, the previous
// one stays, older ones go.
func TestEmitKeyRotate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	for _, want := range []string{"emit key 2 signs from now on; key 1 still verifies\n", "emit key 3 signs from now on; key 2 still verifies\n"} {
		out, err := runOn(ctx, db, runEmitKey, "rotate")
		require.NoError(t, err)
		require.Equal(t, want, out)
	}
	pool := xtest.PoolOn(t, db)
	keys, _, err := store.New(pool, nil).EmitKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.Equal(t, []int32{3, 2}, []int32{keys[0].ID, keys[1].ID})
	require.ErrorContains(t, runEmitKey(ctx, []string{"spin"}, io.Discard), "want emit-key rotate")
}
