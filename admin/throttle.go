package admin

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AuthFailureConfig slows down guessing: repeated failed sign-ins (POST /v1/login) and failed
// token checks (an unknown, revoked or expired bearer token) from one address. Past Limit
// failures, the address is held off — every sign-in or token check from it answers 429 with
// Retry-After, a valid token included, since checking one would let the guessing go on — for a
// delay that starts at one second and doubles with each further failure, up to MaxDelay. An
// address is forgotten Window after its last hold-off ends. IPv6 clients are counted per /64,
// the block one subscriber usually holds.
type AuthFailureConfig struct {
	// Limit is how many failures an address may make before it is held off. Default 10.
	Limit int
	// Window is how long an address's failures are remembered after its last failure or
	// hold-off. Default 10m.
	Window time.Duration
	// MaxDelay caps one hold-off. Default 15m.
	MaxDelay time.Duration
	// MaxAddresses bounds the memory: at most this many addresses are tracked; past it the
	// forgotten ones, then the longest quiet one, make room. Default 10000.
	MaxAddresses int
	// TrustedProxies are the networks of reverse proxies whose X-Forwarded-For is believed: when
	// the peer is in one, the client is the rightmost address of the header not in one. Default
	// none: the header is ignored, since anyone can send it.
	TrustedProxies []netip.Prefix
}

func (c *AuthFailureConfig) defaults() {
	if c.Limit <= 0 {
		c.Limit = 10
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Minute
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 15 * time.Minute
	}
	if c.MaxAddresses <= 0 {
		c.MaxAddresses = 10000
	}
}

// throttle counts authentication failures per client address; it is safe for concurrent use.
// Its memory is bounded (MaxAddresses) and it lives in one process: each admin replica counts on
// its own.
type throttle struct {
	cfg AuthFailureConfig
	now func() time.Time

	mu   sync.Mutex
	seen map[netip.Prefix]*failures
}

// failures is one address's record.
type failures struct {
	n     int       // failures since the address was last forgotten
	last  time.Time // of the last failure
	until time.Time // held off until then (zero: not held off)
}

func newThrottle(cfg AuthFailureConfig, now func() time.Time) *throttle {
	cfg.defaults()
	return &throttle{cfg: cfg, now: now, seen: map[netip.Prefix]*failures{}}
}

// forgotten reports whether f is old enough to drop.
func (t *throttle) forgotten(f *failures, now time.Time) bool {
	end := f.last
	if f.until.After(end) {
		end = f.until
	}
	return now.Sub(end) > t.cfg.Window
}

// wait is how long the client must wait before its next sign-in or token check (0: go ahead).
func (t *throttle) wait(client netip.Prefix) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.seen[client]
	if !ok {
		return 0
	}
	now := t.now()
	if d := f.until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// fail records a failed sign-in or token check by the client and reports whether this failure
// started its hold-off (the first past the limit), which the caller logs once.
func (t *throttle) fail(client netip.Prefix) (started bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f, ok := t.seen[client]
	if ok && t.forgotten(f, now) {
		f.n, f.until = 0, time.Time{}
	}
	if !ok {
		t.makeRoom(now)
		f = &failures{}
		t.seen[client] = f
	}
	f.n++
	f.last = now
	if excess := f.n - t.cfg.Limit; excess >= 0 {
		d := t.cfg.MaxDelay
		if excess < 40 {
			d = min(time.Duration(math.Pow(2, float64(excess)))*time.Second, t.cfg.MaxDelay)
		}
		f.until = now.Add(d)
	}
	return f.n == t.cfg.Limit
}

// makeRoom keeps the map under MaxAddresses: it drops the forgotten records and, if that is not
// enough, the one quiet the longest. It runs only when a new address fails with the map full.
func (t *throttle) makeRoom(now time.Time) {
	if len(t.seen) < t.cfg.MaxAddresses {
		return
	}
	var oldest netip.Prefix
	var oldestAt time.Time
	for k, f := range t.seen {
		if t.forgotten(f, now) {
			delete(t.seen, k)
			continue
		}
		if oldestAt.IsZero() || f.last.Before(oldestAt) {
			oldest, oldestAt = k, f.last
		}
	}
	if len(t.seen) >= t.cfg.MaxAddresses {
		delete(t.seen, oldest)
	}
}

// client is the address r comes from, as the key failures are counted under: the peer, or with
// trusted proxies the first untrusted address of X-Forwarded-For read from the right; IPv4 as
// itself, IPv6 as its /64.
func (t *throttle) client(r *http.Request) netip.Prefix {
	addr := peerAddr(r.RemoteAddr)
	if len(t.cfg.TrustedProxies) > 0 && t.trusted(addr) {
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: stop at the last address a trusted proxy vouched for
			}
			addr = a.Unmap()
			if !t.trusted(addr) {
				break
			}
		}
	}
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{} // no address (a test's pipe): one shared key
	}
	return p
}

func (t *throttle) trusted(a netip.Addr) bool {
	for _, p := range t.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses an http.Request's RemoteAddr ("ip:port").
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// heldOff answers a held-off client: 429 with Retry-After in whole seconds.
func heldOff(w http.ResponseWriter, d time.Duration) *problem {
	secs := int64(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return &problem{Status: http.StatusTooManyRequests,
		Detail: "too many failed sign-ins or unknown tokens from this address; try again in " + strconv.FormatInt(secs, 10) + " s"}
}

// failAuth records a failed sign-in or token check of r's client, and logs when the client's
// hold-off starts: once per address and window, so guessing cannot flood the log.
func (s *Server) failAuth(r *http.Request, client netip.Prefix) {
	if s.throttle.fail(client) {
		s.log.Warn().Str("client", client.String()).Str("path", r.URL.Path).Int("failures", s.cfg.AuthFailures.Limit).
			Msg("holding off an address after repeated failed sign-ins or unknown tokens")
	}
}
