// Package netguard keeps the relay from being turned against its own network (SSRF). Webhook and
// OAuth token URLs are typed by users, so every connection the relay makes to them is checked at
// dial time, in net.Dialer.Control, on the IP address actually being dialled — after DNS
// resolution, with nothing resolved again between the check and the connect. A hostname that
// resolves to 127.0.0.1 is refused exactly like the literal address. The admin API applies the
// same Check to a URL whose host is a literal address when it is saved, so there is one policy.
//
// Only globally reachable unicast addresses pass: the IANA IPv4 and IPv6 special-purpose address
// registries are the source of the blocked ranges (unspecified, loopback, RFC 1918 private, CGNAT,
// link-local, unique-local, multicast, broadcast, "this network", reserved, benchmarking,
// documentation, discard, ORCHID, segment-routing SIDs, cloud metadata endpoints…), plus the
// deprecated IPv6 site-local (fec0::/10) and 6bone (3ffe::/16) ranges and every IPv6 address
// outside 2000::/3, the only block IANA allocates for global unicast.
//
// IPv6 forms that carry an IPv4 address are judged by that address, so the IPv4 rules cannot be
// walked around: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated), 6to4
// (2002:AABB:CCDD::/48), well-known NAT64 (64:ff9b::a.b.c.d) and ISATAP interface identifiers
// (…:0:5efe:a.b.c.d). Those whose embedding cannot be read without knowing the network's own
// configuration — local-use NAT64 (64:ff9b:1::/48) and Teredo (2001::/32, whose client address is
// obfuscated and whose relay is chosen by the host) — are refused outright.
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

// blockedRanges lists the refused ranges, the most specific first so its reason wins. Sources:
// the IANA IPv4 and IPv6 Special-Purpose Address Registries (entries not globally reachable, and
// the deprecated ones), the IPv6 Address Space registry (site-local, 6bone), and the metadata
// addresses of the big clouds.
func blockedRanges() []rangeClass {
	return mustRanges(
		// Cloud metadata (AWS, GCP and Azure use 169.254.169.254; ECS tasks 169.254.170.2;
		// Alibaba 100.100.100.200; AWS over IPv6 fd00:ec2::254).
		"169.254.169.254/32", "cloud metadata",
		"169.254.170.2/32", "cloud metadata",
		"100.100.100.200/32", "cloud metadata",
		"fd00:ec2::254/128", "cloud metadata",

		// IPv4.
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
		"192.88.99.0/24", "6to4 relay anycast (deprecated)",
		"198.18.0.0/15", "benchmarking",
		"224.0.0.0/4", "multicast",
		"240.0.0.0/4", "reserved",

		// IPv6.
		"::/128", "unspecified",
		"::1/128", "loopback",
		"::/96", "IPv4-compatible (deprecated)",
		"64:ff9b:1::/48", "local-use NAT64",
		"100::/64", "discard",
		"100:0:0:1::/64", "dummy prefix",
		"2001::/32", "Teredo",
		"2001:2::/48", "benchmarking",
		"2001:10::/28", "ORCHID (deprecated)",
		"2001:20::/28", "ORCHIDv2",
		"2001:db8::/32", "documentation",
		"2001::/23", "IETF protocol assignment",
		"3fff::/20", "documentation",
		"3ffe::/16", "6bone (returned)",
		"5f00::/16", "segment routing (SRv6 SID)",
		"fc00::/7", "unique-local (IPv6)",
		"fec0::/10", "site-local (deprecated)",
		"fe80::/10", "link-local",
		"ff00::/8", "multicast",
	)
}

// Embedding forms: how an IPv6 address carries an IPv4 one.
const (
	formMapped = "IPv4-mapped"
	formNAT64  = "NAT64"
	form6to4   = "6to4"
	formISATAP = "ISATAP"
)

var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// Embedded returns the IPv4 address an IPv6 address carries and the form that carries it:
// IPv4-mapped (::ffff:a.b.c.d), well-known NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:AABB:CCDD::, the
// IPv4 address in bits 16–47) or an ISATAP interface identifier (…:0:5efe:a.b.c.d or
// …:200:5efe:a.b.c.d). ok is false for an IPv4 address and for IPv6 addresses without one.
// IPv4-compatible, local-use NAT64 and Teredo addresses are not unwrapped: Check refuses them.
func Embedded(a netip.Addr) (v4 netip.Addr, form string, ok bool) {
	if !a.Is6() {
		return netip.Addr{}, "", false
	}
	b := a.As16()
	switch {
	case a.Is4In6():
		return a.Unmap(), formMapped, true
	case nat64WellKnown.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), formNAT64, true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), form6to4, true
	case (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe:
		return netip.AddrFrom4([4]byte(b[12:16])), formISATAP, true
	}
	return netip.Addr{}, "", false
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

// Check returns a *BlockedError when addr may not be dialled. An address in the allow-list, or
// whose embedded IPv4 address is, passes. An IPv4-mapped or well-known NAT64 address is judged by
// its IPv4 address alone (that is where the connection goes); a 6to4 or ISATAP address must pass
// both as itself and by its IPv4 address.
func (g *Guard) Check(addr netip.Addr) error {
	addr = addr.WithZone("")
	v4, form, embeds := Embedded(addr)
	for _, p := range g.allow {
		if p.Contains(addr) || (embeds && p.Contains(v4)) {
			return nil
		}
	}
	var reason string
	switch form {
	case formMapped:
		reason = g.reason(v4)
	case formNAT64:
		if reason = g.reason(v4); reason != "" {
			reason = form + "-embedded " + reason
		}
	default:
		reason = g.reason(addr)
		if reason == "" && embeds {
			if reason = g.reason(v4); reason != "" {
				reason = form + "-embedded " + reason
			}
		}
	}
	if reason != "" {
		return &BlockedError{Addr: addr, Reason: reason}
	}
	return nil
}

// reason says why a may not be dialled as itself (its embedded address aside), or "".
func (g *Guard) reason(a netip.Addr) string {
	if a.IsUnspecified() {
		return "unspecified"
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "broadcast"
	}
	for _, r := range g.blocked {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return "reserved (IPv6 outside 2000::/3)"
	}
	if !a.IsGlobalUnicast() {
		return "non-global"
	}
	return ""
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
