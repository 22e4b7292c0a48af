package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/walhook/walhook/relay/signature"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// webhookInput is the body of create, update (PUT), patch, the unsaved test and the test of an
// edited saved webhook.
type webhookInput struct {
	Name    string           `json:"name"`
	URL     string           `json:"url"`
	Method  webhook.Method   `json:"method"`
	Events  []string         `json:"events"`
	Event   string           `json:"event"` // deprecated: one event, the same as events: [event]
	OAuthID *int64           `json:"oauth_id"`
	Headers []webhook.Header `json:"headers"`
	RawData *bool            `json:"raw_data"` // default true
	Params  []webhook.Param  `json:"params"`
	Active  *bool            `json:"active"` // default false
	// RateLimit is requests per second at most, 1 to webhook.MaxRateLimit; null: no limit.
	RateLimit *int `json:"rate_limit"`
}

// inputOf is the input that reproduces w applied onto w, masked header values masked: PATCH
// decodes onto it. It names no events, so that a PATCH may send either event or events (or
// neither, keeping w's).
func inputOf(w webhook.Webhook) webhookInput {
	in := webhookInput{
		Name: w.Name, URL: w.URL, Method: w.Method, OAuthID: w.OAuthID,
		Headers: webhook.MaskHeaders(w.Headers), RawData: &w.RawData, Params: w.Params, Active: &w.Active,
		RateLimit: w.RateLimit,
	}
	return in
}

// eventKeys is the trigger events the input names: events, or event as a list of one. Both may
// be given when event is the first of events (what the API returns); otherwise they disagree,
// and the field error says so. Neither (nil, nil) leaves the webhook's events as they are: PATCH
// keeps them, and a new webhook or PUT starts from none and is refused by validation.
func (in webhookInput) eventKeys() ([]string, error) {
	switch {
	case in.Event != "" && in.Events != nil && (len(in.Events) == 0 || in.Events[0] != in.Event):
		return nil, &webhook.ValidationError{Fields: []webhook.FieldError{{Field: "event",
			Message: "event is deprecated and must be the first of events when both are given; send only events"}}}
	case in.Events != nil:
		return in.Events, nil
	case in.Event != "":
		return []string{in.Event}, nil
	}
	return nil, nil
}

// apply sets the user-editable fields of w from the input, or answers the field error of event
// and events disagreeing (eventKeys). A header whose value is the mask (or a secret header left
// empty) keeps the value stored under the same name in old (nil for a new webhook) when that one
// is masked in reads (webhook.Header.Masked); kept lists the indexes of the headers that did, so
// the caller can refuse them when the destination changed.
func (in webhookInput) apply(w *webhook.Webhook, old []webhook.Header) (kept []int, err error) {
	keys, err := in.eventKeys()
	if err != nil {
		return nil, err
	}
	if keys != nil {
		w.EventKeys = keys
	}
	w.Name, w.URL, w.Method, w.OAuthID = in.Name, in.URL, in.Method, in.OAuthID
	w.RawData = in.RawData == nil || *in.RawData
	w.Active = in.Active != nil && *in.Active
	w.RateLimit = in.RateLimit
	w.Params = in.Params
	if w.Params == nil {
		w.Params = []webhook.Param{}
	}
	w.Headers = make([]webhook.Header, len(in.Headers))
	for i, h := range in.Headers {
		if h.Value == webhook.Mask || (h.Secret && h.Value == "") {
			for _, o := range old {
				if o.Masked() && strings.EqualFold(o.Key, h.Key) {
					// A kept value stays hidden: unmarking it secret while keeping it would
					// answer the stored value.
					h.Value, h.Secret = o.Value, h.Secret || o.Secret
					kept = append(kept, i)
					break
				}
			}
		}
		w.Headers[i] = h
	}
	return kept, nil
}

// checkSecretHeaders reports secret headers left without a value.
func checkSecretHeaders(e *webhook.ValidationError, hs []webhook.Header) {
	for i, h := range hs {
		if h.Value == webhook.Mask || (h.Secret && h.Value == "") {
			e.Add(fmt.Sprintf("headers[%d].value", i), "is required (a secret header keeps its value only when one is stored under the same name)")
		}
	}
}

// newDestinationMsg explains the field error of a stored secret the request did not give again
// although the destination changed.
const newDestinationMsg = "type the value again: the %s changed, and a stored secret is never sent to a destination chosen after it was stored"

// storedFor is where the stored header values an update keeps (kept, from apply) were stored
// for: the saved webhook's URL. The zero value (a new webhook) keeps none. legacyEvent says the
// request named its event with the deprecated event field, so errors about the events name
// that field (renameEventErrors), as clients written before events expect.
type storedFor struct {
	url         string
	kept        []int
	legacyEvent bool
}

// legacyEvent reports whether the input names its event only with the deprecated event field.
func (in webhookInput) legacyEvent() bool { return in.Events == nil && in.Event != "" }

// renameEventErrors names event instead of events and events[0] in e, for a request that gave
// the deprecated event field (a list of one).
func (d storedFor) renameEventErrors(e *webhook.ValidationError) {
	if !d.legacyEvent {
		return
	}
	for i, f := range e.Fields {
		if f.Field == "events" || f.Field == "events[0]" {
			e.Fields[i].Field = "event"
		}
	}
}

// check refuses to carry the kept header values over to a new destination: when newURL differs
// from the stored one (webhook.SameDestination), each kept header must be given again. It adds
// to e, beside the request's other field errors, so nothing is stored or sent.
func (d storedFor) check(e *webhook.ValidationError, newURL string) {
	if len(d.kept) == 0 || webhook.SameDestination(d.url, newURL) {
		return
	}
	for _, i := range d.kept {
		e.Add(fmt.Sprintf("headers[%d].value", i), newDestinationMsg, "URL")
	}
}

// webhookJSON is a webhook as the API returns it.
type webhookJSON struct {
	ID                      int64                 `json:"id"`
	Name                    string                `json:"name"`
	URL                     string                `json:"url"`
	Method                  webhook.Method        `json:"method"`
	Events                  []string              `json:"events"`
	Event                   string                `json:"event"` // deprecated: the first of Events
	OAuthID                 *int64                `json:"oauth_id"`
	Headers                 []webhook.Header      `json:"headers"`
	RawData                 bool                  `json:"raw_data"`
	Params                  []webhook.Param       `json:"params"`
	Active                  bool                  `json:"active"`
	RateLimit               *int                  `json:"rate_limit"`
	Secret                  string                `json:"secret,omitempty"`
	PreviousSecretExpiresAt *time.Time            `json:"previous_secret_expires_at,omitempty"`
	LastSentAt              *time.Time            `json:"last_sent_at"`
	LastStatus              *webhook.Status       `json:"last_status"`
	FailingSince            *time.Time            `json:"failing_since"`
	DisabledReason          *string               `json:"disabled_reason"`
	DisabledAt              *time.Time            `json:"disabled_at"`
	Counts                  *store.DeliveryCounts `json:"counts,omitempty"`
	CreatedBy               *int64                `json:"created_by"`
	UpdatedBy               *int64                `json:"updated_by"`
	CreatedAt               time.Time             `json:"created_at"`
	UpdatedAt               time.Time             `json:"updated_at"`

	// SecretError says a stored secret did not open (moved in from another row, or sealed with
	// a key no longer configured); nothing is sent until it is set again.
	SecretError string `json:"secret_error,omitempty"`
}

// webhookOut renders w; the signing secret only for members who may manage webhooks.
func webhookOut(w webhook.Webhook, p store.Principal, counts *store.DeliveryCounts) webhookJSON {
	out := webhookJSON{
		ID: w.ID, Name: w.Name, URL: w.URL, Method: w.Method, Events: w.EventKeys, OAuthID: w.OAuthID,
		Headers: webhook.MaskHeaders(w.Headers), RawData: w.RawData, Params: w.Params, Active: w.Active,
		RateLimit: w.RateLimit, LastSentAt: w.LastSentAt, LastStatus: w.LastStatus, FailingSince: w.FailingSince,
		DisabledReason: w.DisabledReason, DisabledAt: w.DisabledAt, Counts: counts,
		CreatedBy: w.CreatedBy, UpdatedBy: w.UpdatedBy, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		SecretError: w.SealError,
	}
	if len(w.EventKeys) > 0 {
		out.Event = w.EventKeys[0]
	}
	if p.Can(webhook.PermManageWebhooks) {
		out.Secret = w.Secret
		if w.PreviousSecretExpiresAt != nil && w.PreviousSecretExpiresAt.After(time.Now()) {
			out.PreviousSecretExpiresAt = w.PreviousSecretExpiresAt
		}
	}
	return out
}

// rules are the validation rules of this server: the live catalog (with each event's sample, for
// selected parameters) and the address allow-list. keepEvents are the events the webhook already
// has, accepted even when retired. db is the store or
// the caller's transaction: a transaction must not wait for a second pool connection, or
// concurrent requests holding every connection would wait for each other forever.
func (s *Server) rules(ctx context.Context, db *store.Store, keepEvents []string) (webhook.Rules, error) {
	types, err := db.EventTypeList(ctx)
	if err != nil {
		return webhook.Rules{}, err
	}
	known := map[string]bool{}
	samples := map[string]json.RawMessage{}
	for _, t := range types {
		if t.RetiredAt == nil || slices.Contains(keepEvents, t.Key) {
			known[t.Key] = true
		}
		samples[t.Key] = t.Sample
	}
	return webhook.Rules{
		EventExists: func(k string) bool { return known[k] },
		EventSample: func(k string) json.RawMessage { return samples[k] },
		AllowIP:     s.allowIP,
	}, nil
}

// validateWebhook checks w and that its credential belongs to the company (404 otherwise).
func (s *Server) validateWebhook(ctx context.Context, tx *store.Store, w *webhook.Webhook, keepEvents []string, stored storedFor) error {
	if err := s.checkListQuotas(w); err != nil {
		return err
	}
	rules, err := s.rules(ctx, tx, keepEvents)
	if err != nil {
		return err
	}
	err = w.Validate(rules)
	var ve *webhook.ValidationError
	if !errors.As(err, &ve) {
		ve = &webhook.ValidationError{}
	}
	checkSecretHeaders(ve, w.Headers)
	stored.check(ve, w.URL)
	stored.renameEventErrors(ve)
	if err := ve.Err(); err != nil {
		return err
	}
	if w.OAuthID != nil {
		if _, err := tx.OAuthCredentialGet(ctx, w.CompanyID, *w.OAuthID); errors.Is(err, store.ErrNotFound) {
			return &problem{Status: http.StatusNotFound, Detail: fmt.Sprintf("OAuth credential %d not found", *w.OAuthID),
				Errors: []webhook.FieldError{{Field: "oauth_id", Message: "no such OAuth credential"}}}
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) listWebhooks(c *call) error {
	q := c.r.URL.Query()
	f := store.WebhookFilter{Sort: store.SortByName}
	if v := q.Get("sort"); v != "" {
		switch store.WebhookSort(v) {
		case store.SortByName, store.SortByLastSent:
			f.Sort = store.WebhookSort(v)
		default:
			return badRequest("sort", "must be name or last_sent")
		}
	}
	if v := q.Get("event"); v != "" {
		types, err := s.store.EventTypeList(c.ctx)
		if err != nil {
			return err
		}
		known := false
		for _, t := range types {
			known = known || t.Key == v
		}
		if !known {
			return badRequest("event", fmt.Sprintf("unknown trigger event %q", v))
		}
		f.EventKey = &v
	}
	if v := q.Get("active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("active", "must be true or false")
		}
		f.Active = &b
	}
	if v := q.Get("last_status"); v != "" {
		st := webhook.Status(v)
		if st != webhook.StatusSucceeded && st != webhook.StatusFailed {
			return badRequest("last_status", "must be succeeded or failed")
		}
		f.LastStatus = &st
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	kind := "webhooks:" + string(f.Sort)
	if v := q.Get("cursor"); v != "" {
		cur, err := decodeCursor(v, kind, c.p.CompanyID)
		if err != nil {
			return badRequest("cursor", err.Error())
		}
		wc := store.WebhookCursor{Name: cur.Name, ID: cur.ID}
		if cur.At != nil {
			wc.SentAt = *cur.At
		}
		f.After = &wc
	}
	rows, err := s.store.WebhookListPage(c.ctx, c.p.CompanyID, f)
	if err != nil {
		return err
	}
	page := listPage[webhookJSON]{Items: []webhookJSON{}}
	for i, r := range rows {
		if i == limit {
			wc := store.CursorOf(rows[i-1].Webhook)
			cur := cursor{Kind: kind, Company: c.p.CompanyID, Name: wc.Name, ID: wc.ID}
			if f.Sort == store.SortByLastSent {
				cur.Name = ""
				cur.At = &wc.SentAt
			}
			next := encodeCursor(cur)
			page.NextCursor = &next
			break
		}
		page.Items = append(page.Items, webhookOut(r.Webhook, c.p, &r.Counts))
	}
	return c.json(http.StatusOK, page)
}

// listPage is every listing's shape.
type listPage[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func parseLimit(v string) (int, error) {
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, badRequest("limit", "must be a number from 1 to 500")
	}
	return n, nil
}

// pathWebhook loads the company's webhook named by the {id} path value; another company's (or
// no) webhook is a 404.
func (s *Server) pathWebhook(c *call) (webhook.Webhook, error) {
	id, err := c.pathID("webhook")
	if err != nil {
		return webhook.Webhook{}, err
	}
	w, err := s.store.WebhookGet(c.ctx, c.p.CompanyID, id)
	if errors.Is(err, store.ErrNotFound) {
		return webhook.Webhook{}, notFound("webhook", id)
	}
	return w, err
}

// replyWebhook answers with one webhook and its delivery counts.
func (s *Server) replyWebhook(c *call, status int, w webhook.Webhook) error {
	counts, err := s.store.WebhookCounts(c.ctx, c.p.CompanyID, w.ID)
	if err != nil {
		return err
	}
	return c.json(status, webhookOut(w, c.p, &counts))
}

func (s *Server) getWebhook(c *call) error {
	w, err := s.pathWebhook(c)
	if err != nil {
		return err
	}
	return s.replyWebhook(c, http.StatusOK, w)
}

func (s *Server) createWebhook(c *call) error {
	var in webhookInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	w := webhook.Webhook{CompanyID: c.p.CompanyID}
	if _, err := in.apply(&w, nil); err != nil {
		return err
	}
	var out webhook.Webhook
	err := s.store.Tx(c.ctx, func(tx *store.Store) error {
		if err := s.validateWebhook(c.ctx, tx, &w, nil, storedFor{legacyEvent: in.legacyEvent()}); err != nil {
			return err
		}
		if err := s.checkQuota(c.ctx, tx, c.p.CompanyID, store.QuotaWebhooks); err != nil {
			return err
		}
		var err error
		if out, err = tx.WebhookCreate(c.ctx, w, &c.p.MemberID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "created", store.AuditWebhook, out.ID, map[string]any{"name": out.Name})
	})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", fmt.Sprintf("/v1/webhooks/%d", out.ID))
	return c.json(http.StatusCreated, webhookOut(out, c.p, &store.DeliveryCounts{}))
}

func (s *Server) putWebhook(c *call) error   { return s.updateWebhook(c, false) }
func (s *Server) patchWebhook(c *call) error { return s.updateWebhook(c, true) }

// updateWebhook replaces (PUT) or merges (PATCH: only the fields sent change; arrays are replaced
// whole) a webhook, in one transaction with its audit row.
func (s *Server) updateWebhook(c *call, patch bool) error {
	old, err := s.pathWebhook(c)
	if err != nil {
		return err
	}
	id := old.ID
	var in webhookInput
	if patch {
		in = inputOf(old)
	}
	if err := c.decode(&in, false); err != nil {
		return err
	}
	w := old
	if !patch {
		w.EventKeys = nil // PUT replaces: the events must be given
	}
	kept, err := in.apply(&w, old.Headers)
	if err != nil {
		return err
	}
	stored := storedFor{url: old.URL, kept: kept, legacyEvent: in.legacyEvent()}
	var out webhook.Webhook
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		if err := s.validateWebhook(c.ctx, tx, &w, old.EventKeys, stored); err != nil {
			return err
		}
		var err error
		if out, err = tx.WebhookUpdate(c.ctx, w, &c.p.MemberID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "updated", store.AuditWebhook, id,
			map[string]any{"changed": changedFields(old, out)})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook", id)
	}
	if err != nil {
		return err
	}
	return s.replyWebhook(c, http.StatusOK, out)
}

// changedFields names the fields an update changed, for the audit log (never values: headers may
// be secret).
func changedFields(a, b webhook.Webhook) []string {
	ch := []string{}
	eq := func(x, y any) bool {
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		return string(bx) == string(by)
	}
	for _, f := range []struct {
		name string
		x, y any
	}{
		{"name", a.Name, b.Name}, {"url", a.URL, b.URL}, {"method", a.Method, b.Method},
		{"events", a.EventKeys, b.EventKeys}, {"oauth_id", a.OAuthID, b.OAuthID}, {"headers", a.Headers, b.Headers},
		{"raw_data", a.RawData, b.RawData}, {"params", a.Params, b.Params}, {"active", a.Active, b.Active},
		{"rate_limit", a.RateLimit, b.RateLimit},
	} {
		if !eq(f.x, f.y) {
			ch = append(ch, f.name)
		}
	}
	return ch
}

func (s *Server) deleteWebhook(c *call) error {
	id, err := c.pathID("webhook")
	if err != nil {
		return err
	}
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		w, err := tx.WebhookGet(c.ctx, c.p.CompanyID, id)
		if err != nil {
			return err
		}
		if err := tx.WebhookDelete(c.ctx, c.p.CompanyID, id); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "deleted", store.AuditWebhook, id, map[string]any{"name": w.Name})
	})
	return c.removed(err, notFound("webhook", id))
}

// copyName is "Copy of <name>", cut to the name limit.
func copyName(name string) string {
	n := "Copy of " + name
	if utf8.RuneCountInString(n) > webhook.MaxNameLen {
		n = string([]rune(n)[:webhook.MaxNameLen])
	}
	return n
}

func (s *Server) duplicateWebhook(c *call) error {
	id, err := c.pathID("webhook")
	if err != nil {
		return err
	}
	var out webhook.Webhook
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		w, err := tx.WebhookGet(c.ctx, c.p.CompanyID, id)
		if err != nil {
			return err
		}
		if err := s.checkQuota(c.ctx, tx, c.p.CompanyID, store.QuotaWebhooks); err != nil {
			return err
		}
		cp := webhook.Webhook{
			CompanyID: w.CompanyID, Name: copyName(w.Name), URL: w.URL, Method: w.Method, EventKeys: w.EventKeys,
			OAuthID: w.OAuthID, Headers: w.Headers, RawData: w.RawData, Params: w.Params, Active: false,
			RateLimit: w.RateLimit,
		}
		// The copy is a new webhook: it must pass today's rules (a retired event, an address
		// now refused, a path or header rule added since the original was saved), or the copy
		// would carry an invalid webhook past validation.
		if err := s.validateWebhook(c.ctx, tx, &cp, nil, storedFor{}); err != nil {
			var ve *webhook.ValidationError
			if errors.As(err, &ve) {
				return &problem{Status: http.StatusUnprocessableEntity, Errors: ve.Fields,
					Detail: "the copy would not pass today's rules: edit the webhook to fix the fields named, then duplicate it"}
			}
			return err
		}
		if out, err = tx.WebhookCreate(c.ctx, cp, &c.p.MemberID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "created", store.AuditWebhook, out.ID,
			map[string]any{"name": out.Name, "duplicate_of": id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook", id)
	}
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", fmt.Sprintf("/v1/webhooks/%d", out.ID))
	return c.json(http.StatusCreated, webhookOut(out, c.p, &store.DeliveryCounts{}))
}

func (s *Server) rotateSecret(c *call) error {
	id, err := c.pathID("webhook")
	if err != nil {
		return err
	}
	var out webhook.Webhook
	err = s.store.Tx(c.ctx, func(tx *store.Store) error {
		var err error
		if out, err = tx.WebhookRotateSecret(c.ctx, c.p.CompanyID, id, s.cfg.SecretOverlap, &c.p.MemberID); err != nil {
			return err
		}
		return tx.AuditRecord(c.ctx, c.p.CompanyID, &c.p.MemberID, "secret_rotated", store.AuditWebhook, id, nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook", id)
	}
	if err != nil {
		return err
	}
	return s.replyWebhook(c, http.StatusOK, out)
}

// testPayload is the envelope a test send carries (store.TestPayload): the payload parameter
// says which, the company's newest event of the type or the catalog sample; by default the
// newest when there is one.
func (s *Server) testPayload(ctx context.Context, companyID, eventKey, source string) (json.RawMessage, error) {
	src := store.TestPayloadSource(source)
	if !src.Valid() {
		return nil, badRequest("payload", "must be latest or sample")
	}
	p, err := s.store.TestPayload(ctx, companyID, eventKey, src)
	if errors.Is(err, store.ErrNoEvent) {
		return nil, invalid("payload", fmt.Sprintf("no %s event has been captured for this company yet; use payload=sample", eventKey))
	}
	return p, err
}

// runTest sends w once through the tester and answers the result; an endpoint that fails is a
// successful call whose result says so.
func (s *Server) runTest(c *call, w webhook.Webhook) error {
	if s.tester == nil {
		return &problem{Status: http.StatusServiceUnavailable, Detail: "test sends are not available in this process"}
	}
	// A webhook of several events is tested with its first.
	payload, err := s.testPayload(c.ctx, c.p.CompanyID, w.EventKeys[0], c.r.URL.Query().Get("payload"))
	if err != nil {
		return err
	}
	var cred *webhook.OAuthCredential
	if w.OAuthID != nil {
		cr, err := s.store.OAuthCredentialGet(c.ctx, c.p.CompanyID, *w.OAuthID)
		if err != nil {
			return err
		}
		cred = &cr
	}
	res, err := s.tester.Test(c.ctx, w, cred, payload)
	if err != nil {
		return &problem{Status: http.StatusBadGateway, Detail: "test send failed: " + err.Error()}
	}
	return c.json(http.StatusOK, res)
}

// testSaved sends a saved webhook once. With a body (the webhook's form as edited, the shape of
// PUT) it sends the edited webhook instead, without saving it: the mask keeps a stored header
// value as an update would, and only while the URL is the stored one (storedFor.check).
func (s *Server) testSaved(c *call) error {
	old, err := s.pathWebhook(c)
	if err != nil {
		return err
	}
	var in *webhookInput
	if err := c.decode(&in, true); err != nil {
		return err
	}
	if in == nil {
		return s.runTest(c, old)
	}
	w := old
	w.EventKeys = nil // the body has the shape of PUT
	kept, err := in.apply(&w, old.Headers)
	if err != nil {
		return err
	}
	stored := storedFor{url: old.URL, kept: kept, legacyEvent: in.legacyEvent()}
	if err := s.validateWebhook(c.ctx, s.store, &w, old.EventKeys, stored); err != nil {
		return err
	}
	return s.runTest(c, w)
}

func (s *Server) testUnsaved(c *call) error {
	var in webhookInput
	if err := c.decode(&in, false); err != nil {
		return err
	}
	w := webhook.Webhook{CompanyID: c.p.CompanyID, Secret: signature.NewSecret()}
	if _, err := in.apply(&w, nil); err != nil {
		return err
	}
	if err := s.validateWebhook(c.ctx, s.store, &w, nil, storedFor{legacyEvent: in.legacyEvent()}); err != nil {
		return err
	}
	return s.runTest(c, w)
}
