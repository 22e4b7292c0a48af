package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/netguard"
)

// registerDispatch registers the delivery flags (package dispatch documents each setting).
func registerDispatch(fs *flag.FlagSet, c *dispatch.Config) {
	c.Version = version
	fs.IntVar(&c.Workers, "dispatch-workers", 256, "requests in flight at most, shared fairly between companies")
	fs.IntVar(&c.PerWebhook, "dispatch-per-webhook", 16, "requests in flight at most for one webhook")
	fs.IntVar(&c.MaxClaimed, "dispatch-max-claimed", 4096, "claimed deliveries held in memory at most (in flight and queued behind a webhook's cap)")
	fs.IntVar(&c.ClaimBatch, "dispatch-claim-batch", 1024, "deliveries claimed at most by one query")
	durationVar(fs, &c.PollInterval, "dispatch-poll-interval", time.Second, "how often the queue is checked without a notification (retries, expired leases)")
	durationVar(fs, &c.Lease, "dispatch-lease", 2*time.Minute, "how long a claimed delivery stays with this replica while its heartbeat goes on (more than 3 attempt timeouts)")
	durationVar(fs, &c.Heartbeat, "dispatch-heartbeat", 2*time.Second, "how often this replica renews its heartbeat and releases the claims of dead replicas")
	durationVar(fs, &c.HeartbeatTimeout, "dispatch-heartbeat-timeout", 8*time.Second, "a replica whose heartbeat is older than this is dead: the others release its claims (at least twice --dispatch-heartbeat)")
	durationVar(fs, &c.AttemptTimeout, "attempt-timeout", 15*time.Second, "time limit of one delivery attempt (token, connect, request, answer)")
	fs.IntVar(&c.MaxConnsPerHost, "max-conns-per-host", 16, "connections to one endpoint host at most")
	fs.IntVar(&c.MaxResponseBody, "max-response-body", 16<<10, "bytes of a response body kept in history")
	fs.Var((*scheduleFlag)(&c.Schedule), "retry-schedule", "delays before each attempt, comma-separated (default 0s,5s,30s,2m,10m,30m,1h,3h,6h,12h,24h)")
	fs.Float64Var(&c.Jitter, "retry-jitter", 0.2, "spread of each retry delay, as a fraction (0.2 = ±20%; negative disables)")
	durationVar(fs, &c.RetryAfterMax, "retry-after-max", time.Hour, "longest Retry-After honoured")
	durationVar(fs, &c.DisableAfter, "disable-after", 5*24*time.Hour, "turn a webhook off after failing continuously this long")
	durationVar(fs, &c.WebhookCacheTTL, "webhook-cache-ttl", 5*time.Second, "how long webhook settings are reused from memory")
	durationVar(fs, &c.DrainTimeout, "dispatch-drain-timeout", 10*time.Second, "how long in-flight requests may finish on shutdown")
	fs.Var((*cidrFlag)(&c.AllowPrivate), "allow-private-cidrs", "non-public networks requests may reach, comma-separated (e.g. 127.0.0.0/8,::1/128); default none")
}

// devDispatch lets `walhook dev` deliver to receivers on this machine.
func devDispatch(c *dispatch.Config) {
	c.Version = version
	c.AllowPrivate = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

type scheduleFlag []time.Duration

func (f *scheduleFlag) String() string {
	if f == nil || len(*f) == 0 {
		return ""
	}
	parts := make([]string, len(*f))
	for i, d := range *f {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (f *scheduleFlag) Set(s string) error {
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d < 0 {
			return fmt.Errorf("parse retry delay %q: want a duration like 30s", p)
		}
		out = append(out, d)
	}
	*f = out
	return nil
}

type cidrFlag []netip.Prefix

func (f *cidrFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(*f))
	for i, p := range *f {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (f *cidrFlag) Set(s string) error {
	p, err := netguard.ParseCIDRs(s)
	if err != nil {
		return err
	}
	*f = p
	return nil
}
