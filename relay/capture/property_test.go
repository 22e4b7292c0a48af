package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
)

// The property test's table: every kind of column value.go handles, and the odd ones it does
// not know (enum, domain, composite: strings), 40 more columns for a wide row, and big, stored
// out of line (TOAST) so an UPDATE that leaves it alone sends it as "unchanged".
const oddSchema = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'très "bien"');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE odd (
    id bigint PRIMARY KEY, company_id text, j json, jb jsonb, t text, by bytea, n numeric, f float8,
    ts timestamptz, tn timestamp, ia int[], ta text[], jba jsonb[], m mood, d posint, p pair, big text%s);
ALTER TABLE odd ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE odd REPLICA IDENTITY FULL;
`

const oddCatalog = `
  - key: odd.created
    table: odd
    operations: [insert]
    tenant_column: company_id
  - key: odd.updated
    table: odd
    operations: [update]
    tenant_column: company_id
  - key: odd.deleted
    table: odd
    operations: [delete]
    tenant_column: company_id
`

const oddWide = 40

// choice is a value for a column: SQL text (nil: NULL) and the JSON capture must make of it
// (value.go), or "" when the test checks it another way.
type choice struct {
	sql  *string
	want string
}

func lit(s, want string) choice { return choice{&s, want} }

var null = choice{}

// oddText: text with odd Unicode (no NUL: PostgreSQL text cannot hold it).
var oddText = []string{"", "plain", "NULL", `{"a b","c"}`, `quote " and \ backslash`, "tab\tnew\nline\r\x01\x1f",
	"emoji 🙂👩‍👩‍👧 and 𝄞", "e\u0301 combining", "rtl \u202eabc\u202c", "\u2028\u2029 separators", "\uffff\ufffe nonchars",
	"\ufffd replacement", "日本語テキスト", "'single' quotes; DROP TABLE odd; --"}

// randJSON makes JSON text; poison makes it hold "\u0000" somewhere (valid JSON that the json
// type accepts and jsonb refuses). Lone surrogate escapes are left out: the json type refuses
// them at input (TestAppendValue covers the repair).
func randJSON(r *rand.Rand, depth int, poison *bool) string {
	switch k := r.IntN(10); {
	case depth > 3 || k < 3:
		switch r.IntN(8) {
		case 0:
			return "null"
		case 1:
			return strconv.Itoa(r.IntN(2000) - 1000)
		case 2:
			return "12345678901234567890.5"
		case 3:
			return `"\u00e9\u2028\uffff"`
		case 4:
			return `"pair \ud83d\ude00, \/ \b\f"`
		case 5:
			if r.IntN(4) == 0 {
				*poison = true
				return `"nul \u0000 inside"`
			}
			return `"\\u0000 is an escaped backslash"`
		case 6:
			b, _ := json.Marshal(oddText[r.IntN(len(oddText))])
			return string(b)
		default:
			return "true"
		}
	case k < 6:
		parts := make([]string, r.IntN(4))
		for i := range parts {
			parts[i] = randJSON(r, depth+1, poison)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		parts := make([]string, r.IntN(4))
		for i := range parts {
			parts[i] = fmt.Sprintf(`"k%d %s": %s`, i, []string{"", "é", "\\ud83d\\ude00"}[r.IntN(3)], randJSON(r, depth+1, poison))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
}

// oddRow is one generated row: its column values in insert order, and whether its json column
// holds "\u0000".
type oddRow struct {
	id      int64
	company *string
	vals    map[string]choice
	bytes   []byte // by
	poison  bool
}

func pick(r *rand.Rand, cs ...choice) choice { return cs[r.IntN(len(cs))] }

func genRow(r *rand.Rand, id int64) oddRow {
	row := oddRow{id: id, vals: map[string]choice{}}
	switch r.IntN(10) {
	case 0:
	case 1:
		c := "404" // unknown company
		row.company = &c
	default:
		c := strconv.Itoa(1 + r.IntN(2))
		row.company = &c
	}
	maybe := func(c choice) choice {
		if r.IntN(8) == 0 {
			return null
		}
		return c
	}
	j := randJSON(r, 0, &row.poison)
	row.vals["j"] = maybe(lit(j, ""))
	if row.vals["j"].sql == nil {
		row.poison = false
	}
	var jbPoison bool
	jb := randJSON(r, 0, &jbPoison)
	if jbPoison { // jsonb refuses it at INSERT; keep the row insertable
		jb = `{"clean": true}`
	}
	row.vals["jb"] = maybe(lit(jb, ""))
	t := oddText[r.IntN(len(oddText))]
	tj, _ := json.Marshal(t)
	row.vals["t"] = maybe(lit(t, string(tj)))
	row.bytes = make([]byte, r.IntN(40))
	for i := range row.bytes {
		row.bytes[i] = byte(r.IntN(256))
	}
	row.vals["n"] = maybe(pick(r, lit("NaN", `"NaN"`), lit("Infinity", `"Infinity"`), lit("-Infinity", `"-Infinity"`),
		lit("12345678901234567890.123456789", "12345678901234567890.123456789"), lit("-0.5", "-0.5"), lit("0", "0")))
	row.vals["f"] = maybe(pick(r, lit("NaN", `"NaN"`), lit("Infinity", `"Infinity"`), lit("-Infinity", `"-Infinity"`),
		lit("1.5e-07", "1.5e-07"), lit("1e+308", "1e+308"), lit("-2.25", "-2.25")))
	row.vals["ts"] = maybe(pick(r, lit("infinity", `"infinity"`), lit("-infinity", `"-infinity"`),
		lit("2026-11-27 11:00:00.123456+01", `"2026-11-27T10:00:00.123456Z"`), lit("0044-03-15 12:00:00+00 BC", `"0044-03-15 12:00:00+00 BC"`)))
	row.vals["tn"] = maybe(pick(r, lit("infinity", `"infinity"`), lit("-infinity", `"-infinity"`),
		lit("2026-11-27 10:00:00.5", `"2026-11-27T10:00:00.5"`)))
	row.vals["ia"] = maybe(pick(r, lit("{}", "[]"), lit("{{1,NULL},{3,4}}", "[[1,null],[3,4]]"), lit("[0:1]={7,8}", "[7,8]"),
		lit("{{{1}},{{2}}}", "[[[1]],[[2]]]")))
	row.vals["ta"] = maybe(pick(r, lit(`{"a b","c\"d",NULL,"NULL","\\\\"}`, `["a b","c\"d",null,"NULL","\\\\"]`),
		lit(`{{x,y},{"🙂",NULL}}`, `[["x","y"],["🙂",null]]`)))
	row.vals["jba"] = maybe(pick(r, lit(`{"{\"a\": 1}",NULL}`, `[{"a":1},null]`), lit(`{"[\"\\\\ud83d\\\\ude00\"]"}`, `[["\\ud83d\\ude00"]]`)))
	row.vals["m"] = maybe(pick(r, lit("sad", `"sad"`), lit(`très "bien"`, `"très \"bien\""`)))
	row.vals["d"] = maybe(lit("42", `"42"`))
	row.vals["p"] = maybe(pick(r, lit(`(1,x)`, `"(1,x)"`), lit(`(2,"a b")`, `"(2,\"a b\")"`), lit(`(,)`, `"(,)"`)))
	if r.IntN(5) == 0 {
		big := strings.Repeat(oddText[r.IntN(len(oddText))]+"·", 1+r.IntN(20000))
		row.vals["big"] = lit(big, "")
	} else {
		row.vals["big"] = null
	}
	for w := range oddWide {
		row.vals[fmt.Sprintf("w%02d", w)] = maybe(lit(fmt.Sprintf("w%d-%d", w, id), fmt.Sprintf(`"w%d-%d"`, w, id)))
	}
	return row
}

var oddCols = []string{"j", "jb", "t", "n", "f", "ts", "tn", "ia", "ta", "jba", "m", "d", "p", "big"}

func oddCasts() map[string]string {
	return map[string]string{"j": "json", "jb": "jsonb", "n": "numeric", "f": "float8", "ts": "timestamptz", "tn": "timestamp",
		"ia": "int[]", "ta": "text[]", "jba": "jsonb[]", "m": "mood", "d": "posint", "p": "pair"}
}

func (row oddRow) insert(b *pgx.Batch) {
	cols := []string{"id", "company_id", "by"}
	args := []any{row.id, row.company, row.bytes}
	casts := oddCasts()
	all := append([]string{}, oddCols...)
	for w := range oddWide {
		all = append(all, fmt.Sprintf("w%02d", w))
	}
	ph := []string{"$1", "$2", "$3"}
	for _, c := range all {
		cols = append(cols, c)
		args = append(args, row.vals[c].sql)
		p := "$" + strconv.Itoa(len(args))
		if cast := casts[c]; cast != "" {
			p += "::text::" + cast
		}
		ph = append(ph, p)
	}
	b.Queue(fmt.Sprintf("INSERT INTO odd (%s) VALUES (%s)", strings.Join(cols, ", "), strings.Join(ph, ", ")), args...)
}

// TestEveryColumnTypeSurvives is a property test through the real slot: random rows (seeded;
// the seed is printed, set WALHOOK_PROPERTY_SEED to replay one) with every odd kind of value are
// inserted, updated (leaving a TOASTed column alone) and deleted in random transactions. Then a
// sentinel row must be captured: capture never stopped. Every change of the table is accounted
// for as exactly one of: a stored event with valid JSON whose values are what value.go
// documents, a quarantined event (exactly the changes whose json column held "\u0000"), or a
// skip with its reason (NULL tenant, unknown company).
func TestEveryColumnTypeSurvives(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WALHOOK_PROPERTY_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (WALHOOK_PROPERTY_SEED=%d replays this run)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0x5eed))

	f := newFixture(t)
	wide := ""
	for w := range oddWide {
		wide += fmt.Sprintf(", w%02d text", w)
	}
	_, err := f.app.Exec(ctx, fmt.Sprintf(oddSchema, wide))
	require.NoError(t, err)
	cat, err := catalog.Parse([]byte(testCatalog + oddCatalog))
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, f.src, f.st))
	f.cat = cat
	reg := prometheus.NewRegistry()
	cfg := f.config()
	// Its rows reach about a megabyte with their previous rows; the cap on an event's size has
	// tests of its own (toolarge_test.go), this one is about the values.
	cfg.MaxEventBytes = 64 << 20
	f.startStreaming(t, cfg, reg)

	// one per change of odd, with what decides its outcome
	type change struct {
		op     string
		null   bool // NULL tenant
		poison bool
	}
	var changes []change
	rows := map[int64]oddRow{}
	var ids []int64
	const nRows = 120
	for i := 0; i < nRows; {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		for n := 1 + r.IntN(5); n > 0 && i < nRows; n-- {
			row := genRow(r, int64(i+1))
			row.insert(b)
			rows[row.id] = row
			ids = append(ids, row.id)
			changes = append(changes, change{op: "created", null: row.company == nil, poison: row.poison})
			i++
		}
		b.Queue("COMMIT")
		require.NoError(t, f.app.SendBatch(ctx, b).Close())
	}
	// updates: change t (and sometimes j), never big; the event carries both rows
	for range 60 {
		id := ids[r.IntN(len(ids))]
		row := rows[id]
		oldPoison := row.poison
		nt := oddText[r.IntN(len(oddText))]
		newJ := row.vals["j"]
		if r.IntN(3) == 0 {
			var p bool
			newJ = lit(randJSON(r, 0, &p), "")
			row.poison = p
		}
		_, err := f.app.Exec(ctx, "UPDATE odd SET t = $2, j = $3::text::json WHERE id = $1", id, nt, newJ.sql)
		require.NoError(t, err)
		tj, _ := json.Marshal(nt)
		row.vals["t"] = lit(nt, string(tj))
		row.vals["j"] = newJ
		rows[id] = row
		changes = append(changes, change{op: "updated", null: row.company == nil, poison: oldPoison || row.poison})
	}
	for range 30 {
		k := r.IntN(len(ids))
		id := ids[k]
		ids = append(ids[:k], ids[k+1:]...)
		row := rows[id]
		_, err := f.app.Exec(ctx, "DELETE FROM odd WHERE id = $1", id)
		require.NoError(t, err)
		changes = append(changes, change{op: "deleted", null: row.company == nil, poison: row.poison})
		delete(rows, id)
	}
	_, err = f.app.Exec(ctx, `INSERT INTO contacts (company_id, name) VALUES ('1', 'sentinel')`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return f.count(t, `SELECT count(*) FROM walhook.event WHERE payload->'data'->>'name' = 'sentinel'`) == 1
	}, 30*time.Second, 50*time.Millisecond, "capture stopped (seed %d)", seed)

	var wantEvents, wantQuarantined, wantNull int
	for _, c := range changes {
		switch {
		case c.null:
			wantNull++
		case c.poison:
			wantQuarantined++
		default:
			wantEvents++
		}
	}
	// The counters move right after the commit that made the sentinel visible: wait for them.
	events := func() int { return f.count(t, `SELECT count(*) FROM walhook.event WHERE event_key LIKE 'odd.%'`) }
	skipped := func(reason string) int { return int(xtest.Sample(t, reg, "walhook_capture_skipped_total", reason)) }
	require.Eventually(t, func() bool {
		return events()+skipped("unknown_company") >= wantEvents && skipped("null_tenant") >= wantNull
	}, 10*time.Second, 20*time.Millisecond, "seed %d", seed)
	unknown := skipped("unknown_company")
	require.Equal(t, wantNull, skipped("null_tenant"), "seed %d", seed)
	require.Equal(t, wantQuarantined, f.count(t, `SELECT count(*) FROM walhook.capture_quarantine WHERE event_key LIKE 'odd.%' AND sqlstate = '22P05'`), "seed %d", seed)
	require.Equal(t, wantQuarantined, f.count(t, `SELECT count(*) FROM walhook.capture_quarantine`), "nothing else quarantined (seed %d)", seed)
	require.Equal(t, wantEvents, events()+unknown, "seed %d", seed)
	require.Zero(t, xtest.Sample(t, reg, "walhook_capture_skipped_total", skipUnstorable))

	// Values: every created event is checked against what was inserted.
	evs, err := f.pool.Query(ctx, `SELECT payload::text FROM walhook.event WHERE event_key = 'odd.created'`)
	require.NoError(t, err)
	payloads, err := pgx.CollectRows(evs, pgx.RowTo[string])
	require.NoError(t, err)
	checked := 0
	for _, p := range payloads {
		var env struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(p), &env), "seed %d", seed)
		id, err := strconv.ParseInt(string(env.Data["id"]), 10, 64)
		require.NoError(t, err)
		checkRow(t, seed, id, env.Data, regenerated(t, seed, id))
		checked++
	}
	require.Positive(t, checked)
	// An UPDATE leaves big alone (TOASTed, sent as unchanged): data has it from the old row.
	upd, err := f.pool.Query(ctx, `SELECT (payload->'data'->>'id')::bigint, payload->'data'->>'big', payload->'previous'->>'big'
		FROM walhook.event WHERE event_key = 'odd.updated'`)
	require.NoError(t, err)
	type bigs struct {
		ID        int64
		Data, Old *string
	}
	updates, err := pgx.CollectRows(upd, pgx.RowToStructByPos[bigs])
	require.NoError(t, err)
	for _, u := range updates {
		want := regenerated(t, seed, u.ID).vals["big"].sql
		require.Equal(t, want, u.Data, "seed %d row %d: unchanged TOASTed big", seed, u.ID)
		require.Equal(t, want, u.Old, "seed %d row %d: previous big", seed, u.ID)
	}
	t.Logf("%d changes: %d events (%d of them checked value by value), %d quarantined, %d NULL tenant, %d unknown company",
		len(changes), wantEvents-unknown, checked, wantQuarantined, wantNull, unknown)
}

// regenerated replays the seed's generator up to row id, as inserted.
func regenerated(t *testing.T, seed uint64, id int64) oddRow {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := int64(0); ; {
		for n := 1 + r.IntN(5); n > 0; n-- {
			i++
			row := genRow(r, i)
			if i == id {
				return row
			}
		}
	}
}

// checkRow compares an event's data with the row as inserted, by value.go's rules.
func checkRow(t *testing.T, seed uint64, id int64, data map[string]json.RawMessage, row oddRow) {
	t.Helper()
	msg := fmt.Sprintf("seed %d row %d", seed, id)
	for col, c := range row.vals {
		got, ok := data[col]
		require.True(t, ok, "%s: column %s missing", msg, col)
		if c.sql == nil {
			require.Equal(t, "null", string(got), "%s: %s", msg, col)
			continue
		}
		switch {
		case c.want != "":
			require.Equal(t, decodeJSON(t, c.want), decodeJSON(t, string(got)), "%s: %s", msg, col)
		case col == "j" || col == "jb":
			// the same JSON value, lone surrogates as U+FFFD (encoding/json decodes them so)
			var want, have any
			require.NoError(t, json.Unmarshal([]byte(*c.sql), &want), msg)
			require.NoError(t, json.Unmarshal(got, &have), msg)
			require.Equal(t, want, have, "%s: %s", msg, col)
		case col == "big":
			var s string
			require.NoError(t, json.Unmarshal(got, &s), msg)
			require.Equal(t, *c.sql, s, "%s: big", msg)
		}
	}
	var by string
	require.NoError(t, json.Unmarshal(data["by"], &by), msg)
	raw, err := base64.StdEncoding.DecodeString(by)
	require.NoError(t, err, msg)
	require.True(t, bytes.Equal(row.bytes, raw), "%s: by", msg)
	if row.company == nil {
		require.Equal(t, "null", string(data["company_id"]), msg)
	}
}

// decodeJSON decodes JSON text to compare values: jsonb prints numbers in its own form
// (1.5e-07 as 0.00000015), equal as numbers.
func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	return v
}
