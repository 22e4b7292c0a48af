package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

func TestMigrationsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, pool := xtest.Store(t)

	// The template is migrated: down to nothing, up again, down again, up again.
	all, err := store.Migrations()
	require.NoError(t, err)
	for range 2 {
		reverted, err := s.MigrateDown(ctx, 0)
		require.NoError(t, err)
		require.Len(t, reverted, len(all))
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'walhook' AND tablename <> 'schema_migration'`).Scan(&n))
		require.Zero(t, n, "down leaves no tables behind")
		applied, err := s.MigrateUp(ctx)
		require.NoError(t, err)
		require.Len(t, applied, len(all))
	}
	applied, err := s.MigrateUp(ctx)
	require.NoError(t, err)
	require.Empty(t, applied, "up is idempotent")

	st, err := s.MigrationStatuses(ctx)
	require.NoError(t, err)
	for _, m := range st {
		require.NotNil(t, m.AppliedAt, "migration %d applied", m.Version)
	}
}

func TestTenantScoping(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	ownerA := b.owners["a"]

	w, err := s.WebhookCreate(ctx, webhook.Webhook{
		CompanyID: "a", Name: "A's hook", URL: "https://a.example/hook", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RawData: true,
		Headers: []webhook.Header{{Key: "X-Plain", Value: "p"}, {Key: "X-Key", Value: "s3cret", Secret: true}},
	}, &ownerA.ID)
	require.NoError(t, err)
	require.Regexp(t, `^whsec_`, w.Secret)
	require.Equal(t, "s3cret", w.Headers[1].Value)

	got, err := s.WebhookGet(ctx, "a", w.ID)
	require.NoError(t, err)
	require.Equal(t, w.Secret, got.Secret)
	require.Equal(t, w.Headers, got.Headers)

	_, err = s.WebhookGet(ctx, "b", w.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "company B cannot read A's webhook")
	list, err := s.WebhookList(ctx, "b", 0, 100)
	require.NoError(t, err)
	require.Empty(t, list, "company B lists none of A's webhooks")
	w.CompanyID = "b"
	_, err = s.WebhookUpdate(ctx, w, nil)
	require.ErrorIs(t, err, store.ErrNotFound, "company B cannot update A's webhook")
	require.ErrorIs(t, s.WebhookDelete(ctx, "b", w.ID), store.ErrNotFound, "company B cannot delete A's webhook")
	_, err = s.MemberGet(ctx, "b", ownerA.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	// An OAuth credential of company B cannot be attached to A's webhook.
	credB, err := s.OAuthCredentialCreate(ctx, webhook.OAuthCredential{
		CompanyID: "b", Name: "b-cred", TokenURL: "https://b.example/token", GrantType: webhook.GrantClientCredentials,
		ClientID: "id", ClientSecret: "secret",
	}, nil)
	require.NoError(t, err)
	w.CompanyID = "a"
	w.OAuthID = &credB.ID
	_, err = s.WebhookUpdate(ctx, w, nil)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.OAuthCredentialGet(ctx, "a", credB.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	list, err = s.WebhookList(ctx, "a", 0, 100)
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	w, err := s.WebhookCreate(ctx, webhook.Webhook{
		CompanyID: "a", Name: "h", URL: "https://a.example/", Method: webhook.MethodPost, EventKeys: []string{"contact.created"},
		Headers: []webhook.Header{{Key: "X-Key", Value: "header-plaintext", Secret: true}},
	}, nil)
	require.NoError(t, err)
	c, err := s.OAuthCredentialCreate(ctx, webhook.OAuthCredential{
		CompanyID: "a", Name: "c", TokenURL: "https://a.example/token", GrantType: webhook.GrantAuthorizationCode,
		ClientID: "cid", ClientSecret: "client-secret-plaintext", Code: "code-plaintext",
	}, nil)
	require.NoError(t, err)
	require.Equal(t, "client-secret-plaintext", c.ClientSecret)

	var dump string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT (SELECT string_agg(w::text, ' ') FROM walhook.webhook w) || (SELECT string_agg(o::text, ' ') FROM walhook.oauth_credential o)`).Scan(&dump))
	for _, plain := range []string{"header-plaintext", "client-secret-plaintext", "code-plaintext", w.Secret} {
		require.NotContains(t, dump, plain)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	m, err := s.MemberCreate(ctx, store.Member{CompanyID: "a", Email: "dev@a.test"})
	require.NoError(t, err)
	role, err := s.RoleCreate(ctx, "a", "Developers")
	require.NoError(t, err)
	_, err = s.MemberSetRole(ctx, "a", m.ID, &role.ID)
	require.NoError(t, err)

	token, info, err := s.APITokenCreate(ctx, "a", m.ID, "cli", nil)
	require.NoError(t, err)
	p, err := s.Authenticate(ctx, token)
	require.NoError(t, err)
	require.Equal(t, m.ID, p.MemberID)
	require.False(t, p.Can(webhook.PermManageWebhooks))

	_, err = s.RoleSetPermissions(ctx, "a", role.ID, []webhook.Permission{webhook.PermManageWebhooks})
	require.NoError(t, err)
	p, err = s.Authenticate(ctx, token)
	require.NoError(t, err)
	require.True(t, p.Can(webhook.PermManageWebhooks))

	var stored int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM walhook.api_token WHERE position($1::bytea in token_hash) > 0`, []byte(token)).Scan(&stored))
	require.Zero(t, stored, "the token is stored hashed")

	require.NoError(t, s.APITokenRevoke(ctx, "a", info.ID))
	_, err = s.Authenticate(ctx, token)
	require.True(t, errors.Is(err, store.ErrNotFound))
	_, err = s.Authenticate(ctx, "whk_unknown")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestMigratorRefusesNewerSchema: a database holding a migration this binary does not have (a
// newer walhook applied it; numbers have gaps, so 0012 is as unknown as 9999) is refused by every
// migrator entry point, with a message naming both versions.
func TestMigratorRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	all, err := store.Migrations()
	require.NoError(t, err)
	newest := all[len(all)-1].Version
	known := map[int]bool{}
	for _, m := range all {
		known[m.Version] = true
	}
	require.False(t, known[12], "0012 is a gap in the numbering")
	for _, unknown := range []int{12, newest + 1} {
		ctx := t.Context()
		s, pool := xtest.Store(t)
		_, err := pool.Exec(ctx, "INSERT INTO walhook.schema_migration (version, name) VALUES ($1, 'from_a_newer_walhook')", unknown)
		require.NoError(t, err)
		check := func(err error) {
			t.Helper()
			var newer *store.SchemaNewerError
			require.ErrorAs(t, err, &newer)
			require.Equal(t, []int{unknown}, newer.Unknown)
			require.Equal(t, newest, newer.Newest)
			require.ErrorContains(t, err, fmt.Sprintf("%04d", unknown))
			require.ErrorContains(t, err, fmt.Sprintf("its newest is %04d", newest))
		}
		_, err = s.MigrateUp(ctx)
		check(err)
		_, err = s.MigrateDown(ctx, 1)
		check(err)
		check(s.MigrationCheck(ctx))
		_, err = s.MigrationStatuses(ctx)
		check(err)
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM walhook.schema_migration").Scan(&n))
		require.Equal(t, len(all)+1, n, "nothing reverted")
	}
	s, _ := xtest.Store(t)
	require.NoError(t, s.MigrationCheck(t.Context()), "a schema this binary migrated passes")
}

// TestMigrationStatusChangesNothing: status on a database walhook never touched creates nothing
// (no schema, no table), and on a migrated one it runs in a read-only session.
func TestMigrationStatusChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	all, err := store.Migrations()
	require.NoError(t, err)

	s, pool := xtest.Store(t)
	_, err = s.MigrateDown(ctx, 0)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "DROP SCHEMA walhook CASCADE")
	require.NoError(t, err)
	objects := func() []string {
		rows, err := pool.Query(ctx, `SELECT n.nspname || '.' || coalesce(c.relname, '') FROM pg_namespace n
			LEFT JOIN pg_class c ON c.relnamespace = n.oid
			WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' ORDER BY 1`)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	before := objects()
	st, err := s.MigrationStatuses(ctx)
	require.NoError(t, err)
	require.Len(t, st, len(all))
	for _, m := range st {
		require.Nil(t, m.AppliedAt, "migration %d pending", m.Version)
	}
	require.Equal(t, before, objects(), "status created nothing")
	for _, o := range before {
		require.NotContains(t, o, "walhook.", "the walhook schema is gone before status runs")
	}

	// On a migrated database, in a session that refuses every write, status still answers.
	cfg, err := pgxpool.ParseConfig(xtest.DatabaseURL(t))
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	ro, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(ro.Close)
	st, err = store.New(ro, nil).MigrationStatuses(ctx)
	require.NoError(t, err)
	for _, m := range st {
		require.NotNil(t, m.AppliedAt, "migration %d applied", m.Version)
	}
	_, err = ro.Exec(ctx, "CREATE TABLE public.refused (id int)")
	require.ErrorContains(t, err, "read-only", "the session really refuses writes")
	applied, err := store.New(ro, nil).MigrateUp(ctx)
	require.NoError(t, err, "nothing pending: up writes nothing")
	require.Empty(t, applied)
}
