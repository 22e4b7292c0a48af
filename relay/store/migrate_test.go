package store_test

import (
	"slices"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestMigrationsAllOrNothing: up applies every pending migration in one transaction, and down
// reverts its steps in one, so a migration that fails leaves the others undone as well (and the
// version table as it was).
func TestMigrationsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, pool := xtest.Store(t)
	const table = "walhook.test_schema_migration"
	files := fstest.MapFS{
		"0001_one.up.sql":   {Data: []byte("CREATE TABLE walhook.mig_one (id int)")},
		"0001_one.down.sql": {Data: []byte("DROP TABLE walhook.mig_one")},
		"0002_two.up.sql":   {Data: []byte("CREATE TABLE walhook.mig_two (id int); SELECT 1/0")},
		"0002_two.down.sql": {Data: []byte("DROP TABLE walhook.mig_two")},
	}
	exists := func(name string) bool {
		t.Helper()
		var ok bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok))
		return ok
	}
	versions := func() []int {
		t.Helper()
		rows, err := pool.Query(ctx, "SELECT version FROM "+table+" ORDER BY version")
		require.NoError(t, err)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
		require.NoError(t, err)
		return vs
	}

	_, err := s.MigrateUpFrom(ctx, files, table)
	require.ErrorContains(t, err, "apply migration 0002_two")
	require.False(t, exists("walhook.mig_one"), "0001 was rolled back with 0002")
	require.False(t, exists("walhook.mig_two"))
	require.False(t, exists(table), "even the version table, made in the same transaction")

	files["0002_two.up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE walhook.mig_two (id int)")}
	applied, err := s.MigrateUpFrom(ctx, files, table)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, applied)
	require.Equal(t, []int{1, 2}, versions())

	// Down reverts the newest first: 0002 goes, then 0001 fails, and 0002 comes back with it.
	files["0001_one.down.sql"] = &fstest.MapFile{Data: []byte("SELECT 1/0")}
	_, err = s.MigrateDownFrom(ctx, files, table, 0)
	require.ErrorContains(t, err, "revert migration 0001_one")
	require.True(t, exists("walhook.mig_two"), "0002's revert was rolled back with 0001's")
	require.True(t, exists("walhook.mig_one"))
	require.Equal(t, []int{1, 2}, versions())
}

// TestHistoryPartitionMigration: migration 0029 moves an existing history into the weekly
// partitions: every row kept with its id, deliveries and attempts given their event's time,
// times outside the weeks it creates (1999, two months ahead) in the default partitions, the
// identity sequences continuing after the copied ids. It runs past the role's statement_timeout
// (the migrator lifts it for its transaction). Down puts it all back in plain tables. The
// database stands at 0028 meanwhile, whatever migrations came after 0029: they are applied and
// reverted with it.
func TestHistoryPartitionMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, pool := xtest.Store(t)
	after28 := migrationsAfter(t, 28)
	require.Equal(t, 29, after28[0], "0029 comes right after 0028")
	_, err := s.MigrateDownTo(ctx, 28)
	require.NoError(t, err)
	for _, q := range []string{
		`INSERT INTO walhook.company (id, name) VALUES ('a', 'A')`,
		`INSERT INTO walhook.event_type (key, source) VALUES ('order.paid', 'outbox')`,
		`INSERT INTO walhook.webhook (company_id, name, url, method, active, signing_secret_enc, event_keys)
		 VALUES ('a', 'h', 'https://hooks.example.com/a', 'POST', true, '\x00'::bytea, ARRAY['order.paid'])`,
		`INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		 SELECT 'outbox:' || k, 'a', 'order.paid', jsonb_build_object('id', 'evt_' || k, 'pad', repeat('x', 200)),
		        CASE k WHEN 1 THEN '1999-01-01 00:00:00+00' WHEN 2 THEN now() + interval '60 days'
		               WHEN 3 THEN now() - interval '200 days' ELSE now() - (k % 20) * interval '1 day' END
		 FROM generate_series(1, 60000) k`,
		`INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_key, state, attempts)
		 SELECT 'a', w.id, e.id, e.event_key, CASE WHEN e.id % 7 = 0 THEN 'pending' ELSE 'succeeded' END, 1
		 FROM walhook.event e, walhook.webhook w`,
		`INSERT INTO walhook.attempt (delivery_id, company_id, webhook_id, n, started_at, request_method, request_url, outcome)
		 SELECT d.id, 'a', d.webhook_id, 1, now(), 'POST', 'https://hooks.example.com/a', 'succeeded' FROM walhook.delivery d`,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err)
	}
	sums := func() [3][2]int64 {
		t.Helper()
		var out [3][2]int64
		for i, tbl := range []string{"event", "delivery", "attempt"} {
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), sum(id) FROM walhook.`+tbl).Scan(&out[i][0], &out[i][1]))
		}
		return out
	}
	before := sums()

	// The role's timeout, as grant.sql sets one (60 s there; 100 ms here, far less than the copy).
	_, err = pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = 100', current_database()); END $$`)
	require.NoError(t, err)
	slow := store.New(xtest.PoolOn(t, pool.Config().ConnString()), nil)
	applied, err := slow.MigrateUp(ctx)
	require.NoError(t, err, "the copy outlasts statement_timeout")
	require.Equal(t, after28, applied)
	_, err = pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET statement_timeout', current_database()); END $$`)
	require.NoError(t, err)

	require.Equal(t, before, sums(), "every row, with its id")
	var mismatched, inDefault, partitions int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM walhook.delivery d JOIN walhook.event e ON e.id = d.event_id
		WHERE d.event_at <> e.occurred_at`).Scan(&mismatched))
	require.Zero(t, mismatched, "a delivery's event_at is its event's time")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM walhook.attempt a JOIN walhook.delivery d ON d.id = a.delivery_id
		WHERE a.event_at <> d.event_at`).Scan(&mismatched))
	require.Zero(t, mismatched, "an attempt's event_at is its delivery's")
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM walhook.event_pdefault) + (SELECT count(*) FROM walhook.delivery_pdefault)
		+ (SELECT count(*) FROM walhook.attempt_pdefault)`).Scan(&inDefault))
	require.Equal(t, int64(6), inDefault, "1999 and two months ahead: an event, a delivery, an attempt each")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'walhook.delivery'::regclass`).Scan(&partitions))
	// The weeks with rows (the last 20 days: 3 or 4; 200 days ago: 1), this one and two ahead, the
	// default; not every week since the oldest row.
	require.GreaterOrEqual(t, partitions, int64(7))
	require.LessOrEqual(t, partitions, int64(9))

	var maxID, next int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(id) FROM walhook.event`).Scan(&maxID))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		VALUES ('outbox:new', 'a', 'order.paid', '{}', now()) RETURNING id`).Scan(&next))
	require.Greater(t, next, maxID, "the sequence continues after the copied ids")
	_, err = pool.Exec(ctx, `DELETE FROM walhook.event WHERE source_key = 'outbox:new'`)
	require.NoError(t, err)

	reverted, err := s.MigrateDownTo(ctx, 28)
	require.NoError(t, err)
	newestFirst := slices.Clone(after28)
	slices.Reverse(newestFirst)
	require.Equal(t, newestFirst, reverted)
	require.Equal(t, before, sums(), "down keeps every row too")
	var kind string
	require.NoError(t, pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE oid = 'walhook.delivery'::regclass`).Scan(&kind))
	require.Equal(t, "r", kind)
}

// migrationsAfter returns the versions of walhook's embedded migrations newer than version, oldest
// first: what MigrateUp applies to a database MigrateDownTo(version) left.
func migrationsAfter(t *testing.T, version int) []int {
	t.Helper()
	all, err := store.Migrations()
	require.NoError(t, err)
	var out []int
	for _, m := range all {
		if m.Version > version {
			out = append(out, m.Version)
		}
	}
	return out
}
