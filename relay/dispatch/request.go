package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/walhook/walhook/relay/webhook"
)

// Select returns the JSON value at path in the envelope: dot-separated object keys, and decimal
// indexes into arrays ("data.items.0.sku"). The path follows the API's rule
// (webhook.ValidParamPath): it starts at an envelope field, so "email" is refused rather than
// read as "data.email" — one rule for what is saved and what is sent, and no guessing between
// the envelope's "id" and the row's. Missing values are JSON null.
func Select(envelope json.RawMessage, path string) (json.RawMessage, error) {
	if !webhook.ValidParamPath(path) {
		return nil, fmt.Errorf("select parameter: path %q must be a dotted path starting with one of %s", path, strings.Join(webhook.EnvelopeFields, ", "))
	}
	parts := strings.Split(path, ".")
	cur := envelope
	for _, p := range parts {
		cur = bytes.TrimSpace(cur)
		if len(cur) == 0 {
			return json.RawMessage("null"), nil
		}
		switch cur[0] {
		case '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(cur, &obj); err != nil {
				return nil, fmt.Errorf("select parameter %q: %w", path, err)
			}
			v, ok := obj[p]
			if !ok {
				return json.RawMessage("null"), nil
			}
			cur = v
		case '[':
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 {
				return json.RawMessage("null"), nil
			}
			var arr []json.RawMessage
			if err := json.Unmarshal(cur, &arr); err != nil {
				return nil, fmt.Errorf("select parameter %q: %w", path, err)
			}
			if i >= len(arr) {
				return json.RawMessage("null"), nil
			}
			cur = arr[i]
		default:
			return json.RawMessage("null"), nil
		}
	}
	var c bytes.Buffer
	if err := json.Compact(&c, cur); err != nil || c.Len() == 0 {
		return json.RawMessage("null"), nil
	}
	return c.Bytes(), nil
}

// field is one top-level member of a payload, in order.
type field struct {
	key   string
	value json.RawMessage
}

// payloadFields is the webhook's payload as ordered fields: the envelope's own members (raw
// data on) or the selected parameters in the webhook's order (raw data off).
func payloadFields(w *webhook.Webhook, envelope json.RawMessage) ([]field, error) {
	if !w.RawData {
		out := make([]field, 0, len(w.Params))
		for _, p := range w.Params {
			v, err := Select(envelope, p.Path)
			if err != nil {
				return nil, err
			}
			out = append(out, field{key: p.Key, value: v})
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(envelope))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("decode envelope: not a JSON object")
	}
	var out []field
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decode envelope: %w", err)
		}
		key, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decode envelope: %w", err)
		}
		out = append(out, field{key: key, value: v})
	}
	return out, nil
}

// body encodes fields as one JSON object, in order.
func objectBody(fields []field) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(f.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// queryValue is a field as a query parameter: strings as they are, other scalars as their JSON
// text, null as empty, objects and arrays JSON-encoded.
func queryValue(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			return s
		}
	}
	if v[0] == '{' || v[0] == '[' {
		var c bytes.Buffer
		if err := json.Compact(&c, v); err == nil {
			return c.String()
		}
	}
	return string(v)
}

// withQuery appends fields to rawURL's query, in order, keeping the query it already has.
func withQuery(rawURL string, fields []field) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse webhook URL: %w", err)
	}
	var b strings.Builder
	b.WriteString(u.RawQuery)
	for _, f := range fields {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(f.key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(queryValue(f.value)))
	}
	u.RawQuery = b.String()
	return u.String(), nil
}

// MaxQueryURLLen bounds the URL of a GET or DELETE request, which carries the payload in its
// query. Servers and proxies commonly refuse request lines over 8 KiB (nginx, Apache, many load
// balancers answer 414 or close the connection), so a longer URL is not sent: the attempt fails
// at once, saying why, instead of retrying for days against a limit that will not move.
const MaxQueryURLLen = 8 << 10

// built is a request ready to sign and send.
type built struct {
	method string
	url    string
	body   []byte // nil for GET and DELETE
	// bodyIsEvent: body is the event's envelope as claimed, so history need not store it again.
	bodyIsEvent bool
}

// buildRequest builds the request a webhook sends: the body is the envelope (raw data on) or
// the selected parameters as one object in the webhook's order (raw data off); GET and DELETE
// carry the same fields as query parameters and no body.
func buildRequest(w *webhook.Webhook, envelope json.RawMessage) (built, error) {
	method := string(w.Method)
	if method == "" {
		method = string(webhook.MethodPost)
	}
	if !w.Method.Valid() && w.Method != "" {
		return built{}, fmt.Errorf("build request: unsupported method %q", w.Method)
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return built{}, fmt.Errorf("build request: invalid webhook URL %q", w.URL)
	}
	if method == string(webhook.MethodGet) || method == string(webhook.MethodDelete) {
		fields, err := payloadFields(w, envelope)
		if err != nil {
			return built{}, err
		}
		q, err := withQuery(w.URL, fields)
		if err != nil {
			return built{}, err
		}
		if len(q) > MaxQueryURLLen {
			return built{method: method, url: q}, &URLTooLongError{Method: method, Len: len(q)}
		}
		return built{method: method, url: q}, nil
	}
	if w.RawData {
		if !json.Valid(envelope) {
			return built{}, errors.New("build request: the event envelope is not valid JSON")
		}
		return built{method: method, url: w.URL, body: envelope, bodyIsEvent: true}, nil
	}
	fields, err := payloadFields(w, envelope)
	if err != nil {
		return built{}, err
	}
	return built{method: method, url: w.URL, body: objectBody(fields)}, nil
}

// URLTooLongError is a GET or DELETE request whose URL, with the payload in its query, is longer
// than MaxQueryURLLen: it is not sent, and the delivery fails without retrying.
type URLTooLongError struct {
	Method string
	Len    int
}

func (e *URLTooLongError) Error() string {
	return fmt.Sprintf("not sent: the %s request's URL would be %d bytes, over the %d-byte limit for a payload in the query; "+
		"turn Raw data off and select fewer parameters, or use POST", e.Method, e.Len, MaxQueryURLLen)
}
