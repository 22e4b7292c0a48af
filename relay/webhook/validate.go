package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/walhook/walhook/relay/netguard"
)

// Limits the API and the test send enforce.
const (
	MaxNameLen        = 100  // characters of a webhook or credential name
	MaxURLLen         = 2048 // bytes of a webhook or token URL
	MaxHeaders        = 50   // custom headers per webhook
	MaxHeaderValueLen = 8192 // bytes of one header value
	MaxParams         = 100  // selected parameters per webhook
	MaxParamPathLen   = 500  // bytes of one parameter path
	MaxExtraParams    = 50   // extra parameters per OAuth credential
	MaxEvents         = 50   // trigger events per webhook (the CHECK on walhook.webhook.event_keys)
	MaxRateLimit      = 1000 // requests per second of a webhook's rate limit
)

// FieldError is one invalid field: Field is its JSON path ("headers[2].key"), Message says why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a value.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Add records an invalid field.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err is e when it holds a field, else nil.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Rules are what validation needs from outside the value.
type Rules struct {
	// EventExists reports whether key names an active entry of the trigger-event catalog. Nil
	// skips the check.
	EventExists func(key string) bool
	// EventSample returns the catalog sample of an event's data (nil when it has none), against
	// which selected parameters are checked (FieldSet.Allows). Nil skips the check.
	EventSample func(key string) json.RawMessage
	// AllowIP reports whether a URL may name this literal IP address as its host. Nil applies
	// the relay's dial-time policy with an empty allow-list (netguard.New(nil).Check), so a URL
	// saved here is refused for the same addresses the relay would refuse to dial. Host names are
	// checked when dialling.
	AllowIP func(netip.Addr) bool
}

func (r Rules) allowIP(a netip.Addr) bool {
	if r.AllowIP != nil {
		return r.AllowIP(a)
	}
	return netguard.New(nil).Check(a) == nil
}

// ValidateName checks a webhook or credential name: 1 to 100 characters of valid UTF-8, at least
// one of them visible, no control characters (PostgreSQL text cannot hold NUL) and no bidirectional
// overrides, which would make a name read differently from what it is.
func ValidateName(e *ValidationError, field, name string) {
	if strings.TrimFunc(name, invisible) == "" {
		e.Add(field, "is required")
		return
	}
	if ValidateText(e, field, name, MaxNameLen) && strings.ContainsFunc(name, bidiControl) {
		e.Add(field, "must not contain bidirectional control characters")
	}
}

// ValidateText checks a required single-line text (a company's name, an email): not only spaces,
// valid UTF-8, at most maxChars characters, no control characters. It adds at most one error and
// reports whether v passed, for a caller that checks more of it.
func ValidateText(e *ValidationError, field, v string, maxChars int) bool {
	switch {
	case strings.TrimSpace(v) == "":
		e.Add(field, "is required")
	case !utf8.ValidString(v):
		e.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(v) > maxChars:
		e.Add(field, "must be at most %d characters", maxChars)
	case strings.ContainsFunc(v, unicode.IsControl):
		e.Add(field, "must not contain control characters")
	default:
		return true
	}
	return false
}

// invisible reports spaces and format characters (zero-width space, joiners, BOM…).
func invisible(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }

// bidiControl reports the Unicode bidirectional embedding, override and isolate controls.
func bidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// numericHost reports a host written as an IPv4 address in a form other than four dotted decimal
// numbers — 2130706433, 0x7f000001, 0177.0.0.1, 127.1 — which some resolvers read as an address
// (inet_aton) and which netip does not parse, so the literal-address check would not see it.
func numericHost(host string) bool {
	for _, part := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if _, err := strconv.ParseUint(part, 0, 32); err != nil {
			return false
		}
	}
	return true
}

// ValidateURL checks an endpoint or token URL: absolute http or https, at most 2,048
// characters, a host, no userinfo, and a literal IP host only where rules allow it.
func ValidateURL(e *ValidationError, field, raw string, r Rules) {
	if raw == "" {
		e.Add(field, "is required")
		return
	}
	if len(raw) > MaxURLLen {
		e.Add(field, "must be at most %d characters", MaxURLLen)
		return
	}
	if strings.ContainsFunc(raw, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		e.Add(field, "must not contain spaces or control characters")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		e.Add(field, "must be a valid URL")
		return
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		e.Add(field, "must be an absolute http or https URL")
		return
	}
	if u.User != nil {
		e.Add(field, "must not contain a user name or password")
		return
	}
	host := u.Hostname()
	if host == "" {
		e.Add(field, "must have a host")
		return
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			e.Add(field, "must have a port between 1 and 65535")
			return
		}
	}
	a, err := netip.ParseAddr(host)
	switch {
	case err == nil && !r.allowIP(a):
		e.Add(field, "must not point to a private, loopback or link-local address")
	case err != nil && numericHost(host):
		e.Add(field, "must write an IP address as four dotted decimal numbers")
	}
}

// tokenRE is an RFC 9110 token (a valid header field name).
var tokenRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

// reservedHeaders are the headers walhook or its HTTP client writes, lower-case, which a webhook
// cannot set: the message framing (Host, Content-Length, Transfer-Encoding, Trailer: Go's client
// writes them from the request itself and drops a header of that name), the connection-specific
// headers (RFC 9110 §7.6.1; HTTP/2 refuses a request carrying them), and what the sender writes
// on every request (Content-Type, User-Agent; the webhook-* signature headers by prefix).
var reservedHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "trailer": true,
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true, "upgrade": true,
	"content-type": true, "user-agent": true,
}

// ReservedHeader says why a webhook may not send a custom header named name ("" when it may):
// walhook sets it (reservedHeaders and webhook-*), or, withOAuth, the credential sets
// Authorization. The API refuses such a header (ValidateHeaders) and the sender leaves it out, so
// what is saved is what is sent.
func ReservedHeader(name string, withOAuth bool) string {
	lk := strings.ToLower(name)
	switch {
	case reservedHeaders[lk] || strings.HasPrefix(lk, "webhook-"):
		return "is set by walhook and cannot be overridden"
	case withOAuth && lk == "authorization":
		return "is set by the OAuth credential"
	}
	return ""
}

// ValidateHeaders checks custom headers: at most 50, names are RFC 9110 tokens and unique and
// not reserved (ReservedHeader: walhook's, or with withOAuth Authorization, which the credential
// sets), values have no CR, LF or NUL.
func ValidateHeaders(e *ValidationError, hs []Header, withOAuth bool) {
	if len(hs) > MaxHeaders {
		e.Add("headers", "must have at most %d headers", MaxHeaders)
		return
	}
	seen := map[string]bool{}
	for i, h := range hs {
		kf, vf := fmt.Sprintf("headers[%d].key", i), fmt.Sprintf("headers[%d].value", i)
		lk := strings.ToLower(h.Key)
		switch {
		case h.Key == "":
			e.Add(kf, "is required")
		case len(h.Key) > 200 || !tokenRE.MatchString(h.Key):
			e.Add(kf, "must be a valid header name (letters, digits and !#$%%&'*+-.^_`|~)")
		case ReservedHeader(h.Key, withOAuth) != "":
			e.Add(kf, "%s %s", h.Key, ReservedHeader(h.Key, withOAuth))
		case seen[lk]:
			e.Add(kf, "duplicate header %s", h.Key)
		}
		seen[lk] = true
		switch {
		case strings.ContainsAny(h.Value, "\r\n\x00"):
			e.Add(vf, "must not contain CR, LF or NUL")
		case len(h.Value) > MaxHeaderValueLen:
			e.Add(vf, "must be at most %d bytes", MaxHeaderValueLen)
		case !utf8.ValidString(h.Value):
			e.Add(vf, "must be valid UTF-8")
		}
	}
}

var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)

// ValidParamPath reports whether path is a dotted path into the envelope ("data.email",
// "data.items.0.sku"): segments of letters, digits, _ or -, starting at an envelope field.
func ValidParamPath(path string) bool {
	if path == "" || len(path) > MaxParamPathLen {
		return false
	}
	segs := strings.Split(path, ".")
	if len(segs) > 32 {
		return false
	}
	for _, s := range segs {
		if !segmentRE.MatchString(s) {
			return false
		}
	}
	for _, f := range EnvelopeFields {
		if segs[0] == f {
			return true
		}
	}
	return false
}

// ValidateParams checks selected parameters: at most 100, keys 1 to 100 characters and unique,
// paths valid; with raw data off at least one is needed.
func ValidateParams(e *ValidationError, ps []Param, rawData bool) {
	if len(ps) > MaxParams {
		e.Add("params", "must have at most %d parameters", MaxParams)
		return
	}
	if !rawData && len(ps) == 0 {
		e.Add("params", "at least one parameter is required when raw_data is off")
	}
	seen := map[string]bool{}
	for i, p := range ps {
		kf, pf := fmt.Sprintf("params[%d].key", i), fmt.Sprintf("params[%d].path", i)
		switch {
		case p.Key == "":
			e.Add(kf, "is required")
		case !utf8.ValidString(p.Key) || utf8.RuneCountInString(p.Key) > 100:
			e.Add(kf, "must be at most 100 characters of valid UTF-8")
		case strings.ContainsFunc(p.Key, unicode.IsControl):
			e.Add(kf, "must not contain control characters")
		case seen[p.Key]:
			e.Add(kf, "duplicate parameter %s", p.Key)
		}
		seen[p.Key] = true
		if !ValidParamPath(p.Path) {
			e.Add(pf, "must be a dotted path into the event starting with one of %s (for example data.email)", strings.Join(EnvelopeFields, ", "))
		}
	}
}

// Validate checks every user-set field of a webhook and returns a *ValidationError naming each
// invalid one, or nil.
func (w *Webhook) Validate(r Rules) error {
	e := &ValidationError{}
	ValidateName(e, "name", w.Name)
	ValidateURL(e, "url", w.URL, r)
	switch {
	case w.Method == "":
		e.Add("method", "is required")
	case !w.Method.Valid():
		e.Add("method", "must be one of GET, POST, PUT, PATCH, DELETE")
	}
	eventsOK := ValidateEvents(e, w.EventKeys, r)
	ValidateHeaders(e, w.Headers, w.OAuthID != nil)
	ValidateParams(e, w.Params, w.RawData)
	if eventsOK && r.EventSample != nil {
		validateParamFields(e, w.Params, w.EventKeys, r.EventSample)
	}
	if w.RateLimit != nil && (*w.RateLimit < 1 || *w.RateLimit > MaxRateLimit) {
		e.Add("rate_limit", "must be a whole number of requests per second from 1 to %d, or null for no limit", MaxRateLimit)
	}
	return e.Err()
}

// ValidateEvents checks a webhook's trigger events: 1 to MaxEvents, each known to the catalog
// and given once. It names the list ("events") or the element ("events[2]") at fault and
// reports whether the list is valid.
func ValidateEvents(e *ValidationError, keys []string, r Rules) bool {
	switch {
	case len(keys) == 0:
		e.Add("events", "at least one trigger event is required")
		return false
	case len(keys) > MaxEvents:
		e.Add("events", "must have at most %d trigger events", MaxEvents)
		return false
	}
	n := len(e.Fields)
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		f := fmt.Sprintf("events[%d]", i)
		switch {
		case k == "":
			e.Add(f, "is required")
		case seen[k]:
			e.Add(f, "duplicate trigger event %q", k)
		case r.EventExists != nil && !r.EventExists(k):
			e.Add(f, "unknown trigger event %q", k)
		}
		seen[k] = true
	}
	return len(e.Fields) == n
}

// validateParamFields checks each selected parameter's path against the sample of every trigger
// event: a path one event's sample rules out is not a field the events have in common.
func validateParamFields(e *ValidationError, ps []Param, keys []string, sample func(string) json.RawMessage) {
	sets := make([]FieldSet, len(keys))
	for i, k := range keys {
		sets[i] = NewFieldSet(sample(k))
	}
	for i, p := range ps {
		if !ValidParamPath(p.Path) {
			continue // already named by ValidateParams
		}
		for j, fs := range sets {
			if !fs.Allows(p.Path) {
				e.Add(fmt.Sprintf("params[%d].path", i), "%s is not a field of the trigger event %s; choose a field every trigger event has", p.Path, keys[j])
				break
			}
		}
	}
}

// reservedOAuthParams are set from the credential's own fields.
var reservedOAuthParams = map[string]bool{
	"grant_type": true, "client_id": true, "client_secret": true, "code": true, "refresh_token": true, "scope": true,
}

// Validate checks an OAuth credential and returns a *ValidationError naming each invalid field,
// or nil. The grant decides what is required: client_credentials a client id and secret,
// authorization_code a code, refresh_token a refresh token.
func (c *OAuthCredential) Validate(r Rules) error {
	e := &ValidationError{}
	ValidateName(e, "name", c.Name)
	ValidateURL(e, "token_url", c.TokenURL, r)
	if c.Method != "" && c.Method != http.MethodPost && c.Method != http.MethodGet {
		e.Add("method", "must be POST or GET")
	}
	switch {
	case c.GrantType == "":
		e.Add("grant_type", "is required")
	case !c.GrantType.Valid():
		e.Add("grant_type", "must be one of authorization_code, client_credentials, refresh_token")
	case c.GrantType == GrantClientCredentials && c.ClientSecret == "":
		e.Add("client_secret", "is required for the client_credentials grant")
	case c.GrantType == GrantAuthorizationCode && c.Code == "":
		e.Add("code", "is required for the authorization_code grant")
	case c.GrantType == GrantRefreshToken && c.RefreshToken == "":
		e.Add("refresh_token", "is required for the refresh_token grant")
	}
	if c.GrantType == GrantClientCredentials && c.ClientID == "" {
		e.Add("client_id", "is required for the client_credentials grant")
	}
	for _, f := range []struct{ name, v string }{
		{"client_id", c.ClientID}, {"client_secret", c.ClientSecret}, {"code", c.Code},
		{"refresh_token", c.RefreshToken}, {"scope", c.Scope},
	} {
		if len(f.v) > 4096 {
			e.Add(f.name, "must be at most 4096 bytes")
		} else if strings.ContainsAny(f.v, "\r\n\x00") {
			e.Add(f.name, "must not contain CR, LF or NUL")
		}
	}
	if len(c.ExtraParams) > MaxExtraParams {
		e.Add("extra_params", "must have at most %d parameters", MaxExtraParams)
		return e.Err()
	}
	for i, p := range c.ExtraParams {
		kf := fmt.Sprintf("extra_params[%d].key", i)
		switch {
		case p.Key == "":
			e.Add(kf, "is required")
		case len(p.Key) > 200 || !utf8.ValidString(p.Key):
			e.Add(kf, "must be at most 200 bytes of valid UTF-8")
		case strings.ContainsFunc(p.Key, unicode.IsControl):
			e.Add(kf, "must not contain control characters")
		case reservedOAuthParams[p.Key]:
			e.Add(kf, "%s has its own field", p.Key)
		}
		vf := fmt.Sprintf("extra_params[%d].value", i)
		if len(p.Value) > 4096 || !utf8.ValidString(p.Value) {
			e.Add(vf, "must be at most 4096 bytes of valid UTF-8")
		} else if strings.ContainsAny(p.Value, "\r\n\x00") {
			e.Add(vf, "must not contain CR, LF or NUL")
		}
	}
	return e.Err()
}
