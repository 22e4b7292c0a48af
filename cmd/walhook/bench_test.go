package main

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchScenarios: bench's usage names every run of the benchmark, and --only refuses a name
// that is none before it starts anything, saying which there are.
func TestBenchScenarios(t *testing.T) {
	t.Parallel()
	words := strings.FieldsFunc(benchSynopsis(), func(r rune) bool { return r == ' ' || r == ',' || r == '\n' })
	require.Subset(t, words, []string{
		"ceiling", "throughput-cdc", "throughput-outbox/emit", "throughput-outbox/table", "single-row",
		"application-impact", "latency/500", "latency/100", "fan-out", "large-transaction", "isolation",
		"noisy-neighbour", "scale", "backlog",
	})
	for _, line := range strings.Split(benchSynopsis(), "\n") {
		require.LessOrEqual(t, len(line), 96, "usage line %q", line)
	}

	err := runBench(t.Context(), []string{"--only", "latency/100,latency"}, io.Discard)
	require.ErrorContains(t, err, `--only: no scenario "latency"; the scenarios are ceiling, `)
	require.ErrorContains(t, err, "latency/500, latency/100")
}
