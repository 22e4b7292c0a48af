package store

import (
	"context"
	"errors"
	"time"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Lease is a singleton role's lease.
type Lease struct {
	Name       string
	Holder     string
	ExpiresAt  time.Time
	AcquiredAt time.Time
	Live       bool // not expired, by the database's clock
}

// LeaseAcquire takes lease name for holder for ttl when it is free or expired, or renews it when
// holder has it. ok is false when another holder has a live lease. Expiry is computed with the
// database's clock, so replicas' clocks do not matter.
func (s *Store) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (ok bool, err error) {
	_, err = s.q.LeaseAcquire(ctx, dbsqlc.LeaseAcquireParams{Name: name, Holder: holder, TtlSeconds: ttl.Seconds()})
	if err = mapErr(err); errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// LeaseRelease gives the lease up if holder has it, so a standby takes over at once.
func (s *Store) LeaseRelease(ctx context.Context, name, holder string) error {
	_, err := s.q.LeaseRelease(ctx, dbsqlc.LeaseReleaseParams{Name: name, Holder: holder})
	return mapErr(err)
}

// LeaseGet returns a lease; ErrNotFound when nobody ever took it.
func (s *Store) LeaseGet(ctx context.Context, name string) (Lease, error) {
	r, err := s.q.LeaseGet(ctx, name)
	if err != nil {
		return Lease{}, mapErr(err)
	}
	return Lease{Name: r.Name, Holder: r.Holder, ExpiresAt: r.ExpiresAt, AcquiredAt: r.AcquiredAt, Live: r.Live}, nil
}
