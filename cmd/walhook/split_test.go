package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
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
