package dispatch_test

import (
	"time"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func storeClaim(token string, lease time.Duration) store.ClaimParams {
	return store.ClaimParams{Limit: 10, PerWebhook: 10, Lease: lease, Token: token}
}

func lateResult(c store.Claimed) []store.AttemptResult {
	e := "late"
	return []store.AttemptResult{{
		DeliveryID: c.ID, EventAt: c.EventAt, LeaseToken: c.LeaseToken, CompanyID: c.CompanyID, WebhookID: c.WebhookID,
		N: c.Attempts + 1, StartedAt: time.Now(), RequestMethod: "POST", RequestURL: "http://late",
		Error: &e, Outcome: webhook.OutcomeFailed, Trigger: "auto", State: webhook.DeliveryFailed,
	}}
}
