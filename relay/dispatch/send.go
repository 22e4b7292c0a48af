package dispatch

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/relay/netguard"
	"github.com/walhook/walhook/relay/oauth"
	"github.com/walhook/walhook/relay/redact"
	"github.com/walhook/walhook/relay/signature"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// drainLimit is how much more of a response body is read (and dropped) so the connection can be
// reused.
const drainLimit = 64 << 10

// Sender makes one attempt: builds the request, signs it, adds the OAuth token, sends it through
// the SSRF guard and reads the answer. The dispatcher uses one; the admin API uses one for test
// sends, without a running dispatcher.
type Sender struct {
	cfg    SenderConfig
	client *http.Client
	oauth  *oauth.Source
	now    func() time.Time
}

// NewSender returns a sender. st saves fetched OAuth tokens on their credentials (nil: memory
// only); reg receives walhook_oauth_token_fetches_total (nil: none).
func NewSender(cfg SenderConfig, st *store.Store, reg prometheus.Registerer) *Sender {
	cfg.defaults()
	guard := netguard.New(cfg.AllowPrivate)
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           guard.DialContext(cfg.AttemptTimeout),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   cfg.MaxConnsPerHost,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// An endpoint's headers are read into memory and kept in history: bound them like the
		// body (10 MiB by default otherwise).
		MaxResponseHeaderBytes: int64(cfg.MaxResponseHeaderBytes),
	}
	client := &http.Client{
		Transport: transport,
		// Redirects are never followed: a 3xx is the answer, and a failure. The receiver is the
		// webhook's URL, and following would send the signed body and its credentials elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{cfg: cfg, client: client, oauth: oauth.New(cfg.OAuth, client, st, reg), now: time.Now}
}

// Close closes idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

// result is what one attempt produced.
type result struct {
	started       time.Time
	duration      time.Duration
	request       webhook.RequestSnapshot // as sent, secrets masked
	bodyIsEvent   bool                    // request.Body is the envelope as claimed
	status        int
	respHeaders   map[string]string
	respBody      string
	err           error  // classifies the attempt; never stored as is
	errText       string // err as history and the Test answer show it: redacted
	class         class
	label         string // bounded: 2xx … 5xx, timeout, network, blocked, oauth, invalid, sealed, cancelled
	retryAfter    time.Duration
	hasRetryAfter bool
}

// send makes one attempt of envelope to w with message id msgID. cred is w's OAuth credential
// (nil: none). ctx cancelled means the relay is stopping.
func (s *Sender) send(ctx context.Context, w *webhook.Webhook, cred *webhook.OAuthCredential, envelope json.RawMessage, msgID string) (r result) {
	// r is the named result so that the deferred duration (taken after the body is drained) is
	// part of what send returns.
	r = result{started: s.now()}
	var token string
	defer func() {
		r.duration = s.now().Sub(r.started)
		// The boundary where the attempt becomes text for history and the Test answer: nothing
		// it holds may carry a secret (see redact).
		known := secretValues(w, cred, token)
		r.errText = redact.Error(r.err, known...)
		r.respBody = redact.Values(r.respBody, known...)
		r.request.URL = redact.URL(r.request.URL, known...)
		for k, v := range r.respHeaders {
			r.respHeaders[k] = redact.Values(v, known...)
		}
	}()
	if sealErr := sealError(w, cred); sealErr != "" {
		// A secret that did not open (moved in from another row, or sealed with a key no longer
		// configured) is never replaced by an empty one: nothing is sent, and the attempt says
		// why. It retries on the schedule, so putting a key back recovers by itself.
		r.request = webhook.RequestSnapshot{Method: string(w.Method), URL: w.URL, Headers: map[string]string{}}
		r.err, r.class, r.label = errors.New("not sent: "+sealErr), classRetry, "sealed"
		return r
	}
	b, err := buildRequest(w, envelope)
	r.request = webhook.RequestSnapshot{Method: b.method, URL: b.url, Headers: map[string]string{}, Body: string(b.body)}
	r.bodyIsEvent = b.bodyIsEvent
	if err != nil {
		r.request.Method, r.request.URL = string(w.Method), w.URL
		r.err, r.class, r.label = err, classFail, "invalid"
		return r
	}
	secrets := []string{w.Secret}
	if w.PreviousSecret != "" && w.PreviousSecretExpiresAt != nil && r.started.Before(*w.PreviousSecretExpiresAt) {
		secrets = append(secrets, w.PreviousSecret)
	}
	signer, err := signature.NewSigner(secrets...)
	if err != nil {
		r.err, r.class, r.label = fmt.Errorf("sign request: %w", err), classFail, "invalid"
		return r
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()

	if cred != nil {
		if token, err = s.oauth.Token(actx, *cred); err != nil {
			r.err, r.class, r.label = err, classRetry, "oauth"
			s.classifyErr(ctx, &r)
			return r
		}
	}
	resp, err := s.do(actx, w, b, signer, msgID, token, &r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && cred != nil {
		// The token may have been revoked: fetch once more and retry once.
		discard(resp)
		s.oauth.Invalidate(*cred, token)
		if token, err = s.oauth.Token(actx, *cred); err != nil {
			r.err, r.class, r.label = err, classRetry, "oauth"
			s.classifyErr(ctx, &r)
			return r
		}
		resp, err = s.do(actx, w, b, signer, msgID, token, &r) //nolint:bodyclose // closed by the deferred discard below, like the first response
	}
	if err != nil {
		r.err, r.class = err, classRetry
		s.classifyErr(ctx, &r)
		return r
	}
	defer discard(resp)
	r.status = resp.StatusCode
	r.class, r.label = classifyStatus(resp.StatusCode), statusLabel(resp.StatusCode)
	r.respHeaders = keptHeaders(resp.Header, s.cfg.MaxStoredHeaderBytes)
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.cfg.MaxResponseBody)))
	r.respBody = string(body)
	if err != nil && r.class == classSuccess {
		// The answer was 2xx; a body cut short does not undo that.
		r.err = nil
	}
	if r.class == classRetry {
		r.retryAfter, r.hasRetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	if r.class == classFail && resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		r.err = fmt.Errorf("endpoint answered %d (redirect to %q not followed)", resp.StatusCode, resp.Header.Get("Location"))
	}
	return r
}

// sealError is why w or cred cannot be used: a stored secret of theirs did not open ("" when all
// did).
func sealError(w *webhook.Webhook, cred *webhook.OAuthCredential) string {
	if w.SealError != "" {
		return "webhook: " + w.SealError
	}
	if cred != nil && cred.SealError != "" {
		return "OAuth credential: " + cred.SealError
	}
	return ""
}

// classifyErr labels a request error: a refused dial fails the delivery at once; the relay
// stopping gives the delivery back; timeouts and other network errors retry.
func (s *Sender) classifyErr(ctx context.Context, r *result) {
	switch {
	case netguard.IsBlocked(r.err):
		r.class, r.label = classFail, "blocked"
		var b *netguard.BlockedError
		if errors.As(r.err, &b) {
			r.err = b
		}
	case ctx.Err() != nil:
		r.class, r.label = classCancelled, "cancelled"
	case errors.Is(r.err, context.DeadlineExceeded) || isTimeout(r.err):
		if r.label == "" {
			r.label = "timeout"
		}
		r.err = fmt.Errorf("no answer within %s: %w", s.cfg.AttemptTimeout, r.err)
	default:
		if r.label == "" {
			r.label = "network"
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// do sends the built request once, signed now, and records it (masked) in r.request.
func (s *Sender) do(ctx context.Context, w *webhook.Webhook, b built, signer *signature.Signer, msgID, token string, r *result) (*http.Response, error) {
	var body io.Reader
	if b.body != nil {
		body = bytes.NewReader(b.body)
	}
	req, err := http.NewRequestWithContext(ctx, b.method, b.url, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	snap := map[string]string{}
	for _, h := range w.Headers {
		k := http.CanonicalHeaderKey(strings.TrimSpace(h.Key))
		// A reserved header (webhook.ReservedHeader) is one the API refuses to save; one stored
		// before it was refused is left out, never sent.
		if k == "" || webhook.ReservedHeader(k, token != "") != "" {
			continue
		}
		req.Header.Set(k, h.Value)
		if h.Masked() {
			snap[k] = webhook.Mask
		} else {
			snap[k] = h.Value
		}
	}
	if b.body != nil {
		req.Header.Set("Content-Type", "application/json")
		snap["Content-Type"] = "application/json"
	}
	ua := "walhook/" + s.cfg.Version
	req.Header.Set("User-Agent", ua)
	snap["User-Agent"] = ua
	ts := s.now()
	// The signature covers what is sent: the body, or for GET and DELETE the query string as it
	// goes on the wire (req.URL.RawQuery is written into the request line verbatim).
	sig := signer.Sign(msgID, ts, signature.Content(b.method, req.URL.RawQuery, b.body))
	req.Header[signature.HeaderID] = []string{msgID}
	req.Header[signature.HeaderTimestamp] = []string{strconv.FormatInt(ts.Unix(), 10)}
	req.Header[signature.HeaderSignature] = []string{sig}
	snap[signature.HeaderID] = msgID
	snap[signature.HeaderTimestamp] = strconv.FormatInt(ts.Unix(), 10)
	snap[signature.HeaderSignature] = sig
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		snap["Authorization"] = "Bearer " + webhook.Mask
	}
	r.request.Headers = snap
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send %s %s: %w", b.method, req.URL.Redacted(), err)
	}
	return resp, nil
}

// discard drains a little of what is left of a body, so the connection is reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()
}

// secretValues lists the secrets an attempt of w holds, for redaction: the signing secrets, the
// values of the headers history masks (webhook.Header.Masked: secret or credential-looking), the
// credential's client secret, code, tokens and hidden extra parameters (webhook.KeyValue.Masked),
// and the access token used.
func secretValues(w *webhook.Webhook, cred *webhook.OAuthCredential, token string) []string {
	out := []string{w.Secret, w.PreviousSecret, token}
	for _, h := range w.Headers {
		if h.Masked() {
			out = append(out, h.Value)
		}
	}
	if cred != nil {
		out = append(out, cred.ClientSecret, cred.Code, cred.RefreshToken, cred.AccessToken)
		for _, p := range cred.ExtraParams {
			if p.Masked() {
				out = append(out, p.Value)
			}
		}
	}
	return out
}

// truncatedKey names the entry that replaces the headers not kept. It is not a valid header name
// (parentheses are not token characters), so it cannot be confused with one the endpoint sent.
const truncatedKey = "(truncated)"

// keptHeaders flattens response headers for history, at most limit bytes of names and values: the
// smallest headers first (so Content-Type, Retry-After and the like survive one huge header), the
// rest dropped and counted in a "(truncated)" entry.
func keptHeaders(h http.Header, limit int) map[string]string {
	type kv struct{ k, v string }
	all := make([]kv, 0, len(h))
	total := 0
	for k, vs := range h {
		v := strings.Join(vs, ", ")
		all = append(all, kv{k, v})
		total += len(k) + len(v)
	}
	out := make(map[string]string, len(all))
	if total <= limit {
		for _, e := range all {
			out[e.k] = e.v
		}
		return out
	}
	slices.SortFunc(all, func(a, b kv) int {
		return cmp.Or(cmp.Compare(len(a.k)+len(a.v), len(b.k)+len(b.v)), strings.Compare(a.k, b.k))
	})
	kept, size := 0, 0
	for _, e := range all {
		if size+len(e.k)+len(e.v) > limit {
			break
		}
		out[e.k] = e.v
		size += len(e.k) + len(e.v)
		kept++
	}
	out[truncatedKey] = fmt.Sprintf("%d of %d headers not kept: history keeps %d bytes of response headers, the endpoint sent %d",
		len(all)-kept, len(all), limit, total)
	return out
}

// Test sends payload (an event envelope) to w once, synchronously, through the same request
// builder, signer, OAuth source and SSRF guard as deliveries, and writes no history. cred is w's
// OAuth credential (nil: none; an unsaved one has ID 0 and is fetched without caching). The
// webhook-id is "msg_test_<random>". The error is non-nil only when ctx ended; everything else
// is in the result.
func (s *Sender) Test(ctx context.Context, w webhook.Webhook, cred *webhook.OAuthCredential, payload json.RawMessage) (webhook.TestResult, error) {
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	r := s.send(ctx, &w, cred, payload, "msg_test_"+hex.EncodeToString(rnd[:]))
	if err := ctx.Err(); err != nil {
		return webhook.TestResult{}, fmt.Errorf("test send: %w", err)
	}
	tr := webhook.TestResult{
		Request: r.request, Status: r.status, Headers: r.respHeaders, Body: r.respBody,
		DurationMS: r.duration.Milliseconds(), Succeeded: r.class == classSuccess,
	}
	if r.errText != "" {
		tr.Error = r.errText
	} else if r.class != classSuccess {
		tr.Error = fmt.Sprintf("endpoint answered %d", r.status)
	}
	return tr, nil
}
