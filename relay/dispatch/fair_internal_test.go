package dispatch

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
)

// Freed send slots go to the waiting company with the fewest requests in flight, and the last
// slot (the reserve) only to a company holding fewer than the reserve: a company whose requests
// hang cannot take every slot, and another company's first request starts at once.
func TestFairSlotsOrder(t *testing.T) {
	t.Parallel()
	s := newFairSlots(8, time.Second) // reserve 1
	for range 7 {
		s.acquire("a", 1) // a takes all but the reserve at once
	}
	aWaits := make(chan struct{})
	go func() { s.acquire("a", 1); close(aWaits) }()
	waiters := func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.nWaiting }
	require.Eventually(t, func() bool { return waiters() == 1 }, time.Second, time.Millisecond, "a may not take the reserve")
	s.acquire("b", 9) // b's first request takes the reserve at once
	bWaits := make(chan struct{})
	go func() { s.acquire("b", 9); close(bWaits) }()
	require.Eventually(t, func() bool { return waiters() == 2 }, time.Second, time.Millisecond)

	s.release("a", 1, 10*time.Second) // 7 in flight: only the reserve is free, and a and b both hold one or more
	require.Equal(t, 2, waiters())
	s.release("a", 1, 10*time.Second) // 6 in flight: b holds 1, a 5, so b goes first
	<-bWaits
	require.Equal(t, 1, waiters(), "a still waits")
	s.release("b", 9, time.Millisecond)
	<-aWaits
	require.Equal(t, 0, waiters())
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, 7, s.total)
	require.Equal(t, 6, s.companies["a"].inFlight)
	require.Equal(t, 1, s.companies["b"].inFlight)
}

// A webhook whose recent attempts were quick may use the reserve too: a single busy company with
// quick endpoints uses every slot. Within a company, waiting webhooks are served in turn.
func TestFairSlotsQuickAndRoundRobin(t *testing.T) {
	t.Parallel()
	s := newFairSlots(4, 100*time.Millisecond) // reserve 1
	for _, h := range []int64{1, 2} {
		s.acquire("a", h)
		s.release("a", h, 5*time.Millisecond) // quick now
	}
	for range 4 {
		s.acquire("a", 1) // the fourth is the reserve: quick
	}
	waiters := func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.nWaiting }
	require.Equal(t, 0, waiters())

	order := make(chan int64, 4)
	for i, h := range []int64{1, 1, 2, 2} {
		go func() { s.acquire("a", h); order <- h }()
		require.Eventually(t, func() bool { return waiters() == i+1 }, time.Second, time.Millisecond)
	}
	var got []int64
	for range 4 {
		s.release("a", 1, 5*time.Millisecond)
		got = append(got, <-order)
	}
	require.Equal(t, []int64{1, 2, 1, 2}, got)
}

// companyPlan by hand-written counts (defaults: MaxClaimed 4096, ClaimBatch 1024 so a claim's
// threshold is 128, PerWebhook 16): a company with less room than the threshold is skipped
// rather than fed one delivery at a time, and each busy webhook of a company may hold an equal
// part of the company's share counting one more webhook (webhooks with no rate measured yet
// weigh the same).
func TestCompanyPlan(t *testing.T) {
	t.Parallel()
	cfg := Config{}
	require.NoError(t, cfg.defaults())
	var busy map[int64]*hookState
	plan := func(held map[string]int, hooks map[string]int) companyPlan {
		d := &Dispatcher{cfg: cfg, held: held, busy: map[int64]*hookState{}}
		id := int64(0)
		for co, n := range hooks {
			for range n {
				id++
				d.busy[id] = &hookState{company: co}
			}
		}
		busy = d.busy
		return d.companyPlan(128)
	}
	// caps is each company's cap per webhook (the same for all its webhooks here).
	caps := func(p companyPlan) map[string]int {
		byCo := map[string]int{}
		for id, c := range p.hookCap {
			co := busy[id].company
			if prev, ok := byCo[co]; ok {
				require.Equal(t, prev, c, "webhook %d of %s", id, co)
			}
			byCo[co] = c
		}
		return byCo
	}

	// Alone: a share of 3072.
	p := plan(map[string]int{"a": 3000}, map[string]int{"a": 100})
	require.Equal(t, []string{"a"}, p.skip, "72 of room is less than a claim's threshold")
	require.Empty(t, p.rooms)
	require.Equal(t, 2048, p.newcomerCap)
	require.Equal(t, map[string]int{"a": 30}, caps(p), "3072 / 101")
	p = plan(map[string]int{"a": 2900}, map[string]int{"a": 1})
	require.Empty(t, p.skip)
	require.Equal(t, map[string]int{"a": 172}, p.rooms)
	require.Equal(t, map[string]int{"a": 1536}, caps(p))

	// Two: a share of 2048 each.
	p = plan(map[string]int{"a": 2000, "b": 10}, map[string]int{"a": 5, "b": 1})
	require.Equal(t, []string{"a"}, p.skip)
	require.Equal(t, map[string]int{"b": 2038}, p.rooms)
	require.Equal(t, 1365, p.newcomerCap)
	require.Equal(t, map[string]int{"a": 341, "b": 1024}, caps(p))

	// Forty: a share of 102, whose quarter (25) is the threshold; a webhook holds at least
	// PerWebhook.
	held := map[string]int{}
	for i := range 40 {
		held[fmt.Sprintf("c%02d", i)] = 70
	}
	held["c00"] = 80
	p = plan(held, map[string]int{"c00": 10})
	require.Equal(t, []string{"c00"}, p.skip, "22 of room is less than 25")
	require.Len(t, p.rooms, 39)
	require.Equal(t, 32, p.rooms["c01"])
	require.Equal(t, map[string]int{"c00": 16}, caps(p))
}

// Within a company the share is divided by the webhooks' observed rates (issue 14's isolation):
// nine fast webhooks keep about the parts they had alone when a tenth hangs, and the hanging one
// is held to PerWebhook. Defaults: a company alone has a share of 3072, a webhook's weight is
// what it sends in 30 s (a quarter of the lease), between claimPerWebhook (48) and 1024.
func TestCompanyPlanWeighsRates(t *testing.T) {
	t.Parallel()
	cfg := Config{}
	require.NoError(t, cfg.defaults())
	require.Equal(t, 48, cfg.claimPerWebhook)
	plan := func(fast, hanging int) companyPlan {
		now := time.Now()
		d := &Dispatcher{cfg: cfg, held: map[string]int{"a": 1000}, busy: map[int64]*hookState{}, rates: map[int64]*hookRate{}}
		for id := range int64(fast + hanging) {
			d.busy[id] = &hookState{company: "a"}
			if id < int64(fast) {
				d.rates[id] = &hookRate{since: now, perSec: 1000} // weight 1024
			} else {
				d.rates[id] = &hookRate{since: now} // nothing sent: weight 48
			}
		}
		return d.companyPlan(128)
	}

	p := plan(9, 0)
	for id := range int64(9) {
		require.Equal(t, 307, p.hookCap[id], "3072 / 10")
	}
	p = plan(9, 1)
	for id := range int64(9) {
		require.Equal(t, 308, p.hookCap[id], "3072 × 1024 × 10 / (9264 × 11): as many as alone, not 3072 / 11 = 279")
	}
	require.Equal(t, 16, p.hookCap[9], "3072 × 48 × 10 / (9264 × 11) = 14: PerWebhook")

	// Three fast and two hanging: weights 3168 in all, the share less a part of average weight
	// (3072 × 5/6 = 2560) divided by weight; the hanging ones together hold 76, and 3072 − 2557 is
	// left for a newcomer.
	p = plan(3, 2)
	require.Equal(t, map[int64]int{0: 827, 1: 827, 2: 827, 3: 38, 4: 38}, p.hookCap, "3072 × w × 5 / (3168 × 6)")
}

// A webhook holding more than its cap gives back its queued deliveries, the last claimed first,
// when its company is at its share or the in-memory bound is reached; its running ones stay, and
// the webhooks of a company with room keep theirs. Counts by hand (MaxClaimed 32, ClaimBatch 32:
// a claim's threshold is 4; PerWebhook 2).
func TestGiveBackOverCap(t *testing.T) {
	t.Parallel()
	type hook struct {
		co              string
		running, queued int
	}
	setup := func(maxClaimed int, hooks map[int64]hook) *Dispatcher {
		cfg := Config{Workers: 8, PerWebhook: 2, MaxClaimed: maxClaimed, ClaimBatch: 32}
		require.NoError(t, cfg.defaults())
		d := &Dispatcher{cfg: cfg, held: map[string]int{}, busy: map[int64]*hookState{}, results: make(chan outcome, 64)}
		for id, h := range hooks {
			hs := &hookState{company: h.co, running: h.running, refill: 2}
			for k := range h.queued {
				hs.queue = append(hs.queue, job{c: store.Claimed{ID: 100*id + int64(k), LeaseToken: "t"}})
			}
			d.busy[id] = hs
			d.total += h.running + h.queued
			d.held[h.co] += h.running + h.queued
		}
		return d
	}
	given := func(d *Dispatcher) []int64 {
		var ids []int64
		for len(d.results) > 0 {
			o := <-d.results
			require.True(t, o.release)
			ids = append(ids, o.rec.DeliveryID)
		}
		slices.Sort(ids)
		return ids
	}

	// Company a (share 16 of 32 with b) holds 18 over three webhooks: each may hold 16/4 = 4, so
	// each gives back the last 2 of its 4 queued. b holds 10 in one webhook, 2 over its cap of 8,
	// but has room: it keeps them.
	d := setup(32, map[int64]hook{1: {"a", 2, 4}, 2: {"a", 2, 4}, 3: {"a", 2, 4}, 4: {"b", 2, 8}})
	d.giveBackOverCap(4)
	require.Equal(t, []int64{102, 103, 202, 203, 302, 303}, given(d))
	require.Equal(t, 22, d.total)
	require.Equal(t, map[string]int{"a": 12, "b": 10}, d.held)
	require.Len(t, d.busy[1].queue, 2)
	require.Equal(t, int64(101), d.busy[1].queue[1].c.ID)
	require.Equal(t, 1, d.busy[1].refill, "the next job taken wakes the claim loop")
	require.Len(t, d.busy[4].queue, 8)

	// Alone, a's share is 24 and it has room: nothing is given back ...
	d = setup(32, map[int64]hook{1: {"a", 2, 4}, 2: {"a", 2, 4}, 3: {"a", 2, 4}})
	d.giveBackOverCap(4)
	require.Empty(t, given(d))
	// ... but with MaxClaimed 20 it holds 18 of its share of 15, and 2 are free (less than the
	// threshold): each of its webhooks may hold max(PerWebhook, 15/4) = 3, and its running ones
	// stay.
	d = setup(20, map[int64]hook{1: {"a", 2, 4}, 2: {"a", 2, 4}, 3: {"a", 2, 4}})
	d.giveBackOverCap(4)
	require.Equal(t, []int64{101, 102, 103, 201, 202, 203, 301, 302, 303}, given(d))
	require.Equal(t, 9, d.total)
	require.Equal(t, 2, d.busy[1].running)
}
