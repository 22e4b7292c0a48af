package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTestSendReal runs the test endpoints through relay/dispatch's sender against a real
// receiver: the request carries the envelope, the custom and signature headers, and the answer
// (success or not) comes back as the result.
func TestTestSendReal(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	status := http.StatusOK
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		st := status
		mu.Unlock()
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(rcv.Close)

	e := newEnv(t, realSender())
	body := hookBody("real")
	body["url"] = rcv.URL + "/in"
	body["headers"] = []map[string]any{{"key": "X-Api-Key", "value": "k-123", "secret": true}}
	res := e.must(200, "POST", "/v1/webhooks/test?payload=sample", e.manager, body)
	require.Equal(t, true, res["succeeded"], "%v", res)
	require.Equal(t, 200.0, res["status"])
	mu.Lock()
	require.Len(t, got, 1)
	require.Equal(t, "k-123", got[0].Header.Get("X-Api-Key"))
	require.NotEmpty(t, got[0].Header.Get("webhook-signature"))
	var envl map[string]any
	require.NoError(t, json.Unmarshal(bodies[0], &envl))
	require.Equal(t, "contact.created", envl["type"])
	status = http.StatusInternalServerError
	mu.Unlock()
	require.NotContains(t, fmt.Sprint(res["request"]), "k-123", "the secret header is masked in the result")

	created := e.must(201, "POST", "/v1/webhooks", e.manager, body)
	res = e.must(200, "POST", fmt.Sprintf("/v1/webhooks/%d/test", int64(created["id"].(float64))), e.manager, nil)
	require.Equal(t, false, res["succeeded"])
	require.Equal(t, 500.0, res["status"])
}
