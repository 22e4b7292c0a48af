package main

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

// TestDescribeURL: the name a split writes into the moved mark and prints never carries the
// password or other parameters.
func TestDescribeURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://walhook:s3cret@db.example:6432/walhook?sslmode=require&password=x": "postgres://walhook@db.example:6432/walhook",
		"host=/run/postgresql user=app password=s3cret dbname=app":                     "postgres://app@%2Frun%2Fpostgresql:5432/app",
	} {
		got := describeURL(raw)
		require.Equal(t, want, got)
		require.NotContains(t, got, "s3cret")
	}
}

// TestSplitFlags: split needs both URLs, one mode at a time, and --yes for the modes that change
// data without a plan first.
func TestSplitFlags(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for want, args := range map[string][]string{
		"--database-url (walhook's new, own database) and --source-database-url": {"--database-url", "postgres://x/new"},
		"give one of --drop-moved, --undo and --back":                            {"--undo", "--back", "--database-url", "postgres://x/a", "--source-database-url", "postgres://x/b"},
		"add --yes": {"--drop-moved", "--database-url", "postgres://x/a", "--source-database-url", "postgres://x/b"},
	} {
		var out bytes.Buffer
		err := runSplit(ctx, args, &out)
		require.ErrorContains(t, err, want)
	}
}

// TestSplitLiftsRoleTimeouts: grant.sql gives the walhook role statement_timeout 60s, and a split
// copies each table in one COPY (minutes for millions of rows). The split's sessions lift it; here
// both databases carry a timeout no statement of a split could meet.
func TestSplitLiftsRoleTimeouts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	oldURL, newURL := xtest.DatabaseURL(t), xtest.DatabaseURL(t)
	for _, u := range []string{oldURL, newURL} {
		pool, err := pgxpool.New(ctx, u)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '1ms'); END $$`)
		pool.Close()
		require.NoError(t, err)
	}
	var out bytes.Buffer
	err := runSplit(ctx, []string{"--database-url", newURL, "--source-database-url", oldURL, "--slot", "split_timeouts", "--yes", "--log-format", "json"}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "capture continues from none")
}
