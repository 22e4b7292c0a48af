package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The envelope's rendering, pinned byte for byte: the field order, occurred_at in UTC to the
// microsecond, previous only when there is one.
func TestEnvelopeAppendJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 8, 29, 58, 123456789, time.FixedZone("CET", 3600))
	e := Envelope{ID: "evt_abc", Type: "contact.updated", CompanyID: "acme", OccurredAt: at,
		Data: json.RawMessage(`{"id":7,"email":"a@example.com"}`), Previous: json.RawMessage(`{"id":7,"email":"old@example.com"}`)}
	require.Equal(t, `{"id":"evt_abc","type":"contact.updated","company_id":"acme","occurred_at":"2026-12-02T07:29:58.123456Z",`+
		`"data":{"id":7,"email":"a@example.com"},"previous":{"id":7,"email":"old@example.com"}}`, string(e.AppendJSON([]byte("x")[1:])))

	e.Previous, e.OccurredAt = nil, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.Equal(t, `{"id":"evt_abc","type":"contact.updated","company_id":"acme","occurred_at":"2026-01-02T03:04:05Z","data":{"id":7,"email":"a@example.com"}}`,
		string(e.AppendJSON(nil)))
	e.Data = nil
	require.Equal(t, `{"id":"evt_abc","type":"contact.updated","company_id":"acme","occurred_at":"2026-01-02T03:04:05Z","data":null}`, string(e.AppendJSON(nil)))

	// AppendJSON appends.
	require.Equal(t, `[{"id":"","type":"","company_id":"","occurred_at":"0001-01-01T00:00:00Z","data":null}`, string(Envelope{}.AppendJSON([]byte("["))))

	// json.Marshal renders the same, and the envelope reads back.
	e.Data = json.RawMessage(`{"n":1}`)
	m, err := json.Marshal(e)
	require.NoError(t, err)
	require.Equal(t, string(e.AppendJSON(nil)), string(m))
	var back Envelope
	require.NoError(t, json.Unmarshal(m, &back))
	require.Equal(t, e.ID, back.ID)
	require.True(t, e.OccurredAt.Equal(back.OccurredAt))
}

// Strings from the application (company ids, above all) are escaped: whatever they hold, the
// envelope is valid JSON and reads back as they were (invalid UTF-8 as U+FFFD).
func TestEnvelopeStrings(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"plain", "", `quo"te`, `back\slash`, "new\nline\ttab\x00nul\x1f", "<b>&amp;</b>", "ünïcödé ✓ 🙂",
		"line\u2028sep\u2029", "\x7f", "bad\xffutf8", "\xed\xa0\x80", "end\\",
	} {
		e := Envelope{ID: s, Type: s, CompanyID: s, Data: json.RawMessage(`{}`)}
		b := e.AppendJSON(nil)
		require.True(t, json.Valid(b), "%q: %s", s, b)
		var back Envelope
		require.NoError(t, json.Unmarshal(b, &back), "%q", s)
		want := string([]rune(s)) // each invalid byte becomes U+FFFD
		require.Equal(t, want, back.ID, "%q", s)
		require.Equal(t, want, back.Type, "%q", s)
		require.Equal(t, want, back.CompanyID, "%q", s)
	}
}

// EnvelopeFields, Envelope's JSON names and what AppendJSON writes are the same list, in the same
// order; the picker offers none but those.
func TestEnvelopeFieldsOneList(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"id", "type", "company_id", "occurred_at", "data", "previous"}, EnvelopeFields)

	var tags []string
	rt := reflect.TypeFor[Envelope]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		tags = append(tags, name)
	}
	require.Equal(t, EnvelopeFields, tags)

	b := Envelope{Data: json.RawMessage(`{}`), Previous: json.RawMessage(`{}`)}.AppendJSON(nil)
	dec := json.NewDecoder(bytes.NewReader(b))
	_, err := dec.Token() // {
	require.NoError(t, err)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
	}
	require.Equal(t, EnvelopeFields, keys)

	for _, f := range envelopeFields {
		require.Contains(t, EnvelopeFields, f.Path)
	}
}
