package deploy_test

import (
	"context"
	"errors"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// asUser rewrites a connection URL to log in as user.
func asUser(t *testing.T, raw, user string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.User = url.User(user)
	return u.String()
}

// appDatabase creates database db and a LOGIN role on cluster c, as an application's database and
// its owner would be, and returns a superuser's connection to db (closed when the test ends).
func appDatabase(t *testing.T, c *pgcluster.Cluster, db, role string) *pgx.Conn {
	t.Helper()
	ctx := t.Context()
	su, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	defer su.Close(context.WithoutCancel(ctx))
	for _, q := range []string{`CREATE DATABASE ` + db, `CREATE ROLE ` + role + ` LOGIN`} {
		_, err := su.Exec(ctx, q)
		require.NoError(t, err)
	}
	app, err := pgx.Connect(ctx, c.URL(db))
	require.NoError(t, err)
	t.Cleanup(func() { _ = app.Close(context.WithoutCancel(ctx)) })
	return app
}

// TestGrantSQL runs deploy/postgresql/grant.sql with psql, as a DBA would, on a database with an
// application table, then shows that walhook, logged in as its role, can migrate its schema,
// read the mapped table but not write it, own and extend its publication, open a logical
// replication slot, and that the application's role can emit events after the part-5 grants —
// and only then: before them, and for a role without them, walhook.emit and the outbox are
// refused, and no role but walhook reads the emit key.
func TestGrantSQL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := xtest.Cluster(t)
	const db = "grant_app"
	app := appDatabase(t, c, db, "app_owner")
	// A hardened database: PUBLIC may not create temporary tables in it (grant.sql grants walhook
	// what it needs, TEMPORARY included).
	_, err := app.Exec(ctx, `CREATE TABLE public.contacts (id bigint PRIMARY KEY, company_id text NOT NULL, name text, email text);
		ALTER TABLE public.contacts OWNER TO app_owner;
		REVOKE TEMPORARY ON DATABASE `+db+` FROM PUBLIC`)
	require.NoError(t, err)

	out, err := exec.Command(filepath.Join(c.BinDir(), "psql"), "-X", "-q", "-d", c.URL(db),
		"-v", "app_db="+db, "-v", "app_role=app_owner", "-v", "walhook_password='s3cret'",
		"-f", "postgresql/grant.sql").CombinedOutput()
	require.NoError(t, err, "psql -f grant.sql: %s", out)

	pool, err := pgxpool.New(ctx, asUser(t, c.URL(db), "walhook"))
	require.NoError(t, err)
	defer pool.Close()
	st := store.New(pool, xtest.Keys())
	_, err = st.MigrateUp(ctx)
	require.NoError(t, err, "walhook migrates its own schema")

	// History retention (migration 0029): a week's partitions created while the default partition
	// holds an event of that week (moved out through a temporary table), and the week dropped
	// (its pending rows set aside in temporary tables).
	ahead := store.HistoryWeek(time.Now()).AddDate(0, 0, 70)
	_, err = pool.Exec(ctx, `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		VALUES ('grant-test', '1', 'contact.created', '{}', $1)`, ahead.Add(time.Hour))
	require.NoError(t, err)
	created, _, err := st.RetentionPartitionsCreate(ctx, ahead, 1, 0)
	require.NoError(t, err, "walhook creates a week's partitions, moving rows out of the default partition")
	require.Equal(t, 3, created)
	_, err = st.RetentionWeekDrop(ctx, ahead)
	require.NoError(t, err, "walhook drops a week of history")

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM public.contacts`).Scan(&n), "walhook reads mapped tables")
	_, err = pool.Exec(ctx, `INSERT INTO public.contacts (id, company_id) VALUES (1, '1')`)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "42501", "walhook may not write application tables: %v", err)

	var owner string
	require.NoError(t, pool.QueryRow(ctx, `SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = 'walhook'`).Scan(&owner))
	require.Equal(t, "walhook", owner)
	_, err = pool.Exec(ctx, `ALTER PUBLICATION walhook ADD TABLE walhook.outbox`)
	require.NoError(t, err, "walhook adds its outbox to its publication")
	var super, createDB, createRole bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'walhook'`).Scan(&super, &createDB, &createRole))
	require.False(t, super || createDB || createRole, "walhook is no superuser and creates no databases or roles")

	_, err = pool.Exec(ctx, `SELECT pg_create_logical_replication_slot('grant_test', 'pgoutput')`)
	require.NoError(t, err, "REPLICATION lets walhook create its slot")
	_, err = pool.Exec(ctx, `SELECT pg_drop_replication_slot('grant_test')`)
	require.NoError(t, err)

	// walhook, the owner of its schema, reads its emit key (capture verifies messages with it).
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM walhook.emit_key`).Scan(&n))
	require.Equal(t, 1, n, "the migration made the first emit key")

	// Part 5, for the application's role: before it, with only USAGE on the schema (so what
	// refuses is the privilege on each object), nothing.
	denied := func(conn *pgx.Conn, q, what string) {
		t.Helper()
		_, err := conn.Exec(ctx, q)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr) && pgErr.Code == "42501", "%s: want permission denied, got %v", what, err)
	}
	const emit = `SELECT walhook.emit('1', 'invoice.paid', '{"total": 1}')`
	_, err = app.Exec(ctx, `CREATE ROLE stranger LOGIN; GRANT USAGE ON SCHEMA walhook TO app_owner, stranger`)
	require.NoError(t, err)
	appConn, err := pgx.Connect(ctx, asUser(t, c.URL(db), "app_owner"))
	require.NoError(t, err)
	defer appConn.Close(context.WithoutCancel(ctx))
	denied(appConn, emit, "walhook.emit before the grant")
	_, err = app.Exec(ctx, `GRANT EXECUTE ON FUNCTION walhook.emit(text, text, jsonb) TO app_owner;
		GRANT INSERT ON walhook.outbox TO app_owner`)
	require.NoError(t, err)
	_, err = appConn.Exec(ctx, emit)
	require.NoError(t, err, "the application emits events")
	_, err = appConn.Exec(ctx, `INSERT INTO walhook.outbox (company_id, event_key) VALUES ('1', 'invoice.paid')`)
	require.NoError(t, err, "the application writes the outbox")
	denied(appConn, `SELECT * FROM walhook.emit_key`, "the application reads the emit key")
	// The history's partitions are walhook's to make (migration 0029): the function is not
	// executable by the application, and would run with its caller's rights anyway.
	denied(appConn, `SELECT walhook.history_partition_create(now() + interval '1 year')`, "the application creates history partitions")
	denied(appConn, `CREATE TABLE walhook.event_p20990105 (LIKE walhook.event_pdefault)`, "the application creates tables in walhook's schema")
	denied(appConn, `SELECT * FROM walhook.event_pdefault`, "the application reads the history")

	stranger, err := pgx.Connect(ctx, asUser(t, c.URL(db), "stranger"))
	require.NoError(t, err)
	defer stranger.Close(context.WithoutCancel(ctx))
	denied(stranger, emit, "walhook.emit without the grant")
	denied(stranger, `INSERT INTO walhook.outbox (company_id, event_key) VALUES ('1', 'invoice.paid')`, "the outbox without the grant")
	denied(stranger, `SELECT * FROM walhook.emit_key`, "the emit key")
}

// TestGrantSQLTwoDatabases sets up walhook's own database apart from the application's, as a DBA
// would: grant-walhook-db.sql makes walhook's database (closed to other roles, walhook owning its
// schema), grant.sql the application's side, each run when the role already exists. walhook then
// migrates the main set in its database and only the source set in the application's, and holds
// there what capture needs: the emit key, its publication, a slot.
//
// Not parallel: roles are cluster-wide, and TestGrantSQL (parallel, so it runs after this) makes
// walhook too; run serially, neither races the other's CREATE ROLE.
func TestGrantSQLTwoDatabases(t *testing.T) {
	ctx := t.Context()
	c := xtest.Cluster(t)
	const appDB, ownDB = "grant_two_app", "grant_two_walhook"
	app := appDatabase(t, c, appDB, "app_two")
	_, err := app.Exec(ctx, `CREATE TABLE public.contacts (id bigint PRIMARY KEY, company_id text NOT NULL, name text, email text);
		ALTER TABLE public.contacts OWNER TO app_two`)
	require.NoError(t, err)
	psql := func(db, file string, vars ...string) {
		t.Helper()
		args := []string{"-X", "-q", "-d", c.URL(db), "-v", "walhook_password='s3cret'"}
		for _, v := range vars {
			args = append(args, "-v", v)
		}
		out, err := exec.Command(filepath.Join(c.BinDir(), "psql"), append(args, "-f", file)...).CombinedOutput()
		require.NoError(t, err, "psql -f %s: %s", file, out)
	}
	psql("postgres", "postgresql/grant-walhook-db.sql", "walhook_db="+ownDB)
	psql("postgres", "postgresql/grant-walhook-db.sql", "walhook_db="+ownDB) // again: nothing to do
	psql(appDB, "postgresql/grant.sql", "app_db="+appDB, "app_role=app_two")

	own, err := pgxpool.New(ctx, asUser(t, c.URL(ownDB), "walhook"))
	require.NoError(t, err)
	defer own.Close()
	_, err = store.New(own, xtest.Keys()).MigrateUp(ctx)
	require.NoError(t, err, "walhook migrates its own database")
	var owner string
	require.NoError(t, own.QueryRow(ctx, `SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'walhook'`).Scan(&owner))
	require.Equal(t, "walhook", owner)
	_, err = pgx.Connect(ctx, asUser(t, c.URL(ownDB), "app_two"))
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr) && pgErr.Code == "42501", "no other role connects to walhook's database: %v", err)

	src, err := pgxpool.New(ctx, asUser(t, c.URL(appDB), "walhook"))
	require.NoError(t, err)
	defer src.Close()
	applied, err := store.New(src, xtest.Keys()).MigrateSourceUp(ctx)
	require.NoError(t, err, "walhook migrates the source set in the application's database")
	require.Equal(t, []int{1, 2}, applied)
	var tables []string
	require.NoError(t, src.QueryRow(ctx, `SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables WHERE schemaname = 'walhook'`).Scan(&tables))
	require.Equal(t, []string{"capture_setting", "emit_key", "outbox", "source_schema_migration"}, tables)
	require.NoError(t, src.QueryRow(ctx, `SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = 'walhook'`).Scan(&owner))
	require.Equal(t, "walhook", owner)
	_, err = src.Exec(ctx, `ALTER PUBLICATION walhook ADD TABLE walhook.outbox`)
	require.NoError(t, err)
	_, err = src.Exec(ctx, `SELECT pg_create_logical_replication_slot('grant_two_test', 'pgoutput')`)
	require.NoError(t, err)
	_, err = src.Exec(ctx, `SELECT pg_drop_replication_slot('grant_two_test')`)
	require.NoError(t, err)
	_, err = app.Exec(ctx, `GRANT USAGE ON SCHEMA walhook TO app_two; GRANT EXECUTE ON FUNCTION walhook.emit(text, text, jsonb) TO app_two`)
	require.NoError(t, err)
	appConn, err := pgx.Connect(ctx, asUser(t, c.URL(appDB), "app_two"))
	require.NoError(t, err)
	defer appConn.Close(context.WithoutCancel(ctx))
	_, err = appConn.Exec(ctx, `SELECT walhook.emit('1', 'invoice.paid', '{"total": 1}')`)
	require.NoError(t, err, "the application emits events, signed with the source's own key")
}
