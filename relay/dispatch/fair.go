package dispatch

import (
	"sync"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// fairSlots hands out the Workers send slots (requests in flight) fairly between companies, and
// between the webhooks of a company; see "Fair shares" in the package documentation.
//
// A request that finds a slot it may take takes it at once (one mutex, no allocation). Otherwise
// it waits in its webhook's FIFO, and each freed slot goes to the waiting company with the fewest
// requests in flight (max-min fairness: a company below its share of Workers is served first)
// and, within it, to its waiting webhooks in turn (round robin). Slots are never held idle while
// someone may take them (work-conserving), except the reserve: the last `reserve` slots go only to
// a company holding fewer than `reserve` in flight, or to a webhook whose recent attempts were
// quick (so the slot comes back within `quick`). A company whose endpoints hang therefore holds at
// most Workers−reserve slots, and another company's first requests start at once, without waiting
// for the hanging ones to time out; a single busy company with quick endpoints still uses them all.
type fairSlots struct {
	mu      sync.Mutex
	workers int
	reserve int
	quick   time.Duration
	total   int // slots taken

	companies map[string]*companySlots // companies with requests in flight or waiting
	hooks     map[int64]*hookSlots     // webhooks seen lately: in flight, waiting, attempt durations
	waiting   map[*companySlots]struct{}
	nWaiting  int // waiters over all webhooks
	pruned    time.Time
}

type companySlots struct {
	inFlight int
	ring     []*hookSlots // its webhooks with waiters, served in turn
	next     int          // the ring position served next
}

type hookSlots struct {
	company  string
	inFlight int
	waiters  []chan struct{} // FIFO; a waiter is granted its slot by a send (buffered 1)
	inRing   bool
	avg      time.Duration // moving average of attempt durations; 0: none yet
	seen     time.Time
}

// hookForget is how long the attempt durations of a webhook with nothing in flight are kept.
const hookForget = time.Minute

func newFairSlots(workers int, quick time.Duration) *fairSlots {
	reserve := 0
	if workers >= 2 {
		reserve = max(1, workers/8)
	}
	return &fairSlots{
		workers: workers, reserve: reserve, quick: quick,
		companies: map[string]*companySlots{}, hooks: map[int64]*hookSlots{},
		waiting: map[*companySlots]struct{}{},
	}
}

// may says whether webhook h of company c may take a free slot now. Called with s.mu held.
func (s *fairSlots) may(c *companySlots, h *hookSlots) bool {
	if s.total >= s.workers {
		return false
	}
	if s.total < s.workers-s.reserve {
		return true
	}
	return c.inFlight < s.reserve || (h.avg > 0 && h.avg <= s.quick)
}

// acquire waits for a send slot for a request of webhook hook of company. Every acquire is
// followed by one release.
func (s *fairSlots) acquire(company string, hook int64) {
	s.mu.Lock()
	c := s.companies[company]
	if c == nil {
		c = &companySlots{}
		s.companies[company] = c
	}
	h := s.hooks[hook]
	if h == nil {
		h = &hookSlots{company: company}
		s.hooks[hook] = h
	}
	if s.nWaiting == 0 && s.may(c, h) {
		s.take(c, h)
		s.mu.Unlock()
		return
	}
	ch := make(chan struct{}, 1)
	h.waiters = append(h.waiters, ch)
	s.nWaiting++
	if !h.inRing {
		h.inRing = true
		c.ring = append(c.ring, h)
		s.waiting[c] = struct{}{}
	}
	s.grant()
	s.mu.Unlock()
	<-ch
}

func (s *fairSlots) take(c *companySlots, h *hookSlots) {
	s.total++
	c.inFlight++
	h.inFlight++
}

// release gives back the slot of a request of webhook hook of company that lasted took, and hands
// freed slots to the waiters.
func (s *fairSlots) release(company string, hook int64, took time.Duration) {
	s.giveBack(company, hook, took, true)
}

// abandon gives back the slot of a request of webhook hook of company that was not sent, without
// counting a duration for it.
func (s *fairSlots) abandon(company string, hook int64) {
	s.giveBack(company, hook, 0, false)
}

// giveBack frees a slot of webhook hook of company (counting took into its average when sent),
// hands freed slots to the waiters, and forgets what is idle.
func (s *fairSlots) giveBack(company string, hook int64, took time.Duration, sent bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, h := s.companies[company], s.hooks[hook]
	s.total--
	c.inFlight--
	h.inFlight--
	if sent {
		if h.avg == 0 {
			h.avg = max(took, 1)
		} else {
			h.avg = (3*h.avg + took) / 4
		}
	}
	h.seen = now
	s.grant()
	if c.inFlight == 0 && len(c.ring) == 0 {
		delete(s.companies, company)
	}
	if now.Sub(s.pruned) >= hookForget {
		s.pruned = now
		for id, x := range s.hooks {
			if x.inFlight == 0 && len(x.waiters) == 0 && now.Sub(x.seen) >= hookForget {
				delete(s.hooks, id)
			}
		}
	}
}

// grant hands free slots to waiters: the company with the fewest in flight first, its webhooks in
// turn. Called with s.mu held.
func (s *fairSlots) grant() {
	for s.nWaiting > 0 && s.total < s.workers {
		var best *companySlots
		var bestHook int
		for c := range s.waiting {
			if best != nil && c.inFlight >= best.inFlight {
				continue
			}
			if i := s.eligible(c); i >= 0 {
				best, bestHook = c, i
			}
		}
		if best == nil {
			return // only the reserve is free, and no waiter may take it
		}
		h := best.ring[bestHook]
		ch := h.waiters[0]
		h.waiters[0] = nil
		h.waiters = h.waiters[1:]
		s.nWaiting--
		s.take(best, h)
		if len(h.waiters) == 0 {
			h.waiters = nil
			h.inRing = false
			best.ring = append(best.ring[:bestHook], best.ring[bestHook+1:]...)
		} else {
			bestHook++
		}
		best.next = bestHook
		if len(best.ring) == 0 {
			best.next = 0
			delete(s.waiting, best)
		}
		ch <- struct{}{}
	}
}

// eligible returns the ring position of company c's next webhook in turn that may take a slot,
// or -1. Called with s.mu held.
func (s *fairSlots) eligible(c *companySlots) int {
	n := len(c.ring)
	for k := range n {
		i := (c.next + k) % n
		if s.may(c, c.ring[i]) {
			return i
		}
	}
	return -1
}

// companyPlan is the per-company part of a claim (see "Fair shares" in the package
// documentation).
type companyPlan struct {
	skip        []string       // companies at their share: left out of the claim
	rooms       map[string]int // what each other company holding work may still take
	newcomerCap int            // what a company holding nothing yet may take
	hookCap     map[int64]int  // what each busy webhook may hold (running and queued)
}

// companyPlan sizes the companies' parts of the next claim. Each company holding work may hold
// companyShare of MaxClaimed; one with less room than a claim's threshold (the global one,
// ClaimBatch/8, or a quarter of its share when that is smaller) is skipped, so it gets claims of
// a useful size rather than one delivery per freed slot, and the others' deliveries are found
// and claimed however many of its own are due before them. Within a company the share is divided
// between its n busy webhooks by their weights (share's measure of what each sends, at least
// claimPerWebhook), counting one more webhook of their average weight (at least PerWebhook each):
// a webhook's cap is share × weight / (sum of weights × (n+1)/n). With equal weights that is
// share/(n+1); a hanging webhook, whose weight is the least, is held to little more than its
// requests in flight, and its fast siblings keep the parts they had without it (issue 14's
// isolation: with share/(n+1) a tenth, hanging webhook cut nine fast ones' parts by a tenth).
// Its hanging webhooks together cannot fill the share, and a webhook of it that has nothing yet
// finds room (a part of average weight). Called with d.mu held.
func (d *Dispatcher) companyPlan(threshold int) companyPlan {
	companyCap := d.cfg.companyShare(len(d.held))
	p := companyPlan{
		rooms:       make(map[string]int, len(d.held)),
		newcomerCap: d.cfg.companyShare(len(d.held) + 1),
		hookCap:     make(map[int64]int, len(d.busy)),
	}
	min1 := max(1, min(threshold, companyCap/4))
	for co, held := range d.held {
		if room := companyCap - held; room < min1 {
			p.skip = append(p.skip, co)
		} else {
			p.rooms[co] = room
		}
	}
	type sum struct{ n, weight int64 }
	sums := make(map[string]sum, len(d.held))
	now := time.Now()
	for id, hs := range d.busy {
		w := int64(d.share(id, now))
		p.hookCap[id] = int(w)
		s := sums[hs.company]
		sums[hs.company] = sum{s.n + 1, s.weight + w}
	}
	for id, hs := range d.busy {
		s := sums[hs.company]
		// share × w / (W + W/n), in integers: share × w × n / (W × (n+1)).
		part := int64(companyCap) * int64(p.hookCap[id]) * s.n / (s.weight * (s.n + 1))
		p.hookCap[id] = max(d.cfg.PerWebhook, int(part))
	}
	return p
}

// giveBackOverCap gives back (releases unsent, as on shutdown) the queued deliveries of the
// webhooks holding more than their current cap (companyPlan's hookCap), when new deliveries were
// announced and a claim would be held back: by the in-memory bound (then every company's
// webhooks) or by their company's share (then that company's). A webhook may hold more than its
// cap because the cap shrinks as its company gets busier: a claim made while few of its webhooks
// were busy (or none: a newcomer webhook may take claimPerWebhook) sizes each one's part by
// those few, and the parts then sum past the share; until a request that hangs timed out,
// nothing would free room for another webhook of the company. Requests already running are
// never given back (the cap is at least PerWebhook, and only queued jobs go), and a webhook at
// its cap is skipped by claims, so what is given back is not claimed again by the same webhook
// at once. The tail of a queue goes first: the jobs claimed last.
func (d *Dispatcher) giveBackOverCap(threshold int) {
	d.mu.Lock()
	cp := d.companyPlan(threshold)
	all := d.cfg.MaxClaimed-d.total < threshold
	if !all && len(cp.skip) == 0 {
		d.mu.Unlock()
		return
	}
	atShare := make(map[string]bool, len(cp.skip))
	for _, co := range cp.skip {
		atShare[co] = true
	}
	var back []outcome
	for id, hs := range d.busy {
		if !all && !atShare[hs.company] {
			continue
		}
		n := min(len(hs.queue), hs.running+len(hs.queue)-cp.hookCap[id])
		if n <= 0 {
			continue
		}
		keep := len(hs.queue) - n
		for i, j := range hs.queue[keep:] {
			back = append(back, outcome{rec: store.AttemptResult{DeliveryID: j.c.ID, LeaseToken: j.c.LeaseToken}, release: true})
			hs.queue[keep+i] = job{}
		}
		hs.queue = hs.queue[:keep]
		hs.refill = min(hs.refill, keep-1) // the next job taken from the queue wakes the claim loop
		d.total -= n
		d.held[hs.company] -= n // it keeps its running jobs: never 0 here
	}
	d.mu.Unlock()
	for _, o := range back {
		d.results <- o
	}
}
