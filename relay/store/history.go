package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
	// EventKey is one trigger event type.
	EventKey *string
	// EventPublicID is an event's public id ("evt_…"): the webhook's delivery of that event.
	EventPublicID *string
	// StatusMin and StatusMax bound the last HTTP status (both set or both nil); NoResponse asks
	// for deliveries tried at least once that got no HTTP status at all.
	StatusMin, StatusMax *int
	NoResponse           bool
	Since                *time.Time // created_at >= Since
	Until                *time.Time // created_at < Until
	// Text is a case-insensitive substring of the event's envelope, at most MaxHistoryText
	// characters; only MaxHistoryScan rows passing the other filters are searched per page.
	Text *string
	// Before is the keyset cursor: rows strictly older than (BeforeAt, BeforeID).
	BeforeAt *time.Time
	BeforeID int64
	Limit    int // default and maximum 500
}

// MaxHistoryText bounds a history text search's needle, in characters.
const MaxHistoryText = 200

// MaxHistoryScan bounds a history text search: one page searches the envelopes of at most this
// many deliveries (those passing the other filters, newest first) and says where it stopped.
const MaxHistoryScan = 2000

// HistoryPage is a page of a webhook's history.
type HistoryPage struct {
	Items []HistoryDelivery
	// More: rows beyond Items may match; continue after Items' last row, or after ScanEnd when
	// Truncated.
	More bool
	// Truncated: the text search stopped at its bound (MaxHistoryScan rows) before the page was
	// full; ScanEndAt and ScanEndID are the last row it read, where the next page starts.
	Truncated bool
	ScanEndAt time.Time
	ScanEndID int64
	Scanned   int64
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
// the filter's time range (the other filters and the cursor do not narrow the totals). Limit rows
// at most; More says whether the listing goes on.
func (s *Store) HistoryList(ctx context.Context, companyID string, webhookID int64, f HistoryFilter) (HistoryPage, DeliveryCounts, error) {
	if f.Limit <= 0 || f.Limit > maxWebhookListPerPage {
		f.Limit = maxWebhookListPerPage
	}
	p := dbsqlc.DeliveryHistoryListParams{
		CompanyID: companyID, WebhookID: webhookID, State: statePtr(f.State), EventKey: f.EventKey,
		StatusMin: int32Ptr(f.StatusMin), StatusMax: int32Ptr(f.StatusMax), NoResponse: f.NoResponse,
		Since: f.Since, Until: f.Until, BeforeAt: f.BeforeAt, BeforeID: f.BeforeID, Text: f.Text,
		// One row more than the page tells whether there is a next one.
		MaxRows: int64(f.Limit) + 1, ScanRows: int32(f.Limit) + 1,
	}
	if f.Text != nil {
		p.ScanRows = MaxHistoryScan
	}
	// Both listing queries filter on "@x IS NULL OR …": see customPlan.
	q := dbsqlc.New(customPlan{s.db})
	t, err := q.DeliveryHistoryTotals(ctx, dbsqlc.DeliveryHistoryTotalsParams{
		CompanyID: companyID, WebhookID: webhookID, Since: f.Since, Until: f.Until,
	})
	if err != nil {
		return HistoryPage{}, DeliveryCounts{}, mapErr(err)
	}
	totals := DeliveryCounts{Triggered: t.Triggered, Succeeded: t.Succeeded, Failed: t.Failed, Pending: t.Pending}
	if f.EventPublicID != nil {
		// The event's deliveries (one per webhook) are found by index; the listing is then
		// narrowed to them and to their creation times, so it reads an index range of a row or two.
		found, err := s.q.DeliveryHistoryFindByEvent(ctx, dbsqlc.DeliveryHistoryFindByEventParams{
			CompanyID: companyID, WebhookID: webhookID, EventPublicID: *f.EventPublicID,
		})
		if err != nil {
			return HistoryPage{}, DeliveryCounts{}, mapErr(err)
		}
		if len(found) == 0 {
			return HistoryPage{Items: []HistoryDelivery{}}, totals, nil
		}
		p.DeliveryIds = make([]int64, len(found))
		lo, hi := found[0].CreatedAt, found[0].CreatedAt
		for i, d := range found {
			p.DeliveryIds[i] = d.ID
			lo, hi = minTime(lo, d.CreatedAt), maxTime(hi, d.CreatedAt)
		}
		hi = hi.Add(time.Microsecond) // until is exclusive; PostgreSQL keeps microseconds
		if p.Since == nil || p.Since.Before(lo) {
			p.Since = &lo
		}
		if p.Until == nil || p.Until.After(hi) {
			p.Until = &hi
		}
	}
	rows, err := q.DeliveryHistoryList(ctx, p)
	if err != nil {
		return HistoryPage{}, DeliveryCounts{}, mapErr(err)
	}
	page := HistoryPage{Items: make([]HistoryDelivery, 0, len(rows))}
	for _, r := range rows {
		if r.ScanEnd {
			page.Scanned, page.ScanEndAt, page.ScanEndID = r.Scanned, r.CreatedAt, r.ID
		}
		if !r.Matched {
			continue
		}
		page.Items = append(page.Items, HistoryDelivery{
			ID: r.ID, WebhookID: r.WebhookID, EventID: r.EventID, EventPublicID: r.EventPublicID, EventKey: r.EventKey, LastURL: r.LastUrl,
			State: webhook.DeliveryState(r.State), Attempts: int(r.Attempts), NextAttemptAt: r.NextAttemptAt,
			LastStatusCode: intPtr(r.LastStatusCode), LastError: r.LastError, LastAttemptAt: r.LastAttemptAt,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})
	}
	switch {
	case len(page.Items) > f.Limit:
		page.Items, page.More = page.Items[:f.Limit], true
	case page.Scanned == int64(p.ScanRows):
		// Every scanned row was read and the page is not full: more rows may match beyond.
		page.More, page.Truncated = true, true
	}
	return page, totals, nil
}

// customPlan runs queries as unnamed statements (pgx.QueryExecModeCacheDescribe), which
// PostgreSQL plans with the parameters' values every time. It is for queries with optional
// filters ("@x IS NULL OR d.x = @x"): the planner folds the NULL ones away and uses the index the
// rest allow. A prepared statement switches to a generic plan after five runs, which cannot fold
// them, estimates a handful of rows and reads a whole index range before sorting.
type customPlan struct{ dbsqlc.DBTX }

func (c customPlan) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return c.DBTX.Query(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

func (c customPlan) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return c.DBTX.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
}

func int32Ptr(v *int) *int32 {
	if v == nil {
		return nil
	}
	n := int32(*v)
	return &n
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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

// TestPayloadSource says which envelope a test send of an event type carries (TestPayload).
type TestPayloadSource string

// Test payload sources: the values of the API's payload parameter.
const (
	// TestPayloadAuto: the latest event when the company has one of the type, else the sample.
	TestPayloadAuto TestPayloadSource = ""
	// TestPayloadLatest: the company's newest event of the type; ErrNoEvent when there is none.
	TestPayloadLatest TestPayloadSource = "latest"
	// TestPayloadSample: the catalog's sample of the type in an envelope.
	TestPayloadSample TestPayloadSource = "sample"
)

// Valid reports whether src is one of the test payload sources.
func (src TestPayloadSource) Valid() bool {
	return src == TestPayloadAuto || src == TestPayloadLatest || src == TestPayloadSample
}

// ErrNoEvent: TestPayload with TestPayloadLatest, and no event of the type has been captured for
// the company.
var ErrNoEvent = errors.New("no event of the type captured for the company yet")

// TestPayload returns the envelope a test send of an event type carries for a company, from src:
// the company's newest captured event of the type (as it was sent), or the catalog's sample
// (data {} when the type has none) in an envelope of its own, with a random id "evt_test_…" that
// no captured event has, occurring now. The admin API's test sends use it.
func (s *Store) TestPayload(ctx context.Context, companyID, eventKey string, src TestPayloadSource) (json.RawMessage, error) {
	if !src.Valid() {
		return nil, fmt.Errorf("%w: test payload source %q", ErrInvalid, src)
	}
	if src != TestPayloadSample {
		p, err := s.q.EventLatestPayload(ctx, dbsqlc.EventLatestPayloadParams{CompanyID: companyID, EventKey: eventKey})
		switch err = mapErr(err); {
		case err == nil:
			return p, nil
		case !errors.Is(err, ErrNotFound):
			return nil, fmt.Errorf("look up latest event: %w", err)
		case src == TestPayloadLatest:
			return nil, ErrNoEvent
		}
	}
	et, err := s.EventTypeGet(ctx, eventKey)
	if err != nil {
		return nil, fmt.Errorf("look up event type: %w", err)
	}
	data := et.Sample
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	p, err := json.Marshal(webhook.Envelope{
		ID: "evt_test_" + strings.ToLower(rand.Text()[:16]), Type: eventKey, CompanyID: companyID,
		OccurredAt: time.Now().UTC(), Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode sample envelope: %w", err)
	}
	return p, nil
}

// ReplayMode is what a replay of a window sends again.
type ReplayMode string

// Replay modes.
const (
	// ReplayAll: every event of the window, except those whose delivery is already pending.
	ReplayAll ReplayMode = "all"
	// ReplayFailed: the events whose delivery to the webhook ended failed.
	ReplayFailed ReplayMode = "failed"
	// ReplayNeverSent: the events with no delivery to the webhook.
	ReplayNeverSent ReplayMode = "never_sent"
)

// MaxReplay bounds one replay: a window that would queue more is refused, so one click never
// floods a receiver or the queue; the caller narrows the window.
const MaxReplay = 10000

// MaxReplayWindow bounds a replay's [since, until).
const MaxReplayWindow = 31 * 24 * time.Hour

// Replay is a window of a webhook's trigger events to send again.
type Replay struct {
	WebhookID int64
	// EventKeys are the webhook's trigger events.
	EventKeys    []string
	Since, Until time.Time // occurred_at in [Since, Until)
	Mode         ReplayMode
}

// ReplayCount counts what a replay would queue, up to max (so at most max+1 rows are read), and
// changes nothing.
func (s *Store) ReplayCount(ctx context.Context, companyID string, r Replay, maxRows int) (int64, error) {
	n, err := s.q.DeliveryReplayCount(ctx, dbsqlc.DeliveryReplayCountParams{
		CompanyID: companyID, WebhookID: r.WebhookID, EventKeys: r.EventKeys, Since: r.Since, Until: r.Until,
		Mode: string(r.Mode), MaxRows: int32(maxRows),
	})
	return n, mapErr(err)
}

// ReplayQueue queues a replay, up to maxRows deliveries: new deliveries for the events that have
// none to the webhook (all, never_sent) and finished deliveries back in the queue (all: succeeded
// or failed; failed), and wakes the dispatchers when the transaction commits. A pending delivery
// is never queued twice. It answers how many deliveries it queued.
func (s *Store) ReplayQueue(ctx context.Context, companyID string, r Replay, maxRows int) (int64, error) {
	var n int64
	err := s.Tx(ctx, func(tx *Store) error {
		if r.Mode == ReplayAll || r.Mode == ReplayFailed {
			k, err := tx.q.DeliveryReplayResync(ctx, dbsqlc.DeliveryReplayResyncParams{
				CompanyID: companyID, WebhookID: r.WebhookID, EventKeys: r.EventKeys, Since: r.Since, Until: r.Until,
				FailedOnly: r.Mode == ReplayFailed, MaxRows: int32(maxRows),
			})
			if err != nil {
				return mapErr(err)
			}
			n += k
		}
		if (r.Mode == ReplayAll || r.Mode == ReplayNeverSent) && n < int64(maxRows) {
			k, err := tx.q.DeliveryReplayInsert(ctx, dbsqlc.DeliveryReplayInsertParams{
				CompanyID: companyID, WebhookID: r.WebhookID, EventKeys: r.EventKeys, Since: r.Since, Until: r.Until,
				MaxRows: int32(int64(maxRows) - n),
			})
			if err != nil {
				return mapErr(err)
			}
			n += k
		}
		if n > 0 {
			return mapErr(tx.q.DeliveriesChangedNotify(ctx))
		}
		return nil
	})
	return n, err
}
