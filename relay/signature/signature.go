// Package signature signs and verifies webhook requests the Standard Webhooks way
// (https://www.standardwebhooks.com): the headers webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature, a space-separated list of "v1,<base64 HMAC-SHA256>" over
// "<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64 secret after "whsec_".
//
// The signed content (the "body" of the formula) is what the request carries: the body for POST,
// PUT and PATCH; for GET and DELETE, which carry the payload in the query string and have no body,
// the raw query string exactly as sent (URL.RawQuery: no "?", escaping and order as on the wire).
// A receiver verifies with a stock Standard Webhooks library by passing that as the payload, and
// a changed query string no longer verifies. See Content.
//
// During a secret rotation a request carries one signature per valid secret, so a receiver that
// knows either secret accepts it. Verify is what receivers (and walhook's tests) run.
package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every walhook signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a new signing secret: SecretPrefix and 32 random bytes in base64, the form
// Key reads.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// DefaultTolerance is how far a timestamp may be from now for Verify.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns.
var (
	ErrMissingHeaders   = errors.New("signature: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp = errors.New("signature: invalid webhook-timestamp")
	ErrTimestampSkew    = errors.New("signature: webhook-timestamp too old or too new")
	ErrNoMatch          = errors.New("signature: no matching signature")
	ErrInvalidSecret    = errors.New("signature: invalid secret")
)

// Content is the signed content of a request: body for a method that carries one, and the raw
// query string (without "?") for GET and DELETE, which carry the payload there. Sender and
// receivers compute it the same way; on the receiving side rawQuery is the request's
// URL.RawQuery as received.
func Content(method, rawQuery string, body []byte) []byte {
	if method == http.MethodGet || method == http.MethodDelete {
		return []byte(rawQuery)
	}
	return body
}

// Key decodes a secret ("whsec_<base64>", or the bare base64) into the HMAC key.
func Key(secret string) ([]byte, error) {
	b64 := strings.TrimPrefix(secret, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, ErrInvalidSecret
	}
	return key, nil
}

// Signer signs with one or more secrets (the current one first).
type Signer struct {
	keys [][]byte
}

// NewSigner returns a signer for the given secrets; empty strings are skipped.
func NewSigner(secrets ...string) (*Signer, error) {
	s := &Signer{}
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		k, err := Key(sec)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
	}
	if len(s.keys) == 0 {
		return nil, ErrInvalidSecret
	}
	return s, nil
}

// Sign returns the webhook-signature header value for a message: "v1,<sig>" per secret,
// space-separated.
func (s *Signer) Sign(msgID string, ts time.Time, body []byte) string {
	var b strings.Builder
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(k, msgID, ts.Unix(), body)))
	}
	return b.String()
}

// Sign signs one message with one secret.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	s, err := NewSigner(secret)
	if err != nil {
		return "", err
	}
	return s.Sign(msgID, ts, body), nil
}

func mac(key []byte, msgID string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's headers and body against a secret, as a receiver does: the timestamp
// must be within tolerance of now (tolerance <= 0 skips that check) and one of the "v1,"
// signatures must match.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, tsText)
	}
	if tolerance > 0 {
		t := time.Unix(ts, 0)
		if now.Sub(t) > tolerance || t.Sub(now) > tolerance {
			return ErrTimestampSkew
		}
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}
