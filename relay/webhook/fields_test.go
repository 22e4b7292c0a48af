package webhook

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFieldSet(t *testing.T) {
	t.Parallel()
	fs := NewFieldSet(json.RawMessage(`{"email":"a@example.com","address":{"city":"Paris","geo":null},"tags":["x"],"n":1.5}`))
	require.True(t, fs.Known())
	for path, want := range map[string]bool{
		"id": true, "occurred_at": true, "data": true,
		"data.email": true, "data.address.city": true, "previous.email": true,
		"data.tags.0":        true, // below an array the sample cannot tell
		"data.address.geo.x": true, // nor below null
		"data.phone":         false, "previous.phone": false, "data.address.zip": false,
	} {
		require.Equal(t, want, fs.Allows(path), path)
	}
	none := NewFieldSet(nil)
	require.False(t, none.Known())
	require.True(t, none.Allows("data.anything"), "an event without a sample rules nothing out")
	require.False(t, NewFieldSet(json.RawMessage(`[1]`)).Known())

	var paths []string
	for _, f := range fs.Fields() {
		paths = append(paths, f.Path+":"+f.Kind)
	}
	require.Equal(t, []string{"id:string", "type:string", "company_id:string", "occurred_at:string", "data:object",
		"data.address:object", "data.address.city:string", "data.address.geo:null", "data.email:string", "data.n:number", "data.tags:array"}, paths)

	other := NewFieldSet(json.RawMessage(`{"email":"b@example.com","address":"12 rue X"}`))
	paths = nil
	for _, f := range CommonFields(fs, none, other) {
		paths = append(paths, f.Path+":"+f.Kind)
	}
	require.Equal(t, []string{"id:string", "type:string", "company_id:string", "occurred_at:string", "data:object",
		"data.address:mixed", "data.email:string"}, paths)
	require.Len(t, CommonFields(none), len(envelopeFields))
}

func TestValidateEvents(t *testing.T) {
	t.Parallel()
	w := valid()
	w.EventKeys = []string{"contact.created", "contact.updated"}
	w.RawData = false
	w.Params = []Param{{Key: "e", Path: "data.email"}}
	samples := map[string]json.RawMessage{"contact.created": json.RawMessage(`{"email":"x"}`), "contact.updated": json.RawMessage(`{"id":1}`)}
	r := Rules{EventExists: func(k string) bool { return samples[k] != nil }, EventSample: func(k string) json.RawMessage { return samples[k] }}
	require.Equal(t, map[string]string{"params[0].path": "data.email is not a field of the trigger event contact.updated; choose a field every trigger event has"},
		fields(w.Validate(r)))
	w.EventKeys = []string{"contact.created"}
	require.NoError(t, w.Validate(r))
	w.EventKeys = []string{"contact.created", "deal.won", "contact.created", ""}
	require.Equal(t, map[string]string{"events[1]": `unknown trigger event "deal.won"`, "events[2]": `duplicate trigger event "contact.created"`,
		"events[3]": "is required"}, fields(w.Validate(r)), "params are not checked against events that are wrong")
}
