// Package netguard keeps the relay from being turned against its own network (SSRF). Webhook and
// OAuth token URLs are typed by users, so every connection the relay makes to them is checked at
// dial time, in net.Dialer.Control, on the IP address actually being dialled — after DNS
// resolution, with nothing resolved again between the check and the connect. A hostname that
// resolves to 127.0.0.1 is refused exactly like the literal address.
//
// Refused: unspecified, loopback, RFC 1918 private, CGNAT (100.64.0.0/10), link-local (IPv4 and
// IPv6), IPv6 unique-local, multicast, broadcast, "this network", reserved, benchmarking and
// documentation ranges, and cloud metadata endpoints (169.254.169.254, fd00:ec2::254, …).
// IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address inside them.
//
// The allow-list (Guard.Allow) is explicit configuration: `walhook dev` and the tests allow
// loopback; production allows nothing unless the operator says so (fail closed).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// BlockedError is the error a refused dial returns; the attempt's error shows its message.
type BlockedError struct {
	Addr   netip.Addr
	Reason string // "loopback", "private (RFC 1918)", "cloud metadata", …
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address (outgoing requests to non-public addresses are blocked; see --allow-private-cidrs)", e.Addr, e.Reason)
}

// IsBlocked reports whether err comes from a refused dial.
func IsBlocked(err error) bool {
	var b *BlockedError
	return errors.As(err, &b)
}

type rangeClass struct {
	prefix netip.Prefix
	reason string
}

func mustRanges(pairs ...string) []rangeClass {
	out := make([]rangeClass, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, rangeClass{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// Checked first, so the most specific reason wins.
func blockedRanges() []rangeClass {
	return mustRanges(
		"169.254.169.254/32", "cloud metadata",
		"169.254.170.2/32", "cloud metadata",
		"100.100.100.200/32", "cloud metadata",
		"fd00:ec2::254/128", "cloud metadata",
		"0.0.0.0/8", "unspecified (this network)",
		"127.0.0.0/8", "loopback",
		"10.0.0.0/8", "private (RFC 1918)",
		"172.16.0.0/12", "private (RFC 1918)",
		"192.168.0.0/16", "private (RFC 1918)",
		"100.64.0.0/10", "shared (CGNAT)",
		"169.254.0.0/16", "link-local",
		"192.0.0.0/24", "IETF protocol assignment",
		"192.0.2.0/24", "documentation",
		"198.51.100.0/24", "documentation",
		"203.0.113.0/24", "documentation",
		"198.18.0.0/15", "benchmarking",
		"224.0.0.0/4", "multicast",
		"240.0.0.0/4", "reserved",
		"::/128", "unspecified",
		"::1/128", "loopback",
		"fc00::/7", "unique-local (IPv6)",
		"fe80::/10", "link-local",
		"ff00::/8", "multicast",
		"100::/64", "discard",
		"2001:db8::/32", "documentation",
		"2001::/23", "IETF protocol assignment",
	)
}

// Guard decides which addresses the relay may connect to.
type Guard struct {
	allow   []netip.Prefix
	blocked []rangeClass
}

// New returns a guard that refuses every non-public address except those in allow.
func New(allow []netip.Prefix) *Guard {
	return &Guard{allow: allow, blocked: blockedRanges()}
}

// ParseCIDRs parses a comma-separated list of CIDRs (or bare addresses) for the allow-list.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("parse allowed address %q: %w", part, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("parse allowed CIDR %q: %w", part, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Check returns a *BlockedError when addr may not be dialled.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	judged := addr.Unmap()
	// NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
	if judged.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(judged) {
		b := judged.As16()
		judged = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, p := range g.allow {
		if p.Contains(addr) || p.Contains(judged) {
			return nil
		}
	}
	if judged.IsUnspecified() {
		return &BlockedError{Addr: addr, Reason: "unspecified"}
	}
	if judged == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return &BlockedError{Addr: addr, Reason: "broadcast"}
	}
	for _, r := range g.blocked {
		if r.prefix.Contains(judged) {
			return &BlockedError{Addr: addr, Reason: r.reason}
		}
	}
	if !judged.IsGlobalUnicast() {
		return &BlockedError{Addr: addr, Reason: "non-global"}
	}
	return nil
}

// Control is a net.Dialer.Control: it checks the resolved address the socket is about to
// connect to.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: parse dial address %q: %w", address, err)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a dialer that checks every address it connects to. timeout bounds the connect.
func (g *Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.Control}
}

// DialContext dials through the guard (for an http.Transport).
func (g *Guard) DialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := g.Dialer(timeout)
	return d.DialContext
}
