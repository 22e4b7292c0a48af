package capture

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

func TestAppendValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		oid        uint32
		text, want string
	}{
		{pgtype.BoolOID, "t", "true"},
		{pgtype.Int8OID, "-9223372036854775808", "-9223372036854775808"},
		{pgtype.NumericOID, "12345678901234567890.000000001", "12345678901234567890.000000001"},
		{pgtype.NumericOID, "NaN", `"NaN"`},
		{pgtype.Float8OID, "-Infinity", `"-Infinity"`},
		{pgtype.Float8OID, "1.5e-07", "1.5e-07"},
		{pgtype.TimestamptzOID, "2026-11-27 10:00:00.123+00", `"2026-11-27T10:00:00.123Z"`},
		{pgtype.TimestamptzOID, "2026-11-27 12:00:00+02", `"2026-11-27T10:00:00Z"`},
		{pgtype.TimestamptzOID, "infinity", `"infinity"`},
		{pgtype.TimestampOID, "2026-11-27 10:00:00.5", `"2026-11-27T10:00:00.5"`},
		{pgtype.UUIDOID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
		{pgtype.JSONBOID, `{"a": [1, null]}`, `{"a":[1,null]}`},
		// lone surrogates encode no character: U+FFFD, as for invalid UTF-8 in text
		{pgtype.JSONOID, `{"a": "x\ud800y", "\udfff": 1}`, `{"a":"x\ufffdy","\ufffd":1}`},
		{pgtype.JSONOID, `["\ud800\u0041", "\udbff"]`, `["\ufffd\u0041","\ufffd"]`},
		// a pair is a character; an escaped backslash before "u" is no escape; NUL is kept (quarantined later)
		{pgtype.JSONOID, `["\ud83d\ude00", "\\ud800", "\u0000", "\"\ud800"]`, `["\ud83d\ude00","\\ud800","\u0000","\"\ufffd"]`},
		{pgtype.ByteaOID, `\x0102ff`, `"AQL/"`},
		{pgtype.TextOID, "a\"b\\c\n\x01é", `"a\"b\\c\n\u0001é"`},
		{pgtype.Int4ArrayOID, "{1,2,NULL}", "[1,2,null]"},
		{pgtype.TextArrayOID, `{"a b","c\"d",NULL,"NULL",x}`, `["a b","c\"d",null,"NULL","x"]`},
		{pgtype.Int4ArrayOID, "{{1,2},{3,4}}", "[[1,2],[3,4]]"},
		{pgtype.Int4ArrayOID, "[0:1]={7,8}", "[7,8]"},
		{pgtype.JSONBArrayOID, `{"{\"a\": 1}",null}`, `[{"a":1},null]`},
		{pgtype.Int4ArrayOID, "{}", "[]"},
		{pgtype.Int4ArrayOID, "{1,", `"{1,"`},
		{99999, "happy", `"happy"`},
	} {
		got := string(appendValue(nil, tc.oid, []byte(tc.text)))
		require.Equal(t, tc.want, got, "oid %d text %q", tc.oid, tc.text)
		require.True(t, json.Valid([]byte(got)), got)
	}
}

// TestIsJSONNumber: the JSON number grammar, written out by hand (numbers PostgreSQL prints are
// sent bare only when JSON can read them back).
func TestIsJSONNumber(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		"0": true, "-0": true, "7": true, "-120": true, "0.5": true, "12.250": true, "1e9": true, "1E+9": true,
		"-2.5e-07": true, "0e0": true,
		"": false, "-": false, "01": false, "+1": false, ".5": false, "1.": false, "1.e5": false, "1e": false,
		"1e+": false, "1.5e-": false, "0x10": false, "1 ": false, "NaN": false, "Infinity": false, "1_000": false,
	} {
		require.Equal(t, want, isJSONNumber([]byte(text)), "%q", text)
	}
}

// FuzzAppendValue: whatever text arrives for whatever type, the result is one valid JSON value.
func FuzzAppendValue(f *testing.F) {
	for _, s := range []struct {
		oid  uint32
		text string
	}{
		{pgtype.Int4ArrayOID, "{{1,2},{3,NULL}}"}, {pgtype.TextArrayOID, `{"a\\"b",c}`}, {pgtype.NumericOID, "-0.5"},
		{pgtype.TimestamptzOID, "2026-11-27 10:00:00+05:30"}, {pgtype.JSONBOID, `{"a":1}`}, {pgtype.ByteaOID, `\xzz`},
		{pgtype.JSONBArrayOID, `{"{}","[1]"}`}, {pgtype.TimestampOID, "2026-11-27 10:00:00 BC"}, {pgtype.TextOID, "\xff\xfe"},
		{pgtype.JSONOID, `["\ud800", "\udc00\ud83d\ude00", "\\ud800", "\u0000"]`},
	} {
		f.Add(s.oid, []byte(s.text))
	}
	oids := []uint32{pgtype.BoolOID, pgtype.Int8OID, pgtype.NumericOID, pgtype.Float8OID, pgtype.TimestamptzOID,
		pgtype.TimestampOID, pgtype.JSONBOID, pgtype.ByteaOID, pgtype.TextOID, pgtype.Int4ArrayOID, pgtype.TextArrayOID,
		pgtype.JSONBArrayOID, pgtype.NumericArrayOID, pgtype.TimestamptzArrayOID}
	f.Fuzz(func(t *testing.T, oid uint32, text []byte) {
		for _, o := range append(oids, oid) {
			out := appendValue([]byte("x"), o, text)
			if out[0] != 'x' || !json.Valid(out[1:]) {
				t.Fatalf("oid %d text %q: invalid JSON %q", o, text, out)
			}
			// no lone surrogate escape left (jsonb would refuse it): repairing changes nothing
			if again := appendRepairedJSON(nil, out[1:]); !bytes.Equal(again, out[1:]) {
				t.Fatalf("oid %d text %q: lone surrogate left in %q", o, text, out)
			}
		}
	})
}
