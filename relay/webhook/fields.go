package webhook

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Field is a field of an event's envelope that a selected parameter can take, as the parameter
// picker offers it.
type Field struct {
	Path string `json:"path"`
	// Kind is the JSON type the catalog sample holds there: object, array, string, number,
	// boolean or null; "mixed" when the events chosen together disagree.
	Kind string `json:"kind"`
	// Description explains an envelope field; Example is a data field's value in the sample.
	Description string          `json:"description,omitempty"`
	Example     json.RawMessage `json:"example,omitempty"`
}

// envelopeFields are the envelope's own fields every event has, in the order the picker shows.
var envelopeFields = []Field{
	{Path: "id", Kind: "string", Description: "the event id"},
	{Path: "type", Kind: "string", Description: "the trigger event"},
	{Path: "company_id", Kind: "string", Description: "the company"},
	{Path: "occurred_at", Kind: "string", Description: "when it happened"},
	{Path: "data", Kind: "object", Description: "the whole row"},
}

// maxFieldDepth bounds how deep into a sample the fields are listed.
const maxFieldDepth = 6

// FieldSet is what the catalog knows of an event's data: its sample. An event without a sample
// has unknown fields, which rule nothing out.
type FieldSet struct {
	data  map[string]any
	known bool
}

// NewFieldSet reads an event type's sample (the "data" of its envelope; nil or not an object:
// unknown fields).
func NewFieldSet(sample json.RawMessage) FieldSet {
	dec := json.NewDecoder(bytes.NewReader(sample))
	dec.UseNumber()
	var m map[string]any
	if len(sample) == 0 || dec.Decode(&m) != nil || m == nil {
		return FieldSet{}
	}
	return FieldSet{data: m, known: true}
}

// Known reports whether the event has a sample that tells its fields.
func (fs FieldSet) Known() bool { return fs.known }

// Allows reports whether a valid parameter path (ValidParamPath) can name a field of the event:
// an envelope field, or a path under data or previous (the row before an update, shaped like
// data) that the sample does not rule out. Only a key missing from an object of the sample
// rules a path out; below an array, a scalar or null the sample cannot tell, and neither can
// an event without a sample.
func (fs FieldSet) Allows(path string) bool {
	segs := strings.Split(path, ".")
	if (segs[0] != "data" && segs[0] != "previous") || !fs.known {
		return true
	}
	var cur any = fs.data
	for _, s := range segs[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return true
		}
		if cur, ok = m[s]; !ok {
			return false
		}
	}
	return true
}

// Fields lists the fields the picker offers for the event: the envelope's, then the sample's
// under data, by name, objects before what they hold, at most six levels deep.
func (fs FieldSet) Fields() []Field {
	out := slices.Clone(envelopeFields)
	var walk func(m map[string]any, prefix string, depth int)
	walk = func(m map[string]any, prefix string, depth int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			if segmentRE.MatchString(k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := prefix + "." + k
			if len(p) > MaxParamPathLen {
				continue
			}
			v := m[k]
			f := Field{Path: p, Kind: kindOf(v)}
			if sub, ok := v.(map[string]any); ok {
				out = append(out, f)
				if depth < maxFieldDepth {
					walk(sub, p, depth+1)
				}
				continue
			}
			if ex, err := json.Marshal(v); err == nil {
				f.Example = ex
			}
			out = append(out, f)
		}
	}
	if fs.known {
		walk(fs.data, "data", 1)
	}
	return out
}

// kindOf names the JSON type of a decoded value.
func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// CommonFields lists the fields every one of several events has, in the order of the first
// event with a sample: what a webhook subscribed to all of them can select. Events without a
// sample rule nothing out (as in Allows); with none, the envelope's fields are left.
func CommonFields(sets ...FieldSet) []Field {
	var lists [][]Field
	for _, fs := range sets {
		if fs.known {
			lists = append(lists, fs.Fields())
		}
	}
	if len(lists) == 0 {
		return slices.Clone(envelopeFields)
	}
	byPath := make([]map[string]Field, len(lists))
	for i, l := range lists {
		byPath[i] = make(map[string]Field, len(l))
		for _, f := range l {
			byPath[i][f.Path] = f
		}
	}
	out := []Field{}
	for _, f := range lists[0] {
		common := true
		for _, m := range byPath[1:] {
			g, ok := m[f.Path]
			if !ok {
				common = false
				break
			}
			if g.Kind != f.Kind {
				f.Kind = "mixed"
			}
		}
		if common {
			out = append(out, f)
		}
	}
	return out
}
