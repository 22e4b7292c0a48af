package webhook

import (
	"net"
	"net/url"
	"strings"
)

// Mask stands in for a secret value wherever walhook shows one: API answers, test results and
// the history. Sending it back in an update means "keep the stored value" (where the destination
// did not change; see SameDestination). It is the one mask string of walhook: the admin API, the
// web page and dispatch's history snapshots all use it, so a value read anywhere can be written
// back.
const Mask = "••••••"

// credentialNames are header names that carry credentials whatever they are marked.
var credentialNames = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-api-key": true, "x-auth-token": true, "api-key": true, "apikey": true,
}

// CredentialWords are the name fragments that mark a name as credential-looking: a header
// ("X-Client-Token", "X-Webhook-Secret", "X-Api-Key-2", "Session-Id"…) or an OAuth extra
// parameter ("password", "client_assertion", "api_key"…) here, and a key in an error text in
// package redact, which builds its pattern from this list. A "-" in a word
// stands for "-", "_" or nothing ("api-key" matches Api-Key, api_key and apikey).
var CredentialWords = []string{"token", "secret", "password", "passwd", "pwd", "api-key", "access-key", "private-key", "auth", "cookie", "session", "credential", "signature", "assertion"}

// CredentialName reports whether a header name or an OAuth extra parameter's key looks like it
// carries a credential (Authorization, Cookie, X-Api-Key, password, client_assertion, anything
// containing token, secret, password, api-key, auth…). Such a value is hidden even when the user
// did not mark it secret: sealed at rest and masked in every read, for a viewer may read the
// listing and the history, and a bearer token typed into a plain header is still a bearer token.
// It errs on the side of hiding: a false positive only hides a value that its author can type
// again.
//
// The list may grow. What was sealed is recorded with the stored values (package store), never
// derived from this rule when they are read back.
func CredentialName(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	if credentialNames[n] {
		return true
	}
	squeezed := strings.NewReplacer("-", "", "_", "").Replace(n)
	for _, w := range CredentialWords {
		if strings.Contains(squeezed, strings.ReplaceAll(w, "-", "")) {
			return true
		}
	}
	return false
}

// Masked reports whether h's value is hidden in every read: it is marked secret or its name looks
// like a credential.
func (h Header) Masked() bool { return h.Secret || CredentialName(h.Key) }

// MaskHeaders returns hs with every masked value (see Header.Masked) replaced by Mask.
func MaskHeaders(hs []Header) []Header {
	out := make([]Header, len(hs))
	for i, h := range hs {
		if h.Masked() {
			h.Value = Mask
		}
		out[i] = h
	}
	return out
}

// Masked reports whether p's value is hidden (sealed at rest, masked in every read): it is marked
// secret or its key looks like a credential.
func (p KeyValue) Masked() bool { return p.Secret || CredentialName(p.Key) }

// MaskParams returns ps with every masked value (see KeyValue.Masked) replaced by Mask.
func MaskParams(ps []KeyValue) []KeyValue {
	out := make([]KeyValue, len(ps))
	for i, p := range ps {
		if p.Masked() {
			p.Value = Mask
		}
		out[i] = p
	}
	return out
}

// SameDestination reports whether two webhook or token URLs name the same destination, so that a
// secret stored for the first may be sent to the second. A stored secret (a secret or
// credential-looking header value, an OAuth client secret, code or refresh token) is only ever
// sent where it was stored for: a request that changes the destination must supply it again.
//
// The destination is the whole URL but its fragment (which is never sent), with the scheme and
// host compared case-insensitively and a default port (80 for http, 443 for https) equal to none.
// The origin alone is not enough: receivers are often multi-tenant on one origin
// (hooks.slack.com/services/…, hooks.zapier.com/hooks/catch/…, webhook.site/<uuid>), where the
// path says who receives. A URL that does not parse is a different destination.
func SameDestination(a, b string) bool {
	if a == b {
		return true
	}
	ka, okA := destinationKey(a)
	kb, okB := destinationKey(b)
	return okA && okB && ka == kb
}

func destinationKey(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	q := ""
	if u.ForceQuery || u.RawQuery != "" {
		q = "?" + u.RawQuery
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path + q, true
}
