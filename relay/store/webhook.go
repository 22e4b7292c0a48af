package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/signature"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

const maxWebhookListPerPage = 500

// splitHeaders stores the headers as JSON and seals the values of the masked ones (marked secret
// or credential-looking: webhook.Header.Masked) in secret_headers_enc, for the webhook's row; see
// splitHidden.
func (s *Store) splitHeaders(company string, id int64, hs []webhook.Header) (json.RawMessage, []byte, error) {
	return s.splitHidden(colSecretHeaders(), company, id, entriesOf(hs), headerHidden)
}

// joinHeaders puts the sealed values back into the headers. Values that do not open are left
// empty and reported as sealErr.
func (s *Store) joinHeaders(company string, id int64, pj json.RawMessage, sealed []byte) (hs []webhook.Header, sealErr string, err error) {
	es, sealErr, err := s.joinHidden(colSecretHeaders(), company, id, pj, sealed, "the secret header values")
	if err != nil {
		return nil, "", err
	}
	return entriesAs[webhook.Header](es), sealErr, nil
}

func (s *Store) webhookFrom(r dbsqlc.WalhookWebhook) (webhook.Webhook, error) {
	w := webhook.Webhook{
		ID: r.ID, CompanyID: r.CompanyID, Name: r.Name, URL: r.Url, Method: webhook.Method(r.Method),
		EventKeys: r.EventKeys, OAuthID: r.OauthID, RawData: r.RawData, Active: r.Active,
		PreviousSecretExpiresAt: r.PreviousSecretExpiresAt, LastSentAt: r.LastSentAt,
		FailingSince: r.FailingSince, DisabledReason: r.DisabledReason, DisabledAt: r.DisabledAt,
		CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.RateLimit != nil {
		n := int(*r.RateLimit)
		w.RateLimit = &n
	}
	if r.LastStatus != nil {
		st := webhook.Status(*r.LastStatus)
		w.LastStatus = &st
	}
	var err error
	var sealErrs []string
	var sealErr string
	if w.Headers, sealErr, err = s.joinHeaders(r.CompanyID, r.ID, r.Headers, r.SecretHeadersEnc); err != nil {
		return w, err
	}
	if sealErr != "" {
		sealErrs = append(sealErrs, sealErr)
	}
	if err := json.Unmarshal(r.Params, &w.Params); err != nil {
		return w, fmt.Errorf("decode params: %w", err)
	}
	if w.Params == nil {
		w.Params = []webhook.Param{}
	}
	// A secret that does not open is not an error of the read: the webhook is shown (and the
	// relay records a failed attempt) with SealError saying why, rather than failing the whole
	// listing or claim it is part of.
	if w.Secret, err = s.keys.OpenString(r.SigningSecretEnc, colSigningSecret().bind(r.CompanyID, r.ID)); err != nil {
		w.Secret = ""
		sealErrs = append(sealErrs, sealError("the signing secret", err))
	}
	if w.PreviousSecret, err = s.keys.OpenString(r.PreviousSecretEnc, colPrevSecret().bind(r.CompanyID, r.ID)); err != nil {
		w.PreviousSecret = ""
		sealErrs = append(sealErrs, sealError("the previous signing secret", err))
	}
	w.SealError = strings.Join(sealErrs, "; ")
	return w, nil
}

// rateLimit is a webhook's rate limit as its column holds it.
func rateLimit(n *int) *int32 {
	if n == nil {
		return nil
	}
	v := int32(min(*n, math.MaxInt32))
	return &v
}

// WebhookCreate stores a new webhook. A signing secret is generated when w.Secret is empty.
// actor is the member who made it (nil for the system).
func (s *Store) WebhookCreate(ctx context.Context, w webhook.Webhook, actor *int64) (webhook.Webhook, error) {
	// The id first, from the sequence: the secrets are sealed bound to the row.
	id, err := s.q.WebhookNextID(ctx)
	if err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	headers, sealedHeaders, err := s.splitHeaders(w.CompanyID, id, w.Headers)
	if err != nil {
		return webhook.Webhook{}, err
	}
	params, err := json.Marshal(nonNilParams(w.Params))
	if err != nil {
		return webhook.Webhook{}, fmt.Errorf("encode params: %w", err)
	}
	if w.Secret == "" {
		w.Secret = signature.NewSecret()
	}
	r, err := s.q.WebhookCreate(ctx, dbsqlc.WebhookCreateParams{
		ID: id, CompanyID: w.CompanyID, Name: w.Name, Url: w.URL, Method: string(w.Method), EventKeys: w.EventKeys,
		OauthID: w.OAuthID, Headers: headers, SecretHeadersEnc: sealedHeaders, RawData: w.RawData,
		Params: params, Active: w.Active, RateLimit: rateLimit(w.RateLimit), SigningSecretEnc: s.keys.Seal([]byte(w.Secret), colSigningSecret().bind(w.CompanyID, id)),
		CreatedBy: actor,
	})
	if err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	if err := s.q.WebhooksChangedNotify(ctx); err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	return s.webhookFrom(r)
}

// WebhookGet returns a webhook of a company.
func (s *Store) WebhookGet(ctx context.Context, companyID string, id int64) (webhook.Webhook, error) {
	r, err := s.q.WebhookGet(ctx, dbsqlc.WebhookGetParams{CompanyID: companyID, ID: id})
	if err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	return s.webhookFrom(r)
}

// WebhookList returns up to limit webhooks of a company with ids above afterID, by id.
func (s *Store) WebhookList(ctx context.Context, companyID string, afterID int64, limit int) ([]webhook.Webhook, error) {
	if limit <= 0 || limit > maxWebhookListPerPage {
		limit = maxWebhookListPerPage
	}
	rows, err := s.q.WebhookList(ctx, dbsqlc.WebhookListParams{CompanyID: companyID, AfterID: afterID, MaxRows: int32(limit)})
	return rowsOpened(rows, err, s.webhookFrom)
}

// WebhookUpdate replaces a webhook's editable fields. Turning a webhook on clears the reason it
// was turned off.
func (s *Store) WebhookUpdate(ctx context.Context, w webhook.Webhook, actor *int64) (webhook.Webhook, error) {
	headers, sealedHeaders, err := s.splitHeaders(w.CompanyID, w.ID, w.Headers)
	if err != nil {
		return webhook.Webhook{}, err
	}
	params, err := json.Marshal(nonNilParams(w.Params))
	if err != nil {
		return webhook.Webhook{}, fmt.Errorf("encode params: %w", err)
	}
	r, err := s.q.WebhookUpdate(ctx, dbsqlc.WebhookUpdateParams{
		CompanyID: w.CompanyID, ID: w.ID, Name: w.Name, Url: w.URL, Method: string(w.Method),
		EventKeys: w.EventKeys, OauthID: w.OAuthID, Headers: headers, SecretHeadersEnc: sealedHeaders,
		RawData: w.RawData, Params: params, Active: w.Active, RateLimit: rateLimit(w.RateLimit), UpdatedBy: actor,
	})
	if err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	if err := s.q.WebhooksChangedNotify(ctx); err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	return s.webhookFrom(r)
}

// WebhookDelete deletes a webhook of a company with its history.
func (s *Store) WebhookDelete(ctx context.Context, companyID string, id int64) error {
	if err := affected(s.q.WebhookDelete(ctx, dbsqlc.WebhookDeleteParams{CompanyID: companyID, ID: id})); err != nil {
		return err
	}
	return mapErr(s.q.WebhooksChangedNotify(ctx))
}

func nonNilParams(ps []webhook.Param) []webhook.Param {
	if ps == nil {
		return []webhook.Param{}
	}
	return ps
}

// WebhookSort orders the admin listing.
type WebhookSort string

// Listing orders.
const (
	SortByName     WebhookSort = "name"      // name, then id
	SortByLastSent WebhookSort = "last_sent" // most recently sent first, never sent last
)

// WebhookFilter narrows and pages the admin listing. Nil filters match everything.
type WebhookFilter struct {
	EventKey   *string
	Active     *bool
	LastStatus *webhook.Status
	Sort       WebhookSort // default SortByName
	// After is the keyset cursor: the listing continues after this row.
	After *WebhookCursor
	Limit int // default and maximum 500
}

// WebhookCursor is the position of a listing row: its name or last sent time, and its id.
type WebhookCursor struct {
	Name   string
	SentAt time.Time // zero for a webhook never sent
	ID     int64
}

// WebhookWithCounts is a listing row: the webhook and its delivery counts.
type WebhookWithCounts struct {
	webhook.Webhook
	Counts DeliveryCounts
}

// CursorOf is the cursor that continues a listing after w.
func CursorOf(w webhook.Webhook) WebhookCursor {
	c := WebhookCursor{Name: w.Name, ID: w.ID}
	if w.LastSentAt != nil {
		c.SentAt = *w.LastSentAt
	}
	return c
}

// WebhookListPage returns a page of a company's webhooks with their counts.
func (s *Store) WebhookListPage(ctx context.Context, companyID string, f WebhookFilter) ([]WebhookWithCounts, error) {
	if f.Limit <= 0 || f.Limit > maxWebhookListPerPage {
		f.Limit = maxWebhookListPerPage
	}
	var lastStatus *string
	if f.LastStatus != nil {
		v := string(*f.LastStatus)
		lastStatus = &v
	}
	type row struct {
		w                                     dbsqlc.WalhookWebhook
		triggered, succeeded, failed, pending int64
	}
	var rows []row
	switch f.Sort {
	case SortByLastSent:
		p := dbsqlc.WebhookListByLastSentParams{CompanyID: companyID, EventKey: f.EventKey, Active: f.Active, LastStatus: lastStatus, MaxRows: int32(f.Limit)}
		if f.After != nil {
			t := f.After.SentAt
			if t.IsZero() {
				t = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			p.AfterSent, p.AfterID = &t, f.After.ID
		}
		rs, err := s.q.WebhookListByLastSent(ctx, p)
		if err != nil {
			return nil, mapErr(err)
		}
		for _, r := range rs {
			rows = append(rows, row{r.WalhookWebhook, r.Triggered, r.Succeeded, r.Failed, r.Pending})
		}
	case SortByName, "":
		p := dbsqlc.WebhookListByNameParams{CompanyID: companyID, EventKey: f.EventKey, Active: f.Active, LastStatus: lastStatus, MaxRows: int32(f.Limit)}
		if f.After != nil {
			p.AfterName, p.AfterID = &f.After.Name, f.After.ID
		}
		rs, err := s.q.WebhookListByName(ctx, p)
		if err != nil {
			return nil, mapErr(err)
		}
		for _, r := range rs {
			rows = append(rows, row{r.WalhookWebhook, r.Triggered, r.Succeeded, r.Failed, r.Pending})
		}
	default:
		return nil, &ConstraintError{Kind: ErrInvalid, Constraint: "sort", Detail: "want name or last_sent"}
	}
	out := make([]WebhookWithCounts, len(rows))
	for i, r := range rows {
		w, err := s.webhookFrom(r.w)
		if err != nil {
			return nil, err
		}
		out[i] = WebhookWithCounts{Webhook: w, Counts: DeliveryCounts{Triggered: r.triggered, Succeeded: r.succeeded, Failed: r.failed, Pending: r.pending}}
	}
	return out, nil
}

// WebhookCounts returns a webhook's delivery counts by state.
func (s *Store) WebhookCounts(ctx context.Context, companyID string, id int64) (DeliveryCounts, error) {
	r, err := s.q.WebhookCounts(ctx, dbsqlc.WebhookCountsParams{CompanyID: companyID, WebhookID: id})
	return DeliveryCounts{Triggered: r.Triggered, Succeeded: r.Succeeded, Failed: r.Failed, Pending: r.Pending}, mapErr(err)
}

// WebhookRef names a webhook.
type WebhookRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// WebhooksUsingOAuth names the webhooks of a company that use a credential.
func (s *Store) WebhooksUsingOAuth(ctx context.Context, companyID string, oauthID int64) ([]WebhookRef, error) {
	rows, err := s.q.WebhookNamesByOAuth(ctx, dbsqlc.WebhookNamesByOAuthParams{CompanyID: companyID, OauthID: &oauthID})
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]WebhookRef, len(rows))
	for i, r := range rows {
		out[i] = WebhookRef{ID: r.ID, Name: r.Name}
	}
	return out, nil
}

// WebhookRotateSecret gives a webhook a new signing secret; the old one keeps signing (as the
// previous secret) for overlap, so receivers can switch without dropping requests. Call it in a
// transaction when racing rotations matter: the current secret is read, then replaced.
func (s *Store) WebhookRotateSecret(ctx context.Context, companyID string, id int64, overlap time.Duration, actor *int64) (webhook.Webhook, error) {
	cur, err := s.WebhookGet(ctx, companyID, id)
	if err != nil {
		return webhook.Webhook{}, err
	}
	exp := time.Now().Add(overlap)
	r, err := s.q.WebhookRotateSecret(ctx, dbsqlc.WebhookRotateSecretParams{
		PreviousSecretEnc: s.keys.SealString(cur.Secret, colPrevSecret().bind(companyID, id)),
		PreviousExpiresAt: &exp, SigningSecretEnc: s.keys.Seal([]byte(signature.NewSecret()), colSigningSecret().bind(companyID, id)),
		UpdatedBy: actor, CompanyID: companyID, ID: id,
	})
	if err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	if err := s.q.WebhooksChangedNotify(ctx); err != nil {
		return webhook.Webhook{}, mapErr(err)
	}
	return s.webhookFrom(r)
}
