package store

import (
	"context"
	"fmt"
)

// Quota is a per-company count limit the admin API enforces: what is counted.
type Quota string

// The counted quotas.
const (
	QuotaWebhooks         Quota = "webhooks_per_company"
	QuotaOAuthCredentials Quota = "oauth_credentials_per_company"
	QuotaAPITokens        Quota = "api_tokens_per_company" // active: not revoked, not expired
)

// QuotaCount locks the company's row until the surrounding transaction ends and returns how many
// objects of kind q the company has. Called inside Tx before the insert it guards, it makes the
// check and the insert one step: a concurrent request of the same company waits for the lock and
// then counts the row this one inserted. An unknown company is ErrNotFound.
func (s *Store) QuotaCount(ctx context.Context, companyID string, q Quota) (int64, error) {
	if _, err := s.q.CompanyLockForQuota(ctx, companyID); err != nil {
		return 0, mapErr(err)
	}
	var n int64
	var err error
	switch q {
	case QuotaWebhooks:
		n, err = s.q.WebhookCountByCompany(ctx, companyID)
	case QuotaOAuthCredentials:
		n, err = s.q.OAuthCredentialCountByCompany(ctx, companyID)
	case QuotaAPITokens:
		n, err = s.q.APITokenCountActive(ctx, companyID)
	default:
		return 0, fmt.Errorf("count quota %q: unknown quota", q)
	}
	return n, mapErr(err)
}
