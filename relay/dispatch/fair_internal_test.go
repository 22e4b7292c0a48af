package dispatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
