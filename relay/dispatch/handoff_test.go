package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

// captureBatch is n captured events of the test company, as capture stores them.
func (b *bundle) captureBatch(n int) store.CaptureBatch {
	var batch store.CaptureBatch
	for range n {
		i := b.seq.Add(1)
		batch.Events = append(batch.Events, store.CaptureEvent{
			SourceKey: fmt.Sprintf("wal:%d:1:%s", i, eventKey), CompanyID: company, EventKey: eventKey,
			Payload: envelope(i), OccurredAt: time.Now(),
		})
	}
	return batch
}

func (b *bundle) leasedBy(t *testing.T, id int64) *string {
	t.Helper()
	var by *string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT leased_by FROM walhook.delivery WHERE id = $1`, id).Scan(&by))
	return by
}

// TestHandoff: the fan-out inserts the deliveries the dispatcher's plan allows already leased to
// it and returns them with their envelopes as stored; Take sends them with no claim (a claim
// could not take them: they are leased). A failing webhook's deliveries and those of a webhook
// the plan skips are left unleased, and the claim path sends them.
func TestHandoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	fresh := b.hook(t, webhook.Webhook{URL: rc.URL + "/fresh"})
	failing := b.hook(t, webhook.Webhook{URL: rc.URL + "/failing"})
	skipped := b.hook(t, webhook.Webhook{URL: rc.URL + "/skipped"})
	_, err := b.pool.Exec(b.ctx, `UPDATE walhook.webhook SET failing_since = now() - interval '1 minute' WHERE id = $1`, failing.ID)
	require.NoError(t, err)

	d := b.run(t, testConfig())
	var plan *store.Handoff
	require.Eventually(t, func() bool { plan = d.HandoffPlan(); return plan != nil }, waitFor, tick)
	require.Regexp(t, "^"+d.ReplicaID()+":[0-9]+$", plan.Token)
	plan.SkipWebhooks = append(plan.SkipWebhooks, skipped.ID)

	batch := b.captureBatch(3)
	batch.Handoff = plan
	res, err := b.st.CaptureCommit(b.ctx, batch)
	require.NoError(t, err)
	require.EqualValues(t, 9, res.Deliveries)
	require.Len(t, res.Handed, 3, "only the fresh webhook's deliveries are handed over")
	for i, c := range res.Handed {
		require.Equal(t, fresh.ID, c.WebhookID)
		require.Equal(t, company, c.CompanyID)
		require.Equal(t, plan.Token, c.LeaseToken)
		var stored string
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT e.payload::text FROM walhook.event e WHERE e.id = $1`, c.EventID).Scan(&stored))
		require.Equal(t, stored, string(c.Payload), "delivery %d: the envelope as stored, which history shows as sent", i)
		require.Equal(t, plan.Token, *b.leasedBy(t, c.ID))
	}
	var notHanded int // inserted unleased (a claim may have taken them since, under its own token)
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery WHERE webhook_id = ANY($1) AND leased_by IS DISTINCT FROM $2`,
		[]int64{failing.ID, skipped.ID}, plan.Token).Scan(&notHanded))
	require.Equal(t, 6, notHanded)

	d.Take(b.ctx, res.Handed)
	for _, c := range res.Handed {
		got := b.waitState(t, c.ID, webhook.DeliverySucceeded)
		require.Equal(t, 1, got.Attempts)
		require.Nil(t, b.leasedBy(t, c.ID))
	}
	var ids []int64
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT array_agg(id) FROM walhook.delivery WHERE webhook_id <> $1`, fresh.ID).Scan(&ids))
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	hits := map[string]int{}
	for _, r := range rc.requests() {
		hits[r.URL]++
	}
	require.Equal(t, map[string]int{"/fresh": 3, "/failing": 3, "/skipped": 3}, hits)
}

// TestHandoffStopped: a dispatcher that is not running plans nothing, and deliveries handed to
// it after it stopped are given back (lease released) for any replica to claim, unsent.
func TestHandoffStopped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.hook(t, webhook.Webhook{URL: rc.URL})
	d, err := dispatch.New(testConfig(), b.st, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.Nil(t, d.HandoffPlan(), "not running")

	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var plan *store.Handoff
	require.Eventually(t, func() bool { plan = d.HandoffPlan(); return plan != nil }, waitFor, tick)
	cancel()
	require.NoError(t, <-done)
	require.Nil(t, d.HandoffPlan(), "stopped")
	// A fan-out that committed under the plan while the dispatcher stopped (after it left the
	// replicas, so nothing else would release these leases).
	batch := b.captureBatch(2)
	batch.Handoff = plan
	res, err := b.st.CaptureCommit(b.ctx, batch)
	require.NoError(t, err)
	require.Len(t, res.Handed, 2)
	for _, c := range res.Handed {
		require.NotNil(t, b.leasedBy(t, c.ID))
	}

	d.Take(b.ctx, res.Handed)
	for _, c := range res.Handed {
		require.Nil(t, b.leasedBy(t, c.ID), "given back")
		got, err := storetest.DeliveryGetByID(b.ctx, b.st, c.ID)
		require.NoError(t, err)
		require.Equal(t, webhook.DeliveryPending, got.State)
	}
	require.Zero(t, rc.hits.Load())
}

// TestHandoffPlanBounds: the fan-out hands over at most the plan's limit, at most PerWebhook of
// a webhook (or its share, when listed), none of a rate-limited webhook or a skipped company, in
// delivery order; the rest is inserted unleased.
func TestHandoffPlanBounds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.hook(t, webhook.Webhook{URL: "https://a.example.com/"})
	s := b.hook(t, webhook.Webhook{URL: "https://s.example.com/"})
	plan := &store.Handoff{Token: "test:1", Lease: time.Minute, Limit: 4, PerWebhook: 3, Shares: map[int64]int{s.ID: 1}}
	batch := b.captureBatch(5)
	batch.Handoff = plan
	res, err := b.st.CaptureCommit(b.ctx, batch)
	require.NoError(t, err)
	require.EqualValues(t, 10, res.Deliveries)
	perHook := map[int64]int{}
	for i, c := range res.Handed {
		perHook[c.WebhookID]++
		if i > 0 {
			require.Greater(t, c.ID, res.Handed[i-1].ID, "in delivery order")
		}
	}
	require.Equal(t, map[int64]int{a.ID: 3, s.ID: 1}, perHook)
	var leased int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM walhook.delivery WHERE leased_by = 'test:1' AND lease_until > now()`).Scan(&leased))
	require.Equal(t, 4, leased)

	// A rate-limited webhook's deliveries wait for tokens under claims: never handed.
	_, err = b.pool.Exec(b.ctx, `UPDATE walhook.webhook SET rate_limit = 50 WHERE id = $1`, s.ID)
	require.NoError(t, err)
	plan = &store.Handoff{Token: "test:3", Lease: time.Minute, Limit: 100, PerWebhook: 100}
	batch = b.captureBatch(2)
	batch.Handoff = plan
	res, err = b.st.CaptureCommit(b.ctx, batch)
	require.NoError(t, err)
	require.EqualValues(t, 4, res.Deliveries)
	require.Len(t, res.Handed, 2)
	for _, c := range res.Handed {
		require.Equal(t, a.ID, c.WebhookID)
	}

	plan = &store.Handoff{Token: "test:2", Lease: time.Minute, Limit: 100, PerWebhook: 100, SkipCompanies: []string{company}}
	batch = b.captureBatch(2)
	batch.Handoff = plan
	res, err = b.st.CaptureCommit(b.ctx, batch)
	require.NoError(t, err)
	require.EqualValues(t, 4, res.Deliveries)
	require.Empty(t, res.Handed, "the company is at its share")
}
