package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

// MaxResyncBatch bounds a bulk resync: at most this many failed deliveries are queued again by
// one request; the caller repeats it for more.
const MaxResyncBatch = 10000

// ErrBusy: the delivery is being sent right now (pending with a live lease), so it cannot be
// resynced until that attempt ends.
var ErrBusy = errors.New("delivery is being sent")

// DeliveryCounts are a webhook's deliveries by state; Triggered is their sum.
type DeliveryCounts struct {
	Triggered int64 `json:"triggered"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Pending   int64 `json:"pending"`
}

// HistoryFilter narrows a webhook's history. Zero fields match everything.
type HistoryFilter struct {
	State *webhook.DeliveryState
	Since *time.Time // created_at >= Since
	Until *time.Time // created_at < Until
	// Before is the keyset cursor: rows strictly older than (BeforeAt, BeforeID).
	BeforeAt *time.Time
	BeforeID int64
	Limit    int // default and maximum 500
}

// HistoryDelivery is one row of a webhook's history.
type HistoryDelivery struct {
	ID             int64
	WebhookID      int64
	EventID        int64
	EventPublicID  string // the envelope's id ("evt_…"); "" when it has none
	LastURL        string // the URL the latest attempt was sent to, masked; "" before the first
	EventKey       string
	State          webhook.DeliveryState
	Attempts       int
	NextAttemptAt  time.Time
	LastStatusCode *int
	LastError      *string
	LastAttemptAt  *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// HistoryAttempt is one HTTP try of a delivery, as dispatch recorded it.
type HistoryAttempt struct {
	ID              int64
	N               int
	StartedAt       time.Time
	DurationMS      int
	RequestMethod   string
	RequestURL      string
	RequestHeaders  json.RawMessage
	RequestBody     string
	ResponseStatus  *int
	ResponseHeaders json.RawMessage
	ResponseBody    *string
	Error           *string
	Outcome         webhook.Outcome
	Trigger         string
}

// HistoryDetail is one delivery with its event's envelope, the request as last built and every
// attempt.
type HistoryDetail struct {
	HistoryDelivery
	LeaseUntil      *time.Time
	Request         json.RawMessage // {"method","url","headers","body"} of the latest attempt, nil before the first
	Event           json.RawMessage // the envelope
	EventOccurredAt time.Time
	AttemptList     []HistoryAttempt
}

// HistoryBucket is one bucket of a webhook's delivery series.
type HistoryBucket struct {
	At time.Time `json:"at"`
	DeliveryCounts
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}

func statePtr(s *webhook.DeliveryState) *string {
	if s == nil {
		return nil
	}
	v := string(*s)
	return &v
}

// HistoryList returns a page of a webhook's deliveries, newest first, and the totals by state in
// the filter's time range (the state filter and cursor do not narrow the totals).
func (s *Store) HistoryList(ctx context.Context, companyID string, webhookID int64, f HistoryFilter) ([]HistoryDelivery, DeliveryCounts, error) {
	if f.Limit <= 0 || f.Limit > maxWebhookListPerPage {
		f.Limit = maxWebhookListPerPage
	}
	rows, err := s.q.DeliveryHistoryList(ctx, dbsqlc.DeliveryHistoryListParams{
		CompanyID: companyID, WebhookID: webhookID, State: statePtr(f.State), Since: f.Since, Until: f.Until,
		BeforeAt: f.BeforeAt, BeforeID: f.BeforeID, MaxRows: int32(f.Limit),
	})
	if err != nil {
		return nil, DeliveryCounts{}, mapErr(err)
	}
	t, err := s.q.DeliveryHistoryTotals(ctx, dbsqlc.DeliveryHistoryTotalsParams{
		CompanyID: companyID, WebhookID: webhookID, Since: f.Since, Until: f.Until,
	})
	if err != nil {
		return nil, DeliveryCounts{}, mapErr(err)
	}
	out := make([]HistoryDelivery, len(rows))
	for i, r := range rows {
		out[i] = HistoryDelivery{
			ID: r.ID, WebhookID: r.WebhookID, EventID: r.EventID, EventPublicID: r.EventPublicID, EventKey: r.EventKey, LastURL: r.LastUrl,
			State: webhook.DeliveryState(r.State), Attempts: int(r.Attempts), NextAttemptAt: r.NextAttemptAt,
			LastStatusCode: intPtr(r.LastStatusCode), LastError: r.LastError, LastAttemptAt: r.LastAttemptAt,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		}
	}
	return out, DeliveryCounts{Triggered: t.Triggered, Succeeded: t.Succeeded, Failed: t.Failed, Pending: t.Pending}, nil
}

// HistorySeries buckets a webhook's deliveries created in [since, until) by bucket ("hour" or
// "day"); empty buckets are left out.
func (s *Store) HistorySeries(ctx context.Context, companyID string, webhookID int64, bucket string, since, until time.Time) ([]HistoryBucket, error) {
	if bucket != "hour" && bucket != "day" {
		return nil, &ConstraintError{Kind: ErrInvalid, Constraint: "bucket", Detail: "want hour or day"}
	}
	rows, err := s.q.DeliveryHistorySeries(ctx, dbsqlc.DeliveryHistorySeriesParams{
		Bucket: bucket, CompanyID: companyID, WebhookID: webhookID, Since: since, Until: until,
	})
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]HistoryBucket, len(rows))
	for i, r := range rows {
		out[i] = HistoryBucket{At: r.At, DeliveryCounts: DeliveryCounts{
			Triggered: r.Triggered, Succeeded: r.Succeeded, Failed: r.Failed, Pending: r.Pending,
		}}
	}
	return out, nil
}

// HistoryGet returns one delivery of a company with its envelope, request and attempts.
func (s *Store) HistoryGet(ctx context.Context, companyID string, id int64) (HistoryDetail, error) {
	r, err := s.q.DeliveryHistoryGet(ctx, dbsqlc.DeliveryHistoryGetParams{CompanyID: companyID, ID: id})
	if err != nil {
		return HistoryDetail{}, mapErr(err)
	}
	d := HistoryDetail{
		HistoryDelivery: HistoryDelivery{
			ID: r.ID, WebhookID: r.WebhookID, EventID: r.EventID, EventPublicID: r.EventPublicID, EventKey: r.EventKey,
			State: webhook.DeliveryState(r.State), Attempts: int(r.Attempts), NextAttemptAt: r.NextAttemptAt,
			LastStatusCode: intPtr(r.LastStatusCode), LastError: r.LastError, LastAttemptAt: r.LastAttemptAt,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		},
		LeaseUntil: r.LeaseUntil, Request: r.Request, Event: r.EventPayload, EventOccurredAt: r.EventOccurredAt,
	}
	atts, err := s.q.DeliveryHistoryAttempts(ctx, dbsqlc.DeliveryHistoryAttemptsParams{CompanyID: companyID, DeliveryID: id})
	if err != nil {
		return HistoryDetail{}, mapErr(err)
	}
	d.AttemptList = make([]HistoryAttempt, len(atts))
	for i, a := range atts {
		if a.BodyIsEvent {
			a.RequestBody = string(r.EventPayload)
		}
		d.AttemptList[i] = HistoryAttempt{
			ID: a.ID, N: int(a.N), StartedAt: a.StartedAt, DurationMS: int(a.DurationMs),
			RequestMethod: a.RequestMethod, RequestURL: a.RequestUrl, RequestHeaders: a.RequestHeaders,
			RequestBody: a.RequestBody, ResponseStatus: intPtr(a.ResponseStatus), ResponseHeaders: a.ResponseHeaders,
			ResponseBody: a.ResponseBody, Error: a.Error, Outcome: webhook.Outcome(a.Outcome), Trigger: a.Trigger,
		}
	}
	if n := len(d.AttemptList); n > 0 {
		d.LastURL = d.AttemptList[n-1].RequestURL
	}
	return d, nil
}

// HistoryResync puts one delivery of a company back in the queue, due now, with the same event,
// payload and webhook-id, and wakes the dispatchers when the transaction commits. A delivery being
// sent right now is ErrBusy; one of another company is ErrNotFound.
func (s *Store) HistoryResync(ctx context.Context, companyID string, id int64) error {
	return s.Tx(ctx, func(tx *Store) error {
		if _, err := tx.q.DeliveryResync(ctx, dbsqlc.DeliveryResyncParams{CompanyID: companyID, ID: id}); err != nil {
			err = mapErr(err)
			if errors.Is(err, ErrNotFound) {
				if _, gerr := tx.q.DeliveryHistoryGet(ctx, dbsqlc.DeliveryHistoryGetParams{CompanyID: companyID, ID: id}); gerr == nil {
					return ErrBusy
				}
			}
			return err
		}
		return mapErr(tx.q.DeliveriesChangedNotify(ctx))
	})
}

// HistoryResyncFailed queues again up to MaxResyncBatch failed deliveries of a webhook created in
// [since, until), oldest first, and answers how many.
func (s *Store) HistoryResyncFailed(ctx context.Context, companyID string, webhookID int64, since, until time.Time) (int64, error) {
	var n int64
	err := s.Tx(ctx, func(tx *Store) error {
		var err error
		n, err = tx.q.DeliveryResyncFailed(ctx, dbsqlc.DeliveryResyncFailedParams{
			CompanyID: companyID, WebhookID: webhookID, Since: since, Until: until, MaxRows: MaxResyncBatch,
		})
		if err != nil {
			return mapErr(err)
		}
		if n > 0 {
			return mapErr(tx.q.DeliveriesChangedNotify(ctx))
		}
		return nil
	})
	return n, err
}

// EventLatestPayload returns the envelope of a company's newest event of a type (ErrNotFound when
// there is none), for test sends.
func (s *Store) EventLatestPayload(ctx context.Context, companyID, eventKey string) (json.RawMessage, error) {
	p, err := s.q.EventLatestPayload(ctx, dbsqlc.EventLatestPayloadParams{CompanyID: companyID, EventKey: eventKey})
	return p, mapErr(err)
}
