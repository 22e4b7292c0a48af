package dispatch_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// hookFor creates an active webhook of another company on the test event.
func (b *bundle) hookFor(t *testing.T, co, url string) webhook.Webhook {
	t.Helper()
	out, err := b.st.WebhookCreate(b.ctx, webhook.Webhook{
		CompanyID: co, EventKeys: []string{eventKey}, Name: fmt.Sprintf("hook %d", b.seq.Add(1)),
		Method: webhook.MethodPost, URL: url, RawData: true, Active: true,
	}, nil)
	require.NoError(t, err)
	return out
}

// concurrency counts requests in progress at a set of receivers, the most seen at once, and how
// many ended.
type concurrency struct{ now, peak, ended atomic.Int64 }

func (c *concurrency) leave() {
	c.now.Add(-1)
	c.ended.Add(1)
}

func (c *concurrency) enter() {
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// hangingConfig is what the hanging tests run with: 8 workers, 2 per webhook, room for 16
// claimed deliveries. The hanging requests end only when the test releases them (never by
// timeout), so "still hanging, none ended" is what shows the fast deliveries did not wait for
// them.
func hangingConfig() dispatch.Config {
	cfg := testConfig()
	cfg.AttemptTimeout = time.Hour
	cfg.Lease = 4 * time.Hour
	cfg.Workers, cfg.PerWebhook = 8, 2
	cfg.MaxClaimed, cfg.ClaimBatch = 16, 16
	return cfg
}

// hangingHooks creates n webhooks of the test company whose endpoints hang until release is
// called (or the test ends), and counts their requests in hanging.
func (b *bundle) hangingHooks(t *testing.T, n int) (hanging *concurrency, hooks []int64, release func()) {
	t.Helper()
	hanging = &concurrency{}
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	for range n {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
			hanging.enter()
			defer hanging.leave()
			select {
			case <-r.Context().Done():
			case <-released:
			}
		})
		hooks = append(hooks, b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true}).ID)
	}
	return hanging, hooks, release
}

// Company 1 has five webhooks whose endpoints hang and a flood of events for them; company 2 has one fast endpoint. With 8 workers, 2 per webhook, and room for
// 16 claimed deliveries, company 1's hanging requests could take every worker and its queued
// deliveries all the room; company 2's deliveries would then wait for the timeouts. With fair
// shares, company 1 holds at most 7 workers and 12 claimed deliveries, and company 2's ten
// deliveries all succeed while company 1's requests still hang.
func TestHangingCompanyDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.st.CompanyCreate(b.ctx, "c2", "Company Two")
	require.NoError(t, err)
	b.run(t, hangingConfig())

	hanging, hooksA, release := b.hangingHooks(t, 5)
	fast := newReceiver(t, nil)
	hookB := b.hookFor(t, "c2", fast.URL)

	for range 40 {
		b.enqueue(t, hooksA...)
	}
	require.Eventually(t, func() bool { return hanging.now.Load() == 7 }, waitFor, tick, "company 1 fills its share of the workers")

	var ids []int64
	for range 10 {
		ids = append(ids, b.enqueueFor(t, "c2", hookB.ID)...)
	}
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	require.Zero(t, hanging.ended.Load(), "company 2 waited for company 1's hanging requests to end")
	require.EqualValues(t, 7, hanging.peak.Load(), "company 1's hanging requests never take the last worker")
	require.EqualValues(t, 7, hanging.now.Load(), "company 1's requests were still hanging")
	release()
}

// Within a company each webhook gets its share too. Company 1 has five webhooks whose endpoints
// hang, with a flood of events for them, and one fast webhook (already sending: its attempts are
// known to be quick). Its hanging webhooks' queues could fill the company's share of the claimed
// deliveries (12 of 16 while it is the only company), and the company would then be left out of
// every claim until the hanging requests time out; each of its six webhooks may hold only a part
// of the share instead, so the fast webhook's deliveries are claimed and sent while the others
// still hang.
func TestHangingWebhookDoesNotDelayItsCompany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, hangingConfig())

	fast := newReceiver(t, nil)
	quick := b.hook(t, webhook.Webhook{URL: fast.URL, RawData: true})
	b.waitState(t, b.enqueue(t, quick.ID)[0], webhook.DeliverySucceeded)

	hanging, hooks, release := b.hangingHooks(t, 5)
	for range 40 {
		b.enqueue(t, hooks...)
	}
	require.Eventually(t, func() bool { return hanging.now.Load() == 7 }, waitFor, tick, "the hanging webhooks fill the company's share of the workers")

	var ids []int64
	for range 10 {
		ids = append(ids, b.enqueue(t, quick.ID)...)
	}
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	require.Zero(t, hanging.ended.Load(), "the fast webhook waited for its company's hanging requests to end")
	require.EqualValues(t, 7, hanging.now.Load(), "the hanging requests were still hanging")
	release()
}

// The other side of fair shares: the reserve is not wasted. A single busy company whose endpoints
// answer quickly keeps every worker busy.
func TestBusyCompanyUsesAllWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.AttemptTimeout = 5 * time.Second // a quick attempt is one under 500 ms
	cfg.Workers, cfg.PerWebhook = 8, 4
	b.run(t, cfg)
	var c concurrency
	var hooks []int64
	for range 3 {
		rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
			c.enter()
			defer c.now.Add(-1)
			time.Sleep(50 * time.Millisecond) // a receiver that takes a while: the sleep is what is tested
			w.WriteHeader(http.StatusOK)
		})
		hooks = append(hooks, b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true}).ID)
	}
	var ids []int64
	for range 60 {
		ids = append(ids, b.enqueue(t, hooks...)...)
	}
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	require.EqualValues(t, 8, c.peak.Load(), "the busy company used every worker")
}

// The claim takes at most a company's room, and nothing of a company at its share, so the
// deliveries of a company that came due later are claimed in the same statement.
func TestClaimPerCompany(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.st.CompanyCreate(b.ctx, "c2", "Company Two")
	require.NoError(t, err)
	rc := newReceiver(t, nil)
	a1 := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	a2 := b.hook(t, webhook.Webhook{URL: rc.URL + "/2", RawData: true})
	hb := b.hookFor(t, "c2", rc.URL+"/b")
	for range 10 {
		b.enqueue(t, a1.ID, a2.ID) // company 1's come due first
	}
	for range 3 {
		b.enqueueFor(t, "c2", hb.ID)
	}
	count := func(cs []store.Claimed) map[string]int {
		out := map[string]int{}
		for _, c := range cs {
			out[c.CompanyID]++
		}
		return out
	}
	claim := func(token string, p store.ClaimParams) map[string]int {
		p.Limit, p.PerWebhook, p.Lease, p.Token = 20, 20, time.Minute, token
		cs, err := b.st.DispatchClaim(b.ctx, p)
		require.NoError(t, err)
		for _, c := range cs {
			require.NoError(t, b.st.DispatchRelease(b.ctx, []int64{c.ID}, []string{token}))
		}
		return count(cs)
	}
	require.Equal(t, map[string]int{company: 20}, claim("t:1", store.ClaimParams{}), "without a company cap the earliest 20 are company 1's")
	require.Equal(t, map[string]int{company: 6, "c2": 3}, claim("t:2", store.ClaimParams{PerCompany: 6}))
	require.Equal(t, map[string]int{company: 2, "c2": 3}, claim("t:3", store.ClaimParams{PerCompany: 6, Rooms: map[string]int{company: 2}}))
	require.Equal(t, map[string]int{"c2": 3}, claim("t:4", store.ClaimParams{SkipCompanies: []string{company}}))
}
