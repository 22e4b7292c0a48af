package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// TestPermanent: only PostgreSQL refusing the data itself is permanent; everything a retry can
// fix is transient.
func TestPermanent(t *testing.T) {
	t.Parallel()
	pg := func(code string) error {
		return fmt.Errorf("store captured events: %w", &pgconn.PgError{Code: code, Message: "m"})
	}
	for _, tc := range []struct {
		err   error
		class string
	}{
		{pg("22P05"), "data_exception"},      // jsonb refuses \u0000
		{pg("22021"), "data_exception"},      // invalid byte sequence (NUL in text)
		{pg("22003"), "data_exception"},      // numeric overflow
		{pg("23514"), "integrity_violation"}, // a CHECK constraint
		{pg("23505"), "integrity_violation"},
		{pg("54000"), "program_limit"}, // too large
		{pg("54001"), "program_limit"}, // nesting too deep
		{mapErr(&pgconn.PgError{Code: "22P05"}), "data_exception"},
		{mapErr(&pgconn.PgError{Code: "23514", ConstraintName: "c"}), "integrity_violation"},
		{pg("40001"), ""}, // serialization failure
		{pg("40P01"), ""}, // deadlock
		{pg("57P01"), ""}, // terminated by the administrator
		{pg("57P03"), ""}, // starting up
		{pg("53300"), ""}, // too many connections
		{pg("08006"), ""}, // connection failure
		{pg("42501"), ""}, // privilege: refuses every event alike
		{pg("42P01"), ""}, // no such table
		{pg("25P02"), ""}, // transaction aborted
		{context.DeadlineExceeded, ""},
		{io.ErrUnexpectedEOF, ""},
		{errors.New("no SQLSTATE"), ""},
	} {
		require.Equal(t, tc.class, FailureClass(tc.err), "%v", tc.err)
		require.Equal(t, tc.class != "", Permanent(tc.err), "%v", tc.err)
	}
}

func TestFailureReason(t *testing.T) {
	t.Parallel()
	require.Equal(t, "SQLSTATE 22P05: unsupported Unicode escape sequence (\\u0000 cannot be converted to text.)",
		failureReason(&pgconn.PgError{Code: "22P05", Message: "unsupported Unicode escape sequence", Detail: `\u0000 cannot be converted to text.`}))
	require.Equal(t, "SQLSTATE 23514: new row violates check constraint (constraint c)",
		failureReason(mapErr(&pgconn.PgError{Code: "23514", Message: "new row violates check constraint", ConstraintName: "c"})))
	long := failureReason(&pgconn.PgError{Code: "54000", Message: strings.Repeat("é", 5000) + "\x00\xff"})
	require.Len(t, []rune(long), maxReason)
	require.True(t, strings.HasSuffix(long, "…"))
	require.Equal(t, "a\uFFFDb\uFFFD", cleanText("a\x00b\xff"))
}
