package store

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLState returns the SQLSTATE of a PostgreSQL error inside err ("" when there is none: a lost
// connection, a deadline).
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	var ce *ConstraintError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}

// Permanent reports whether err is PostgreSQL refusing the data itself, so that writing the same
// data again can never succeed: a data exception (SQLSTATE class 22: a value jsonb or text
// refuses, a number out of range), an integrity violation (class 23: a constraint) or a program
// limit (class 54: a value or row too large). Capture sets such an event aside (quarantine)
// rather than retrying it forever.
//
// Everything else is transient and retried, never quarantined: a lost connection or a deadline
// (no SQLSTATE), a database shutting down or starting (57P01, 57P03, class 08), serialization
// failures and deadlocks (40001, 40P01), insufficient resources (class 53), and also privilege
// or schema problems (class 42), which refuse every event alike and are fixed by the operator,
// not by setting data aside.
func Permanent(err error) bool {
	return FailureClass(err) != ""
}

// FailureClass names the class of a permanent error — "data_exception", "integrity_violation"
// or "program_limit" — and is "" for a transient one. The names are a bounded set, fit for a
// metric label.
func FailureClass(err error) string {
	code := SQLState(err)
	if len(code) != 5 {
		return ""
	}
	switch code[:2] {
	case "22":
		return "data_exception"
	case "23":
		return "integrity_violation"
	case "54":
		return "program_limit"
	}
	return ""
}

// FailureClasses lists every value FailureClass returns but "", for metrics to initialise.
func FailureClasses() []string {
	return []string{"data_exception", "integrity_violation", "program_limit"}
}

// maxReason bounds a stored failure reason (walhook.capture_quarantine.reason).
const maxReason = 1000

// failureReason renders err for the quarantine: "SQLSTATE 22P05: <message>", cleaned and cut to
// maxReason characters.
func failureReason(err error) string {
	var msg string
	var pgErr *pgconn.PgError
	var ce *ConstraintError
	switch {
	case errors.As(err, &pgErr):
		msg = "SQLSTATE " + pgErr.Code + ": " + pgErr.Message
		if pgErr.Detail != "" {
			msg += " (" + pgErr.Detail + ")"
		}
	case errors.As(err, &ce):
		msg = "SQLSTATE " + ce.Code + ": " + ce.Detail
		if ce.Constraint != "" {
			msg += " (constraint " + ce.Constraint + ")"
		}
	default:
		msg = err.Error()
		if code := SQLState(err); code != "" {
			msg = "SQLSTATE " + code + ": " + msg
		}
	}
	msg = cleanText(msg)
	if utf8.RuneCountInString(msg) > maxReason {
		msg = string([]rune(msg)[:maxReason-1]) + "…"
	}
	return msg
}

// cleanText makes s storable in a text column whatever it holds: invalid UTF-8 and NUL (which
// PostgreSQL text cannot hold) become U+FFFD.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
