package bench_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/bench"
)

// TestMain runs the backlog scenario's child relay when this test binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv(bench.ChildEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err := bench.RunChild(ctx)
		stop()
		if err != nil {
			os.Stderr.WriteString("bench child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuick runs `walhook bench --quick` and checks only that it completes and that every
// scenario delivered and recorded everything; it asserts no timing.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick benchmark takes about a minute")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Quick: true, Exe: exe, ExeArgs: []string{"-test.run=^$"}})
	require.NoError(t, err)
	require.Len(t, rep.Results, 14)
	for _, r := range rep.Results {
		require.Empty(t, r.Failures, "scenario %s", r.Scenario)
		require.Equal(t, r.Expected, r.Recorded, "scenario %s", r.Scenario)
		if r.Expected == 0 {
			continue // ceiling: no database
		}
		// Issue 14: WAL per delivery for every scenario, and (the private cluster preloads
		// pg_stat_statements) the database's time, with walhook's statements named.
		require.NotNil(t, r.WALPerDelivery, "scenario %s", r.Scenario)
		require.Positive(t, *r.WALPerDelivery, "scenario %s", r.Scenario)
		require.NotNil(t, r.DBMicrosPerDelivery, "scenario %s", r.Scenario)
		require.NotNil(t, r.WalhookWALPerDelivery, "scenario %s", r.Scenario)
		require.NotEmpty(t, r.Statements, "scenario %s", r.Scenario)
	}
	require.False(t, rep.Failed())
}

// TestHistorySmall runs `walhook bench history` small in both layouts (weekly partitions) and
// checks what it built and removed; it asserts no timing.
func TestHistorySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := bench.RunHistory(ctx, bench.HistoryConfig{Deliveries: 6000, Days: 21, Companies: 5, Pending: 50, Partition: "week", Samples: 3})
	require.NoError(t, err)
	require.Equal(t, int64(3000), rep.Events)
	require.Equal(t, int64(6000-50)+int64(6000-50)/10*2, rep.Attempts, "three attempts for every tenth delivery, none for pending ones")
	require.Len(t, rep.Results, 2)
	plain, part := rep.Results[0], rep.Results[1]
	require.Equal(t, bench.LayoutPlain, plain.Layout)
	require.Equal(t, bench.LayoutPartitioned, part.Layout)
	require.Zero(t, plain.Partitions)
	// 21 days from a Monday-aligned start, and two weeks ahead of today.
	require.GreaterOrEqual(t, part.Partitions, 5)
	// The plain run removed the first day (about 6000/21 deliveries); the partitioned one the
	// first week partition (one to seven days), leaving nothing older than its bound.
	require.InDelta(t, 6000/21, plain.Retention.Deliveries, 6000/21/10+2)
	require.Positive(t, part.Retention.Deliveries)
	require.Zero(t, part.Retention.Left)
	require.Empty(t, part.Retention.Blocked)
	for _, s := range []string{"claim", "history newest page", "history deep page", "history by event id", "history series 30d", "history detail"} {
		require.Equal(t, 3, plain.Latency[s].N, s)
		require.Equal(t, 3, part.Latency[s].N, s)
	}
	require.Equal(t, 3, part.Latency["claim (partition-aware)"].N)
}
