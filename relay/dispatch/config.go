package dispatch

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/walhook/walhook/relay/oauth"
)

// SenderConfig configures how one request is made; the dispatcher and test sends share it.
type SenderConfig struct {
	// Version goes into User-Agent: walhook/<Version>. Default "dev".
	Version string
	// AttemptTimeout bounds one attempt: OAuth token, connect, request, response, and the one
	// retry after a 401. Default 15s.
	AttemptTimeout time.Duration
	// MaxResponseBody is how much of a response body is kept in history, in bytes. Default 16384.
	MaxResponseBody int
	// MaxResponseHeaderBytes bounds the response headers read (http.Transport's
	// MaxResponseHeaderBytes): an endpoint sending more fails the attempt. Default 65536 (the
	// transport's own default is 10 MiB).
	MaxResponseHeaderBytes int
	// MaxStoredHeaderBytes bounds the response headers kept in history (names and values): the
	// smallest headers are kept first, and the rest are replaced by one "(truncated)" entry.
	// Default 8192.
	MaxStoredHeaderBytes int
	// MaxConnsPerHost bounds the connections to one host (idle ones kept alive too). Default 16.
	MaxConnsPerHost int
	// AllowPrivate lists the non-public networks requests may reach (SSRF guard allow-list).
	// Default none; `walhook dev` and the tests allow loopback.
	AllowPrivate []netip.Prefix
	// OAuth configures token fetches (timeout defaults to AttemptTimeout).
	OAuth oauth.Config
}

func (c *SenderConfig) defaults() {
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if c.MaxResponseBody <= 0 {
		c.MaxResponseBody = 16 << 10
	}
	if c.MaxResponseHeaderBytes <= 0 {
		c.MaxResponseHeaderBytes = 64 << 10
	}
	if c.MaxStoredHeaderBytes <= 0 {
		c.MaxStoredHeaderBytes = 8 << 10
	}
	if c.MaxConnsPerHost <= 0 {
		c.MaxConnsPerHost = 16
	}
	if c.OAuth.Timeout <= 0 {
		c.OAuth.Timeout = c.AttemptTimeout
	}
}

// Config configures the dispatcher. Zero values take the defaults shown.
type Config struct {
	SenderConfig

	// InstanceID names this replica. Its claims are made under a replica id of its own, new for
	// every process: InstanceID, a dot and 8 random hex digits (':' replaced by '_'), so a
	// restarted replica with the same InstanceID releases its predecessor's claims. Default
	// "dispatch".
	InstanceID string
	// Workers is the number of requests in flight at most. Default 256.
	Workers int
	// MaxClaimed is the number of claimed deliveries held in memory at most: in flight, and
	// queued behind their webhook's in-flight cap. Default 4096.
	MaxClaimed int
	// PerWebhook is the number of requests in flight at most for one webhook, so a slow endpoint
	// holds up only its own deliveries. Default 16.
	PerWebhook int
	// ClaimBatch is the number of deliveries claimed at most by one query. Default 1024.
	ClaimBatch int
	// PollInterval is how often the queue is checked without a notification (retries coming due,
	// expired leases). Default 1s.
	PollInterval time.Duration
	// Lease is how long a claimed delivery stays with this replica. It is the last resort: a dead
	// replica's claims are released by the others after HeartbeatTimeout (see Heartbeat); only
	// claims under a token of no known replica (a version without heartbeats) wait for it. It
	// must exceed three attempt timeouts. Default 2m.
	Lease time.Duration
	// Heartbeat is how often this replica renews its row in walhook.replica, and looks for
	// replicas whose heartbeat has expired to release their claims. Each statement has this long
	// at most, and none waits for a send or a result. Default 2s.
	Heartbeat time.Duration
	// HeartbeatTimeout is how long this replica's claims stay its own after its last heartbeat:
	// past it any other replica releases them, so a dead replica's deliveries are sent again
	// within about HeartbeatTimeout + Heartbeat instead of Lease. A replica that is alive keeps
	// its claims however slow its endpoints (the heartbeat runs on its own). It must be at least
	// twice Heartbeat. Default 8s.
	HeartbeatTimeout time.Duration
	// Schedule is the delay before each attempt, the first normally 0. Default DefaultSchedule
	// (11 attempts over about 2 days).
	Schedule []time.Duration
	// Jitter spreads each delay by ± this fraction. Default 0.2; negative disables.
	Jitter float64
	// RetryAfterMax caps a Retry-After the endpoint asks for. Default 1h.
	RetryAfterMax time.Duration
	// DisableAfter turns a webhook off when every attempt has failed for this long. Default 120h.
	DisableAfter time.Duration
	// WebhookCacheTTL is how long a webhook's configuration is reused from memory; changes also
	// drop it at once through the walhook_webhooks notification. Default 5s.
	WebhookCacheTTL time.Duration
	// RecordBatch is the number of attempt results written at most by one statement, and how
	// many results wait at most for the next one (then the workers wait). Default 512.
	RecordBatch int
	// StatsInterval is how often the queue-depth metrics are refreshed. Default 15s.
	StatsInterval time.Duration
	// DrainTimeout is how long in-flight requests may finish after the relay is told to stop;
	// after it they are cancelled and their deliveries given back. Default 10s.
	DrainTimeout time.Duration

	// claimPerWebhook is how many deliveries of one webhook a claim takes at most, and skipAt how
	// many it may have claimed (running + queued in memory) before claims skip it. Both are
	// multiples of PerWebhook sized so that a full queue behind a hanging endpoint (every attempt
	// lasting AttemptTimeout) is still sent well within its lease: at most (Lease/AttemptTimeout−1)
	// rounds of PerWebhook. A queue lets one fast webhook use its PerWebhook connections fully
	// without a claim round trip per freed slot.
	claimPerWebhook, skipAt int
	// maxShare caps a webhook's adaptive share (what it observably sends in shareWindow).
	maxShare int
}

// shareWindow is the part of the lease a webhook's claimed deliveries must be sendable in at its
// observed rate: a fast webhook gets a share of up to rate × Lease/4 (at most maxShare), a slow
// or hanging one never less than claimPerWebhook.
func (c *Config) shareWindow() time.Duration { return c.Lease / 4 }

// companyShare is how many claimed deliveries (running and queued) one company may hold when n
// companies hold some: all but a quarter of MaxClaimed when it is alone (the quarter is kept for
// the companies whose deliveries come due next, so their first claim finds room), else an equal
// part, never below one claim's worth for a webhook. A company whose endpoints hang fills its
// share and no more; an idle company's part is the busy ones'.
func (c *Config) companyShare(n int) int {
	if n <= 1 {
		return max(1, c.MaxClaimed-c.MaxClaimed/4)
	}
	return max(c.claimPerWebhook, c.MaxClaimed/n)
}

// quickSend is how short a webhook's recent attempts must be, on average, for it to use the send
// slots kept in reserve for other companies (see fairSlots): such a slot comes back within it.
func (c *Config) quickSend() time.Duration { return min(time.Second, c.AttemptTimeout/10) }

// maxQueueRounds caps the in-memory queue of one webhook at this many rounds of PerWebhook.
const maxQueueRounds = 4

func (c *Config) sizeQueues() {
	k := max(1, min(maxQueueRounds, (int(c.Lease/c.AttemptTimeout)-1)/2))
	c.claimPerWebhook = k * c.PerWebhook
	c.skipAt = max(c.PerWebhook, c.claimPerWebhook-c.PerWebhook)
	c.maxShare = max(c.claimPerWebhook, min(c.ClaimBatch, c.MaxClaimed/2))
}

func (c *Config) defaults() error {
	c.SenderConfig.defaults()
	if c.InstanceID == "" {
		c.InstanceID = "dispatch"
	}
	if c.Workers <= 0 {
		c.Workers = 256
	}
	if c.PerWebhook <= 0 {
		c.PerWebhook = 16
	}
	if c.MaxClaimed <= 0 {
		c.MaxClaimed = 4096
	}
	if c.ClaimBatch <= 0 {
		c.ClaimBatch = 1024
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 2 * time.Second
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 8 * time.Second
	}
	if c.Schedule == nil {
		c.Schedule = DefaultSchedule
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.RetryAfterMax <= 0 {
		c.RetryAfterMax = time.Hour
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = 5 * 24 * time.Hour
	}
	if c.WebhookCacheTTL <= 0 {
		c.WebhookCacheTTL = 5 * time.Second
	}
	if c.RecordBatch <= 0 {
		c.RecordBatch = 512
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = 15 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if len(c.Schedule) == 0 {
		return errors.New("dispatch config: the retry schedule needs at least one attempt")
	}
	if c.Jitter >= 1 {
		return fmt.Errorf("dispatch config: jitter %v must be below 1", c.Jitter)
	}
	if c.Lease <= 3*c.AttemptTimeout {
		return fmt.Errorf("dispatch config: lease %s must exceed three attempt timeouts (%s)", c.Lease, 3*c.AttemptTimeout)
	}
	if c.HeartbeatTimeout < 2*c.Heartbeat {
		return fmt.Errorf("dispatch config: heartbeat timeout %s must be at least twice the heartbeat interval (%s)", c.HeartbeatTimeout, 2*c.Heartbeat)
	}
	c.sizeQueues()
	return nil
}
