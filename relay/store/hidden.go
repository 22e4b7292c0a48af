package store

import (
	"encoding/json"
	"fmt"

	"github.com/walhook/walhook/relay/webhook"
)

// Hidden values of key/value lists. A webhook's headers and an OAuth credential's extra
// parameters are stored the same way: the list as JSON in a plain jsonb column, and the values
// it hides (webhook.Header.Masked, webhook.KeyValue.Masked: marked secret or with a
// credential-looking name) as one sealed JSON array of strings, in order, in a bytea column bound
// to the row. The plain column keeps a hidden entry's key with an empty value and "sealed": true.
//
// Which entries are sealed is read from the stored JSON, never from the rule that hides them:
// webhook.CredentialWords may grow, and a read that re-applied it would pair values with the wrong
// entries. Entries stored before "sealed" existed: a header marked secret was sealed (the only
// ones that were), anything else is plain and read as it is until `walhook keys reseal` seals the
// ones the rules hide (Store.Reseal).

// storedEntry is one header or extra parameter as the plain column keeps it.
type storedEntry struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
	Sealed bool   `json:"sealed,omitempty"`
}

// isSealed reports whether the entry's value is in the sealed column: recorded as such, or a
// secret entry of a row stored before the record (only secret headers were sealed then, and
// every secret entry written since is recorded).
func (e storedEntry) isSealed() bool { return e.Sealed || e.Secret }

// splitHidden returns the plain column and the sealed column (nil: nothing hidden) of es, the
// entries for which hide is true sealed for col of the row.
func (s *Store) splitHidden(col sealedColumn, company string, id int64, es []storedEntry, hide func(storedEntry) bool) (json.RawMessage, []byte, error) {
	plain := make([]storedEntry, len(es))
	var hidden []string
	for i, e := range es {
		e.Sealed = hide(e)
		if e.Sealed {
			hidden = append(hidden, e.Value)
			e.Value = ""
		}
		plain[i] = e
	}
	pj, err := json.Marshal(plain)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", col.column, err)
	}
	if len(hidden) == 0 {
		return pj, nil, nil
	}
	hj, err := json.Marshal(hidden)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", col.column, err)
	}
	return pj, s.keys.Seal(hj, col.bind(company, id)), nil
}

// joinHidden reads a plain column back with the sealed values in place. Values that do not
// open are left empty and reported as sealErr (what names them for sealError).
func (s *Store) joinHidden(col sealedColumn, company string, id int64, pj json.RawMessage, sealed []byte, what string) (es []storedEntry, sealErr string, err error) {
	if err := json.Unmarshal(pj, &es); err != nil {
		return nil, "", fmt.Errorf("decode %s: %w", col.column, err)
	}
	if sealed == nil {
		return es, "", nil
	}
	raw, err := s.keys.Open(sealed, col.bind(company, id))
	if err != nil {
		return es, sealError(what, err), nil
	}
	var hidden []string
	if err := json.Unmarshal(raw, &hidden); err != nil {
		return nil, "", fmt.Errorf("decode %s: %w", col.column, err)
	}
	j := 0
	for i := range es {
		if es[i].isSealed() && j < len(hidden) {
			es[i].Value = hidden[j]
			j++
		}
	}
	return es, "", nil
}

// unsealedHidden counts the entries of a plain column that the rules hide but that are stored in
// plain: written before they were sealed (Store.Reseal seals them).
func unsealedHidden(es []storedEntry, hide func(storedEntry) bool) int {
	n := 0
	for _, e := range es {
		if !e.isSealed() && hide(e) {
			n++
		}
	}
	return n
}

func headerHidden(e storedEntry) bool {
	return webhook.Header{Key: e.Key, Value: e.Value, Secret: e.Secret}.Masked()
}

func paramHidden(e storedEntry) bool {
	return webhook.KeyValue{Key: e.Key, Value: e.Value, Secret: e.Secret}.Masked()
}

// entriesOf and entriesAs convert headers or OAuth extra parameters (the same three fields) to
// and from the entries the plain column keeps.
func entriesOf[T webhook.Header | webhook.KeyValue](xs []T) []storedEntry {
	es := make([]storedEntry, len(xs))
	for i, x := range xs {
		h := webhook.Header(x)
		es[i] = storedEntry{Key: h.Key, Value: h.Value, Secret: h.Secret}
	}
	return es
}

func entriesAs[T webhook.Header | webhook.KeyValue](es []storedEntry) []T {
	xs := make([]T, len(es))
	for i, e := range es {
		xs[i] = T(webhook.Header{Key: e.Key, Value: e.Value, Secret: e.Secret})
	}
	return xs
}
