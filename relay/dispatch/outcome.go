package dispatch

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/webhook"
)

// DefaultSchedule is the retry schedule: the delay before each attempt of a delivery, the first
// one immediate (11 attempts over about 47 hours). After the last attempt the delivery is failed.
var DefaultSchedule = []time.Duration{
	0, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// class says what an attempt's result means for the delivery.
type class int

const (
	classSuccess   class = iota // 2xx
	classRetry                  // 408, 425, 429, 5xx, timeouts, network and token errors
	classFail                   // 3xx, other 4xx, SSRF refusals, requests that cannot be built
	classGone                   // 410: fail and turn the webhook off
	classCancelled              // the relay is stopping: no attempt, lease given back
)

// classifyStatus maps an HTTP status to a class. 4xx other than 408/410/425/429 fail at once:
// the endpoint says this request is wrong, and sending the same bytes again cannot fix it; the
// user fixes the webhook or the endpoint and resyncs.
func classifyStatus(code int) class {
	switch {
	case code >= 200 && code <= 299:
		return classSuccess
	case code == http.StatusGone:
		return classGone
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return classRetry
	default: // 1xx left over, 3xx (redirects are not followed), other 4xx
		return classFail
	}
}

// statusLabel is a bounded label for an attempt's result.
func statusLabel(code int) string {
	switch {
	case code >= 200 && code <= 299:
		return "2xx"
	case code >= 300 && code <= 399:
		return "3xx"
	case code == http.StatusGone:
		return "410"
	case code == http.StatusTooManyRequests:
		return "429"
	case code >= 400 && code <= 499:
		return "4xx"
	case code >= 500 && code <= 599:
		return "5xx"
	}
	return "other"
}

// ParseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): delay-seconds or an HTTP date.
// It returns false when the value is missing or unreadable; a date in the past is a zero delay.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// nextAttempt decides the delivery's state after an attempt: n is the attempt's position in the
// current schedule (1 for the first attempt, or the first after a resync).
func (c *Config) nextAttempt(cl class, n int, retryAfter time.Duration, hasRetryAfter bool, now time.Time, rnd func() float64) (webhook.DeliveryState, webhook.Outcome, *time.Time) {
	switch cl {
	case classSuccess:
		return webhook.DeliverySucceeded, webhook.OutcomeSucceeded, nil
	case classFail, classGone:
		return webhook.DeliveryFailed, webhook.OutcomeFailed, nil
	}
	if n >= len(c.Schedule) {
		return webhook.DeliveryFailed, webhook.OutcomeFailed, nil
	}
	delay := c.Schedule[n]
	if c.Jitter > 0 && delay > 0 {
		delay = time.Duration(float64(delay) * (1 + c.Jitter*(2*rnd()-1)))
	}
	if hasRetryAfter {
		ra := min(retryAfter, c.RetryAfterMax)
		delay = max(delay, ra)
	}
	next := now.Add(delay)
	return webhook.DeliveryPending, webhook.OutcomeRetry, &next
}

func jitterRand() float64 { return rand.Float64() } //nolint:gosec // jitter needs no cryptographic randomness
