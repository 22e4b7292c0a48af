package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
)

// TestPartitionWeekMatchesTheDatabase checks that the week Go computes (the partition names
// retention drops) is walhook.history_week's (the names history_partition_create makes): a
// Monday 00:00 UTC, whatever the instant's zone.
func TestPartitionWeekMatchesTheDatabase(t *testing.T) {
	t.Parallel()
	_, pool := xtest.Store(t)
	tokyo := time.FixedZone("UTC+9", 9*3600)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), "2026-11-30"},                    // a Monday's first instant
		{time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC), "2026-11-23"},                 // the Sunday before, last second
		{time.Date(2026, 11, 30, 8, 0, 0, 0, tokyo), "2026-11-23"},                       // Monday in Tokyo, Sunday in UTC
		{time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC), "2026-12-28"},                     // across a year
		{time.Date(1999, 6, 1, 12, 0, 0, 0, time.UTC), "1999-05-31"},                     // a Tuesday
		{time.Date(2028, 2, 29, 0, 0, 0, 1000, time.UTC), "2028-02-28"},                  // leap day
		{time.Date(2026, 3, 29, 3, 0, 0, 0, time.FixedZone("CEST", 7200)), "2026-03-23"}, // a DST night
	} {
		got := store.HistoryWeek(c.at)
		require.Equal(t, c.want, got.Format(time.DateOnly), "week of %v", c.at)
		require.Equal(t, time.UTC, got.Location())
		var db time.Time
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT walhook.history_week($1)`, c.at).Scan(&db))
		require.True(t, db.Equal(got), "walhook.history_week(%v) = %v, Go says %v", c.at, db, got)
	}
}
