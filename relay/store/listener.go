package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Listener receives notifications on a connection of its own, taken from the pool and never
// given back to it still listening: the dispatcher's (DispatchListen) and the outbox poller's
// (OutboxListen).
type Listener struct {
	conn *pgxpool.Conn
}

// listen acquires a connection and runs the LISTEN statements on it; what names the caller in
// errors.
func (s *Store) listen(ctx context.Context, what string, stmts ...func(*dbsqlc.Queries, context.Context) error) (*Listener, error) {
	pool := s.Pool()
	if pool == nil {
		return nil, errors.New(what + ": the store is not over a pool")
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	q := dbsqlc.New(conn)
	for _, stmt := range stmts {
		if err := stmt(q, ctx); err != nil {
			conn.Release()
			return nil, fmt.Errorf("%s: %w", what, mapErr(err))
		}
	}
	return &Listener{conn: conn}, nil
}

// Wait blocks until a notification arrives or ctx ends (give ctx a deadline), and returns its
// channel.
func (l *Listener) Wait(ctx context.Context) (string, error) {
	n, err := l.conn.Conn().WaitForNotification(ctx)
	if err != nil {
		return "", err
	}
	return n.Channel, nil
}

// Close closes the listener's connection (a connection with LISTENs is not given back to the
// pool) and releases it.
func (l *Listener) Close(ctx context.Context) {
	_ = l.conn.Conn().Close(ctx)
	l.conn.Release()
}
