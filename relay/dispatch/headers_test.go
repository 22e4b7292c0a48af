package dispatch_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
