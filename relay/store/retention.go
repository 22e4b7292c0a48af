package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// RetentionLock takes the retention advisory lock on a connection of its own, so that one replica
// at a time deletes old history. ok is false when another session holds it. When ok, release
// must be called: it unlocks and returns the connection (closing it if unlocking fails, which
// also drops the lock). The store must be over a pool.
func (s *Store) RetentionLock(ctx context.Context) (release func(), ok bool, err error) {
	pool := s.Pool()
	if pool == nil {
		return nil, false, errors.New("retention lock: the store is not over a pool")
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquire connection: %w", err)
	}
	q := dbsqlc.New(conn)
	locked, err := q.RetentionTryLock(ctx)
	if err != nil || !locked {
		conn.Release()
		return nil, false, mapErr(err)
	}
	release = func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if unlocked, err := q.RetentionUnlock(uctx); err != nil || !unlocked {
			// A closed session holds no advisory locks.
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}
	return release, true, nil
}

// RetentionDeleteDeliveries deletes up to batch finished deliveries (and, by cascade, their
// attempts) created and last changed before cutoff, in one short statement. It returns how many
// deliveries it deleted.
func (s *Store) RetentionDeleteDeliveries(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	n, err := s.q.RetentionDeleteDeliveries(ctx, dbsqlc.RetentionDeleteDeliveriesParams{Cutoff: cutoff, BatchSize: int32(batch)})
	return n, mapErr(err)
}

// RetentionDeleteEvents deletes up to batch events captured before cutoff that no delivery
// references, in one short statement. It returns how many it deleted.
func (s *Store) RetentionDeleteEvents(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	n, err := s.q.RetentionDeleteEvents(ctx, dbsqlc.RetentionDeleteEventsParams{Cutoff: cutoff, BatchSize: int32(batch)})
	return n, mapErr(err)
}
