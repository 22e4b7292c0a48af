package store_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

// planHistory gives a plan test a fresh database with a history the planner has statistics for:
// 60 companies × 3 webhooks, 600 deliveries each (of 300 events a company), vacuumed and
// analyzed. It returns the pool and the first webhook with its company.
func planHistory(t *testing.T) (pool *pgxpool.Pool, companyID string, webhookID int64) {
	t.Helper()
	ctx := t.Context()
	_, pool = xtest.Store(t)
	for _, q := range []string{
		`INSERT INTO walhook.company (id, name) SELECT 'co_' || c, 'Company ' || c FROM generate_series(1, 60) c`,
		`INSERT INTO walhook.event_type (key, source) VALUES ('order.created', 'outbox')`,
		`INSERT INTO walhook.webhook (company_id, name, url, method, active, signing_secret_enc, event_keys)
		 SELECT 'co_' || ((w - 1) / 3 + 1), 'hook ' || w, 'https://hooks.example.com/' || w, 'POST', true,
		        '\x00'::bytea, ARRAY['order.created'] FROM generate_series(1, 180) w`,
		`INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
		 SELECT 'outbox:' || k, 'co_' || (k % 60 + 1), 'order.created', '{}', now() - k * interval '1 second'
		 FROM generate_series(1, 18000) k`,
		`INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, created_at)
		 SELECT e.company_id, w.id, e.id, e.occurred_at, e.event_key, 'succeeded', e.occurred_at
		 FROM walhook.event e JOIN walhook.webhook w ON w.company_id = e.company_id`,
		// As migrated: statistics on the partitioned table (0026, 0029) and on each weekly
		// partition (walhook.history_partition_create); vacuumed pages are all-visible.
		`VACUUM ANALYZE walhook.delivery`,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err)
	}
	require.NoError(t, pool.QueryRow(ctx, `SELECT id, company_id FROM walhook.webhook ORDER BY id LIMIT 1`).Scan(&webhookID, &companyID))
	return pool, companyID, webhookID
}

// explain returns the plan PostgreSQL chooses for q with args (EXPLAIN), one line a node.
func explain(t *testing.T, pool *pgxpool.Pool, q string, args ...any) string {
	t.Helper()
	rows, err := pool.Query(t.Context(), "EXPLAIN "+q, args...)
	require.NoError(t, err)
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		b.WriteString(line + "\n")
	}
	require.NoError(t, rows.Err())
	return b.String()
}

// TestHistoryPageReadsNewestFirst: a webhook's history page (DeliveryHistoryList's scan:
// company_id and webhook_id, newest first, a LIMIT) reads delivery_webhook_time_idx up to the
// limit rather than the webhook's whole history and a sort. Without the statistics of migrations
// 0026 and 0029 the planner takes the two columns as independent and picks the bitmap scan and
// sort (checked after, so the test shows the statistics are what makes the difference).
func TestHistoryPageReadsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, companyID, webhookID := planHistory(t)
	plan := func() string {
		t.Helper()
		return explain(t, pool, `SELECT d.id FROM walhook.delivery d
			WHERE d.company_id = $1 AND d.webhook_id = $2
			ORDER BY d.created_at DESC, d.id DESC LIMIT 51`, companyID, webhookID)
	}

	// With the statistics, read through each partition's copy of the index.
	p := plan()
	index := `Index (Only )?Scan using delivery_p\d{8}_webhook_id_created_at_id_\w*idx`
	require.Regexp(t, index, p, "with them: the index, newest first")
	sortNode := `(?m)^\s*(->\s+)?Sort\s+\(` // a Sort node, not a Merge Append's "Sort Key"
	require.NotRegexp(t, sortNode, p, "with them: no sort (a Merge Append of the partitions' index scans)")
	// The totals (DeliveryHistoryTotals; the listing's counts alike) read the index alone:
	// company_id and state are included in it (0029), and vacuumed pages are all-visible.
	totals := explain(t, pool, `SELECT count(*), count(*) FILTER (WHERE d.state = 'succeeded'), count(*) FILTER (WHERE d.state = 'failed')
		FROM walhook.delivery d WHERE d.company_id = $1 AND d.webhook_id = $2`, companyID, webhookID)
	require.Regexp(t, `Index Only Scan using delivery_p\d{8}_webhook_id_created_at_id_\w*idx`, totals, "the totals read no heap")
	require.NotContains(t, totals, "Heap Scan", "the totals read no heap")

	_, err := pool.Exec(ctx, `DO $$
		DECLARE s record;
		BEGIN
			FOR s IN SELECT stxnamespace::regnamespace::text AS nsp, stxname FROM pg_statistic_ext
			         WHERE stxrelid IN (SELECT relid FROM pg_partition_tree('walhook.delivery')) LOOP
				EXECUTE format('DROP STATISTICS %I.%I', s.nsp, s.stxname);
			END LOOP;
		END $$; ANALYZE walhook.delivery`)
	require.NoError(t, err)
	require.Regexp(t, sortNode, plan(), "without the statistics: the whole history, sorted")
}

// TestWebhookCountsInlined: the webhook listing's counts (WebhookListByName and
// WebhookListByLastSent join walhook.webhook_counts per webhook, migration 0030) are planned as
// the subquery the function holds, written out in the statement: the planner inlines it, and
// each webhook's counts are an index-only scan of delivery_webhook_time_idx, the plan the
// listing had when each statement wrote the subquery out. A function the planner cannot inline
// (here made SECURITY DEFINER, checked after) is a Function Scan instead: a query of its own,
// planned apart, run for every webhook of the page.
func TestWebhookCountsInlined(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, companyID, _ := planHistory(t)
	// The listing's join and order; its filters left out (they do not touch the counts).
	listing := func(counts string) string {
		t.Helper()
		return explain(t, pool, `SELECT w.id, coalesce(c.triggered, 0)::bigint, coalesce(c.succeeded, 0)::bigint,
			coalesce(c.failed, 0)::bigint, coalesce(c.pending, 0)::bigint
			FROM walhook.webhook w LEFT JOIN LATERAL `+counts+` c ON true
			WHERE w.company_id = $1 ORDER BY w.name, w.id LIMIT 50`, companyID)
	}
	const function = `walhook.webhook_counts(w.id)`
	const writtenOut = `(SELECT count(*) AS triggered,
			count(*) FILTER (WHERE d.state = 'succeeded') AS succeeded,
			count(*) FILTER (WHERE d.state = 'failed') AS failed,
			count(*) FILTER (WHERE d.state = 'pending') AS pending
		FROM walhook.delivery d WHERE d.webhook_id = w.id)`

	p := listing(function)
	require.NotContains(t, p, "Function Scan", "inlined")
	require.Regexp(t, `Index Only Scan using delivery_p\d{8}_webhook_id_created_at_id_\w*idx`, p, "each webhook's counts from the index alone")
	require.NotContains(t, p, "Heap Scan", "the counts read no heap")
	require.Equal(t, listing(writtenOut), p, "the plan of the subquery written out")

	_, err := pool.Exec(ctx, `ALTER FUNCTION walhook.webhook_counts(bigint) SECURITY DEFINER`)
	require.NoError(t, err)
	require.Contains(t, listing(function), "Function Scan on webhook_counts c", "not inlined: a Function Scan")
}
