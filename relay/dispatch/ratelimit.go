package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// Per-webhook rate limits (see "Rate limits" in the package documentation).
//
// A webhook with a rate limit has one token bucket in PostgreSQL (walhook.rate_bucket), shared
// by every replica. Each replica takes tokens from it in small batches (at most a burst, rate/10,
// and no more than its deliveries of the webhook can use) and spends them in memory: a worker
// about to send takes a token first, and waits while there is none — before it takes a send
// slot, so a limited webhook holds no slot while it waits. One worker per webhook fetches at a
// time; when the bucket is empty it waits until the bucket's next token is due and asks again.
// The deliveries wait in memory under their claim, pending, with no attempt counted; the claims
// of a limited webhook are sized so that what a replica holds is sent well within the lease.

// tokenTTL is how long tokens taken from the shared bucket may be spent: a replica that took some
// and then had nothing to send must not keep them for a later burst above the limit.
const tokenTTL = time.Second

// rateErrPause is the wait before asking a bucket again after the statement failed.
const rateErrPause = 500 * time.Millisecond

// rateTaker takes tokens from the shared buckets (Store.DispatchRateTake).
type rateTaker func(ctx context.Context, wants map[int64]int) (map[int64]store.RateTake, error)

type rateLimits struct {
	take rateTaker
	mu   sync.Mutex
	hook map[int64]*bucket
}

type bucket struct {
	tokens   int
	got      time.Time // when tokens were taken
	waiting  int       // workers in wait
	fetching bool
	ready    chan struct{} // closed when the fetch under way ends
}

func newRateLimits(take rateTaker) *rateLimits {
	return &rateLimits{take: take, hook: map[int64]*bucket{}}
}

// burst is how many tokens a bucket of rate holds at most; the query has the same rule.
func burst(rate int) int { return max(1, rate/10) }

// rateShare is how many deliveries of a webhook limited to rate a replica may hold (running and
// queued): what the limit lets it send in an eighth of the lease, so a queue is sent well within
// it even when several replicas share the tokens.
func (c *Config) rateShare(rate int) int {
	return max(1, int(float64(rate)*c.Lease.Seconds()/8))
}

// wait takes a token of webhook id, limited to rate requests per second, waiting while there is
// none. want is how many of its deliveries this replica holds (the size of the next fetch, up to
// a burst). It returns false when ctx ended first.
func (r *rateLimits) wait(ctx context.Context, id int64, rate, want int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.hook[id]
	if b == nil {
		b = &bucket{}
		r.hook[id] = b
	}
	b.waiting++
	defer func() {
		if b.waiting--; b.waiting == 0 && b.tokens == 0 && !b.fetching {
			delete(r.hook, id)
		}
	}()
	for {
		if b.tokens > 0 && time.Since(b.got) >= tokenTTL {
			b.tokens = 0
		}
		if b.tokens > 0 {
			b.tokens--
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if b.fetching {
			ch := b.ready
			r.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
			r.mu.Lock()
			continue
		}
		b.fetching = true
		b.ready = make(chan struct{})
		n := min(burst(rate), max(want, b.waiting))
		r.mu.Unlock()
		got, ok := r.fetch(ctx, id, n)
		r.mu.Lock()
		b.fetching = false
		close(b.ready)
		if !ok {
			return true // no limit any more (taken off, or the webhook deleted)
		}
		if got > 0 {
			b.tokens, b.got = b.tokens+got, time.Now()
		}
	}
}

// fetch takes up to n tokens of webhook id from the shared bucket, asking again when the next
// token is due while it gets none. ok is false when the webhook has no limit (no bucket).
func (r *rateLimits) fetch(ctx context.Context, id int64, n int) (got int, ok bool) {
	for {
		res, err := r.take(ctx, map[int64]int{id: n})
		pause := rateErrPause
		if err == nil {
			t, limited := res[id]
			if !limited {
				return 0, false
			}
			if t.Taken > 0 {
				return t.Taken, true
			}
			pause = max(t.Next, time.Millisecond)
		}
		if !waitCtx(ctx, pause) {
			return 0, true
		}
	}
}

// limitedHooks is the dispatcher's copy of which webhooks have a rate limit, for sizing claims
// (reloaded every WebhookCacheTTL, and after a webhook-change notification).
type limitedHooks struct {
	mu     sync.Mutex
	rates  map[int64]int
	loaded time.Time
	epoch  int64
}

// rateLimited returns the rate limits of the webhooks that have one, reloading them when stale.
// On an error it keeps the previous ones.
func (d *Dispatcher) rateLimited(ctx context.Context, now time.Time) map[int64]int {
	d.mu.Lock()
	epoch := d.cacheEpoch
	d.mu.Unlock()
	l := &d.limited
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rates != nil && l.epoch == epoch && now.Sub(l.loaded) < d.cfg.WebhookCacheTTL {
		return l.rates
	}
	rates, err := d.st.DispatchRateLimits(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.logs.rateLimits.Msg(d.log.Error().Err(err), "load webhook rate limits")
		}
		if l.rates == nil {
			return map[int64]int{}
		}
		return l.rates
	}
	l.rates, l.loaded, l.epoch = rates, now, epoch
	return rates
}

// takeTokens is the rate limiter's road to the shared buckets, logging failures.
func (d *Dispatcher) takeTokens(ctx context.Context, wants map[int64]int) (map[int64]store.RateTake, error) {
	res, err := d.st.DispatchRateTake(ctx, wants)
	if err != nil && ctx.Err() == nil {
		d.logs.rateTake.Msg(d.log.Error().Err(err), "take rate-limit tokens")
	}
	return res, err
}

// awaitRate waits, for a job of a webhook with a rate limit, until the limit lets it be sent.
// It returns false when ctx ended first, or j.sendBy passed (then it took no token).
func (d *Dispatcher) awaitRate(ctx context.Context, j job) bool {
	if j.w.RateLimit == nil {
		return true
	}
	ctx, cancel := context.WithDeadline(ctx, j.sendBy)
	defer cancel()
	d.mu.Lock()
	want := 1
	if hs := d.busy[j.c.WebhookID]; hs != nil {
		want = hs.running + len(hs.queue)
	}
	d.mu.Unlock()
	return d.limits.wait(ctx, j.c.WebhookID, *j.w.RateLimit, want)
}
