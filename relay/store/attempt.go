package store

import (
	"context"
	"encoding/json"
	"time"
)

// DispatchAttempt is one recorded HTTP try of a delivery (any company: for the relay and its
// tests; the admin API reads history scoped by company).
type DispatchAttempt struct {
	ID              int64
	DeliveryID      int64
	N               int
	StartedAt       time.Time
	DurationMS      int
	RequestMethod   string
	RequestURL      string
	RequestHeaders  map[string]string
	RequestBody     string
	ResponseStatus  *int
	ResponseHeaders map[string]string
	ResponseBody    *string
	Error           *string
	Outcome         string
	Trigger         string
}

// AttemptListByDelivery lists a delivery's attempts in order.
func (s *Store) AttemptListByDelivery(ctx context.Context, deliveryID int64) ([]DispatchAttempt, error) {
	rows, err := s.q.AttemptListByDelivery(ctx, deliveryID)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]DispatchAttempt, len(rows))
	for i, r := range rows {
		a := DispatchAttempt{
			ID: r.ID, DeliveryID: r.DeliveryID, N: int(r.N), StartedAt: r.StartedAt, DurationMS: int(r.DurationMs),
			RequestMethod: r.RequestMethod, RequestURL: r.RequestUrl, RequestBody: r.RequestBody,
			ResponseBody: r.ResponseBody, Error: r.Error, Outcome: r.Outcome, Trigger: r.Trigger,
		}
		if r.ResponseStatus != nil {
			c := int(*r.ResponseStatus)
			a.ResponseStatus = &c
		}
		_ = json.Unmarshal(r.RequestHeaders, &a.RequestHeaders)
		if len(r.ResponseHeaders) > 0 {
			_ = json.Unmarshal(r.ResponseHeaders, &a.ResponseHeaders)
		}
		out[i] = a
	}
	return out, nil
}
