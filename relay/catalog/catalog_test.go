package catalog_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

const demo = `
events:
  - key: contact.created
    description: A new contact was created
    table: contacts
    operations: [insert]
    tenant_column: company_id
    sample: {id: 1, name: Ada, tags: [a, b]}
  - key: contact.updated
    table: public.contacts
    operations: [update]
    tenant_column: company_id
    columns: [name, email]
  - key: invoice.paid
    source: outbox
    description: emitted by the billing code
`

func TestParse(t *testing.T) {
	t.Parallel()
	c, err := catalog.Parse([]byte(demo))
	require.NoError(t, err)
	require.Equal(t, 3, c.Len())
	created, ok := c.Get("contact.created")
	require.True(t, ok)
	require.Equal(t, "public.contacts", created.SourceTable)
	require.JSONEq(t, `{"id":1,"name":"Ada","tags":["a","b"]}`, string(created.Sample))
	paid, _ := c.Get("invoice.paid")
	require.Equal(t, webhook.SourceOutbox, paid.Source)
	require.Equal(t, []string{"public.contacts"}, c.Tables())
	ins, upd, del := c.Operations()
	require.True(t, ins)
	require.True(t, upd)
	require.False(t, del)
}

func TestParseErrorsNameTheEntry(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ yaml, want string }{
		"duplicate": {`events: [{key: a.b, source: outbox}, {key: a.b, source: outbox}]`, "catalog entry 2 (a.b): duplicate key"},
		"bad key":   {`events: [{key: Contact, source: outbox}]`, `catalog entry 1 (Contact): key "Contact"`},
		"no tenant": {`events: [{key: a.b, table: t, operations: [insert]}]`, "catalog entry 1 (a.b): tenant_column is required"},
		"no table":  {`events: [{key: a.b, operations: [insert], tenant_column: c}]`, "catalog entry 1 (a.b): table is required"},
		"bad op":    {`events: [{key: a.b, table: t, operations: [upsert], tenant_column: c}]`, `operation "upsert"`},
		"unknown":   {`events: [{key: a.b, source: outbox, tabel: t}]`, "field tabel not found"},
		"outbox":    {`events: [{key: a.b, source: outbox, table: t}]`, "an outbox event has no table"},
		"sample":    {`events: [{key: a.b, source: outbox, sample: [1]}]`, "sample: want a mapping"},
		"columns":   {`events: [{key: a.b, table: t, operations: [insert], tenant_column: c, columns: [x]}]`, "columns only applies to update"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := catalog.Parse([]byte(tc.yaml))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidateAgainstDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	_, err := pool.Exec(ctx, `CREATE TABLE public.contacts (id bigint PRIMARY KEY, company_id text, name text, email text);
		CREATE TABLE public.nokey (company_id text, name text)`)
	require.NoError(t, err)

	c, err := catalog.Parse([]byte(demo))
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx, st, st))
	types, err := st.EventTypeList(ctx)
	require.NoError(t, err)
	require.Len(t, types, 3)

	for name, tc := range map[string]struct{ yaml, want string }{
		"table":    {`events: [{key: a.b, table: missing, operations: [insert], tenant_column: company_id}]`, "catalog entry 1 (a.b): unknown table public.missing"},
		"tenant":   {`events: [{key: a.b, table: contacts, operations: [insert], tenant_column: tenant}]`, `unknown tenant column "tenant"`},
		"column":   {`events: [{key: a.b, table: contacts, operations: [update], tenant_column: company_id, columns: [emial]}]`, `unknown column "emial"`},
		"identity": {`events: [{key: a.b, table: nokey, operations: [delete], tenant_column: company_id}]`, "has no replica identity"},
	} {
		c, err := catalog.Parse([]byte(tc.yaml))
		require.NoError(t, err, name)
		err = c.Validate(ctx, st)
		require.ErrorContains(t, err, tc.want, name)
		var ee *catalog.EntryError
		require.True(t, errors.As(err, &ee), name)
	}

	// An entry removed from the file is retired, not deleted.
	c, err = catalog.Parse([]byte(`events: [{key: invoice.paid, source: outbox}]`))
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx, st, st))
	got, err := st.EventTypeGet(ctx, "contact.created")
	require.NoError(t, err)
	require.NotNil(t, got.RetiredAt)
	fromDB, err := catalog.FromStore(ctx, st)
	require.NoError(t, err)
	require.Equal(t, 1, fromDB.Len())
	_, err = st.EventTypeGet(ctx, "nope.nope")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestUndetectedMoves: only a table whose published old row cannot carry the tenant column
// (default identity on a key without it) is reported; FULL, a key that includes the tenant
// column, and a table without update events are not.
func TestUndetectedMoves(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	_, err := pool.Exec(ctx, `CREATE TABLE public.byid (id bigint PRIMARY KEY, company_id text);
		CREATE TABLE public.full_row (id bigint PRIMARY KEY, company_id text);
		ALTER TABLE public.full_row REPLICA IDENTITY FULL;
		CREATE TABLE public.tenant_key (company_id text, id bigint, PRIMARY KEY (company_id, id));
		CREATE TABLE public.tenant_index (id bigint PRIMARY KEY, company_id text NOT NULL);
		CREATE UNIQUE INDEX tenant_index_idx ON public.tenant_index (company_id, id);
		ALTER TABLE public.tenant_index REPLICA IDENTITY USING INDEX tenant_index_idx`)
	require.NoError(t, err)
	c, err := catalog.Parse([]byte(`events:
  - {key: byid.updated, table: byid, operations: [update], tenant_column: company_id}
  - {key: byid.changed, table: byid, operations: [update, delete], tenant_column: company_id}
  - {key: byid.created, table: byid, operations: [insert], tenant_column: company_id}
  - {key: full.updated, table: full_row, operations: [update], tenant_column: company_id}
  - {key: key.updated, table: tenant_key, operations: [update], tenant_column: company_id}
  - {key: index.updated, table: tenant_index, operations: [update], tenant_column: company_id}
`))
	require.NoError(t, err)
	got, err := c.UndetectedMoves(ctx, st)
	require.NoError(t, err)
	require.Equal(t, []string{"public.byid: an UPDATE of company_id that moves a row to another company cannot be detected " +
		"(only the new company is told); ALTER TABLE public.byid REPLICA IDENTITY FULL to detect it"}, got)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(demo))
	f.Add([]byte(`events: [{key: a.b, source: outbox, sample: {x: {y: [1, 2.5, null, true]}}}]`))
	f.Add([]byte(`events: [{key: a.b, table: "s.t", operations: [update, update], tenant_column: c, columns: [a]}]`))
	f.Add([]byte("events:\n  - key: a.b\n    sample: &x {a: *x}\n"))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := catalog.Parse(data)
		if err != nil {
			return
		}
		for _, e := range c.Events() {
			if e.Key == "" || (e.Source == webhook.SourceTable && (e.SourceTable == "" || e.TenantColumn == "" || len(e.Operations) == 0)) {
				t.Fatalf("accepted an incomplete entry: %+v", e)
			}
		}
	})
}

// TestSyncValidatesAgainstSource: with walhook's database apart from the application's, Sync
// checks the tables in the application's database and stores the catalog in walhook's: a table
// that exists only in walhook's database is refused, one only in the application's is accepted.
func TestSyncValidatesAgainstSource(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, pool := xtest.Store(t)
	src := xtest.SourceStore(t, xtest.SeparateSourceURL(t))
	_, err := pool.Exec(ctx, `CREATE TABLE public.only_walhook (id bigint PRIMARY KEY, company_id text)`)
	require.NoError(t, err)
	_, err = src.Pool().Exec(ctx, `CREATE TABLE public.only_app (id bigint PRIMARY KEY, company_id text)`)
	require.NoError(t, err)

	c, err := catalog.Parse([]byte(`events: [{key: a.created, table: only_walhook, operations: [insert], tenant_column: company_id}]`))
	require.NoError(t, err)
	require.ErrorContains(t, c.Sync(ctx, src, st), "catalog entry 1 (a.created): unknown table public.only_walhook")
	_, err = st.EventTypeGet(ctx, "a.created")
	require.ErrorIs(t, err, store.ErrNotFound, "nothing stored")

	c, err = catalog.Parse([]byte(`events: [{key: b.created, table: only_app, operations: [insert], tenant_column: company_id}]`))
	require.NoError(t, err)
	require.NoError(t, c.Sync(ctx, src, st))
	got, err := st.EventTypeGet(ctx, "b.created")
	require.NoError(t, err)
	require.Equal(t, "public.only_app", got.SourceTable)
	_, err = src.EventTypeGet(ctx, "b.created")
	require.Error(t, err, "the application's database holds no catalog")
}
