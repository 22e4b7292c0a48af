package dispatch_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/signature"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

// Every method, raw and selected, with custom headers; the signature is checked by the
// independent verifier, and history masks secret headers.
func TestRequestShapes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.run(t, testConfig())

	headers := []webhook.Header{{Key: "X-Plain", Value: "plain"}, {Key: "X-Api-Key", Value: "s3cret", Secret: true}}
	params := []webhook.Param{{Key: "mail", Path: "data.email"}, {Key: "city", Path: "data.address.city"}, {Key: "tags", Path: "data.tags"}, {Key: "who", Path: "data.name"}, {Key: "none", Path: "data.missing"}}
	shapes := b.sendEveryShape(t, rc, webhook.Webhook{URL: rc.URL + "/hook?fixed=1&api_token=tok-9f8e7d", Params: params, Headers: headers})
	deliveries := make([]int64, len(shapes)) // by shape
	for i, sh := range shapes {
		deliveries[i] = sh.delivery
		c, r := sh.hook, &sh.req
		name := fmt.Sprintf("%s raw=%v", c.Method, c.RawData)
		require.Equal(t, string(c.Method), r.Method, name)
		require.Equal(t, "walhook/test", r.Header.Get("User-Agent"), name)
		require.Equal(t, "plain", r.Header.Get("X-Plain"), name)
		require.Equal(t, "s3cret", r.Header.Get("X-Api-Key"), name)
		u0, err := url.Parse(r.URL)
		require.NoError(t, err)
		require.NoError(t, signature.Verify(c.Secret, r.Header, signature.Content(r.Method, u0.RawQuery, r.Body), time.Now(), signature.DefaultTolerance), name)
		u, err := url.Parse(r.URL)
		require.NoError(t, err)
		require.Equal(t, "1", u.Query().Get("fixed"), name)
		if c.Method == webhook.MethodGet || c.Method == webhook.MethodDelete {
			require.Empty(t, r.Body, name)
			require.Empty(t, r.Header.Get("Content-Type"), name)
			q := u.Query()
			if c.RawData {
				require.Equal(t, eventKey, q.Get("type"), name)
				require.Contains(t, q.Get("data"), `"address":{"city":"London"}`, name)
			} else {
				require.Regexp(t, `^fixed=1&api_token=tok-9f8e7d&mail=ada\d+%40example.com&city=London&tags=%5B%22a%22%2C%22b%22%5D&who=Ada&none=$`, u.RawQuery, name)
			}
			continue
		}
		require.Equal(t, "application/json", r.Header.Get("Content-Type"), name)
		if c.RawData {
			var e webhook.Envelope
			require.NoError(t, json.Unmarshal(r.Body, &e), name)
			require.Equal(t, eventKey, e.Type, name)
			require.Equal(t, company, e.CompanyID, name)
		} else {
			require.Regexp(t, `^\{"mail":"ada\d+@example.com","city":"London","tags":\["a","b"\],"who":"Ada","none":null\}$`, string(r.Body), name)
		}
	}

	// History: one attempt each, secret header masked, the request snapshot kept.
	as := b.attempts(t, deliveries[3]) // POST, selected parameters
	require.Len(t, as, 1)
	a := as[0]
	require.Equal(t, webhook.OutcomeSucceeded, a.Outcome)
	require.Equal(t, "auto", a.Trigger)
	require.Equal(t, http.StatusOK, *a.ResponseStatus)
	sent := headerMap(t, a.RequestHeaders)
	require.Equal(t, webhook.Mask, sent["X-Api-Key"])
	require.Equal(t, "plain", sent["X-Plain"])
	require.Equal(t, b.msgID(t, deliveries[3]), sent["webhook-id"])
	require.Equal(t, webhook.Mask, sent["webhook-signature"], "history shows no signature, so none is stored")
	require.Regexp(t, `^\{"mail":"ada\d+@example.com",`, a.RequestBody)
	// The URL as sent, its credential-looking query value masked.
	require.Equal(t, rc.URL+"/hook?fixed=1&api_token="+url.QueryEscape(webhook.Mask), a.RequestURL)
	// GET with parameters: the query as sent (the payload), the credential masked.
	as = b.attempts(t, deliveries[1])
	require.Regexp(t, `/hook\?fixed=1&api_token=`+regexp.QuoteMeta(url.QueryEscape(webhook.Mask))+`&mail=ada\d+%40example.com&city=London&`, as[0].RequestURL)
	require.Empty(t, as[0].RequestBody)
	// POST with raw data: the body was the envelope, which the attempt row does not copy (NULL,
	// migration 0017); it reads back as the envelope.
	var bodyNull bool
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT request_body IS NULL FROM walhook.attempt WHERE delivery_id = $1`, deliveries[2]).Scan(&bodyNull))
	require.True(t, bodyNull)
	as = b.attempts(t, deliveries[2])
	require.Regexp(t, `^\{"id": "evt_\d+", "data": \{`, as[0].RequestBody)
	var sel string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT coalesce(request_body, 'NULL') FROM walhook.attempt WHERE delivery_id = $1`, deliveries[3]).Scan(&sel))
	require.Equal(t, a.RequestBody, sel, "a body that is not the envelope is stored as sent")
	d, err := storetest.DeliveryGetByID(b.ctx, b.st, deliveries[3])
	require.NoError(t, err)
	require.Contains(t, string(d.Request), `"X-Api-Key": "`+webhook.Mask+`"`)
	w, err := storetest.WebhookGetByID(b.ctx, b.st, shapes[3].hook.ID)
	require.NoError(t, err)
	require.NotNil(t, w.LastSentAt)
	require.Equal(t, webhook.StatusSucceeded, *w.LastStatus)
}

// A rotated secret signs with both the new and the previous secret until the previous expires.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.run(t, testConfig())
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	old := w.Secret
	rotated, err := b.st.WebhookRotateSecret(b.ctx, company, w.ID, time.Hour, nil)
	require.NoError(t, err)
	ids := b.enqueue(t, w.ID)
	b.waitState(t, ids[0], webhook.DeliverySucceeded)
	r := rc.requests()[0]
	require.Len(t, strings.Fields(r.Header.Get("webhook-signature")), 2)
	require.NoError(t, signature.Verify(rotated.Secret, r.Header, r.Body, time.Now(), signature.DefaultTolerance))
	require.NoError(t, signature.Verify(old, r.Header, r.Body, time.Now(), signature.DefaultTolerance))
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.run(t, testConfig())
	status := func(code int, hdr ...string) *receiver {
		return newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(strings.Repeat("x", 20<<10)))
		})
	}
	target := newReceiver(t, nil)
	for _, tc := range []struct {
		name     string
		rc       *receiver
		state    webhook.DeliveryState
		attempts int
	}{
		{"2xx succeeds", status(http.StatusNoContent), webhook.DeliverySucceeded, 1},
		{"3xx fails, not followed", status(http.StatusFound, "Location", target.URL), webhook.DeliveryFailed, 1},
		{"400 fails at once", status(http.StatusBadRequest), webhook.DeliveryFailed, 1},
		{"500 retries the whole schedule", status(http.StatusInternalServerError), webhook.DeliveryFailed, 3},
		{"429 retries", status(http.StatusTooManyRequests, "Retry-After", "0"), webhook.DeliveryFailed, 3},
		{"503 then 200", newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int64) {
			if n == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}), webhook.DeliverySucceeded, 2},
	} {
		w := b.hook(t, webhook.Webhook{URL: tc.rc.URL, RawData: true})
		id := b.enqueue(t, w.ID)[0]
		d := b.waitState(t, id, tc.state)
		require.Equal(t, tc.attempts, d.Attempts, tc.name)
		as := b.attempts(t, id)
		require.Len(t, as, tc.attempts, tc.name)
		require.Equal(t, string(tc.state), string(as[len(as)-1].Outcome), tc.name)
		if as[0].ResponseBody != nil && *as[0].ResponseBody != "" {
			require.Len(t, *as[0].ResponseBody, 16<<10, "%s: response body kept up to 16 KiB", tc.name)
		}
		hw, err := storetest.WebhookGetByID(b.ctx, b.st, w.ID)
		require.NoError(t, err)
		require.True(t, hw.Active, tc.name)
		if tc.state == webhook.DeliveryFailed {
			require.Equal(t, webhook.StatusFailed, *hw.LastStatus, tc.name)
			require.NotNil(t, hw.FailingSince, tc.name)
		}
	}
	require.Zero(t, target.hits.Load(), "redirects are never followed")

	// 410 fails and turns the webhook off with a reason.
	gone := status(http.StatusGone)
	w := b.hook(t, webhook.Webhook{URL: gone.URL, RawData: true})
	id := b.enqueue(t, w.ID)[0]
	b.waitState(t, id, webhook.DeliveryFailed)
	hw, err := storetest.WebhookGetByID(b.ctx, b.st, w.ID)
	require.NoError(t, err)
	require.False(t, hw.Active)
	require.Contains(t, *hw.DisabledReason, "410")
	// Later deliveries of the webhook that is off are failed without a request (once the
	// dispatcher has dropped it from its cache: the recorder does so after its statement commits).
	require.Eventually(t, func() bool { return !d.SendsTo(w.ID) }, waitFor, tick)
	id = b.enqueue(t, w.ID)[0]
	b.waitState(t, id, webhook.DeliveryFailed)
	require.EqualValues(t, 1, gone.hits.Load())
	require.Contains(t, *b.attempts(t, id)[0].Error, "turned off")
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, w.ID)[0]
	var d = b.waitState(t, id, webhook.DeliveryPending)
	require.Eventually(t, func() bool {
		var err error
		d, err = storetest.DeliveryGetByID(b.ctx, b.st, id)
		require.NoError(t, err)
		return d.Attempts == 1 && d.LeaseUntil == nil
	}, waitFor, tick)
	require.GreaterOrEqual(t, d.NextAttemptAt.Sub(*d.LastAttemptAt), 59*time.Minute, "the next attempt waits for Retry-After")
}

func TestTimeoutRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.AttemptTimeout = 300 * time.Millisecond
	cfg.Lease = 5 * time.Second
	b.run(t, cfg)
	rc := newHangingReceiver(t)
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, w.ID)[0]
	b.waitState(t, id, webhook.DeliveryFailed)
	as := b.attempts(t, id)
	require.Len(t, as, 3)
	require.Contains(t, *as[0].Error, "no answer within")
	require.Equal(t, webhook.OutcomeRetry, as[0].Outcome)
}

// A hanging endpoint holds only its own webhook's deliveries.
func TestHangingEndpointIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.AttemptTimeout = 15 * time.Second
	cfg.Lease = time.Minute
	cfg.PerWebhook = 2
	cfg.Workers = 8
	b.run(t, cfg)
	hang := newHangingReceiver(t)
	fast := newReceiver(t, nil)
	slow := b.hook(t, webhook.Webhook{URL: hang.URL, RawData: true})
	ok := b.hook(t, webhook.Webhook{URL: fast.URL, RawData: true})
	for range 10 {
		b.enqueue(t, slow.ID)
	}
	require.Eventually(t, func() bool { return hang.hits.Load() == 2 }, waitFor, tick)
	var ids []int64
	for range 20 {
		ids = append(ids, b.enqueue(t, ok.ID)...)
	}
	b.waitAll(t, ids, webhook.DeliverySucceeded)
	require.EqualValues(t, 2, hang.hits.Load(), "the hanging webhook never has more than its cap in flight")
}

// A delivery leased by a replica that died is delivered after the lease expires; the dead
// replica's late result does not overwrite it.
func TestExpiredLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, w.ID)[0]
	claimed, err := b.st.DispatchClaim(b.ctx, storeClaim("dead:1", 500*time.Millisecond))
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	b.run(t, testConfig())
	d := b.waitState(t, id, webhook.DeliverySucceeded)
	require.Equal(t, 1, d.Attempts)
	require.EqualValues(t, 1, rc.hits.Load())
	late := lateResult(claimed[0])
	_, err = b.st.DispatchRecord(b.ctx, late, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	d, err = storetest.DeliveryGetByID(b.ctx, b.st, id)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliverySucceeded, d.State, "a result under a lost lease does not change the delivery")
}

// Resync delivers again with the same payload and webhook-id, new attempts, a fresh schedule.
func TestResync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int64) {
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	id := b.enqueue(t, w.ID)[0]
	b.waitState(t, id, webhook.DeliveryFailed)
	require.NoError(t, b.st.HistoryResync(b.ctx, company, id))
	d := b.waitState(t, id, webhook.DeliverySucceeded)
	require.Equal(t, 4, d.Attempts)
	as := b.attempts(t, id)
	require.Equal(t, "resync", as[3].Trigger)
	got := rc.requests()
	require.Len(t, got, 4)
	for _, r := range got {
		require.Equal(t, b.msgID(t, id), r.Header.Get("webhook-id"))
		require.JSONEq(t, string(got[0].Body), string(r.Body))
	}
	// A succeeded delivery can be resynced too.
	require.NoError(t, b.st.HistoryResync(b.ctx, company, id))
	require.Eventually(t, func() bool { return rc.hits.Load() == 5 }, waitFor, tick)
	d = b.waitState(t, id, webhook.DeliverySucceeded)
	require.Equal(t, 5, d.Attempts)
}

// A test send goes through the same path and leaves no history.
func TestSenderTestWritesNoHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("X-Reply", "yes")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	s := dispatch.NewSender(dispatch.SenderConfig{Version: "test", AllowPrivate: loopback}, b.st, nil)
	payload, err := b.st.TestPayload(b.ctx, company, eventKey, store.TestPayloadAuto)
	require.NoError(t, err)
	require.Contains(t, string(payload), "sample@example.com", "no real event yet: the catalog sample")
	w := webhook.Webhook{CompanyID: company, URL: rc.URL, Method: webhook.MethodPut, RawData: false,
		Params: []webhook.Param{{Key: "email", Path: "data.email"}}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		Headers: []webhook.Header{{Key: "X-Secret", Value: "v", Secret: true}}}
	res, err := s.Test(b.ctx, w, nil, payload)
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	require.Equal(t, http.StatusOK, res.Status)
	require.Equal(t, "yes", res.Headers["X-Reply"])
	require.JSONEq(t, `{"ok":true}`, res.Body)
	require.Equal(t, `{"email":"sample@example.com"}`, res.Request.Body)
	require.Equal(t, webhook.Mask, res.Request.Headers["X-Secret"])
	require.NoError(t, signature.Verify(w.Secret, rc.requests()[0].Header, rc.requests()[0].Body, time.Now(), signature.DefaultTolerance))
	var n int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT (SELECT count(*) FROM walhook.delivery) + (SELECT count(*) FROM walhook.attempt) + (SELECT count(*) FROM walhook.event)`).Scan(&n))
	require.Zero(t, n)

	// An unreachable (refused) endpoint answers with an error, not a Go error.
	s2 := dispatch.NewSender(dispatch.SenderConfig{}, b.st, nil)
	res, err = s2.Test(b.ctx, w, nil, payload)
	require.NoError(t, err)
	require.False(t, res.Succeeded)
	require.Contains(t, res.Error, "loopback")
}

// An attempt's duration is measured: it was always 0 when send returned its result by value
// and set the duration in a defer.
func TestSenderMeasuresDuration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		time.Sleep(300 * time.Millisecond) // a slow receiver: the duration it causes is what is tested
		w.WriteHeader(http.StatusNoContent)
	})
	s := dispatch.NewSender(dispatch.SenderConfig{Version: "test", AllowPrivate: loopback}, b.st, nil)
	w := webhook.Webhook{CompanyID: company, URL: rc.URL, Method: webhook.MethodPost, RawData: true,
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	res, err := s.Test(b.ctx, w, nil, json.RawMessage(`{"id":"evt_1"}`))
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	require.GreaterOrEqual(t, res.DurationMS, int64(300))
}

// A webhook failing for longer than DisableAfter is turned off with a reason.
func TestFailingTooLongTurnsWebhookOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := testConfig()
	cfg.DisableAfter = time.Millisecond
	b.run(t, cfg)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(http.StatusBadGateway) })
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	b.waitState(t, b.enqueue(t, w.ID)[0], webhook.DeliveryFailed)
	hw, err := storetest.WebhookGetByID(b.ctx, b.st, w.ID)
	require.NoError(t, err)
	require.False(t, hw.Active)
	require.Contains(t, *hw.DisabledReason, "failed since")
}

// The webhook's last status comes from the same attempt as its last sent time, the newest by
// finish time, whatever order the results are written in (replicas record their batches
// independently; a slow one writes late).
func TestLastStatusFromNewestAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.hook(t, webhook.Webhook{URL: "http://127.0.0.1:9/never", RawData: true})
	ids := append(b.enqueue(t, w.ID), b.enqueue(t, w.ID)...)
	ids = append(ids, b.enqueue(t, w.ID)...)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	res := func(id int64, started time.Time, oc webhook.Outcome) store.AttemptResult {
		st := webhook.DeliverySucceeded
		if oc != webhook.OutcomeSucceeded {
			st = webhook.DeliveryFailed
		}
		var eventAt time.Time
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT event_at FROM walhook.delivery WHERE id = $1`, id).Scan(&eventAt))
		return store.AttemptResult{
			DeliveryID: id, EventAt: eventAt, CompanyID: company, WebhookID: w.ID, N: 1, StartedAt: started, DurationMS: 500,
			RequestMethod: "POST", RequestURL: w.URL, Outcome: oc, Trigger: "auto", State: st, TouchWebhook: true,
		}
	}
	check := func(wantAt time.Time, want webhook.Status) {
		t.Helper()
		hw, err := storetest.WebhookGetByID(b.ctx, b.st, w.ID)
		require.NoError(t, err)
		require.NotNil(t, hw.LastSentAt)
		require.True(t, wantAt.Equal(*hw.LastSentAt), "last_sent_at %s, want %s", hw.LastSentAt, wantAt)
		require.Equal(t, want, *hw.LastStatus)
	}
	// One batch whose newest attempt (a success) is not its last element.
	_, err := b.st.DispatchRecord(b.ctx, []store.AttemptResult{
		res(ids[0], t0.Add(10*time.Second), webhook.OutcomeSucceeded),
		res(ids[1], t0, webhook.OutcomeFailed),
	}, t0.Add(-time.Hour))
	require.NoError(t, err)
	check(t0.Add(10500*time.Millisecond), webhook.StatusSucceeded)
	// A batch written late with an older failure changes neither the time nor the status.
	_, err = b.st.DispatchRecord(b.ctx, []store.AttemptResult{res(ids[2], t0.Add(5*time.Second), webhook.OutcomeFailed)}, t0.Add(-time.Hour))
	require.NoError(t, err)
	check(t0.Add(10500*time.Millisecond), webhook.StatusSucceeded)
	hw, err := storetest.WebhookGetByID(b.ctx, b.st, w.ID)
	require.NoError(t, err)
	require.True(t, hw.Active)
	// A newer failure moves both.
	ids2 := b.enqueue(t, w.ID)
	_, err = b.st.DispatchRecord(b.ctx, []store.AttemptResult{res(ids2[0], t0.Add(time.Minute), webhook.OutcomeFailed)}, t0.Add(-time.Hour))
	require.NoError(t, err)
	check(t0.Add(time.Minute+500*time.Millisecond), webhook.StatusFailed)
}

// A GET or DELETE whose payload would make the URL longer than MaxQueryURLLen is not sent: the
// delivery fails at once and its attempt says why.
func TestQueryURLTooLong(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.run(t, testConfig())
	w := b.hook(t, webhook.Webhook{URL: rc.URL + "/hook", Method: webhook.MethodGet, RawData: true})
	big := strings.Repeat("x", dispatch.MaxQueryURLLen)
	_, ids, err := storetest.Enqueue(b.ctx, b.st, webhook.Event{
		SourceKey: "test:big", CompanyID: company, EventKey: eventKey, OccurredAt: time.Now(),
		Payload: json.RawMessage(`{"id":"evt_big","type":"contact.created","company_id":"c1","data":{"note":"` + big + `"}}`),
	}, []int64{w.ID})
	require.NoError(t, err)
	small := b.enqueue(t, w.ID)
	b.waitState(t, ids[0], webhook.DeliveryFailed)
	b.waitState(t, small[0], webhook.DeliverySucceeded)
	as := b.attempts(t, ids[0])
	require.Len(t, as, 1)
	require.Equal(t, webhook.OutcomeFailed, as[0].Outcome)
	require.Nil(t, as[0].ResponseStatus)
	require.Contains(t, *as[0].Error, "over the 8192-byte limit")
	require.Equal(t, rc.URL+"/hook", as[0].RequestURL)
	require.Len(t, rc.requests(), 1, "only the small event reached the endpoint")
}
