package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

// Claimed is a delivery leased to a dispatcher, with its event's envelope.
type Claimed struct {
	ID        int64
	CompanyID string
	WebhookID int64
	EventID   int64
	// EventAt is the event's occurred_at, the history's partition key (migration 0029): the
	// delivery's row is (ID, EventAt), and its result is recorded by both.
	EventAt      time.Time
	Attempts     int // attempts made so far
	AttemptsBase int // attempts made before the last resync; the schedule restarts there
	ResyncAt     *time.Time
	Payload      json.RawMessage
	CapturedAt   time.Time
	LeaseToken   string
	// Leased is this process's clock just before the statement that leased it ran: the lease
	// (counted by the database from its own now()) lasts at least until Leased + the lease's
	// duration, whatever the skew between the two clocks.
	Leased time.Time
}

// ClaimParams says what DispatchClaim may take.
type ClaimParams struct {
	Limit        int           // deliveries to lease at most
	PerWebhook   int           // of which at most this many per webhook
	Lease        time.Duration // how long the lease lasts
	Token        string        // names this claim in leased_by; results must present it
	SkipWebhooks []int64       // webhooks to leave alone (at their in-flight cap)
	// Shares overrides PerWebhook for some webhooks: at most Shares[id] deliveries of webhook id.
	Shares map[int64]int
	// PerCompany caps the deliveries of one company (0: Limit); Rooms overrides it for some
	// companies, and SkipCompanies are left alone (at their share of the dispatcher's memory).
	PerCompany    int
	Rooms         map[string]int
	SkipCompanies []string
}

// DispatchClaim leases due deliveries (FOR UPDATE SKIP LOCKED) joined with their events.
func (s *Store) DispatchClaim(ctx context.Context, p ClaimParams) ([]Claimed, error) {
	if p.SkipWebhooks == nil {
		p.SkipWebhooks = []int64{}
	}
	shareIDs := make([]int64, 0, len(p.Shares))
	shareCounts := make([]int64, 0, len(p.Shares))
	for id, n := range p.Shares {
		shareIDs = append(shareIDs, id)
		shareCounts = append(shareCounts, int64(n))
	}
	// The per-company cap costs a second window (a sort): the plain claim runs unless a company
	// is to be skipped or has less room than the limit.
	fair := len(p.SkipCompanies) > 0 || (p.PerCompany > 0 && p.PerCompany < p.Limit)
	roomIDs := make([]string, 0, len(p.Rooms))
	roomCounts := make([]int64, 0, len(p.Rooms))
	for id, n := range p.Rooms {
		roomIDs = append(roomIDs, id)
		roomCounts = append(roomCounts, int64(n))
		fair = fair || n < p.Limit
	}
	var rows []dbsqlc.DispatchClaimRow
	var err error
	leased := time.Now()
	if !fair {
		rows, err = s.q.DispatchClaim(ctx, dbsqlc.DispatchClaimParams{
			SkipWebhookIds: p.SkipWebhooks, ScanLimit: int32(4 * p.Limit), PerWebhook: int64(p.PerWebhook),
			ShareWebhookIds: shareIDs, ShareCounts: shareCounts,
			MaxRows: int32(p.Limit), LeaseSeconds: p.Lease.Seconds(), LeaseToken: p.Token,
		})
	} else {
		if p.SkipCompanies == nil {
			p.SkipCompanies = []string{}
		}
		if p.PerCompany <= 0 {
			p.PerCompany = p.Limit
		}
		var fr []dbsqlc.DispatchClaimFairRow
		fr, err = s.q.DispatchClaimFair(ctx, dbsqlc.DispatchClaimFairParams{
			SkipWebhookIds: p.SkipWebhooks, SkipCompanyIds: p.SkipCompanies, ScanLimit: int32(4 * p.Limit),
			PerWebhook: int64(p.PerWebhook), ShareWebhookIds: shareIDs, ShareCounts: shareCounts,
			PerCompany: int64(p.PerCompany), RoomCompanyIds: roomIDs, RoomCounts: roomCounts,
			MaxRows: int32(p.Limit), LeaseSeconds: p.Lease.Seconds(), LeaseToken: p.Token,
		})
		rows = make([]dbsqlc.DispatchClaimRow, len(fr))
		for i, r := range fr {
			rows[i] = dbsqlc.DispatchClaimRow(r)
		}
	}
	if err != nil {
		return nil, mapErr(err)
	}
	// Each event's envelope comes once, on one of its rows; the others share it (read-only).
	payloads := make(map[int64]json.RawMessage, 4)
	for _, r := range rows {
		if len(r.Payload) > 0 && string(r.Payload) != "null" { // an envelope is an object
			payloads[r.EventID] = r.Payload
		}
	}
	out := make([]Claimed, len(rows))
	for i, r := range rows {
		out[i] = Claimed{
			ID: r.ID, CompanyID: r.CompanyID, WebhookID: r.WebhookID, EventID: r.EventID, EventAt: r.EventAt,
			Attempts: int(r.Attempts), AttemptsBase: int(r.AttemptsBase), ResyncAt: r.ResyncAt,
			Payload: payloads[r.EventID], CapturedAt: r.CapturedAt, LeaseToken: p.Token, Leased: leased,
		}
	}
	return out, nil
}

// AttemptResult is one HTTP try and what it does to its delivery, as DispatchRecord writes it.
type AttemptResult struct {
	DeliveryID     int64             `json:"delivery_id"`
	EventAt        time.Time         `json:"event_at"` // the delivery's (Claimed.EventAt)
	LeaseToken     string            `json:"lease_token"`
	CompanyID      string            `json:"company_id"`
	WebhookID      int64             `json:"webhook_id"`
	N              int               `json:"n"` // the delivery's attempt count after this one
	StartedAt      time.Time         `json:"started_at"`
	DurationMS     int64             `json:"duration_ms"`
	RequestMethod  string            `json:"request_method"`
	RequestURL     string            `json:"request_url"`
	RequestHeaders map[string]string `json:"request_headers"` // masked
	RequestBody    string            `json:"request_body"`
	// BodyIsEvent: the body sent was the event's envelope, byte for byte. The attempt then
	// stores no copy of it (RequestBody is ignored); the history reads it from the event.
	BodyIsEvent     bool                  `json:"body_is_event"`
	ResponseStatus  *int                  `json:"response_status"`
	ResponseHeaders map[string]string     `json:"response_headers"`
	ResponseBody    *string               `json:"response_body"`
	Error           *string               `json:"error"`
	Outcome         webhook.Outcome       `json:"outcome"`
	Trigger         string                `json:"trigger"` // auto or resync
	State           webhook.DeliveryState `json:"state"`   // the delivery's state after it
	NextAttemptAt   *time.Time            `json:"next_attempt_at"`
	Gone            bool                  `json:"gone"`          // the endpoint answered 410: turn the webhook off
	TouchWebhook    bool                  `json:"touch_webhook"` // update the webhook's last sent time and status
}

// DisabledWebhook is a webhook DispatchRecord turned off.
type DisabledWebhook struct {
	ID   int64
	Gone bool // by a 410; otherwise for failing since before the cutoff
}

// DispatchRecord writes a batch of attempt results in one statement (attempts, deliveries,
// webhooks) and returns the webhooks it turned off: on a 410, or when failing since before
// failingCutoff. Turning one off notifies walhook_webhooks, so every replica's dispatcher reloads
// the webhooks it has cached (see DispatchListen).
func (s *Store) DispatchRecord(ctx context.Context, results []AttemptResult, failingCutoff time.Time) ([]DisabledWebhook, error) {
	for i := range results {
		r := &results[i]
		if r.EventAt.IsZero() {
			// The delivery's row is (id, event_at): without it the result would match nothing.
			return nil, fmt.Errorf("record delivery %d: %w: no event time (Claimed.EventAt)", r.DeliveryID, ErrInvalid)
		}
		r.RequestBody = dbText(r.RequestBody)
		r.RequestHeaders = dbTextMap(r.RequestHeaders)
		r.ResponseHeaders = dbTextMap(r.ResponseHeaders)
		if r.ResponseBody != nil {
			b := dbText(*r.ResponseBody)
			r.ResponseBody = &b
		}
		if r.Error != nil {
			e := dbText(*r.Error)
			r.Error = &e
		}
	}
	p, err := recordParams(results)
	if err != nil {
		return nil, err
	}
	p.FailingCutoff = failingCutoff
	// Planned with the batch's values every time (customPlan): the batch's size (hundreds of
	// results under load, a few when idle) decides between a hash join and per-row probes, and a
	// generic plan made once, while the week's partition was new, kept probing every partition
	// (an Append rescanned with runtime pruning) per result: 115–135 µs a delivery instead of
	// 44–47 in full-size throughput-cdc runs (auto_explain with ANALYZE).
	rows, err := dbsqlc.New(customPlan{s.db}).DispatchRecord(ctx, p)
	if err != nil {
		return nil, mapErr(err)
	}
	var off []DisabledWebhook
	for _, r := range rows {
		if r.Disabled {
			off = append(off, DisabledWebhook{ID: r.ID, Gone: r.Gone})
		}
	}
	if len(off) > 0 {
		if err := s.q.WebhooksChangedNotify(ctx); err != nil {
			return off, mapErr(err)
		}
	}
	return off, nil
}

// recordParams lays results out as DispatchRecord's typed arrays (JSON only for the header
// maps, as text; "" stands for NULL).
func recordParams(results []AttemptResult) (dbsqlc.DispatchRecordParams, error) {
	n := len(results)
	p := dbsqlc.DispatchRecordParams{
		DeliveryIds: make([]int64, n), EventAts: make([]time.Time, n), LeaseTokens: make([]string, n), CompanyIds: make([]string, n),
		WebhookIds: make([]int64, n), Ns: make([]int32, n), StartedAts: make([]time.Time, n),
		DurationMs: make([]int32, n), RequestMethods: make([]string, n), RequestUrls: make([]string, n),
		RequestHeaders: make([]string, n), RequestBodies: make([]string, n), RequestBodyIsEvent: make([]bool, n), ResponseStatuses: make([]int32, n),
		ResponseHeaders: make([]string, n), ResponseBodies: make([]string, n), Errors: make([]string, n),
		Outcomes: make([]string, n), Triggers: make([]string, n), States: make([]string, n),
		HasNext: make([]bool, n), NextAttemptAts: make([]time.Time, n),
		Gone: make([]bool, n), TouchWebhook: make([]bool, n),
	}
	jsonText := func(v any, null bool) (string, error) {
		if null {
			return "", nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("encode attempt result: %w", err)
		}
		return string(b), nil
	}
	var err error
	for i := range results {
		r := &results[i]
		p.DeliveryIds[i], p.LeaseTokens[i], p.CompanyIds[i], p.WebhookIds[i] = r.DeliveryID, r.LeaseToken, r.CompanyID, r.WebhookID
		p.EventAts[i] = r.EventAt
		p.Ns[i], p.StartedAts[i], p.DurationMs[i] = int32(r.N), r.StartedAt, int32(r.DurationMS)
		p.RequestMethods[i], p.RequestUrls[i], p.RequestBodies[i] = r.RequestMethod, r.RequestURL, r.RequestBody
		if r.BodyIsEvent {
			p.RequestBodies[i], p.RequestBodyIsEvent[i] = "", true
		}
		if p.RequestHeaders[i], err = jsonText(r.RequestHeaders, r.RequestHeaders == nil); err != nil {
			return p, err
		}
		if r.ResponseStatus != nil && *r.ResponseStatus != 0 {
			p.ResponseStatuses[i] = int32(*r.ResponseStatus)
			if r.ResponseBody != nil {
				p.ResponseBodies[i] = *r.ResponseBody
			}
		}
		if p.ResponseHeaders[i], err = jsonText(r.ResponseHeaders, r.ResponseHeaders == nil); err != nil {
			return p, err
		}
		if r.Error != nil {
			p.Errors[i] = *r.Error
		}
		p.Outcomes[i], p.Triggers[i], p.States[i] = string(r.Outcome), r.Trigger, string(r.State)
		if r.NextAttemptAt != nil {
			p.HasNext[i], p.NextAttemptAts[i] = true, *r.NextAttemptAt
		}
		p.Gone[i], p.TouchWebhook[i] = r.Gone, r.TouchWebhook
	}
	return p, nil
}

// dbText makes s storable in a text or jsonb column: valid UTF-8 without NUL characters.
func dbText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

func dbTextMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[dbText(k)] = dbText(v)
	}
	return out
}

// DispatchRelease gives leased deliveries back without an attempt.
func (s *Store) DispatchRelease(ctx context.Context, ids []int64, tokens []string) error {
	_, err := s.q.DispatchRelease(ctx, dbsqlc.DispatchReleaseParams{Ids: ids, LeaseTokens: tokens})
	return mapErr(err)
}

// CompanyDisabledReason is the DisabledReason the relay sees on a webhook of a disabled company.
const CompanyDisabledReason = "the company is disabled"

// DispatchWebhooks returns the webhooks with the given ids, secrets opened (any company: for the
// relay only). A webhook of a disabled company is returned turned off, with CompanyDisabledReason:
// the dispatcher records its due deliveries as not sent, as for any webhook that is off, and a
// member resyncs them once the company is enabled again.
func (s *Store) DispatchWebhooks(ctx context.Context, ids []int64) ([]webhook.Webhook, error) {
	rows, err := s.q.DispatchWebhooks(ctx, ids)
	return rowsOpened(rows, err, func(r dbsqlc.DispatchWebhooksRow) (webhook.Webhook, error) {
		if r.CompanyDisabled {
			reason := CompanyDisabledReason
			r.WalhookWebhook.Active, r.WalhookWebhook.DisabledReason = false, &reason
		}
		return s.webhookFrom(r.WalhookWebhook)
	})
}

// DispatchOAuthCredentials returns the credentials with the given ids, secrets opened (any
// company: for the relay only).
func (s *Store) DispatchOAuthCredentials(ctx context.Context, ids []int64) ([]webhook.OAuthCredential, error) {
	rows, err := s.q.DispatchOAuthCredentials(ctx, ids)
	return rowsOpened(rows, err, s.oauthFrom)
}

// DispatchOAuthTokenSave stores a fetched access token (and a newly issued refresh token, when
// not empty) on the credential, unless the credential changed since c was read.
func (s *Store) DispatchOAuthTokenSave(ctx context.Context, c webhook.OAuthCredential, access, refresh string, expires *time.Time) error {
	p := dbsqlc.DispatchOAuthTokenSaveParams{
		AccessTokenEnc: s.keys.SealString(access, colAccessToken().bind(c.CompanyID, c.ID)), TokenExpiresAt: expires,
		ID: c.ID, UpdatedAt: c.UpdatedAt,
	}
	if refresh != "" {
		p.RefreshTokenEnc = s.keys.SealString(refresh, colRefreshToken().bind(c.CompanyID, c.ID))
	}
	_, err := s.q.DispatchOAuthTokenSave(ctx, p)
	return mapErr(err)
}

// QueueStats is the delivery queue's depth for the metrics.
type QueueStats struct {
	Due, Scheduled, Leased int64
	OldestDue              time.Duration
}

// DispatchQueueStats counts pending deliveries: due, scheduled for later, leased.
func (s *Store) DispatchQueueStats(ctx context.Context) (QueueStats, error) {
	r, err := s.q.DispatchQueueStats(ctx)
	if err != nil {
		return QueueStats{}, mapErr(err)
	}
	return QueueStats{Due: r.Due, Scheduled: r.Scheduled, Leased: r.Leased,
		OldestDue: time.Duration(r.OldestDueSeconds * float64(time.Second))}, nil
}

// DispatchListen listens on walhook_deliveries (new or resynced deliveries) and walhook_webhooks
// (webhook changes) on a connection of its own (see Listener). Close it.
func (s *Store) DispatchListen(ctx context.Context) (*Listener, error) {
	return s.listen(ctx, "listen for deliveries", (*dbsqlc.Queries).DispatchListen, (*dbsqlc.Queries).DispatchListenWebhooks)
}
