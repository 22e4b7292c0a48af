package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// Embedding. The web page refuses to be framed (frame-ancestors 'none') unless the operator names
// the host application's origins (Config.FrameAncestors, --frame-ancestors); then those origins,
// and only those, may show it in an iframe — the host application's settings screen. The list is
// the page's defence against clickjacking, so an entry is one exact origin and nothing wider:
//
//   - scheme://host[:port] and nothing else: no path (a lone trailing "/" is dropped), query,
//     fragment or user info;
//   - https, or http only for a loopback host (localhost, 127.0.0.0/8, [::1]) for development: an
//     http host page can be rewritten by anyone on the network path, who could then frame the
//     page and trick a signed-in member into clicks;
//   - no wildcards ("*", "https://*.example.com", "https:"): a wildcard lets every subdomain frame
//     the page, including ones that serve other people's content;
//   - the host is a DNS name (ASCII; an internationalised name in its xn-- form) or an IP address.
//
// Entries are normalised (scheme and host lower case, default port kept as given) and
// deduplicated. They are written into the Content-Security-Policy header, which is why nothing
// but these characters ever reaches it.

// maxFrameAncestors bounds the list: the header carries every entry on every page load.
const maxFrameAncestors = 32

// ParseFrameAncestors parses a comma-separated list of origins allowed to frame the web page.
// Spaces around entries are ignored; an empty string is the empty list (framing refused).
func ParseFrameAncestors(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		origin, err := parseFrameAncestor(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i+1, strings.TrimSpace(part), err)
		}
		if !seen[origin] {
			seen[origin] = true
			out = append(out, origin)
		}
	}
	if len(out) > maxFrameAncestors {
		return nil, fmt.Errorf("%d origins: at most %d", len(out), maxFrameAncestors)
	}
	return out, nil
}

var errOriginShape = errors.New("want an origin, scheme://host[:port], such as https://app.example.com")

// parseFrameAncestor checks and normalises one origin.
func parseFrameAncestor(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty (two commas in a row, or one at an end?)")
	}
	if strings.Contains(s, "*") {
		return "", errors.New("wildcards are not allowed: list each origin")
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == ';' || r == '\'' || r == '"' || r == '\\' {
			return "", fmt.Errorf("character %q is not allowed: %w", r, errOriginShape)
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return "", errOriginShape
	}
	if u.User != nil {
		return "", errors.New("user info is not allowed: " + errOriginShape.Error())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", errors.New("a path, query or fragment is not allowed: " + errOriginShape.Error())
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("scheme %q: want https (or http for a loopback host)", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	loopback := host == "localhost"
	if strings.HasPrefix(u.Host, "[") { // an IPv6 literal
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("host %q is not an IPv6 address", host)
		}
		host = "[" + a.String() + "]"
		loopback = a.IsLoopback()
	} else if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return "", fmt.Errorf("host %q: write an IPv6 address in brackets", host)
		}
		host = a.String()
		loopback = a.IsLoopback()
	} else if err := checkDNSName(host); err != nil {
		return "", err
	}
	if scheme == "http" && !loopback {
		return "", fmt.Errorf("http is allowed only for a loopback host (localhost, 127.0.0.1, [::1]); use https://%s", strings.TrimPrefix(s, u.Scheme+"://"))
	}
	origin := scheme + "://" + host
	if port := u.Port(); port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return "", fmt.Errorf("port %q: want 1 to 65535", port)
		}
		origin += ":" + strconv.FormatUint(n, 10)
	} else if strings.HasSuffix(u.Host, ":") {
		return "", errors.New("a colon without a port: " + errOriginShape.Error())
	}
	return origin, nil
}

// checkDNSName accepts an ASCII DNS name: dot-separated labels of letters, digits and hyphens,
// 1 to 63 characters each, not starting or ending with a hyphen, 253 characters at most.
func checkDNSName(host string) error {
	if host == "" || len(host) > 253 {
		return fmt.Errorf("host %q is not a DNS name", host)
	}
	labels := strings.Split(host, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q is not a DNS name", host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("host %q is not a DNS name (an internationalised name goes in its xn-- form)", host)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" { // browsers read 1.2.3 or 10 as an IPv4 address
		return fmt.Errorf("host %q is neither a DNS name nor an IPv4 address", host)
	}
	return nil
}

// frameAncestorsSource is the CSP frame-ancestors value for a parsed list: 'none' when empty.
func frameAncestorsSource(origins []string) string {
	if len(origins) == 0 {
		return "'none'"
	}
	return strings.Join(origins, " ")
}

// checkedFrameAncestors re-checks a configured list (Config is also built by code, not only by
// the flag): an entry that does not parse is dropped and logged, so framing fails closed.
func checkedFrameAncestors(origins []string, log zerolog.Logger) []string {
	var out []string
	for _, o := range origins {
		checked, err := ParseFrameAncestors(o)
		if err != nil || len(checked) != 1 {
			log.Error().Err(err).Str("origin", o).Msg("frame ancestor dropped: not one origin scheme://host[:port]")
			continue
		}
		if !slices.Contains(out, checked[0]) {
			out = append(out, checked[0])
		}
	}
	if len(out) > maxFrameAncestors {
		log.Error().Int("origins", len(out)).Int("max", maxFrameAncestors).Msg("frame ancestors dropped: too many origins; the page refuses every frame")
		return nil
	}
	return out
}
