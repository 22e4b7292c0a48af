package store_test

import (
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
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
