package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Received is one message of a logical replication stream (Receive): a keepalive, WAL data, or
// nothing (the deadline passed, or the message carried nothing to act on).
type Received struct {
	// Keepalive is set when the message was the primary's keepalive (in KeepaliveMsg).
	Keepalive    bool
	KeepaliveMsg pglogrepl.PrimaryKeepaliveMessage
	// XLog is set when the message carried WAL data (in XLogMsg).
	XLog    bool
	XLogMsg pglogrepl.XLogData
}

// Receive reads the next message of a replication stream on conn, waiting until deadline (the
// caller's next standby status). Reaching the deadline is not an error: an empty Received. The
// end of ctx returns ctx.Err(); a server error or the server ending the stream is an error. The
// capture reader and the benchmark's decoding-only reader both read through it.
func Receive(ctx context.Context, conn *pgconn.PgConn, deadline time.Time) (Received, error) {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	raw, err := conn.ReceiveMessage(rctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return Received{}, ctx.Err()
		}
		if pgconn.Timeout(err) {
			return Received{}, nil
		}
		return Received{}, fmt.Errorf("receive replication message: %w", err)
	}
	switch msg := raw.(type) {
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return Received{}, nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return Received{}, fmt.Errorf("parse keepalive: %w", err)
			}
			return Received{Keepalive: true, KeepaliveMsg: ka}, nil
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return Received{}, fmt.Errorf("parse xlog data: %w", err)
			}
			return Received{XLog: true, XLogMsg: xld}, nil
		}
	case *pgproto3.ErrorResponse:
		return Received{}, fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyDone:
		return Received{}, errors.New("replication: the server ended the stream")
	}
	return Received{}, nil
}
