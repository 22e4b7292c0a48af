package dispatch_test

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestWebhookIDIsOpaque: the webhook-id of two consecutive deliveries is "msg_" and 26 base32
// characters that contain neither delivery id and share no telling prefix, and each is the
// delivery's public id (what the API shows).
func TestWebhookIDIsOpaque(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())
	rc := newReceiver(t, nil)
	w := b.hook(t, webhook.Webhook{URL: rc.URL, RawData: true})
	first := b.enqueue(t, w.ID)[0]
	second := b.enqueue(t, w.ID)[0]
	require.Equal(t, first+1, second, "the row ids are consecutive")
	b.waitState(t, first, webhook.DeliverySucceeded)
	b.waitState(t, second, webhook.DeliverySucceeded)
	byID := map[string]bool{}
	for _, r := range rc.requests() {
		byID[r.Header.Get("webhook-id")] = true
	}
	a, c := b.msgID(t, first), b.msgID(t, second)
	require.Equal(t, map[string]bool{a: true, c: true}, byID)
	lower := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	for _, id := range []string{a, c} {
		require.Regexp(t, `^msg_[a-z2-7]{26}$`, id)
		raw, err := lower.DecodeString(id[4:])
		require.NoError(t, err)
		for _, row := range []int64{first, second} {
			require.NotEqual(t, "msg_"+strconv.FormatInt(row, 10), id)
			require.False(t, bytes.Contains(raw, binary.BigEndian.AppendUint64(nil, uint64(row))), "%s holds row id %d in clear", id, row)
		}
	}
	common := 0
	for a[common] == c[common] {
		common++
	}
	require.Less(t, common, len("msg_")+4, "%s and %s look sequential", a, c)
}

// TestMovedSecretIsNotUsed: a webhook whose signing secret was copied in from another webhook
// (with SQL) sends nothing; its attempt fails with a clear error and retries on the schedule, and
// the other webhooks of the claim are sent as usual.
func TestMovedSecretIsNotUsed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.run(t, testConfig())
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(http.StatusOK) })
	good := b.hook(t, webhook.Webhook{URL: rc.URL + "/good", RawData: true})
	moved := b.hook(t, webhook.Webhook{URL: rc.URL + "/moved", RawData: true})
	_, err := b.pool.Exec(b.ctx, `UPDATE walhook.webhook SET signing_secret_enc = (SELECT signing_secret_enc FROM walhook.webhook WHERE id = $1) WHERE id = $2`, good.ID, moved.ID)
	require.NoError(t, err)
	ids := b.enqueue(t, good.ID, moved.ID)
	b.waitState(t, ids[0], webhook.DeliverySucceeded)
	var as []storeAttempt
	require.Eventually(t, func() bool {
		as = nil
		for _, a := range b.attempts(t, ids[1]) {
			as = append(as, storeAttempt{a.Outcome, a.Error})
		}
		return len(as) > 0
	}, waitFor, tick)
	require.Equal(t, webhook.OutcomeRetry, as[0].outcome)
	require.NotNil(t, as[0].err)
	require.Equal(t, "not sent: webhook: the signing secret does not open: it was changed or moved here from another row, company or column in the database; set the secret again", *as[0].err)
	for _, r := range rc.requests() {
		require.NotContains(t, r.URL, "/moved", "nothing is sent with a secret that did not open")
	}
}

type storeAttempt struct {
	outcome webhook.Outcome
	err     *string
}
