package admin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// cursor is the position after which a listing continues. It travels as opaque base64url JSON;
// Kind ties it to one listing and sort and Company to the company that listed, so a cursor of
// another listing or company is refused.
type cursor struct {
	Kind    string     `json:"k"`
	Company string     `json:"c"`
	Name    string     `json:"n,omitempty"`
	At      *time.Time `json:"t,omitempty"`
	ID      int64      `json:"i,omitempty"`
	// PublicID names the last row of listings whose row ids are not shown (deliveries).
	PublicID string `json:"p,omitempty"`
}

// maxCursorLen bounds a cursor before it is decoded.
const maxCursorLen = 1024

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // a struct of strings, a time and an int always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor of the listing kind and the company.
func decodeCursor(s, kind, company string) (cursor, error) {
	if len(s) > maxCursorLen {
		return cursor{}, errors.New("is too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errors.New("is not a cursor this API returned")
	}
	var c cursor
	// Deliveries are named by public id, everything else by row id.
	if err := json.Unmarshal(raw, &c); err != nil || (kind == "deliveries") != (c.PublicID != "" && c.ID == 0) ||
		(kind != "deliveries" && c.ID <= 0) {
		return cursor{}, errors.New("is not a cursor this API returned")
	}
	if c.Kind != kind {
		return cursor{}, errors.New("belongs to another listing or sort order")
	}
	if c.Company != company {
		return cursor{}, errors.New("belongs to another company")
	}
	return c, nil
}
