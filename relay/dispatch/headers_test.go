package dispatch_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/webhook"
)

// bigHeaders answers 200 with n headers X-Big-000… of size bytes each, and X-Small: yes.
func bigHeaders(n, size int) func(w http.ResponseWriter, _ *http.Request, _ int64) {
	return func(w http.ResponseWriter, _ *http.Request, _ int64) {
		v := strings.Repeat("h", size)
		for i := range n {
			w.Header().Set(fmt.Sprintf("X-Big-%03d", i), v)
		}
		w.Header().Set("X-Small", "yes")
		w.WriteHeader(http.StatusOK)
	}
}

// Response headers are bounded twice: at most 64 KiB are read (a receiver sending 1 MiB fails the
// attempt with a clear error and nothing of them is stored), and at most 8 KiB are kept in history
// (a receiver sending 30 KiB succeeds; its smallest headers are kept, the rest are replaced by a
// "(truncated)" entry that says so).
func TestResponseHeadersCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())

	medium := newReceiver(t, bigHeaders(30, 1000)) // ~30 KiB
	huge := newReceiver(t, bigHeaders(1024, 1024)) // ~1 MiB
	wm := b.hook(t, webhook.Webhook{URL: medium.URL, RawData: true})
	wh := b.hook(t, webhook.Webhook{URL: huge.URL, RawData: true})
	ids := b.enqueue(t, wm.ID, wh.ID)

	b.waitState(t, ids[0], webhook.DeliverySucceeded)
	as := b.attempts(t, ids[0])
	require.Len(t, as, 1)
	h := as[0].ResponseHeaders
	require.Equal(t, "yes", h["X-Small"])
	size := 0
	var bigKept []string
	for k, v := range h {
		if k == "(truncated)" {
			continue
		}
		size += len(k) + len(v)
		if strings.HasPrefix(k, "X-Big-") {
			bigKept = append(bigKept, k)
		}
	}
	require.LessOrEqual(t, size, 8192)
	// 1,008 bytes each: eight fit in 8 KiB beside the small ones, the first eight by name.
	require.ElementsMatch(t, []string{"X-Big-000", "X-Big-001", "X-Big-002", "X-Big-003", "X-Big-004", "X-Big-005", "X-Big-006", "X-Big-007"}, bigKept)
	require.Contains(t, h["(truncated)"], "22 of ")
	require.Contains(t, h["(truncated)"], "headers not kept: history keeps 8192 bytes of response headers, the endpoint sent ")

	d := b.waitState(t, ids[1], webhook.DeliveryFailed)
	require.NotNil(t, d.LastError)
	require.Contains(t, *d.LastError, "server response headers exceeded 65536 bytes")
	as = b.attempts(t, ids[1])
	require.Len(t, as, 3) // the test schedule's three attempts: an endpoint may be fixed
	for _, a := range as {
		require.Nil(t, a.ResponseStatus)
		require.Empty(t, a.ResponseHeaders)
		require.NotNil(t, a.Error)
		require.Contains(t, *a.Error, "server response headers exceeded 65536 bytes")
	}
}

// wire is a receiver that keeps each request's head (request line and headers) exactly as it
// arrived on the connection, and answers 204.
type wire struct {
	url   string
	heads chan string
}

func newWire(t *testing.T) *wire {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	w := &wire{url: "http://" + ln.Addr().String() + "/in", heads: make(chan string, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					var head strings.Builder
					n := int64(0)
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
							n, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := io.CopyN(io.Discard, r, n); err != nil {
						return
					}
					w.heads <- head.String()
					if _, err := io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return w
}

// One rule for custom headers (webhook.ReservedHeader): a header the API refuses to save is never
// sent, even when a stored webhook holds it (saved before it was refused), and a header the API
// accepts is sent as saved. Checked on the wire, for a request with a body and one without, with
// and without an OAuth credential. The expected verdicts are written out here, by hand.
func TestReservedHeadersNeverSent(t *testing.T) {
	t.Parallel()
	rc := newWire(t)
	s := dispatch.NewSender(dispatch.SenderConfig{Version: "test", AllowPrivate: loopback}, nil, nil)
	t.Cleanup(s.Close)
	far := time.Now().Add(time.Hour)
	cred := &webhook.OAuthCredential{ID: 1, CompanyID: company, Name: "c", TokenURL: rc.url, GrantType: webhook.GrantClientCredentials,
		ClientID: "id", AccessToken: "the-bearer", TokenExpiresAt: &far}

	refused := []string{
		"Host", "Content-Length", "content-length", "Transfer-Encoding", "Trailer",
		"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade",
		"Content-Type", "User-Agent",
		"webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "webhook-anything",
	}
	accepted := []string{"X-Custom", "Accept", "Cookie", "Origin", "X-Webhook-Id", "Content-Encoding", "Authorization"}
	for _, withOAuth := range []bool{false, true} {
		for _, name := range append(append([]string{}, refused...), accepted...) {
			wantRefused := slices.Contains(refused, name) || (withOAuth && name == "Authorization")
			marker := fmt.Sprintf("marker-%d-%t", len(name), withOAuth)
			hs := []webhook.Header{{Key: name, Value: marker}}
			e := &webhook.ValidationError{}
			webhook.ValidateHeaders(e, hs, withOAuth)
			require.Equal(t, wantRefused, e.Err() != nil, "%s (OAuth %t): saved: %v", name, withOAuth, e.Err())

			for _, method := range []webhook.Method{webhook.MethodPost, webhook.MethodGet} {
				w := webhook.Webhook{CompanyID: company, URL: rc.url, Method: method, RawData: true, Headers: hs,
					Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
				var c *webhook.OAuthCredential
				if withOAuth {
					c = cred
				}
				res, err := s.Test(t.Context(), w, c, json.RawMessage(`{"id":"evt_1","data":{}}`))
				require.NoError(t, err)
				require.True(t, res.Succeeded, "%s %s (OAuth %t): %s", method, name, withOAuth, res.Error)
				head := <-rc.heads
				if withOAuth {
					require.Contains(t, head, "\r\nAuthorization: Bearer the-bearer\r\n", name)
				}
				snap := fmt.Sprint(res.Request.Headers)
				if wantRefused {
					require.NotContains(t, head, marker, "%s %s (OAuth %t) was sent", method, name, withOAuth)
					require.NotContains(t, snap, marker, "%s %s (OAuth %t) is in the recorded request", method, name, withOAuth)
				} else {
					require.Contains(t, head, "\r\n"+http.CanonicalHeaderKey(name)+": "+marker+"\r\n", "%s %s (OAuth %t) was not sent", method, name, withOAuth)
					recorded := marker
					if hs[0].Masked() { // credential-looking (Cookie, Authorization): sent, recorded masked
						recorded = webhook.Mask
					}
					require.Equal(t, recorded, res.Request.Headers[http.CanonicalHeaderKey(name)], name)
				}
			}
		}
	}
}
