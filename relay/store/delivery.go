package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/walhook/walhook/relay/webhook"
)

// DispatchDelivery is a delivery row as the relay sees it (any company).
type DispatchDelivery struct {
	ID             int64
	CompanyID      string
	WebhookID      int64
	EventID        int64
	State          webhook.DeliveryState
	Attempts       int
	AttemptsBase   int
	NextAttemptAt  time.Time
	LeaseUntil     *time.Time
	LeasedBy       *string
	Request        json.RawMessage
	LastStatusCode *int
	LastError      *string
	LastAttemptAt  *time.Time
	ResyncAt       *time.Time
}

// DeliveryGetByID returns any company's delivery: for the relay and its tests.
func (s *Store) DeliveryGetByID(ctx context.Context, id int64) (DispatchDelivery, error) {
	r, err := s.q.DeliveryGetByID(ctx, id)
	if err != nil {
		return DispatchDelivery{}, mapErr(err)
	}
	d := DispatchDelivery{
		ID: r.ID, CompanyID: r.CompanyID, WebhookID: r.WebhookID, EventID: r.EventID,
		State: webhook.DeliveryState(r.State), Attempts: int(r.Attempts), AttemptsBase: int(r.AttemptsBase),
		NextAttemptAt: r.NextAttemptAt, LeaseUntil: r.LeaseUntil, LeasedBy: r.LeasedBy, Request: r.Request,
		LastError: r.LastError, LastAttemptAt: r.LastAttemptAt, ResyncAt: r.ResyncAt,
	}
	if r.LastStatusCode != nil {
		c := int(*r.LastStatusCode)
		d.LastStatusCode = &c
	}
	return d, nil
}
