package dispatch_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestSignedContentVerifiesWithStockLibrary checks every method's signature with the stock Standard
// Webhooks Go library (github.com/standard-webhooks/standard-webhooks/libraries/go), not with
// walhook's own signature package, the way the README tells receivers to: the body for POST, PUT
// and PATCH; the raw query string for GET and DELETE. A query string changed in any way — a value,
// an added parameter, the order — no longer verifies, and neither does the empty body GET and
// DELETE were once signed over.
func TestSignedContentVerifiesWithStockLibrary(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.run(t, testConfig())

	params := []webhook.Param{{Key: "mail", Path: "data.email"}, {Key: "city", Path: "data.address.city"}, {Key: "tags", Path: "data.tags"}}
	for _, sh := range b.sendEveryShape(t, rc, webhook.Webhook{URL: rc.URL + "/hook?fixed=1&space=a%20b", Params: params}) {
		w, r := sh.hook, sh.req
		name := fmt.Sprintf("%s raw=%v", w.Method, w.RawData)
		wh, err := standardwebhooks.NewWebhook(w.Secret)
		require.NoError(t, err)
		u, err := url.Parse(r.URL)
		require.NoError(t, err)
		if r.Method != http.MethodGet && r.Method != http.MethodDelete {
			require.NotEmpty(t, r.Body, name)
			require.NoError(t, wh.Verify(r.Body, r.Header), name)
			require.Error(t, wh.Verify(append(append([]byte{}, r.Body...), ' '), r.Header), name)
			continue
		}
		q := u.RawQuery
		require.Empty(t, r.Body, name)
		require.True(t, strings.HasPrefix(q, "fixed=1&space=a%20b&"), "%s: %s", name, q)
		require.Contains(t, q, "ada", name)
		require.NoError(t, wh.Verify([]byte(q), r.Header), "%s: %s", name, q)

		parts := strings.Split(q, "&")
		reordered := strings.Join(append(parts[1:], parts[0]), "&")
		for label, tampered := range map[string]string{
			"value changed":                  strings.Replace(q, "ada", "eve", 1),
			"parameter added":                q + "&admin=true",
			"parameter dropped":              strings.Join(parts[:len(parts)-1], "&"),
			"order changed":                  reordered,
			"escaping changed":               strings.Replace(q, "a%20b", "a+b", 1),
			"with question mark":             "?" + q,
			"empty (the old signed content)": "",
		} {
			require.Error(t, wh.Verify([]byte(tampered), r.Header), "%s: %s", name, label)
		}
	}
}
