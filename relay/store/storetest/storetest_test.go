package storetest_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/store/storetest"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

const eventKey = "contact.created"

type testBundle struct {
	st *store.Store
}

// setup makes two companies, a and b, each with the test's event type.
func setup(t *testing.T) *testBundle {
	t.Helper()
	st, _ := xtest.Store(t)
	require.NoError(t, st.EventTypeSync(t.Context(), []webhook.EventType{{
		Key: eventKey, Source: webhook.SourceTable, SourceTable: "contacts", TenantColumn: "company_id",
		Operations: []string{"insert"}, Sample: json.RawMessage(`{"id":7}`),
	}}))
	for _, c := range []string{"a", "b"} {
		_, err := st.CompanyCreate(t.Context(), c, "Company "+c)
		require.NoError(t, err)
	}
	return &testBundle{st: st}
}

func (b *testBundle) hook(t *testing.T, company, name string) webhook.Webhook {
	t.Helper()
	w, err := b.st.WebhookCreate(t.Context(), webhook.Webhook{
		CompanyID: company, Name: name, URL: "https://hooks.example.com/" + name, Method: webhook.MethodPost,
		EventKeys: []string{eventKey}, RawData: true, Active: true,
		Headers: []webhook.Header{{Key: "X-Token", Value: "tok-" + name, Secret: true}},
	}, nil)
	require.NoError(t, err)
	return w
}

// occurred is every test event's time: a source key replayed comes with its time (the history's
// dedupe is (source_key, occurred_at), migration 0029).
var occurred = time.Now().UTC().Truncate(time.Microsecond)

func event(company, sourceKey string) webhook.Event {
	return webhook.Event{
		SourceKey: sourceKey, CompanyID: company, EventKey: eventKey, OccurredAt: occurred,
		Payload: json.RawMessage(`{"id":"evt_` + sourceKey + `","type":"contact.created","company_id":"` + company + `","data":{"id":7}}`),
	}
}

func TestEnqueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	a1, a2, b1 := b.hook(t, "a", "a1"), b.hook(t, "a", "a2"), b.hook(t, "b", "b1")

	// A webhook of another company gets no delivery of the event.
	eventID, ids, err := storetest.Enqueue(ctx, b.st, event("a", "k1"), []int64{a1.ID, b1.ID, a2.ID})
	require.NoError(t, err)
	require.Len(t, ids, 2)
	byHook := map[int64]store.HistoryDetail{}
	for _, id := range ids {
		d, err := storetest.DeliveryGetByID(ctx, b.st, id)
		require.NoError(t, err)
		require.Equal(t, eventID, d.EventID)
		require.Equal(t, webhook.DeliveryPending, d.State)
		require.Zero(t, d.Attempts)
		require.False(t, d.NextAttemptAt.After(time.Now()), "due now")
		require.Empty(t, d.AttemptList)
		byHook[d.WebhookID] = d
	}
	require.Contains(t, byHook, a1.ID)
	require.Contains(t, byHook, a2.ID)

	// The same source key (and time) again is the same event; webhooks that have a delivery get no second one.
	again, ids, err := storetest.Enqueue(ctx, b.st, event("a", "k1"), []int64{a1.ID, a2.ID})
	require.NoError(t, err)
	require.Equal(t, eventID, again)
	require.Empty(t, ids)

	// A store bound to a transaction has no pool to run on: refused, nothing stored.
	err = b.st.Tx(ctx, func(tx *store.Store) error {
		_, _, err := storetest.Enqueue(ctx, tx, event("a", "k2"), []int64{a1.ID})
		return err
	})
	require.ErrorContains(t, err, "bound to a transaction")
}

// The reads by id find a row of any company, and say ErrNotFound for an id that is no row.
func TestReadByID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	w := b.hook(t, "b", "b1")

	got, err := storetest.WebhookGetByID(ctx, b.st, w.ID)
	require.NoError(t, err)
	require.Equal(t, "b", got.CompanyID)
	require.Equal(t, w.Secret, got.Secret, "the signing secret is opened")
	require.True(t, strings.HasPrefix(got.Secret, "whsec_"), got.Secret)
	require.Equal(t, []webhook.Header{{Key: "X-Token", Value: "tok-b1", Secret: true}}, got.Headers, "secret header values are opened")
	require.Empty(t, got.SealError)
	_, err = storetest.WebhookGetByID(ctx, b.st, w.ID+1000)
	require.ErrorIs(t, err, store.ErrNotFound)

	_, ids, err := storetest.Enqueue(ctx, b.st, event("b", "k1"), []int64{w.ID})
	require.NoError(t, err)
	require.Len(t, ids, 1)
	_, err = storetest.DeliveryGetByID(ctx, b.st, ids[0]+1000)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = storetest.AttemptListByDelivery(ctx, b.st, ids[0]+1000)
	require.ErrorIs(t, err, store.ErrNotFound)

	// One attempt whose body was the envelope (stored as NULL): read back as the envelope.
	claimed, err := b.st.DispatchClaim(ctx, store.ClaimParams{Limit: 10, PerWebhook: 10, Lease: time.Minute, Token: "t1"})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	status := 200
	_, err = b.st.DispatchRecord(ctx, []store.AttemptResult{{
		DeliveryID: ids[0], EventAt: claimed[0].EventAt, LeaseToken: "t1", CompanyID: "b", WebhookID: w.ID, N: 1, StartedAt: time.Now(), DurationMS: 3,
		RequestMethod: "POST", RequestURL: w.URL, RequestHeaders: map[string]string{"X-Token": webhook.Mask},
		BodyIsEvent: true, ResponseStatus: &status, Outcome: webhook.OutcomeSucceeded, Trigger: "auto",
		State: webhook.DeliverySucceeded, TouchWebhook: true,
	}}, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	as, err := storetest.AttemptListByDelivery(ctx, b.st, ids[0])
	require.NoError(t, err)
	require.Len(t, as, 1)
	require.Equal(t, webhook.OutcomeSucceeded, as[0].Outcome)
	require.JSONEq(t, string(event("b", "k1").Payload), as[0].RequestBody)
	require.JSONEq(t, `{"X-Token":"`+webhook.Mask+`"}`, string(as[0].RequestHeaders))
	d, err := storetest.DeliveryGetByID(ctx, b.st, ids[0])
	require.NoError(t, err)
	require.Equal(t, webhook.DeliverySucceeded, d.State)
	require.Equal(t, 1, d.Attempts)
}

// No package of the binary (or of the examples) imports storetest, directly or through another
// package: what it reads across companies stays out of production code.
func TestNotInProduction(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const module = "github.com/walhook/walhook/"
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`,
		module+"cmd/...", module+"examples/...").Output()
	require.NoError(t, err)
	var listed, importers []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		listed = append(listed, f[0])
		if slices.Contains(f[1:], module+"relay/store/storetest") {
			importers = append(importers, f[0])
		}
	}
	require.Contains(t, listed, module+"relay/store", "the listing covers the binary's packages")
	require.Empty(t, importers, "production packages import storetest")
}
