package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestCatalogLookupNotHijacked: a role of the application's database that may create objects in
// public (the application's owner usually may) defines an operator = on
// (information_schema.sql_identifier, text): an exact match, so a query comparing an
// information_schema column with text in a session whose search_path reaches public would run
// the role's function as walhook, which can read walhook.emit_key and so sign events for any
// company. Capture's table lookup (catalog validation, at every start) must not call it.
func TestCatalogLookupNotHijacked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := xtest.DatabaseURL(t)
	pool := xtest.SourceStore(t, dbURL).Pool()
	s := store.New(pool, xtest.Keys())
	role, conn := xtest.LoginRole(t, dbURL, pool)
	_, err := pool.Exec(ctx, "GRANT CREATE, USAGE ON SCHEMA public TO "+role+
		"; CREATE TABLE public.contacts (id bigint PRIMARY KEY, company_id text)")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `
		CREATE FUNCTION public.hijack(information_schema.sql_identifier, text) RETURNS boolean
		LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked: ran as %', current_user; END $$;
		CREATE OPERATOR public.= (LEFTARG = information_schema.sql_identifier, RIGHTARG = text, FUNCTION = public.hijack)`)
	require.NoError(t, err)
	// The operator is live for a session that searches public (walhook's, by default).
	var ok bool
	err = pool.QueryRow(ctx, "SELECT 'x'::information_schema.sql_identifier = 'x'::text").Scan(&ok)
	require.ErrorContains(t, err, "hijacked", "the attack is real")

	info, err := s.CaptureTableInfo(ctx, "public.contacts")
	require.NoError(t, err)
	require.Equal(t, []string{"id", "company_id"}, info.Columns)
	require.True(t, info.HasPrimaryKey)
	require.Equal(t, []string{"id"}, info.IdentityColumns)
}

// TestMigrateUpNotHeldByAnotherRole: any role that may connect to the application's database can
// take an advisory lock, the migrators' key included. Holding it must not keep walhook from
// starting when nothing is pending (every start but an upgrade's): serve migrates at start.
func TestMigrateUpNotHeldByAnotherRole(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srcURL := xtest.SeparateSourceURL(t)
	src := xtest.SourceStore(t, srcURL)
	_, conn := xtest.LoginRole(t, srcURL)
	_, err := conn.Exec(ctx, "SELECT pg_advisory_lock(x'77616c686f6f6b'::bigint)") // "walhook"
	require.NoError(t, err)

	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	applied, err := src.MigrateSourceUp(mctx)
	require.NoError(t, err, "nothing pending: no lock needed")
	require.Empty(t, applied)
	require.NoError(t, src.SourceMigrationCheck(ctx))
}
