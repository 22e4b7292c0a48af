package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// Quotas are per-company limits, so that one company (or one stolen manager token) cannot fill
// the database or make the fan-out and the listing slow for everyone: the fan-out reads every
// active webhook of an event's company, and one capture leader fans out every company's events. A
// request past a limit answers 409 (a count) or 422 (a list in the body) with the limit's name and
// value, and stores nothing. Counts are checked and the row inserted in one transaction holding the
// company's row lock (store.QuotaCount), so concurrent creates cannot overshoot.
type Quotas struct {
	// Webhooks per company. Default 500.
	Webhooks int
	// OAuthCredentials per company. Default 100.
	OAuthCredentials int
	// APITokens active (not revoked, not expired) per company, web sign-ins included; only
	// POST /v1/tokens is refused past it. Default 100.
	APITokens int
	// HeadersPerWebhook custom headers per webhook. Default and most webhook.MaxHeaders (50).
	HeadersPerWebhook int
	// ParamsPerWebhook selected parameters per webhook. Default and most webhook.MaxParams (100).
	ParamsPerWebhook int
}

// Default quotas.
const (
	DefaultWebhookQuota = 500
	DefaultOAuthQuota   = 100
	DefaultTokenQuota   = 100
)

// quotaProblem is the problem type of an answer past a quota.
const quotaProblem = "urn:walhook:problem:quota"

// The list quotas' names (the counted ones are store.Quota).
const (
	quotaHeaders = "headers_per_webhook"
	quotaParams  = "params_per_webhook"
)

func (q *Quotas) defaults() {
	set := func(p *int, def, most int) {
		if *p <= 0 {
			*p = def
		}
		*p = min(*p, most)
	}
	set(&q.Webhooks, DefaultWebhookQuota, 1<<30)
	set(&q.OAuthCredentials, DefaultOAuthQuota, 1<<30)
	set(&q.APITokens, DefaultTokenQuota, 1<<30)
	set(&q.HeadersPerWebhook, webhook.MaxHeaders, webhook.MaxHeaders)
	set(&q.ParamsPerWebhook, webhook.MaxParams, webhook.MaxParams)
}

func (q Quotas) max(kind store.Quota) int {
	switch kind {
	case store.QuotaWebhooks:
		return q.Webhooks
	case store.QuotaOAuthCredentials:
		return q.OAuthCredentials
	default:
		return q.APITokens
	}
}

// quotaNoun is what a counted quota counts, for the message.
var quotaNoun = map[store.Quota]string{
	store.QuotaWebhooks:         "webhooks",
	store.QuotaOAuthCredentials: "OAuth credentials",
	store.QuotaAPITokens:        "active API tokens",
}

// checkQuota locks the company and refuses one more object of kind when the company is at its
// limit. Call it inside the transaction that inserts the object, before the insert.
func (s *Server) checkQuota(ctx context.Context, tx *store.Store, companyID string, kind store.Quota) error {
	n, err := tx.QuotaCount(ctx, companyID, kind)
	if err != nil {
		return err
	}
	if limit := s.cfg.Quotas.max(kind); n >= int64(limit) {
		hint := "delete some first, or ask the operator to raise the limit"
		if kind == store.QuotaAPITokens {
			hint = "revoke some first, or ask the operator to raise the limit"
		}
		return &problem{Type: quotaProblem, Status: http.StatusConflict, Limit: string(kind), Max: limit,
			Detail: fmt.Sprintf("the company has reached its limit of %d %s (%s); %s", limit, quotaNoun[kind], kind, hint)}
	}
	return nil
}

// checkListQuotas refuses a webhook with more headers or parameters than the quotas allow.
func (s *Server) checkListQuotas(w *webhook.Webhook) error {
	for _, l := range []struct {
		field, noun, name string
		n, max            int
	}{
		{"headers", "headers", quotaHeaders, len(w.Headers), s.cfg.Quotas.HeadersPerWebhook},
		{"params", "parameters", quotaParams, len(w.Params), s.cfg.Quotas.ParamsPerWebhook},
	} {
		if l.n > l.max {
			return &problem{Status: http.StatusUnprocessableEntity, Limit: l.name, Max: l.max,
				Detail: fmt.Sprintf("a webhook may have at most %d %s (%s)", l.max, l.noun, l.name),
				Errors: []webhook.FieldError{{Field: l.field, Message: fmt.Sprintf("must have at most %d %s (limit %s)", l.max, l.noun, l.name)}}}
		}
	}
	return nil
}
