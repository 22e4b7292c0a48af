package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// deliveryJSON is one row of a webhook's history. Deliveries and events are named by public ids:
// row ids come from sequences shared by every company and would tell how many deliveries the
// whole platform makes.
type deliveryJSON struct {
	// ID is the delivery's public id ("msg_…"), also its webhook-id header.
	ID        string `json:"id"`
	WebhookID int64  `json:"webhook_id"`
	// EventID is the event envelope's id ("evt_…"), null when the envelope has none.
	EventID *string `json:"event_id"`
	Event   string  `json:"event"`
	// URL is where the latest attempt was sent, as sent (credential values masked), null before
	// the first: the webhook's URL may have changed since.
	URL            *string               `json:"url"`
	State          webhook.DeliveryState `json:"state"`
	Attempts       int                   `json:"attempts"`
	NextAttemptAt  *time.Time            `json:"next_attempt_at"`
	LastStatusCode *int                  `json:"last_status_code"`
	LastError      *string               `json:"last_error"`
	LastAttemptAt  *time.Time            `json:"last_attempt_at"`
	CreatedAt      time.Time             `json:"created_at"`
	UpdatedAt      time.Time             `json:"updated_at"`
}

func deliveryOut(ids *store.PublicIDs, company string, d store.HistoryDelivery) deliveryJSON {
	out := deliveryJSON{
		ID: ids.Delivery(company, d.ID), WebhookID: d.WebhookID, Event: d.EventKey, State: d.State,
		Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		LastAttemptAt: d.LastAttemptAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
	if d.EventPublicID != "" {
		out.EventID = &d.EventPublicID
	}
	if d.LastURL != "" {
		out.URL = &d.LastURL
	}
	if d.State == webhook.DeliveryPending {
		out.NextAttemptAt = &d.NextAttemptAt
	}
	return out
}

// pathDelivery parses the {id} path value as a public delivery id of the caller's company. A row
// id, another company's public id or garbage is simply not found.
func (s *Server) pathDelivery(c *call) (int64, *store.PublicIDs, error) {
	ids, err := s.store.PublicIDs(c.ctx)
	if err != nil {
		return 0, nil, err
	}
	raw := c.r.PathValue("id")
	id, ok := ids.ParseDelivery(c.p.CompanyID, raw)
	if !ok {
		return 0, nil, deliveryNotFound(raw)
	}
	return id, ids, nil
}

func deliveryNotFound(public string) *problem {
	return &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("delivery %q not found", public)}
}

type attemptJSON struct {
	N               int             `json:"n"`
	StartedAt       time.Time       `json:"started_at"`
	DurationMS      int             `json:"duration_ms"`
	Trigger         string          `json:"trigger"`
	Outcome         webhook.Outcome `json:"outcome"`
	Request         json.RawMessage `json:"request"`
	ResponseStatus  *int            `json:"response_status"`
	ResponseHeaders json.RawMessage `json:"response_headers"`
	ResponseBody    *string         `json:"response_body"`
	Error           *string         `json:"error"`
}

type deliveryDetailJSON struct {
	deliveryJSON
	// Payload is the event envelope the delivery carries.
	Payload json.RawMessage `json:"payload"`
	// Request is the request as last built (headers masked), null before the first attempt.
	Request  json.RawMessage `json:"request"`
	Attempts []attemptJSON   `json:"attempt_list"`
}

// maskHeaderJSON masks the values of credential-looking headers (webhook.CredentialName) and of
// the webhook's secret headers (secret, lower-case names) in a recorded header object (whatever
// the shape of its values), so history never shows a secret even if a writer forgot to mask it.
func maskHeaderJSON(raw json.RawMessage, secret map[string]bool) json.RawMessage {
	var hs map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &hs) != nil {
		return raw
	}
	for k := range hs {
		if secret[strings.ToLower(k)] || webhook.CredentialName(k) {
			hs[k] = webhook.Mask
		}
	}
	b, err := json.Marshal(hs)
	if err != nil {
		return raw
	}
	return b
}

func maskRequestJSON(raw json.RawMessage, secret map[string]bool) json.RawMessage {
	var req map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &req) != nil {
		return raw
	}
	if h, ok := req["headers"]; ok {
		req["headers"] = maskHeaderJSON(h, secret)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return raw
	}
	return b
}

// triggerEvents are a webhook's trigger event types: what its history can be filtered by and what
// a replay sends again.
func triggerEvents(w webhook.Webhook) []string {
	return w.EventKeys
}

// historyFilter parses the filters of a history listing (query parameters), each error naming its
// parameter. The cursor and limit are parsed by the caller.
func historyFilter(q url.Values, w webhook.Webhook) (store.HistoryFilter, error) {
	var f store.HistoryFilter
	var err error
	if v := q.Get("status"); v != "" {
		st := webhook.DeliveryState(v)
		if st != webhook.DeliveryPending && st != webhook.DeliverySucceeded && st != webhook.DeliveryFailed {
			return f, badRequest("status", "must be pending, succeeded or failed")
		}
		f.State = &st
	}
	if v := q.Get("event"); v != "" {
		if !slices.Contains(triggerEvents(w), v) {
			return f, badRequest("event", fmt.Sprintf("must be one of the webhook's trigger events (%s)", strings.Join(triggerEvents(w), ", ")))
		}
		f.EventKey = &v
	}
	if v := q.Get("event_id"); v != "" {
		if !publicEventID(v) {
			return f, badRequest("event_id", "must be an event id such as evt_0123456789abcdef0123456789abcdef")
		}
		f.EventPublicID = &v
	}
	if v := q.Get("http_status"); v != "" {
		if f.StatusMin, f.StatusMax, f.NoResponse, err = parseHTTPStatus(v); err != nil {
			return f, err
		}
	}
	if f.Since, err = parseTime(q.Get("since"), "since"); err != nil {
		return f, err
	}
	if f.Until, err = parseTime(q.Get("until"), "until"); err != nil {
		return f, err
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return f, badRequest("until", "must be after since")
	}
	if q.Has("q") {
		v := q.Get("q")
		switch n := utf8.RuneCountInString(v); {
		case !utf8.ValidString(v):
			return f, badRequest("q", "must be UTF-8 text")
		case strings.TrimSpace(v) == "":
			return f, badRequest("q", "must not be empty")
		case n > store.MaxHistoryText:
			return f, badRequest("q", fmt.Sprintf("must be at most %d characters", store.MaxHistoryText))
		case strings.ContainsRune(v, 0):
			return f, badRequest("q", "must not contain NUL")
		}
		f.Text = &v
	}
	return f, nil
}

// publicEventID reports whether v has the shape of an event's public id: "evt_" and 32 lower-case
// hex characters (store.PublicIDs.Event).
func publicEventID(v string) bool {
	rest, ok := strings.CutPrefix(v, store.EventIDPrefix)
	if !ok || len(rest) != 32 {
		return false
	}
	for _, r := range rest {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// parseHTTPStatus parses the http_status filter: an exact status ("404"), a class ("5xx") or
// "none" (tried, but no HTTP answer: refused, timed out, …).
func parseHTTPStatus(v string) (lo, hi *int, none bool, err error) {
	bad := badRequest("http_status", "must be a status such as 404, a class such as 5xx, or none")
	if v == "none" {
		return nil, nil, true, nil
	}
	if len(v) != 3 || v[0] < '1' || v[0] > '5' {
		return nil, nil, false, bad
	}
	if v[1:] == "xx" {
		l, h := int(v[0]-'0')*100, int(v[0]-'0')*100+99
		return &l, &h, false, nil
	}
	n, perr := strconv.Atoi(v)
	if perr != nil || strings.ContainsAny(v, "+-") {
		return nil, nil, false, bad
	}
	return &n, &n, false, nil
}

func (s *Server) listDeliveries(c *call) error {
	w, err := s.pathWebhook(c)
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	f, err := historyFilter(q, w)
	if err != nil {
		return err
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	f.Limit = limit
	ids, err := s.store.PublicIDs(c.ctx)
	if err != nil {
		return err
	}
	if v := q.Get("cursor"); v != "" {
		// The cursor names the last row by its public id, so it reveals no row id either.
		cur, err := decodeCursor(v, "deliveries", c.p.CompanyID)
		if err != nil {
			return badRequest("cursor", err.Error())
		}
		before, ok := ids.ParseDelivery(c.p.CompanyID, cur.PublicID)
		if cur.At == nil || !ok {
			return badRequest("cursor", "is not a cursor this API returned")
		}
		f.BeforeAt, f.BeforeID = cur.At, before
	}
	page, totals, err := s.store.HistoryList(c.ctx, c.p.CompanyID, w.ID, f)
	if err != nil {
		return err
	}
	out := struct {
		Totals store.DeliveryCounts `json:"totals"`
		listPage[deliveryJSON]
		// Truncated: the text search (q) read its bound of rows before filling the page; the
		// next_cursor continues from ScannedUntil, the creation time of the last row read.
		Truncated    bool       `json:"truncated"`
		ScannedUntil *time.Time `json:"scanned_until,omitempty"`
	}{Totals: totals, listPage: listPage[deliveryJSON]{Items: make([]deliveryJSON, len(page.Items))}, Truncated: page.Truncated}
	for i, d := range page.Items {
		out.Items[i] = deliveryOut(ids, c.p.CompanyID, d)
	}
	if page.More {
		at, id := page.ScanEndAt, page.ScanEndID
		if !page.Truncated {
			last := page.Items[len(page.Items)-1]
			at, id = last.CreatedAt, last.ID
		} else {
			out.ScannedUntil = &at
		}
		next := encodeCursor(cursor{Kind: "deliveries", Company: c.p.CompanyID, At: &at, PublicID: ids.Delivery(c.p.CompanyID, id)})
		out.NextCursor = &next
	}
	return c.json(http.StatusOK, out)
}

func parseTime(v, field string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, badRequest(field, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
	}
	return &t, nil
}

func (s *Server) getDelivery(c *call) error {
	id, ids, err := s.pathDelivery(c)
	if err != nil {
		return err
	}
	d, err := s.store.HistoryGet(c.ctx, c.p.CompanyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return deliveryNotFound(c.r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	secret := map[string]bool{}
	if w, err := s.store.WebhookGet(c.ctx, c.p.CompanyID, d.WebhookID); err == nil {
		for _, h := range w.Headers {
			if h.Secret {
				secret[strings.ToLower(h.Key)] = true
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	out := deliveryDetailJSON{
		deliveryJSON: deliveryOut(ids, c.p.CompanyID, d.HistoryDelivery), Payload: d.Event,
		Request: maskRequestJSON(d.Request, secret), Attempts: make([]attemptJSON, len(d.AttemptList)),
	}
	for i, a := range d.AttemptList {
		req, _ := json.Marshal(map[string]any{
			"method": a.RequestMethod, "url": a.RequestURL,
			"headers": maskHeaderJSON(a.RequestHeaders, secret), "body": a.RequestBody,
		})
		out.Attempts[i] = attemptJSON{
			N: a.N, StartedAt: a.StartedAt, DurationMS: a.DurationMS, Trigger: a.Trigger, Outcome: a.Outcome,
			Request: req, ResponseStatus: a.ResponseStatus, ResponseHeaders: a.ResponseHeaders,
			ResponseBody: a.ResponseBody, Error: a.Error,
		}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) resyncDelivery(c *call) error {
	id, ids, err := s.pathDelivery(c)
	if err != nil {
		return err
	}
	public := ids.Delivery(c.p.CompanyID, id)
	var d store.HistoryDetail
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if d, err = tx.HistoryGet(c.ctx, c.p.CompanyID, id); err != nil {
			return err
		}
		w, err := tx.WebhookGet(c.ctx, c.p.CompanyID, d.WebhookID)
		if err != nil {
			return err
		}
		if !w.Active {
			return inactiveResync(w)
		}
		if err := tx.HistoryResync(c.ctx, c.p.CompanyID, id); err != nil {
			return err
		}
		if d, err = tx.HistoryGet(c.ctx, c.p.CompanyID, id); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "delivery_resynced", store.AuditWebhook, d.WebhookID,
			map[string]any{"delivery_id": public})
	})
	if errors.Is(err, store.ErrNotFound) {
		return deliveryNotFound(public)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusAccepted, deliveryOut(ids, c.p.CompanyID, d.HistoryDelivery))
}

// inactiveResync refuses to resync a delivery of a webhook that is off: the dispatcher sends
// nothing for it, so an accepted resync would only fail at once. 409 says what to do instead.
func inactiveResync(w webhook.Webhook) *problem {
	return &problem{Status: http.StatusConflict,
		Detail: fmt.Sprintf("webhook %q is off: turn it on before resyncing its deliveries", w.Name)}
}

// resyncInput is the body of a bulk resync.
type resyncInput struct {
	Status string     `json:"status"`
	Since  *time.Time `json:"since"`
	Until  *time.Time `json:"until"` // default now
}

func (s *Server) resyncFailed(c *call) error {
	id, err := c.pathID("webhook")
	if err != nil {
		return err
	}
	var in resyncInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	e := &webhook.ValidationError{}
	if in.Status != string(webhook.DeliveryFailed) {
		e.Add("status", "must be failed")
	}
	if in.Since == nil {
		e.Add("since", "is required")
	}
	until := time.Now()
	if in.Until != nil {
		until = *in.Until
	}
	if in.Since != nil && !in.Since.Before(until) {
		e.Add("until", "must be after since")
	}
	if err := e.Err(); err != nil {
		return err
	}
	var n int64
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		w, err := tx.WebhookGet(c.ctx, c.p.CompanyID, id)
		if err != nil {
			return err
		}
		if !w.Active {
			return inactiveResync(w)
		}
		if n, err = tx.HistoryResyncFailed(c.ctx, c.p.CompanyID, id, *in.Since, until); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "deliveries_resynced", store.AuditWebhook, id,
			map[string]any{"since": in.Since, "until": until, "count": n})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook", id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusAccepted, map[string]any{"resynced": n, "max": store.MaxResyncBatch, "more": n == store.MaxResyncBatch})
}

// Bucket spans the stats endpoint accepts, with the longest range each may cover.
var bucketRange = map[string]time.Duration{"hour": 31 * 24 * time.Hour, "day": 366 * 24 * time.Hour}

func (s *Server) webhookStats(c *call) error {
	w, err := s.pathWebhook(c)
	if err != nil {
		return err
	}
	id := w.ID
	q := c.r.URL.Query()
	bucket := q.Get("bucket")
	if bucket == "" {
		bucket = "hour"
	}
	maxRange, ok := bucketRange[bucket]
	if !ok {
		return badRequest("bucket", "must be hour or day")
	}
	until := time.Now().UTC()
	if t, err := parseTime(q.Get("until"), "until"); err != nil {
		return err
	} else if t != nil {
		until = *t
	}
	since := until.Add(-24 * time.Hour)
	if bucket == "day" {
		since = until.Add(-30 * 24 * time.Hour)
	}
	if t, err := parseTime(q.Get("since"), "since"); err != nil {
		return err
	} else if t != nil {
		since = *t
	}
	if !since.Before(until) {
		return badRequest("until", "must be after since")
	}
	if until.Sub(since) > maxRange {
		return badRequest("since", "the range is too long for this bucket (at most 31 days of hours or 366 days of days)")
	}
	series, err := s.store.HistorySeries(c.ctx, c.p.CompanyID, id, bucket, since, until)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"bucket": bucket, "since": since, "until": until, "series": series})
}

// replayInput is the body of a replay (and of its preview).
type replayInput struct {
	Since *time.Time `json:"since"`
	Until *time.Time `json:"until"` // default now
	Mode  string     `json:"mode"`
}

// replayJSON answers a replay preview (Count: what a replay would queue now) and a replay
// (Queued: what it queued).
type replayJSON struct {
	Mode   store.ReplayMode `json:"mode"`
	Since  time.Time        `json:"since"`
	Until  time.Time        `json:"until"`
	Count  *int64           `json:"count,omitempty"`
	Queued *int64           `json:"queued,omitempty"`
	Max    int              `json:"max"`
}

// replayRequest checks a replay body and the webhook: an off webhook is 409 (as a resync), a
// window too long or holding more than store.MaxReplay deliveries to queue is 422 naming the
// limit. It answers the replay and how many deliveries it would queue.
func (s *Server) replayRequest(c *call, tx *store.Store, in replayInput) (store.Replay, int64, error) {
	id, err := c.pathID("webhook")
	if err != nil {
		return store.Replay{}, 0, err
	}
	e := &webhook.ValidationError{}
	mode := store.ReplayMode(in.Mode)
	if mode != store.ReplayAll && mode != store.ReplayFailed && mode != store.ReplayNeverSent {
		e.Add("mode", "must be all, failed or never_sent")
	}
	until := time.Now()
	if in.Until != nil {
		until = *in.Until
	}
	switch {
	case in.Since == nil:
		e.Add("since", "is required")
	case !in.Since.Before(until):
		e.Add("until", "must be after since")
	case until.Sub(*in.Since) > store.MaxReplayWindow:
		e.Add("since", "the window is longer than %d days, the most one replay covers", int(store.MaxReplayWindow/(24*time.Hour)))
	}
	if err := e.Err(); err != nil {
		return store.Replay{}, 0, err
	}
	w, err := tx.WebhookGet(c.ctx, c.p.CompanyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Replay{}, 0, notFound("webhook", id)
	}
	if err != nil {
		return store.Replay{}, 0, err
	}
	if !w.Active {
		return store.Replay{}, 0, &problem{Status: http.StatusConflict,
			Detail: fmt.Sprintf("webhook %q is off: turn it on before replaying its events", w.Name)}
	}
	r := store.Replay{WebhookID: w.ID, EventKeys: triggerEvents(w), Since: *in.Since, Until: until, Mode: mode}
	n, err := tx.ReplayCount(c.ctx, c.p.CompanyID, r, store.MaxReplay+1)
	if err != nil {
		return store.Replay{}, 0, err
	}
	if n > store.MaxReplay {
		return store.Replay{}, 0, &problem{Status: http.StatusUnprocessableEntity, Limit: "replay_deliveries", Max: store.MaxReplay,
			Detail: fmt.Sprintf("the window holds more than %d events to send, the most one replay sends: narrow since and until", store.MaxReplay),
			Errors: []webhook.FieldError{{Field: "since", Message: fmt.Sprintf("the window holds more than %d events to send", store.MaxReplay)}}}
	}
	return r, n, nil
}

// previewReplay answers how many deliveries a replay of a window would queue; it changes nothing.
func (s *Server) previewReplay(c *call) error {
	var in replayInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	r, n, err := s.replayRequest(c, s.store, in)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, replayJSON{Mode: r.Mode, Since: r.Since, Until: r.Until, Count: &n, Max: store.MaxReplay})
}

// replay queues again the events of a window (store.ReplayQueue) and records it in the audit log.
// A second identical request queues nothing twice: what the first queued is pending.
func (s *Server) replay(c *call) error {
	var in replayInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	var r store.Replay
	var n int64
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if r, _, err = s.replayRequest(c, tx, in); err != nil {
			return err
		}
		if n, err = tx.ReplayQueue(c.ctx, c.p.CompanyID, r, store.MaxReplay); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "deliveries_replayed", store.AuditWebhook, r.WebhookID,
			map[string]any{"since": r.Since, "until": r.Until, "mode": r.Mode, "count": n})
	})
	if err != nil {
		return err
	}
	return c.json(http.StatusAccepted, replayJSON{Mode: r.Mode, Since: r.Since, Until: r.Until, Queued: &n, Max: store.MaxReplay})
}
