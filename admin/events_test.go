package admin

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// TestWebhookEvents covers a webhook subscribed to several trigger events through create, get,
// listing, update (events, the deprecated event, PATCH keeping them), duplicate, the fields the
// events have in common, and the 422s that store nothing.
func TestWebhookEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	both := []any{"contact.created", "contact.updated"}

	body := hookBody("Contacts")
	delete(body, "event")
	body["events"] = both
	created := e.must(201, "POST", "/v1/webhooks", e.manager, body)
	id := int64(created["id"].(float64))
	path := fmt.Sprintf("/v1/webhooks/%d", id)
	require.Equal(t, both, created["events"])
	require.Equal(t, "contact.created", created["event"], "event is the first, for old clients")

	got := e.must(200, "GET", path, e.viewer, nil)
	require.Equal(t, both, got["events"])
	stored, err := e.st.WebhookGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, []string{"contact.created", "contact.updated"}, stored.EventKeys)

	// The listing shows them, and its event filter matches any of a webhook's events.
	e.newWebhook("Created only", nil)
	for ev, want := range map[string][]string{"contact.updated": {"Contacts"}, "contact.created": {"Contacts", "Created only"}} {
		list := e.must(200, "GET", "/v1/webhooks?event="+ev, e.viewer, nil)
		var names []string
		for _, it := range list["items"].([]any) {
			w := it.(map[string]any)
			names = append(names, w["name"].(string))
			if w["name"] == "Contacts" {
				require.Equal(t, both, w["events"])
			}
		}
		require.Equal(t, want, names, ev)
	}

	// PATCH without events keeps them; with events replaces them; with the deprecated event
	// alone makes a list of one.
	p := e.must(200, "PATCH", path, e.manager, map[string]any{"name": "Contacts 2"})
	require.Equal(t, both, p["events"])
	p = e.must(200, "PATCH", path, e.manager, map[string]any{"events": []string{"contact.updated", "contact.created"}})
	require.Equal(t, []any{"contact.updated", "contact.created"}, p["events"], "the order chosen is kept")
	require.Equal(t, "contact.updated", p["event"])
	p = e.must(200, "PATCH", path, e.manager, map[string]any{"event": "contact.created"})
	require.Equal(t, []any{"contact.created"}, p["events"])

	// PUT takes event and events together when event is the first (a client echoing a GET).
	put := hookBody("Contacts 3")
	put["events"] = both
	p = e.must(200, "PUT", path, e.manager, put)
	require.Equal(t, both, p["events"])
	// PUT without either is refused: PUT replaces, and the events are required.
	put = hookBody("Contacts 4")
	delete(put, "event")
	r := e.do("PUT", path, e.manager, put)
	require.Equal(t, 422, r.status, r.raw)
	require.Contains(t, r.fieldErrors(t), "events")

	// Refused updates store nothing.
	for name, b := range map[string]map[string]any{
		"unknown":  {"events": []string{"contact.created", "deal.won"}},
		"empty":    {"events": []string{}},
		"disagree": {"event": "contact.updated", "events": both},
		"twice":    {"events": []string{"contact.updated", "contact.updated"}},
	} {
		r := e.do("PATCH", path, e.manager, b)
		require.Equal(t, 422, r.status, "%s: %s", name, r.raw)
	}
	stored, err = e.st.WebhookGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, []string{"contact.created", "contact.updated"}, stored.EventKeys)
	require.Equal(t, "Contacts 3", stored.Name)

	// Duplicate copies the events.
	dup := e.must(201, "POST", path+"/duplicate", e.manager, nil)
	require.Equal(t, both, dup["events"])

	// Event compatibility: with raw data off, a parameter must be a field every event has.
	// contact.updated's sample has only id, so data.email fits contact.created alone.
	sel := map[string]any{"raw_data": false, "params": []map[string]any{{"key": "email", "path": "data.email"}}}
	r = e.do("PATCH", path, e.manager, sel)
	require.Equal(t, 422, r.status, r.raw)
	require.Equal(t, "data.email is not a field of the trigger event contact.updated; choose a field every trigger event has",
		r.fieldErrors(t)["params[0].path"])
	sel["events"] = []string{"contact.created"}
	require.Equal(t, []any{"contact.created"}, e.must(200, "PATCH", path, e.manager, sel)["events"])
	// And changing the events of that webhook checks its parameters again.
	r = e.do("PATCH", path, e.manager, map[string]any{"events": both})
	require.Equal(t, 422, r.status, r.raw)
	require.Contains(t, r.fieldErrors(t), "params[0].path")
	sel["params"] = []map[string]any{{"key": "id", "path": "data.id"}, {"key": "at", "path": "occurred_at"}}
	sel["events"] = both
	require.Equal(t, both, e.must(200, "PATCH", path, e.manager, sel)["events"])

	// A retired event stays on the webhook that has it (edits keep it), but a new webhook or a
	// copy cannot take it.
	types, err := e.st.EventTypeList(e.ctx)
	require.NoError(t, err)
	require.NoError(t, e.st.EventTypeSync(e.ctx, []webhook.EventType{types[0]}))
	require.Equal(t, "contact.created", types[0].Key)
	require.Equal(t, both, e.must(200, "PATCH", path, e.manager, map[string]any{"name": "Still both"})["events"])
	r = e.do("POST", path+"/duplicate", e.manager, nil)
	require.Equal(t, 422, r.status, r.raw)
	require.Contains(t, r.fieldErrors(t), "events[1]")
	nb := hookBody("New")
	nb["events"] = []string{"contact.created", "contact.updated"}
	delete(nb, "event")
	r = e.do("POST", "/v1/webhooks", e.manager, nb)
	require.Equal(t, 422, r.status, r.raw)
	require.Equal(t, `unknown trigger event "contact.updated"`, r.fieldErrors(t)["events[1]"])
}

// TestEventFields checks the parameter picker's API: the fields one event has, the fields
// several have in common, and the malformed queries.
func TestEventFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	paths := func(q string) []string {
		got := e.must(200, "GET", "/v1/events/fields?events="+q, e.viewer, nil)
		var out []string
		for _, it := range got["items"].([]any) {
			out = append(out, it.(map[string]any)["path"].(string))
		}
		return out
	}
	envelope := []string{"id", "type", "company_id", "occurred_at", "data"}
	require.Equal(t, append(envelope, "data.email", "data.id", "data.name"), paths("contact.created"))
	require.Equal(t, append(envelope, "data.id"), paths("contact.created,contact.updated"))
	require.Equal(t, append(envelope, "data.id"), paths("contact.updated,contact.created"))

	one := e.must(200, "GET", "/v1/events/fields?events=contact.created", e.viewer, nil)
	raw, err := json.Marshal(one["items"].([]any)[5])
	require.NoError(t, err)
	require.JSONEq(t, `{"path":"data.email","kind":"string","example":"ada@example.com"}`, string(raw))

	for q, msg := range map[string]string{
		"":                         "is required",
		"?events=":                 "is required",
		"?events=deal.won":         `unknown trigger event "deal.won"`,
		"?events=contact.created,": `unknown trigger event ""`,
		"?events=contact.created,contact.created": `duplicate trigger event "contact.created"`,
	} {
		r := e.do("GET", "/v1/events/fields"+q, e.viewer, nil)
		require.Equal(t, 400, r.status, "%s: %s", q, r.raw)
		require.Contains(t, r.fieldErrors(t)["events"], msg, q)
	}
}
