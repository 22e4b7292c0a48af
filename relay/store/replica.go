package store

import (
	"context"
	"errors"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Replica is a dispatcher replica's heartbeat row (walhook.replica).
type Replica struct {
	ID          string
	StartedAt   time.Time
	HeartbeatAt time.Time
	ExpiresAt   time.Time
	Alive       bool // not expired, by the database's clock
}

// ReplicaBeat renews replica id's heartbeat for timeout (its claims stay its own until then, by
// the database's clock) and returns how many replicas are alive, this one included. found is
// false when the replica has no row: it has not registered, or another replica found it dead
// and released its claims; the caller registers it with ReplicaRegister.
func (s *Store) ReplicaBeat(ctx context.Context, id string, timeout time.Duration) (alive int, found bool, err error) {
	n, err := s.q.ReplicaBeat(ctx, dbsqlc.ReplicaBeatParams{ID: id, TimeoutSeconds: timeout.Seconds()})
	if err = mapErr(err); errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	return int(n), err == nil, err
}

// ReplicaRegister adds replica id, started at started, alive for timeout. It returns ErrMoved
// when the database was moved by `walhook split` (a replica registers in none such, so it never
// claims a delivery the new database holds too).
func (s *Store) ReplicaRegister(ctx context.Context, id string, started time.Time, timeout time.Duration) error {
	n, err := s.q.ReplicaRegister(ctx, dbsqlc.ReplicaRegisterParams{ID: id, StartedAt: started, TimeoutSeconds: timeout.Seconds()})
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return ErrMoved
	}
	return nil
}

// ReplicaReap finds the replicas whose heartbeat has expired (other than self), deletes them and
// releases their claims in one transaction, and wakes the dispatchers when it released any. It
// returns the dead replicas' ids and how many deliveries it released.
func (s *Store) ReplicaReap(ctx context.Context, self string) (dead []string, released int64, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		var err error
		if dead, err = tx.q.ReplicaReap(ctx, self); err != nil || len(dead) == 0 {
			return mapErr(err)
		}
		if released, err = tx.q.DispatchReleaseReplicas(ctx, dead); err != nil {
			return mapErr(err)
		}
		if released > 0 {
			return mapErr(tx.q.DeliveryNotify(ctx))
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return dead, released, nil
}

// ReplicaLeave releases whatever replica id still has claimed and deletes its row: a clean stop.
func (s *Store) ReplicaLeave(ctx context.Context, id string) (released int64, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		var err error
		if released, err = tx.q.DispatchReleaseReplicas(ctx, []string{id}); err != nil {
			return mapErr(err)
		}
		if err = tx.q.ReplicaDelete(ctx, id); err != nil {
			return mapErr(err)
		}
		if released > 0 {
			return mapErr(tx.q.DeliveryNotify(ctx))
		}
		return nil
	})
	return released, err
}

// Replicas lists the replicas' heartbeat rows.
func (s *Store) Replicas(ctx context.Context) ([]Replica, error) {
	rows, err := s.q.ReplicaList(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]Replica, len(rows))
	for i, r := range rows {
		out[i] = Replica{ID: r.ID, StartedAt: r.StartedAt, HeartbeatAt: r.HeartbeatAt, ExpiresAt: r.ExpiresAt, Alive: r.Alive}
	}
	return out, nil
}
