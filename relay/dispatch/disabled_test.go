package dispatch_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

// TestDisabledCompanyNotSent: a delivery of a company the platform API disabled is not sent — it
// fails without a request, saying why, as for a webhook that is off — while another company's
// delivery is sent; once the company is enabled, its webhooks send again.
func TestDisabledCompanyNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.st.CompanyCreate(b.ctx, "two", "Company Two")
	require.NoError(t, err)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(http.StatusOK) })
	_, err = b.st.CompanySetDisabled(b.ctx, company, true)
	require.NoError(t, err)
	b.run(t, testConfig())

	off := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, off.ID)[0]
	b.waitState(t, id, webhook.DeliveryFailed)
	as := b.attempts(t, id)
	require.Len(t, as, 1)
	require.Contains(t, *as[0].Error, store.CompanyDisabledReason)
	other := b.hookFor(t, "two", rc.URL)
	b.waitState(t, b.enqueueFor(t, "two", other.ID)[0], webhook.DeliverySucceeded)
	require.EqualValues(t, 1, rc.hits.Load(), "only the enabled company's delivery was sent")
	hw, err := storetest.WebhookGetByID(b.ctx, b.st, off.ID)
	require.NoError(t, err)
	require.True(t, hw.Active, "the webhook itself stays on")

	_, err = b.st.CompanySetDisabled(b.ctx, company, false)
	require.NoError(t, err)
	on := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	b.waitState(t, b.enqueue(t, on.ID)[0], webhook.DeliverySucceeded)
	require.EqualValues(t, 2, rc.hits.Load())
}

// TestDisabledWhileQueued: deliveries already claimed and queued in memory behind a slow request
// when their company is disabled (or their webhook turned off) are not sent: the request in
// flight finishes, the queued deliveries fail without a request, as a claim made after the
// change would.
func TestDisabledWhileQueued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc, _, open := newHeldReceiver(t)
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	ids := b.enqueueEvents(t, 2, w.ID)
	cfg := testConfig()
	cfg.PerWebhook = 1 // the second delivery queues behind the first
	d := b.run(t, cfg)
	require.Eventually(t, func() bool { return rc.hits.Load() == 1 && d.Held() == 2 }, waitFor, tick)

	_, err := b.st.CompanySetDisabled(b.ctx, company, true)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !d.SendsTo(w.ID) }, waitFor, tick, "the change notification reached the dispatcher")
	open()

	b.waitState(t, ids[0], webhook.DeliverySucceeded)
	b.waitState(t, ids[1], webhook.DeliveryFailed)
	as := b.attempts(t, ids[1])
	require.Len(t, as, 1)
	require.Contains(t, *as[0].Error, store.CompanyDisabledReason)
	require.EqualValues(t, 1, rc.hits.Load(), "only the request in flight was sent")
}
