// Package redact removes secrets from text before it is stored or shown: the error of a delivery
// attempt (attempt.error, delivery.last_error, which every member of a company may read, viewers
// included), a test send's answer, a log line. It is the one place that knows what a secret
// looks like in such text; the dispatcher applies it where an attempt's error becomes text.
//
// Errors carry secrets in three ways, and each is handled:
//
//   - URLs. Go's url.Error repeats the whole request URL, and an OAuth credential with method GET
//     sends its client secret, code or refresh token in the token URL's query. Every URL in the
//     text loses its userinfo, the value of each query parameter and its fragment: the scheme,
//     host, port, path and parameter names stay, which is what a reader needs to fix a webhook.
//   - Credential-looking pairs. An endpoint's error answer may echo what it got
//     ("client_secret=…", `"access_token": "…"`, "Authorization: Bearer …"). Values of keys that
//     name a secret (secret, password, token, api key, auth, credential, signature, session,
//     cookie, assertion, code) and bearer tokens are masked.
//   - Known values. The caller passes the secrets it holds (client secret, code, tokens, signing
//     secrets, secret header values); each is masked wherever it appears — bare, URL-escaped or
//     quoted — in whatever words the endpoint wrapped it. A value shorter than MinSecretLen is
//     not searched for (masking every "ab" would destroy the text and hide nothing), and if
//     masking could not remove a value (one made of the mask's own characters), the whole text
//     is replaced by the mask: this fails closed.
package redact

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/walhook/walhook/relay/webhook"
)

// Mask replaces what is removed. It is the mask history uses for secret header values.
const Mask = webhook.Mask

// MinSecretLen is the shortest known value searched for.
const MinSecretLen = 4

var (
	// urlRE finds absolute URLs: a scheme, "://", and everything up to a space, a quote or an
	// angle bracket (how URLs end in Go's errors: url.Error quotes them).
	urlRE = regexp.MustCompile("(?i)\\b[a-z][a-z0-9+.\\-]*://[^\\s\"'<>`]+")
	// secretKey is a key naming a secret: one containing a secret word, or exactly "code".
	secretKey = `[\w-]*(?i:` + credentialWords() + `)[\w-]*|(?i:code)`
	// jsonPairRE: "key": "value" in JSON.
	jsonPairRE = regexp.MustCompile(`("(?:` + secretKey + `)"\s*:\s*")((?:[^"\\]|\\.)*)(")`)
	// pairRE: key=value, or key: value (a space after the colon, so host:port is not taken for
	// one; see headerLike).
	pairRE = regexp.MustCompile(`(\b(` + secretKey + `)(\s*=\s*|:\s+)["']?)((?i:bearer\s+|basic\s+)?[^\s"'&,;)}\]]+)`)
	// bearerRE: an HTTP authorization credential outside a pair.
	bearerRE = regexp.MustCompile(`(\b(?i:bearer)\s+|\bBasic\s+)([A-Za-z0-9._~+/\-]+=*)`)
)

// Error is Text of err's message, and "" for a nil err.
func Error(err error, secrets ...string) string {
	if err == nil {
		return ""
	}
	return Text(err.Error(), secrets...)
}

// Text returns s with URL userinfo, query values and fragments, credential-looking values and the
// given secrets masked.
func Text(s string, secrets ...string) string {
	s = urlRE.ReplaceAllStringFunc(s, redactURL)
	s = jsonPairRE.ReplaceAllString(s, "${1}"+Mask+"${3}")
	s = pairRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := pairRE.FindStringSubmatch(m)
		if sub[4] == Mask || (!strings.Contains(sub[3], "=") && !headerLike(sub[2])) {
			return m
		}
		return sub[1] + Mask
	})
	s = bearerRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := bearerRE.FindStringSubmatch(m)
		if len(sub[2]) < MinSecretLen {
			return m
		}
		return sub[1] + Mask
	})
	return Values(s, secrets...)
}

// credentialWords is webhook.CredentialWords as alternatives of a pattern, a "-" in a word
// matching "-", "_" or nothing.
func credentialWords() string {
	alts := make([]string, len(webhook.CredentialWords))
	for i, w := range webhook.CredentialWords {
		alts[i] = strings.ReplaceAll(regexp.QuoteMeta(w), "-", "[_-]?")
	}
	return strings.Join(alts, "|")
}

// headerLike reports a key that reads as a header or field name ("Authorization", "X-Api-Key",
// "client_secret") rather than a word of a sentence ("oauth token: Get …"): before a colon, only
// such keys start a pair.
func headerLike(key string) bool {
	return strings.ContainsAny(key, "_-") || (key[0] >= 'A' && key[0] <= 'Z')
}

// Values returns s with each given secret masked wherever it appears, bare, URL-escaped or
// quoted, and nothing else changed: for text whose shape must stay, like a response body.
func Values(s string, secrets ...string) string {
	var forms []string
	for _, sec := range secrets {
		if len(sec) < MinSecretLen {
			continue
		}
		forms = append(forms, sec, url.QueryEscape(sec), url.PathEscape(sec))
		if q := strconv.Quote(sec); len(q) > 2 {
			forms = append(forms, q[1:len(q)-1])
		}
		if j, err := json.Marshal(sec); err == nil && len(j) > 2 {
			forms = append(forms, string(j[1:len(j)-1]))
		}
	}
	if len(forms) == 0 {
		return s
	}
	// Masking can join text around a mask into a secret again only when the secret is made of
	// the mask's characters; a few rounds settle every other case.
	for range 4 {
		found := false
		for _, f := range forms {
			if strings.Contains(s, f) {
				s = strings.ReplaceAll(s, f, Mask)
				found = true
			}
		}
		if !found {
			return s
		}
	}
	for _, f := range forms {
		if strings.Contains(s, f) {
			return Mask
		}
	}
	return s
}

// URL returns a request URL as history shows it: what was sent, with the secrets taken out. Unlike
// the URLs in an error's text (see Text), the query's values stay — for GET and DELETE they are
// the payload — except the values of parameters whose names look like a credential ("token",
// "api_key", "signature"… as for headers: webhook.CredentialName), the password of the userinfo,
// and the given secrets wherever they appear. A URL that does not parse is masked whole.
func URL(raw string, secrets ...string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Mask
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, v, ok := strings.Cut(p, "=")
			if !ok || v == "" {
				continue
			}
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if webhook.CredentialName(name) {
				parts[i] = k + "=" + url.QueryEscape(Mask)
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = Mask, ""
	}
	return Values(u.String(), secrets...)
}

// redactURL masks a URL's userinfo, each query value and its fragment, textually (a URL in an
// error need not parse).
func redactURL(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	scheme, rest := u[:i+3], u[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = Mask + authority[at:]
	}
	var frag string
	if h := strings.IndexByte(tail, '#'); h >= 0 {
		tail, frag = tail[:h], "#"+Mask
	}
	var query string
	if q := strings.IndexByte(tail, '?'); q >= 0 {
		parts := strings.FieldsFunc(tail[q+1:], func(r rune) bool { return r == '&' || r == ';' })
		for j, p := range parts {
			if k, v, ok := strings.Cut(p, "="); ok {
				if v != "" {
					parts[j] = k + "=" + Mask
				}
			} else {
				parts[j] = Mask
			}
		}
		tail, query = tail[:q], "?"+strings.Join(parts, "&")
	}
	return scheme + authority + tail + query + frag
}
