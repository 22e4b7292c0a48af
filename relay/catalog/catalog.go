// Package catalog reads and checks the trigger-event catalog: the operator's YAML file that
// declares which events exist, where each comes from (a table and its operations, or the outbox),
// which column names the tenant, which columns an UPDATE must change to fire, and a sample
// payload. The relay and the admin service load it at start and upsert it into walhook.event_type
// (an entry removed from the file is retired there, never deleted).
//
// The file:
//
//	events:
//	  - key: contact.created          # lowercase dotted words; unique
//	    description: A new contact was created
//	    table: public.contacts        # source table ("table" alone means schema public)
//	    operations: [insert]          # insert, update, delete
//	    tenant_column: company_id     # the row's company id
//	    columns: [name, email]        # optional: an UPDATE fires only when one of these changed
//	    sample: {id: 1, name: Ada}    # optional: the "data" Test sends
//	  - key: invoice.paid
//	    source: outbox                # emitted through walhook.outbox or walhook.emit()
//
// Parse checks the file on its own; Validate checks it against the database (tables, columns and
// replica identity exist). Both name the entry at fault.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// Catalog is a checked set of trigger events.
type Catalog struct {
	events []webhook.EventType
	byKey  map[string]int
}

// entry is one event as written in the file.
type entry struct {
	Key          string    `yaml:"key"`
	Description  string    `yaml:"description"`
	Source       string    `yaml:"source"`
	Table        string    `yaml:"table"`
	Operations   []string  `yaml:"operations"`
	TenantColumn string    `yaml:"tenant_column"`
	Columns      []string  `yaml:"columns"`
	Sample       yaml.Node `yaml:"sample"`
}

type file struct {
	Events []entry `yaml:"events"`
}

var (
	keyPattern   = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)+$`)
	identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
)

// maxKeyLen matches the CHECK on walhook.event_type.key.
const maxKeyLen = 100

// EntryError is a catalog entry that is wrong; it names the entry.
type EntryError struct {
	Index int    // 1-based position in the file
	Key   string // may be empty when the key itself is missing
	Err   error
}

func (e *EntryError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("catalog entry %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("catalog entry %d (%s): %v", e.Index, e.Key, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Load reads and parses a catalog file.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse parses and checks a catalog file: unknown fields, duplicate or malformed keys, a table
// event without table, operations or tenant column, an outbox event with table fields, and a
// sample that is not a JSON-able mapping are errors.
func Parse(data []byte) (*Catalog, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse catalog: %w", err)
	}
	types := make([]webhook.EventType, 0, len(f.Events))
	for i, e := range f.Events {
		t, err := e.eventType()
		if err != nil {
			return nil, &EntryError{Index: i + 1, Key: e.Key, Err: err}
		}
		types = append(types, t)
	}
	return New(types)
}

// New builds a catalog from event types (as stored in walhook.event_type, say), checking keys
// are unique.
func New(types []webhook.EventType) (*Catalog, error) {
	c := &Catalog{byKey: make(map[string]int, len(types))}
	for i, t := range types {
		if t.RetiredAt != nil {
			continue
		}
		if _, dup := c.byKey[t.Key]; dup {
			return nil, &EntryError{Index: i + 1, Key: t.Key, Err: errors.New("duplicate key")}
		}
		if t.Source == webhook.SourceTable {
			schema, table := store.SplitTable(t.SourceTable)
			t.SourceTable = schema + "." + table
		}
		c.byKey[t.Key] = len(c.events)
		c.events = append(c.events, t)
	}
	return c, nil
}

func (e entry) eventType() (webhook.EventType, error) {
	t := webhook.EventType{Key: e.Key, Description: e.Description}
	switch {
	case e.Key == "":
		return t, errors.New("key is required")
	case len(e.Key) > maxKeyLen || !keyPattern.MatchString(e.Key):
		return t, fmt.Errorf("key %q: want lowercase dotted words like contact.created (at most %d characters)", e.Key, maxKeyLen)
	}
	source := e.Source
	if source == "" {
		source = string(webhook.SourceTable)
	}
	switch webhook.EventSource(source) {
	case webhook.SourceOutbox:
		t.Source = webhook.SourceOutbox
		if e.Table != "" || len(e.Operations) > 0 || e.TenantColumn != "" || len(e.Columns) > 0 {
			return t, errors.New("an outbox event has no table, operations, tenant_column or columns")
		}
	case webhook.SourceTable:
		t.Source = webhook.SourceTable
		if e.Table == "" {
			return t, errors.New("table is required (or source: outbox)")
		}
		schema, table := store.SplitTable(e.Table)
		if !identPattern.MatchString(schema) || !identPattern.MatchString(table) {
			return t, fmt.Errorf("table %q: want schema.table or table", e.Table)
		}
		t.SourceTable = schema + "." + table
		if len(e.Operations) == 0 {
			return t, errors.New("operations is required: one or more of insert, update, delete")
		}
		for _, op := range e.Operations {
			if op != "insert" && op != "update" && op != "delete" {
				return t, fmt.Errorf("operation %q: want insert, update or delete", op)
			}
			if !slices.Contains(t.Operations, op) {
				t.Operations = append(t.Operations, op)
			}
		}
		if e.TenantColumn == "" {
			return t, errors.New("tenant_column is required")
		}
		t.TenantColumn = e.TenantColumn
		if len(e.Columns) > 0 && !slices.Contains(t.Operations, "update") {
			return t, errors.New("columns only applies to update events")
		}
		for _, col := range e.Columns {
			if col == "" {
				return t, errors.New("columns: empty column name")
			}
		}
		t.Columns = slices.Clone(e.Columns)
	default:
		return t, fmt.Errorf("source %q: want table or outbox", e.Source)
	}
	if !e.Sample.IsZero() {
		var v any
		if err := e.Sample.Decode(&v); err != nil {
			return t, fmt.Errorf("sample: %w", err)
		}
		if _, ok := v.(map[string]any); !ok {
			return t, errors.New("sample: want a mapping")
		}
		b, err := json.Marshal(v)
		if err != nil {
			return t, fmt.Errorf("sample: %w", err)
		}
		t.Sample = b
	}
	return t, nil
}

// Events returns the catalog's events in file order.
func (c *Catalog) Events() []webhook.EventType { return slices.Clone(c.events) }

// Len is the number of events.
func (c *Catalog) Len() int { return len(c.events) }

// Get returns the event with key.
func (c *Catalog) Get(key string) (webhook.EventType, bool) {
	i, ok := c.byKey[key]
	if !ok {
		return webhook.EventType{}, false
	}
	return c.events[i], true
}

// Tables lists the source tables ("schema.table"), sorted, each once.
func (c *Catalog) Tables() []string {
	var out []string
	for _, t := range c.events {
		if t.Source == webhook.SourceTable && !slices.Contains(out, t.SourceTable) {
			out = append(out, t.SourceTable)
		}
	}
	slices.Sort(out)
	return out
}

// Operations reports which operations any table event uses.
func (c *Catalog) Operations() (insert, update, del bool) {
	for _, t := range c.events {
		for _, op := range t.Operations {
			switch op {
			case "insert":
				insert = true
			case "update":
				update = true
			case "delete":
				del = true
			}
		}
	}
	return insert, update, del
}

// Validate checks the catalog against the application's database st (the source): every table exists, has the tenant column
// and the listed columns, and a table with update or delete events has a replica identity (a
// primary key, or REPLICA IDENTITY FULL or USING INDEX) — publishing changes of a table without
// one would make PostgreSQL refuse the application's own UPDATEs and DELETEs.
func (c *Catalog) Validate(ctx context.Context, st *store.Store) error {
	infos := map[string]store.TableInfo{}
	for i, t := range c.events {
		if t.Source != webhook.SourceTable {
			continue
		}
		info, ok := infos[t.SourceTable]
		if !ok {
			var err error
			info, err = st.CaptureTableInfo(ctx, t.SourceTable)
			if errors.Is(err, store.ErrNotFound) {
				return &EntryError{Index: i + 1, Key: t.Key, Err: fmt.Errorf("unknown table %s", t.SourceTable)}
			}
			if err != nil {
				return fmt.Errorf("look up table %s: %w", t.SourceTable, err)
			}
			infos[t.SourceTable] = info
		}
		if !slices.Contains(info.Columns, t.TenantColumn) {
			return &EntryError{Index: i + 1, Key: t.Key, Err: fmt.Errorf("unknown tenant column %q in table %s", t.TenantColumn, t.SourceTable)}
		}
		for _, col := range t.Columns {
			if !slices.Contains(info.Columns, col) {
				return &EntryError{Index: i + 1, Key: t.Key, Err: fmt.Errorf("unknown column %q in table %s", col, t.SourceTable)}
			}
		}
		if (slices.Contains(t.Operations, "update") || slices.Contains(t.Operations, "delete")) && !info.CanPublishChanges() {
			return &EntryError{Index: i + 1, Key: t.Key, Err: fmt.Errorf(
				"table %s has no replica identity (no primary key): add one, or ALTER TABLE %s REPLICA IDENTITY FULL", t.SourceTable, t.SourceTable)}
		}
	}
	return nil
}

// UndetectedMoves reads the application's database st (the source) and lists, one line per table, the tables with update events on which walhook cannot
// tell that an UPDATE moved a row to another company: the old row PostgreSQL publishes does not
// carry the tenant column (REPLICA IDENTITY is neither FULL nor an identity that includes it).
// Such a move reaches only the new company, as an update without previous (no other company's
// data leaks); the old company is not told. Capture logs these as warnings at start.
func (c *Catalog) UndetectedMoves(ctx context.Context, st *store.Store) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range c.events {
		if t.Source != webhook.SourceTable || !slices.Contains(t.Operations, "update") || seen[t.SourceTable+"\x00"+t.TenantColumn] {
			continue
		}
		seen[t.SourceTable+"\x00"+t.TenantColumn] = true
		info, err := st.CaptureTableInfo(ctx, t.SourceTable)
		if err != nil {
			return nil, fmt.Errorf("look up table %s: %w", t.SourceTable, err)
		}
		if !info.OldRowHas(t.TenantColumn) {
			out = append(out, fmt.Sprintf("%s: an UPDATE of %s that moves a row to another company cannot be detected (only the new company is told); "+
				"ALTER TABLE %s REPLICA IDENTITY FULL to detect it", t.SourceTable, t.TenantColumn, t.SourceTable))
		}
	}
	return out, nil
}

// Sync validates the catalog against the application's database src and upserts it into
// walhook.event_type in walhook's database st, retiring the entries no longer in it. With one
// database src and st are the same store.
func (c *Catalog) Sync(ctx context.Context, src, st *store.Store) error {
	if err := c.Validate(ctx, src); err != nil {
		return err
	}
	if err := st.EventTypeSync(ctx, c.events); err != nil {
		return fmt.Errorf("store catalog: %w", err)
	}
	return nil
}

// FromStore builds the catalog stored in walhook.event_type (retired entries left out), for a
// process started without a catalog file.
func FromStore(ctx context.Context, st *store.Store) (*Catalog, error) {
	types, err := st.EventTypeList(ctx)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return New(types)
}

// String summarises the catalog for logs.
func (c *Catalog) String() string {
	keys := make([]string, len(c.events))
	for i, t := range c.events {
		keys[i] = t.Key
	}
	return strings.Join(keys, ",")
}
