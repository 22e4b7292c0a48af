package webhook

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Envelope is the event as every webhook receives it, one contract for every source: the body
// of a raw-data webhook, and what a selected parameter's path starts in. Capture renders it once
// per event (AppendJSON); history keeps those bytes, and every attempt sends them as they are.
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	CompanyID  string          `json:"company_id"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
	Previous   json.RawMessage `json:"previous,omitempty"`
}

// EnvelopeFields are the envelope's top-level fields in the order AppendJSON writes them, where
// every parameter path starts (ValidParamPath).
var EnvelopeFields = []string{"id", "type", "company_id", "occurred_at", "data", "previous"}

// envelopeTime is occurred_at's form: RFC 3339 in UTC, to the microsecond (PostgreSQL's
// precision), trailing zeros left out.
const envelopeTime = "2006-01-02T15:04:05.999999Z07:00"

// AppendJSON appends the envelope as JSON to b and returns the extended buffer: the fields in
// EnvelopeFields' order, occurred_at in UTC to the microsecond, previous left out when empty.
// Data and Previous are appended as they are, so they must be valid JSON (empty Data is null);
// strings are escaped, invalid UTF-8 becoming U+FFFD. With ids, event keys and company ids of
// plain ASCII it allocates nothing beyond b's growth: capture renders every event's envelope.
func (e Envelope) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"company_id":`...)
	b = appendString(b, e.CompanyID)
	b = append(b, `,"occurred_at":"`...)
	b = e.OccurredAt.UTC().AppendFormat(b, envelopeTime)
	b = append(b, `","data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	if len(e.Previous) > 0 {
		b = append(b, `,"previous":`...)
		b = append(b, e.Previous...)
	}
	return append(b, '}')
}

// MarshalJSON renders the envelope as AppendJSON does (encoding/json then checks Data and
// Previous).
func (e Envelope) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 128+len(e.Data)+len(e.Previous))), nil
}

// appendString appends s as a JSON string. Printable ASCII other than " and \ is copied; any
// other string is quoted by encoding/json (which also escapes <, > and &).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
