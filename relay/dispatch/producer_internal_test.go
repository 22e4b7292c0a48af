package dispatch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A claim asks for what is free, at most a batch, and less when a company's room (or a
// newcomer's cap) is at least half of that, or when one company alone holds work: then the plain
// claim statement does what the per-company window would. A room smaller than half a claim, with
// other companies holding work or left out, keeps the full size (the window caps that company).
func TestClaimPlanLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		p    claimPlan
		want int
	}{
		{"a full batch", claimPlan{free: 100}, 32},
		{"what is free", claimPlan{free: 10}, 10},
		{"nothing free", claimPlan{free: 0}, 0},
		{"a room of half a claim or more", claimPlan{free: 100, rooms: map[string]int{"a": 20, "b": 40}}, 20},
		{"a small room, other companies busy", claimPlan{free: 100, rooms: map[string]int{"a": 10, "b": 40}}, 32},
		{"a small room, the only company holding work", claimPlan{free: 100, rooms: map[string]int{"a": 10}}, 10},
		{"a small room, another company left out", claimPlan{free: 100, rooms: map[string]int{"a": 10}, skipCos: []string{"x"}}, 32},
		{"a newcomer's cap of half a claim or more", claimPlan{free: 100, newcomerCap: 16}, 16},
		{"a small newcomer's cap", claimPlan{free: 100, newcomerCap: 15}, 32},
		{"a room, then the newcomer's cap", claimPlan{free: 100, rooms: map[string]int{"a": 20}, skipCos: []string{"x"}, newcomerCap: 12}, 12},
		{"what is free, then a room", claimPlan{free: 24, rooms: map[string]int{"a": 12, "b": 30}}, 12},
	} {
		require.Equal(t, tc.want, tc.p.limit(32), tc.name)
	}
}
