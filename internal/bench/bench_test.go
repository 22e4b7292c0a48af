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

// runQuick runs the quick benchmark (--quick) with cfg within five minutes and requires it to
// complete. A run starts private clusters and takes a minute or more: -short skips the test.
func runQuick(t *testing.T, cfg bench.Config) *bench.Report {
	t.Helper()
	if testing.Short() {
		t.Skip("the quick benchmark starts private clusters and takes a minute or more")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cfg.Quick = true
	rep, err := bench.Run(ctx, cfg)
	require.NoError(t, err)
	return rep
}

// TestQuick runs `walhook bench --quick` and checks only that it completes and that every
// scenario delivered and recorded everything; it asserts no timing.
func TestQuick(t *testing.T) {
	rep := runQuick(t, bench.Config{Exe: xtest.Walhook(t), ExeArgs: []string{"bench"}})
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
	rep := runQuick(t, bench.Config{Modes: []bench.Mode{bench.ModeTwo}, Exe: xtest.Walhook(t), ExeArgs: []string{"bench"}})
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
	rep := runQuick(t, bench.Config{Modes: []bench.Mode{bench.ModeOne, bench.ModeTwo},
		Only: []string{"throughput-outbox/table", "application-impact"}})
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

// TestHistorySmall runs `walhook bench history` small in both layouts and checks what it built
// and what retention removed; it asserts no timing.
func TestHistorySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := bench.RunHistory(ctx, bench.HistoryConfig{Deliveries: 6000, Days: 21, Companies: 5, Pending: 50, Samples: 3})
	require.NoError(t, err)
	require.Equal(t, int64(3000), rep.Events)
	require.Equal(t, int64(6000-50)+int64(6000-50)/10*2, rep.Attempts, "three attempts for every tenth delivery, none for pending ones")
	require.Len(t, rep.Results, 2)
	plain, part := rep.Results[0], rep.Results[1]
	require.Equal(t, bench.LayoutPlain, plain.Layout)
	require.Equal(t, bench.LayoutPartitioned, part.Layout)
	require.Zero(t, plain.Partitions)
	// The weeks of 21 days (four, or three when they start on a Monday), two ahead of this one
	// and the default partition.
	require.GreaterOrEqual(t, part.Partitions, 6)

	// Retention removes the first week: the events that occurred before the Monday after the
	// history's start (event k at start + (k-1) × 21 days / 3000), their two deliveries each
	// and the deliveries' attempts (three for every tenth delivery).
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -21)
	cut := start.AddDate(0, 0, (7 - (int(start.Weekday())+6)%7))
	require.Equal(t, time.Monday, cut.Weekday())
	require.Equal(t, cut, part.Retention.Cutoff)
	step := 21 * 24 * time.Hour / 3000
	events := int64((cut.Sub(start) + step - 1) / step)
	deliveries := 2 * events
	require.Equal(t, events, part.Retention.Events)
	require.Equal(t, deliveries, part.Retention.Deliveries)
	require.Equal(t, deliveries+deliveries/10*2, part.Retention.Attempts)
	require.Zero(t, part.Retention.Left)
	require.Equal(t, "retention.RunOnce", part.Retention.Method)
	require.Equal(t, 1, part.Retention.Weeks, "the first week dropped whole")
	require.Zero(t, part.Retention.PendingMoved, "the pending deliveries are the newest")
	// The row deletes keep the deliveries changed after the cutoff (a retry 91 s after its
	// event), and their events; nothing else differs.
	require.Equal(t, cut, plain.Retention.Cutoff)
	require.Equal(t, deliveries, plain.Retention.Deliveries+plain.Retention.Left)
	require.LessOrEqual(t, plain.Retention.Left, int64(2))
	require.InDelta(t, events, plain.Retention.Events, 2)

	require.Equal(t, "store.DispatchClaim", part.Claim)
	require.Contains(t, plain.Claim, "0028")
	for _, s := range []string{"claim", "history newest page", "history deep page", "history by event id", "history series 30d", "history detail"} {
		require.Equal(t, 3, part.Latency[s].N, s)
	}
	require.Empty(t, part.NotMeasured)
	// The plain layout runs the store's history reads only where their text is 0028's.
	require.Equal(t, 3, plain.Latency["claim"].N)
	require.Equal(t, 3, plain.Latency["history series 30d"].N)
	require.Len(t, plain.Latency, 2)
	require.Len(t, plain.NotMeasured, 4)
}
