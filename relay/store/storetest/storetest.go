// Package storetest is for tests only: what a test needs from walhook's database that production
// code must not have — an event enqueued for chosen webhooks without capture, and reads of any
// company's rows by id alone. Every store method takes the company; these find it first and then
// read through the company-scoped method (store.Store.WebhookGet, store.Store.HistoryGet), so a
// row is converted, and its secrets opened, in one place. No package but tests imports it (its
// own test checks that).
package storetest

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

// poolOf is st's pool. st must be made over a pool (as xtest.Store's is), not bound to a
// transaction.
func poolOf(st *store.Store) (*pgxpool.Pool, error) {
	pool := st.Pool()
	if pool == nil {
		return nil, errors.New("storetest: the store is bound to a transaction; pass one made over a pool")
	}
	return pool, nil
}

// notFound maps "no row" to store.ErrNotFound, as every store method does.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Enqueue stores an event (or finds it by its source key) and a pending delivery of it, due now,
// for each of webhookIDs of the event's company (webhooks of other companies and webhooks that
// already have a delivery of the event get none), in one transaction that wakes the dispatchers
// on commit. It returns the event id and the new deliveries' ids, in the order PostgreSQL
// returned them.
func Enqueue(ctx context.Context, st *store.Store, e webhook.Event, webhookIDs []int64) (eventID int64, deliveryIDs []int64, err error) {
	pool, err := poolOf(st)
	if err != nil {
		return 0, nil, err
	}
	if webhookIDs == nil {
		webhookIDs = []int64{}
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		q := dbsqlc.New(tx)
		var err error
		eventID, err = q.DispatchEventInsert(ctx, dbsqlc.DispatchEventInsertParams{
			SourceKey: e.SourceKey, CompanyID: e.CompanyID, EventKey: e.EventKey, Payload: e.Payload, OccurredAt: e.OccurredAt,
		})
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if deliveryIDs, err = q.DeliveryEnqueue(ctx, dbsqlc.DeliveryEnqueueParams{WebhookIds: webhookIDs, EventID: eventID}); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if err := q.DeliveryNotify(ctx); err != nil {
			return fmt.Errorf("notify dispatchers: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("storetest: enqueue: %w", err)
	}
	return eventID, deliveryIDs, nil
}

// DeliveryGetByID returns any company's delivery as the history shows it (store.Store.HistoryGet),
// with its attempts; store.ErrNotFound when there is none.
func DeliveryGetByID(ctx context.Context, st *store.Store, id int64) (store.HistoryDetail, error) {
	return byID(ctx, st, id, (*dbsqlc.Queries).DeliveryCompany, st.HistoryGet)
}

// AttemptListByDelivery lists any company's delivery's attempts in order, as the history shows
// them: the request body is the one sent, the event's envelope where the attempt stored none.
func AttemptListByDelivery(ctx context.Context, st *store.Store, deliveryID int64) ([]store.HistoryAttempt, error) {
	d, err := DeliveryGetByID(ctx, st, deliveryID)
	if err != nil {
		return nil, err
	}
	return d.AttemptList, nil
}

// WebhookGetByID returns any company's webhook with its secrets opened (store.Store.WebhookGet);
// store.ErrNotFound when there is none.
func WebhookGetByID(ctx context.Context, st *store.Store, id int64) (webhook.Webhook, error) {
	return byID(ctx, st, id, (*dbsqlc.Queries).WebhookCompany, st.WebhookGet)
}

// byID reads row id of any company: companyOf finds its company, then get reads it through the
// store's company-scoped method.
func byID[T any](ctx context.Context, st *store.Store, id int64,
	companyOf func(*dbsqlc.Queries, context.Context, int64) (string, error),
	get func(context.Context, string, int64) (T, error),
) (T, error) {
	var zero T
	pool, err := poolOf(st)
	if err != nil {
		return zero, err
	}
	company, err := companyOf(dbsqlc.New(pool), ctx, id)
	if err != nil {
		return zero, notFound(err)
	}
	return get(ctx, company, id)
}
