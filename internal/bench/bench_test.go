package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/bench"
	"github.com/walhook/walhook/internal/xtest"
)

// TestMain: xtest.Main removes the walhook binary the tests build (xtest.Walhook). The backlog
// scenario's child relay is that binary's `walhook bench` with bench.ChildEnv set, as in
// production, not this test binary.
func TestMain(m *testing.M) { xtest.Main(m) }

// TestQuick runs `walhook bench --quick` and checks only that it completes and that every
// scenario delivered and recorded everything; it asserts no timing.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick benchmark takes about a minute")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Quick: true, Exe: xtest.Walhook(t), ExeArgs: []string{"bench"}})
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

// TestQuickTwoDatabases runs `walhook bench --quick --two-databases`: every scenario with
// walhook's own database in a second cluster. Besides delivering and recording everything, the
// figures must come from the right cluster: walhook's fan-out (CaptureCommit) and sending
// (DispatchRecord) run in its own database, never in the application's.
func TestQuickTwoDatabases(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick benchmark takes about a minute")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Quick: true, Modes: []bench.Mode{bench.ModeTwo}, Exe: xtest.Walhook(t), ExeArgs: []string{"bench"}})
	require.NoError(t, err)
	require.Equal(t, []bench.Mode{bench.ModeTwo}, rep.Modes)
	require.Len(t, rep.Results, 14)
	for _, r := range rep.Results {
		require.Empty(t, r.Failures, "scenario %s", r.Scenario)
		require.Equal(t, r.Expected, r.Recorded, "scenario %s", r.Scenario)
		if r.Expected == 0 {
			require.Empty(t, r.Mode, "scenario %s", r.Scenario) // ceiling: no database
			continue
		}
		require.Equal(t, bench.ModeTwo, r.Mode, "scenario %s", r.Scenario)
		require.NotNil(t, r.WALPerDelivery, "scenario %s", r.Scenario)
		require.Positive(t, *r.WALPerDelivery, "scenario %s", r.Scenario)
		require.NotNil(t, r.WalhookCluster, "scenario %s", r.Scenario)
		require.Positive(t, r.WalhookCluster.WALPerDelivery, "scenario %s", r.Scenario)
		require.Contains(t, r.WalhookCluster.Statements, "DispatchRecord", "scenario %s", r.Scenario)
		require.NotContains(t, r.Statements, "DispatchRecord", "scenario %s", r.Scenario)
		require.NotContains(t, r.Statements, "CaptureCommit", "scenario %s", r.Scenario)
		if r.Scenario != "backlog" { // seeded: nothing captured
			require.Contains(t, r.WalhookCluster.Statements, "CaptureCommit", "scenario %s", r.Scenario)
		}
	}
	require.False(t, rep.Failed())
}

// TestModesBoth runs application-impact (and the outbox, whose rows are deleted in the
// application's database in one mode and walhook's in the other) in both modes in one run: one
// result per mode, the two-database one compared with the one-database one.
func TestModesBoth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two clusters and runs the relay in both deployments")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Quick: true, Modes: []bench.Mode{bench.ModeOne, bench.ModeTwo},
		Only: []string{"throughput-outbox/table", "application-impact"}})
	require.NoError(t, err)
	require.False(t, rep.Failed())
	var got []string
	for _, r := range rep.Results {
		require.Equal(t, r.Expected, r.Recorded, "scenario %s (%s)", r.Scenario, r.Mode)
		require.Positive(t, r.Expected, "scenario %s (%s)", r.Scenario, r.Mode)
		got = append(got, r.Scenario+" "+string(r.Mode))
		if r.Scenario == "application-impact" {
			require.Equal(t, 3.0, r.Figures["rounds"])
			require.Contains(t, r.Figures, "decoding_only_ratio")
			require.Equal(t, 3*1500, r.Expected) // three runs with the relay, 1,500 rows each
		}
	}
	require.Equal(t, []string{
		"throughput-outbox/table one-database", "throughput-outbox/table two-databases",
		"application-impact one-database", "application-impact two-databases",
	}, got)
	require.Contains(t, rep.Results[3].Figures, "vs_one_database")
	require.Nil(t, rep.Results[2].WalhookCluster)
	require.NotNil(t, rep.Results[3].WalhookCluster)
}
