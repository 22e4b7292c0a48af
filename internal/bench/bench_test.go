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
