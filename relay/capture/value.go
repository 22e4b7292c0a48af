package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
)

// Values arrive from pgoutput in PostgreSQL's text format (the walsender session runs with
// TimeZone=UTC and DateStyle=ISO). appendValue turns one into JSON, by type:
//
//   - boolean: true/false.
//   - smallint, integer, bigint, oid, real, double precision and numeric: a JSON number with the
//     exact decimal text PostgreSQL printed (numeric keeps every digit; a consumer that parses
//     into float64 loses what float64 loses, as with any JSON number). NaN and ±Infinity, which
//     JSON cannot hold, are strings.
//   - timestamptz: an RFC 3339 string in UTC with up to microseconds ("2026-11-27T10:00:00.123Z");
//     timestamp (no zone): the same without offset; date, time, interval: PostgreSQL's text.
//     ±infinity: the strings "infinity"/"-infinity".
//   - uuid, text, varchar, char and every type not listed (enums, domains, ranges, …): strings.
//   - json, jsonb: embedded as JSON (compacted). A lone UTF-16 surrogate escape becomes
//     "\ufffd" (appendRepairedJSON); "\u0000" (which a json value may hold) is kept, and the
//     event is quarantined.
//   - bytea: a base64 (standard, padded) string of the bytes.
//   - arrays of the types above, any number of dimensions: JSON arrays of the converted elements,
//     NULL elements as null.
//
// A value that does not parse as its type is kept as a string rather than dropped.

// arrayElem maps array type OIDs to their element type.
var arrayElem = map[uint32]uint32{
	pgtype.BoolArrayOID: pgtype.BoolOID, pgtype.ByteaArrayOID: pgtype.ByteaOID,
	pgtype.Int2ArrayOID: pgtype.Int2OID, pgtype.Int4ArrayOID: pgtype.Int4OID, pgtype.Int8ArrayOID: pgtype.Int8OID,
	pgtype.TextArrayOID: pgtype.TextOID, pgtype.VarcharArrayOID: pgtype.VarcharOID, pgtype.BPCharArrayOID: pgtype.BPCharOID,
	pgtype.Float4ArrayOID: pgtype.Float4OID, pgtype.Float8ArrayOID: pgtype.Float8OID, pgtype.NumericArrayOID: pgtype.NumericOID,
	pgtype.DateArrayOID: pgtype.DateOID, pgtype.TimestampArrayOID: pgtype.TimestampOID, pgtype.TimestamptzArrayOID: pgtype.TimestamptzOID,
	pgtype.UUIDArrayOID: pgtype.UUIDOID, pgtype.JSONArrayOID: pgtype.JSONOID, pgtype.JSONBArrayOID: pgtype.JSONBOID,
	pgtype.OIDArrayOID: pgtype.OIDOID, pgtype.IntervalArrayOID: pgtype.IntervalOID, pgtype.TimeArrayOID: pgtype.TimeOID,
	pgtype.NameArrayOID: pgtype.NameOID,
}

// appendValue appends the JSON form of a text-format value of type oid.
func appendValue(buf []byte, oid uint32, text []byte) []byte {
	switch oid {
	case pgtype.BoolOID:
		switch string(text) {
		case "t", "true":
			return append(buf, "true"...)
		case "f", "false":
			return append(buf, "false"...)
		}
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID,
		pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID:
		if isJSONNumber(text) {
			return append(buf, text...)
		}
	case pgtype.JSONOID, pgtype.JSONBOID:
		if json.Valid(text) {
			return appendCompactJSON(buf, text)
		}
	case pgtype.TimestamptzOID:
		if t, ok := parseTimestamptz(text); ok {
			buf = append(buf, '"')
			buf = t.AppendFormat(buf, rfc3339Micro)
			return append(buf, '"')
		}
	case pgtype.TimestampOID:
		if len(text) >= 19 && text[10] == ' ' && !bytes.HasSuffix(text, []byte(" BC")) {
			iso := append(append(append(make([]byte, 0, len(text)), text[:10]...), 'T'), text[11:]...)
			return appendString(buf, iso)
		}
	case pgtype.ByteaOID:
		if bytes.HasPrefix(text, []byte(`\x`)) {
			raw := make([]byte, hex.DecodedLen(len(text)-2))
			if _, err := hex.Decode(raw, text[2:]); err == nil {
				buf = append(buf, '"')
				buf = base64.StdEncoding.AppendEncode(buf, raw)
				return append(buf, '"')
			}
		}
	default:
		if elem, ok := arrayElem[oid]; ok {
			if out, ok := appendArray(buf, elem, text); ok {
				return out
			}
		}
	}
	return appendString(buf, text)
}

const rfc3339Micro = "2006-01-02T15:04:05.999999Z07:00"

var timestamptzLayouts = []string{
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999-07:00:00",
}

func parseTimestamptz(text []byte) (time.Time, bool) {
	s := string(text)
	for _, l := range timestamptzLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// isJSONNumber reports whether b is a number in JSON's grammar.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		start := i + 1
		if i = skipDigits(b, start); i == start {
			return false // a fraction needs a digit
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = skipDigits(b, start); i == start {
			return false // an exponent needs a digit
		}
	}
	return i == len(b)
}

// skipDigits returns the index of the first byte at or after i in b that is not an ASCII digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func appendCompactJSON(buf, text []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, text); err != nil {
		return appendString(buf, text)
	}
	return appendRepairedJSON(buf, b.Bytes())
}

// appendRepairedJSON appends valid JSON text, with each lone UTF-16 surrogate escape (a "\ud800"
// not followed by a low surrogate, or a "\udc00" not preceded by a high one) replaced by
// "\ufffd". PostgreSQL's json type refuses such an escape at input, but a logical message's
// payload is not checked by PostgreSQL; it encodes no character, and jsonb (so the fan-out)
// refuses it. The replacement is
// the one invalid UTF-8 in text gets (appendString), and what encoding/json and PostgreSQL's
// own text conversions produce for it: no character is lost. "\u0000", which jsonb refuses too,
// is NOT repaired: it is a real character (NUL) that PostgreSQL text and jsonb cannot hold, and
// any substitute would change the value, so such an event is quarantined (doc.go, Bad data).
func appendRepairedJSON(buf, text []byte) []byte {
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(text):
			if text[i+1] != 'u' || i+6 > len(text) {
				buf = append(buf, c, text[i+1])
				i++
				continue
			}
			r := hexRune(text[i+2 : i+6])
			switch {
			case r >= 0xD800 && r <= 0xDBFF:
				if i+12 <= len(text) && text[i+6] == '\\' && text[i+7] == 'u' {
					if lo := hexRune(text[i+8 : i+12]); lo >= 0xDC00 && lo <= 0xDFFF {
						buf = append(buf, text[i:i+12]...)
						i += 11
						continue
					}
				}
				buf = append(buf, `\ufffd`...)
			case r >= 0xDC00 && r <= 0xDFFF:
				buf = append(buf, `\ufffd`...)
			default:
				buf = append(buf, text[i:i+6]...)
			}
			i += 5
			continue
		}
		buf = append(buf, c)
	}
	return buf
}

// hexRune decodes four hex digits (-1 when they are not).
func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(buf, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

func appendStringS(buf []byte, s string) []byte { return appendString(buf, []byte(s)) }

// appendArray converts PostgreSQL's array text ("{1,2,NULL}", "{{a,b},{c,d}}",
// "[0:1]={x,y}", "{\"a b\",\"c\\\"d\"}") into a JSON array. ok is false when text is not a
// well-formed array literal; buf is then unchanged.
func appendArray(buf []byte, elem uint32, text []byte) ([]byte, bool) {
	if len(text) > 0 && text[0] == '[' { // explicit bounds: "[1:2]={…}"
		i := bytes.IndexByte(text, '=')
		if i < 0 {
			return buf, false
		}
		text = text[i+1:]
	}
	p := arrayParser{src: text, elem: elem}
	out, ok := p.level(buf, 0)
	if !ok || p.pos != len(p.src) {
		return buf, false
	}
	return out, true
}

type arrayParser struct {
	src  []byte
	pos  int
	elem uint32
	tmp  []byte
}

// maxArrayDepth matches PostgreSQL's MAXDIM.
const maxArrayDepth = 6

func (p *arrayParser) level(buf []byte, depth int) ([]byte, bool) {
	if depth >= maxArrayDepth || p.pos >= len(p.src) || p.src[p.pos] != '{' {
		return buf, false
	}
	p.pos++
	buf = append(buf, '[')
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return append(buf, ']'), true
	}
	for n := 0; ; n++ {
		if n > 0 {
			buf = append(buf, ',')
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return buf, false
		}
		var ok bool
		switch p.src[p.pos] {
		case '{':
			buf, ok = p.level(buf, depth+1)
		case '"':
			buf, ok = p.quoted(buf)
		default:
			buf, ok = p.bare(buf)
		}
		if !ok {
			return buf, false
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return buf, false
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return append(buf, ']'), true
		default:
			return buf, false
		}
	}
}

func (p *arrayParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *arrayParser) quoted(buf []byte) ([]byte, bool) {
	p.pos++ // opening quote
	p.tmp = p.tmp[:0]
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '\\':
			if p.pos+1 >= len(p.src) {
				return buf, false
			}
			p.tmp = append(p.tmp, p.src[p.pos+1])
			p.pos += 2
		case '"':
			p.pos++
			return appendValue(buf, p.elem, p.tmp), true
		default:
			p.tmp = append(p.tmp, c)
			p.pos++
		}
	}
	return buf, false
}

func (p *arrayParser) bare(buf []byte) ([]byte, bool) {
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] != ',' && p.src[p.pos] != '}' && p.src[p.pos] != '{' && p.src[p.pos] != '"' {
		p.pos++
	}
	v := bytes.TrimRight(p.src[start:p.pos], " \t\n\r")
	if len(v) == 0 {
		return buf, false
	}
	if bytes.EqualFold(v, []byte("NULL")) {
		return append(buf, "null"...), true
	}
	// The element is converted before the parser moves on; copy it, as appendValue may keep
	// nothing of it but the caller's buffer must not alias src.
	p.tmp = append(p.tmp[:0], v...)
	return appendValue(buf, p.elem, p.tmp), true
}
