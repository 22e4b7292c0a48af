package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

var splitSlotSeq atomic.Int64

// splitBundle is a single-database installation with a bit of everything walhook keeps, and an
// empty, migrated database to move it to.
type splitBundle struct {
	ctx              context.Context
	old, new         *store.Store
	oldPool, newPool *pgxpool.Pool
	slot             string
	hook             webhook.Webhook
	cred             webhook.OAuthCredential
	pendingID        int64 // a pending delivery, leased by a replica of the old database
	publicID         string
	deletedHookID    int64 // a webhook created and deleted: its id is never handed out again
}

func newSplitBundle(t *testing.T) *splitBundle {
	t.Helper()
	ctx := t.Context()
	old, oldPool := xtest.Store(t)
	new, newPool := xtest.Store(t)
	b := &splitBundle{ctx: ctx, old: old, new: new, oldPool: oldPool, newPool: newPool,
		slot: fmt.Sprintf("split_%d_%d", time.Now().UnixNano()%1e6, splitSlotSeq.Add(1))}
	_, err := old.MigrateSourceUp(ctx)
	require.NoError(t, err)
	owner := seed(t, old, contactCreated(), "a", "b")["a"]
	role, err := old.RoleCreate(ctx, "a", "editors")
	require.NoError(t, err)
	_, err = old.RoleSetPermissions(ctx, "a", role.ID, []webhook.Permission{webhook.PermManageWebhooks})
	require.NoError(t, err)
	_, _, err = old.APITokenCreate(ctx, "a", owner.ID, "ci", nil)
	require.NoError(t, err)
	_, _, err = old.PlatformTokenCreate(ctx, "host", nil)
	require.NoError(t, err)
	_, err = old.LoginCodeCreate(ctx, "a", owner.ID, 10*time.Minute)
	require.NoError(t, err)
	b.cred, err = old.OAuthCredentialCreate(ctx, webhook.OAuthCredential{CompanyID: "a", Name: "idp", TokenURL: "https://idp.example/token",
		Method: "POST", GrantType: webhook.GrantClientCredentials, ClientID: "cid", ClientSecret: "client-s3cret"}, &owner.ID)
	require.NoError(t, err)
	gone, err := old.WebhookCreate(ctx, webhook.Webhook{CompanyID: "a", Name: "gone", URL: "https://a.example/gone", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RawData: true}, &owner.ID)
	require.NoError(t, err)
	b.hook, err = old.WebhookCreate(ctx, webhook.Webhook{CompanyID: "a", Name: "hook", URL: "https://a.example/hook", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RawData: true, Active: true, OAuthID: &b.cred.ID,
		Headers: []webhook.Header{{Key: "X-Plain", Value: "p"}, {Key: "X-Key", Value: "header-s3cret", Secret: true}}}, &owner.ID)
	require.NoError(t, err)
	require.NoError(t, old.WebhookDelete(ctx, "a", gone.ID))
	require.NoError(t, old.AuditRecord(ctx, "a", &owner.ID, "webhook_created", "webhook", b.hook.ID, map[string]any{"name": "hook"}))
	b.deletedHookID = gone.ID
	_, err = old.CaptureQuarantineAdd(ctx, store.CaptureEvent{SourceKey: "wal:0/1:0", CompanyID: "a", EventKey: "contact.created",
		Payload: []byte(`{"bad": "\u0000"}`), OccurredAt: time.Now()}, errors.New("unsupported Unicode escape sequence"))
	require.NoError(t, err)
	// History: a succeeded delivery with its attempt, a failed one, and a pending one leased by
	// a replica that is gone.
	_, err = oldPool.Exec(ctx, `
WITH e AS (
  INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
  SELECT 'wal:0/' || g || ':0', 'a', 'contact.created', jsonb_build_object('id', 'evt_' || g, 'n', g), now() - make_interval(mins => g)
  FROM generate_series(1, 3) g RETURNING id, source_key, occurred_at
), d AS (
  INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state, attempts, lease_until, leased_by)
  SELECT 'a', $1, e.id, e.occurred_at, 'contact.created',
    CASE e.source_key WHEN 'wal:0/1:0' THEN 'succeeded' WHEN 'wal:0/2:0' THEN 'failed' ELSE 'pending' END, 1,
    CASE e.source_key WHEN 'wal:0/3:0' THEN now() + interval '1 hour' END,
    CASE e.source_key WHEN 'wal:0/3:0' THEN 'gone.0badf00d:7' END
  FROM e RETURNING id, event_at, state
)
INSERT INTO walhook.attempt (delivery_id, event_at, company_id, webhook_id, n, started_at, request_method, request_url, outcome, response_status)
SELECT d.id, d.event_at, 'a', $1, 1, now(), 'POST', 'https://a.example/hook', CASE d.state WHEN 'pending' THEN 'retry' ELSE d.state END, 500 FROM d`, b.hook.ID)
	require.NoError(t, err)
	require.NoError(t, oldPool.QueryRow(ctx, `SELECT id FROM walhook.delivery WHERE state = 'pending'`).Scan(&b.pendingID))
	b.publicID, err = old.DeliveryPublicID(ctx, "a", b.pendingID) // creates walhook.id_key
	require.NoError(t, err)
	_, err = old.CaptureSlotCreate(ctx, b.slot)
	require.NoError(t, err)
	return b
}

// copiedTables are the tables a split copies, by hand (the store's list must agree).
var copiedTables = []string{"company", "event_type", "role", "role_permission", "member", "api_token", "platform_token", "login_code",
	"oauth_credential", "webhook", "event", "delivery", "attempt", "audit_log", "capture_quarantine", "id_key"}

// waitLockWaiter waits until a session in pool's database waits for an advisory lock: the
// second of two concurrent copies, queued behind the first's lock (splitLockKey).
func waitLockWaiter(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n))
		return n > 0
	}, 30*time.Second, 20*time.Millisecond)
}

// tableText is a table's rows as text, in a stable order; a delivery's lease is left out (the
// split drops a pending delivery's lease).
func tableText(t *testing.T, pool *pgxpool.Pool, table string) string {
	t.Helper()
	row := "x"
	if table == "delivery" {
		row = "(to_jsonb(x) - 'lease_until' - 'leased_by')"
	}
	var s string
	require.NoError(t, pool.QueryRow(t.Context(),
		fmt.Sprintf(`SELECT coalesce(string_agg(%s::text, E'\n' ORDER BY %[1]s::text), '') FROM walhook.%s x`, row, table)).Scan(&s))
	return s
}

func (b *splitBundle) split(t *testing.T) store.SplitResult {
	t.Helper()
	res, err := store.Split(b.ctx, b.old, b.new, store.SplitOptions{Slot: b.slot, MovedTo: "postgres://walhook@new:5432/walhook"})
	require.NoError(t, err)
	return res
}

// TestSplitMovesEverything moves a single database's walhook data into a new database and checks
// every copied table row for row, the secrets, the public ids, the sequences, the capture
// position and the mark; then drops what the split left in the old database, and goes back.
func TestSplitMovesEverything(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	ctx := b.ctx
	before := map[string]string{}
	for _, table := range copiedTables {
		before[table] = tableText(t, b.oldPool, table)
		require.NotEmpty(t, before[table], "the bundle has rows in walhook.%s", table)
	}
	plan, err := store.SplitCheck(ctx, b.old, b.new, b.slot)
	require.NoError(t, err)
	require.False(t, plan.Resume)
	require.NotNil(t, plan.Slot)
	rows := map[string]int64{}
	for _, c := range plan.Tables {
		rows[c.Name] = c.Rows
	}
	require.Equal(t, int64(3), rows["delivery"])
	require.Equal(t, int64(2), rows["company"])

	slot, err := b.old.CaptureSlotStatus(ctx, b.slot)
	require.NoError(t, err)
	// A dispatcher paused past its heartbeat timeout: presumed dead, it does not stop the split.
	require.NoError(t, b.old.ReplicaRegister(ctx, "paused.0badf00d", time.Now(), time.Millisecond))
	require.Eventually(t, func() bool {
		rs, err := b.old.Replicas(ctx)
		require.NoError(t, err)
		return len(rs) == 1 && !rs[0].Alive
	}, 30*time.Second, 5*time.Millisecond, "the paused dispatcher is presumed dead")
	// The application's database was replaced once: the events carry epoch 1's keys.
	_, bumped, err := b.old.CaptureEpochBump(ctx, b.slot, 0, "", "other_cluster")
	require.NoError(t, err)
	require.True(t, bumped)
	res := b.split(t)
	require.Len(t, res.Tables, len(copiedTables))
	for i, c := range res.Tables {
		require.Equal(t, copiedTables[i], c.Name, "copied in this order")
	}
	for _, table := range copiedTables {
		require.Equal(t, before[table], tableText(t, b.newPool, table), "walhook.%s copied row for row", table)
	}
	var leased int
	require.NoError(t, b.newPool.QueryRow(ctx, `SELECT count(*) FROM walhook.delivery WHERE lease_until IS NOT NULL OR leased_by IS NOT NULL`).Scan(&leased))
	require.Zero(t, leased, "the pending delivery continues unleased")

	// Secrets open in the new database (sealed bound to table, column, company and row id).
	w, err := b.new.WebhookGet(ctx, "a", b.hook.ID)
	require.NoError(t, err)
	require.Empty(t, w.SealError)
	require.Equal(t, b.hook.Secret, w.Secret)
	require.Equal(t, "header-s3cret", w.Headers[1].Value)
	c, err := b.new.OAuthCredentialGet(ctx, "a", b.cred.ID)
	require.NoError(t, err)
	require.Empty(t, c.SealError)
	require.Equal(t, "client-s3cret", c.ClientSecret)
	// Public ids are the same.
	pub, err := b.new.DeliveryPublicID(ctx, "a", b.pendingID)
	require.NoError(t, err)
	require.Equal(t, b.publicID, pub)
	// Identity sequences continue past every id the old database handed out.
	w2, err := b.new.WebhookCreate(ctx, webhook.Webhook{CompanyID: "b", Name: "after", URL: "https://b.example/hook", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RawData: true}, nil)
	require.NoError(t, err)
	require.Greater(t, w2.ID, b.deletedHookID)
	// Capture continues from the slot's confirmed position, for the old database's cluster.
	require.Equal(t, slot.ConfirmedFlushLSN, res.Position)
	pos, err := b.new.CapturePositionGet(ctx, b.slot)
	require.NoError(t, err)
	require.Equal(t, slot.ConfirmedFlushLSN, fmt.Sprintf("%X/%X", uint32(pos.LSN>>32), uint32(pos.LSN)))
	var sysID string
	require.NoError(t, b.oldPool.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&sysID))
	require.Equal(t, sysID, pos.SystemID)
	require.Equal(t, 1, pos.Epoch, "the source epoch goes with the events, never back to 0")
	require.Equal(t, "other_cluster", pos.EpochReason)
	// walhook's database records that it captures from the old one: a relay without
	// --source-database-url is refused there.
	require.ErrorIs(t, b.new.CaptureSourceCheck(ctx, false), store.ErrCaptureSource)
	require.NoError(t, b.new.CaptureSourceCheck(ctx, true))

	// The old database is marked: nothing of walhook runs on it alone.
	var moved *store.MovedError
	require.ErrorAs(t, b.old.MovedCheck(ctx), &moved)
	require.Regexp(t, `^postgres://walhook@new:5432/walhook \(system \d+, database oid \d+\)$`, moved.To)
	require.Contains(t, moved.Error(), "--source-database-url")
	require.ErrorIs(t, b.old.ReplicaRegister(ctx, "late.0badf00d", time.Now(), time.Hour), store.ErrMoved)
	// The paused one wakes: its row is gone, and it cannot register again.
	_, found, err := b.old.ReplicaBeat(ctx, "paused.0badf00d", time.Hour)
	require.NoError(t, err)
	require.False(t, found)
	require.ErrorIs(t, b.old.ReplicaRegister(ctx, "paused.0badf00d", time.Now(), time.Hour), store.ErrMoved)
	require.NoError(t, b.new.MovedCheck(ctx))
	require.NoError(t, b.new.ReplicaRegister(ctx, "new.0badf00d", time.Now(), time.Hour))
	lease, err := b.old.LeaseGet(ctx, "capture:"+b.slot)
	require.NoError(t, err)
	require.Equal(t, "split", lease.Holder)
	require.True(t, lease.Live)
	// Nothing acts with another database than the one the data went to.
	other, _ := xtest.Store(t)
	_, err = store.SplitCheck(ctx, b.old, other, b.slot)
	require.ErrorContains(t, err, "was moved to postgres://walhook@new:5432/walhook")
	require.ErrorContains(t, store.SplitUndo(ctx, b.old, other, b.slot), "not to this --database-url")
	_, err = store.SplitDropMoved(ctx, b.old, other)
	require.ErrorContains(t, err, "not to this --database-url")
	// A second split refuses: it is done.
	_, err = store.SplitCheck(ctx, b.old, b.new, b.slot)
	var refused *store.SplitRefusedError
	require.ErrorAs(t, err, &refused)
	require.Contains(t, err.Error(), "already moved")

	// Drop what stayed behind: the copied tables are empty in the old database, the source's
	// tables are not.
	_, err = store.SplitDropMoved(ctx, b.old, b.new)
	require.NoError(t, err)
	for _, table := range copiedTables {
		require.Empty(t, tableText(t, b.oldPool, table), "walhook.%s emptied in the old database", table)
	}
	require.NotEmpty(t, tableText(t, b.oldPool, "emit_key"))
	require.NotEmpty(t, tableText(t, b.oldPool, "capture_setting"))

	// Back to one database: the new database's data replaces the old's, the marks swap.
	_, err = store.SplitBack(ctx, b.old, b.new, b.slot, "postgres://walhook@old:5432/app", nil)
	var back *store.SplitRefusedError
	require.ErrorAs(t, err, &back, "a replica is alive on the new database")
	_, err = b.new.ReplicaLeave(ctx, "new.0badf00d")
	require.NoError(t, err)
	res, err = store.SplitBack(ctx, b.old, b.new, b.slot, "postgres://walhook@old:5432/app", nil)
	require.NoError(t, err)
	for _, table := range copiedTables {
		require.Equal(t, tableText(t, b.newPool, table), tableText(t, b.oldPool, table), "walhook.%s copied back", table)
	}
	require.Equal(t, slot.ConfirmedFlushLSN, res.Position)
	require.NoError(t, b.old.MovedCheck(ctx))
	require.ErrorAs(t, b.new.MovedCheck(ctx), &moved)
	w, err = b.old.WebhookGet(ctx, "b", w2.ID)
	require.NoError(t, err)
	require.Equal(t, w2.Secret, w.Secret)
	_, err = b.old.LeaseGet(ctx, "capture:"+b.slot)
	require.ErrorIs(t, err, store.ErrNotFound, "the capture lease is free again")
}

// TestSplitRefuses checks what a split refuses, each time leaving both databases as they were.
func TestSplitRefuses(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	ctx := b.ctx
	opts := store.SplitOptions{Slot: b.slot, MovedTo: "postgres://walhook@new:5432/walhook"}
	refused := func(t *testing.T, err error, want string) {
		t.Helper()
		var r *store.SplitRefusedError
		require.ErrorAs(t, err, &r)
		require.Contains(t, err.Error(), want)
		require.NoError(t, b.old.MovedCheck(ctx), "the old database is not marked")
		require.Empty(t, tableText(t, b.newPool, "company"), "nothing was copied")
	}

	_, err := store.Split(ctx, b.old, b.old, opts)
	refused(t, err, "are the same database")

	// A relay runs: a live replica, then a live capture leader, then a reader of the slot.
	require.NoError(t, b.old.ReplicaRegister(ctx, "relay.0badf00d", time.Now(), time.Hour))
	_, err = store.Split(ctx, b.old, b.new, opts)
	refused(t, err, "dispatcher replica(s) run on it")
	_, err = b.old.ReplicaLeave(ctx, "relay.0badf00d")
	require.NoError(t, err)
	ok, err := b.old.LeaseAcquire(ctx, "capture:"+b.slot, "relay-1", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = store.Split(ctx, b.old, b.new, opts)
	refused(t, err, `the capture leader "relay-1" holds its lease`)
	require.NoError(t, b.old.LeaseRelease(ctx, "capture:"+b.slot, "relay-1"))

	// A walhook process (any: admin too) has a session open on the old database.
	cfg, err := pgxpool.ParseConfig(b.oldPool.Config().ConnString())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["application_name"] = "walhook"
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	require.NoError(t, admin.Ping(ctx))
	_, err = store.Split(ctx, b.old, b.new, opts)
	refused(t, err, "walhook session(s) are open on it")
	admin.Close()
	// The server ends the closed sessions a moment later.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.oldPool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'walhook'`).Scan(&n))
		return n == 0
	}, 30*time.Second, 10*time.Millisecond, "the server ends the closed sessions")

	// walhook's database holds data.
	_, err = b.new.CompanyCreate(ctx, "z", "Z")
	require.NoError(t, err)
	_, err = store.Split(ctx, b.old, b.new, opts)
	var r *store.SplitRefusedError
	require.ErrorAs(t, err, &r)
	require.Contains(t, err.Error(), "holds walhook data (in company)")
	_, err = b.newPool.Exec(ctx, `DELETE FROM walhook.company`)
	require.NoError(t, err)

	// A dispatcher that registers during the copy cannot (the mark is set); one that raced the
	// mark (its row appears after it) makes the split roll back and clear the mark.
	opts.BeforeCommit = func(ctx context.Context) error {
		require.ErrorIs(t, b.old.ReplicaRegister(ctx, "late.0badf00d", time.Now(), time.Hour), store.ErrMoved)
		_, err := b.oldPool.Exec(ctx, `INSERT INTO walhook.replica (id, expires_at) VALUES ('raced.0badf00d', now() + interval '1 hour')`)
		return err
	}
	_, err = store.Split(ctx, b.old, b.new, opts)
	refused(t, err, "started during the copy")
	_, err = b.old.LeaseGet(ctx, "capture:"+b.slot)
	require.ErrorIs(t, err, store.ErrNotFound, "the capture lease was given back")
	_, err = b.oldPool.Exec(ctx, `DELETE FROM walhook.replica`)
	require.NoError(t, err)

	// A split that died after the mark (OLD marked for NEW, NEW empty) is completed by the next.
	var tag string
	require.NoError(t, b.newPool.QueryRow(ctx, `SELECT format('(system %s, database oid %s)', (SELECT system_identifier FROM pg_control_system()),
		(SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&tag))
	_, err = b.oldPool.Exec(ctx, `UPDATE walhook.capture_setting SET moved_at = now(), moved_to = 'postgres://x@new/w ' || $1`, tag)
	require.NoError(t, err)
	ok, err = b.old.LeaseAcquire(ctx, "capture:"+b.slot, "split", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	plan, err := store.SplitCheck(ctx, b.old, b.new, b.slot)
	require.NoError(t, err)
	require.True(t, plan.Resume)
	opts.BeforeCommit = nil
	_, err = store.Split(ctx, b.old, b.new, opts)
	require.NoError(t, err)
	require.NotEmpty(t, tableText(t, b.newPool, "company"))

	// Undo takes it back while nothing ran on walhook's database.
	require.NotEmpty(t, tableText(t, b.newPool, "company"))
	require.NoError(t, store.SplitUndo(ctx, b.old, b.new, b.slot))
	require.NoError(t, b.old.MovedCheck(ctx))
	require.Empty(t, tableText(t, b.newPool, "company"))
	require.Empty(t, tableText(t, b.newPool, "capture_position"))
	// Again, and this time a relay ran on walhook's database: undo refuses (back copies instead).
	_, err = store.Split(ctx, b.old, b.new, opts)
	require.NoError(t, err)
	require.NoError(t, b.new.ReplicaRegister(ctx, "new.0badf00d", time.Now(), time.Millisecond))
	err = store.SplitUndo(ctx, b.old, b.new, b.slot)
	require.ErrorAs(t, err, &r)
	require.Contains(t, err.Error(), "split --back")
}

// TestSplitKnowsEveryTable fails when a migration adds a table the split does not place: copied,
// kept in the source, or transient (relay/store/split.go).
func TestSplitKnowsEveryTable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	old, oldPool := xtest.Store(t)
	new, _ := xtest.Store(t)
	_, err := store.SplitCheck(ctx, old, new, "walhook")
	require.NoError(t, err)
	_, err = oldPool.Exec(ctx, `CREATE TABLE walhook.surprise (id int)`)
	require.NoError(t, err)
	_, err = store.SplitCheck(ctx, old, new, "walhook")
	require.ErrorContains(t, err, "table walhook.surprise is unknown")
}

// TestSplitMarkOneTarget: two splits of the same database into two new ones, both past their
// check before either marked, must not both go on (each would commit a full copy, pending
// deliveries included, and relays on both would deliver them twice). The mark, taken under the
// row lock, refuses a mark naming another database; the same one again (a resumed split) is
// renewed.
func TestSplitMarkOneTarget(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	old, _ := xtest.Store(t)
	first, _ := xtest.Store(t)
	second, _ := xtest.Store(t)
	require.NoError(t, old.SplitMark(ctx, "walhook", "postgres://walhook@first:5432/walhook", first))
	var refused *store.SplitRefusedError
	require.ErrorAs(t, old.SplitMark(ctx, "walhook", "postgres://walhook@second:5432/walhook", second), &refused)
	require.Contains(t, refused.Error(), "first:5432")
	m, err := old.Moved(ctx)
	require.NoError(t, err)
	require.Contains(t, m.To, "postgres://walhook@first:5432/walhook", "the first mark stays")
	require.NoError(t, old.SplitMark(ctx, "walhook", "postgres://walhook@first:5432/walhook", first), "a resumed split renews it")
}

// TestSplitConcurrentLeavesTheMark: two splits of the same database into the same new one at once
// (an operator's retry while the first still runs) copy one after the other; the second then finds
// the new database filled and fails. Its failure must not clear the mark the first one's commit
// relies on: the old database would run alone again while walhook's data, pending deliveries
// included, continues in the new one.
func TestSplitConcurrentLeavesTheMark(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	ctx := b.ctx
	second := make(chan error, 1)
	opts := store.SplitOptions{Slot: b.slot, MovedTo: "postgres://walhook@new:5432/walhook"}
	first := opts
	first.BeforeCommit = func(ctx context.Context) error {
		go func() {
			_, err := store.Split(ctx, b.old, b.new, opts)
			second <- err
		}()
		waitLockWaiter(t, b.newPool)
		return nil
	}
	_, err := store.Split(ctx, b.old, b.new, first)
	require.NoError(t, err)
	err = <-second
	var refused *store.SplitRefusedError
	require.ErrorAs(t, err, &refused)
	require.NotEmpty(t, tableText(t, b.newPool, "company"))
	var moved *store.MovedError
	require.ErrorAs(t, b.old.MovedCheck(ctx), &moved, "the old database stays marked")
	l, err := b.old.LeaseGet(ctx, "capture:"+b.slot)
	require.NoError(t, err)
	require.Equal(t, "split", l.Holder, "and its capture lease stays taken")
}

// TestSplitBackConcurrent: two `walhook split --back` at once copy one after the other into the
// old database. The second must not replace the old database's data again (relays may run there
// from the first's commit on, and what they wrote would be lost), nor clear the mark that keeps
// walhook off the database it left.
func TestSplitBackConcurrent(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	ctx := b.ctx
	b.split(t)
	second := make(chan error, 1)
	started := false
	progress := func(store.SplitCount) {
		if started {
			return
		}
		started = true
		go func() {
			_, err := store.SplitBack(ctx, b.old, b.new, b.slot, "postgres://walhook@old:5432/walhook", nil)
			second <- err
		}()
		waitLockWaiter(t, b.oldPool)
	}
	_, err := store.SplitBack(ctx, b.old, b.new, b.slot, "postgres://walhook@old:5432/walhook", progress)
	require.NoError(t, err)
	require.NoError(t, b.old.MovedCheck(ctx), "walhook runs on the old database again")
	err = <-second
	var refused *store.SplitRefusedError
	require.ErrorAs(t, err, &refused)
	require.Contains(t, err.Error(), "another walhook split --back finished first")
	var moved *store.MovedError
	require.ErrorAs(t, b.new.MovedCheck(ctx), &moved, "walhook's database it left stays marked")
	require.NotEmpty(t, tableText(t, b.oldPool, "company"))
}

// TestSplitUndoAfterDropRefused: --drop-moved empties the old database's copy; an --undo after it
// (walhook never ran on the new database, so undo's own check passes) would empty the new one and
// send walhook back to the emptied old one: every webhook, event and pending delivery gone.
func TestSplitUndoAfterDropRefused(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	ctx := b.ctx
	b.split(t)
	_, err := store.SplitDropMoved(ctx, b.old, b.new)
	require.NoError(t, err)
	err = store.SplitUndo(ctx, b.old, b.new, b.slot)
	var refused *store.SplitRefusedError
	require.ErrorAs(t, err, &refused)
	require.Contains(t, err.Error(), "--drop-moved")
	require.NotEmpty(t, tableText(t, b.newPool, "company"), "walhook's data stays where it is")
	var moved *store.MovedError
	require.ErrorAs(t, b.old.MovedCheck(ctx), &moved, "and the old database stays marked")
}

// TestSplitHistoryPartitions splits a database whose history spans a week the new database has
// no partitions for (six weeks back) and the default partitions (an event of 1999, a skewed
// clock): the week's partitions are made in the new database before the copy, every row lands
// in the partition it was in, and retention can drop the week whole there as before.
func TestSplitHistoryPartitions(t *testing.T) {
	t.Parallel()
	b := newSplitBundle(t)
	ctx := b.ctx
	week := store.HistoryWeek(time.Now()).AddDate(0, 0, -42)
	suffix := week.Format("20060102")
	_, err := b.oldPool.Exec(ctx, `SELECT walhook.history_partition_create($1)`, week)
	require.NoError(t, err)
	for i, at := range []time.Time{week.Add(30 * time.Hour), time.Date(1999, 3, 1, 12, 0, 0, 0, time.UTC)} {
		_, err = b.oldPool.Exec(ctx, `
WITH e AS (
  INSERT INTO walhook.event (source_key, company_id, event_key, payload, occurred_at)
  VALUES ('outbox:' || $3::int, 'a', 'contact.created', '{}', $2) RETURNING id, occurred_at
), d AS (
  INSERT INTO walhook.delivery (company_id, webhook_id, event_id, event_at, event_key, state)
  SELECT 'a', $1, e.id, e.occurred_at, 'contact.created', 'pending' FROM e RETURNING id, event_at
)
INSERT INTO walhook.attempt (delivery_id, event_at, company_id, webhook_id, n, started_at, request_method, request_url, outcome)
SELECT d.id, d.event_at, 'a', $1, 1, now(), 'POST', 'https://a.example/hook', 'retry' FROM d`, b.hook.ID, at, 900+i)
		require.NoError(t, err)
	}
	var exists bool
	require.NoError(t, b.newPool.QueryRow(ctx, `SELECT to_regclass('walhook.delivery_p' || $1) IS NOT NULL`, suffix).Scan(&exists))
	require.False(t, exists, "the new database has no partitions for that week yet")
	before := map[string]string{}
	for _, table := range []string{"event", "delivery", "attempt"} {
		before[table] = tableText(t, b.oldPool, table)
	}

	b.split(t)
	for _, table := range []string{"event", "delivery", "attempt"} {
		require.Equal(t, before[table], tableText(t, b.newPool, table), "walhook.%s copied row for row", table)
		for part, want := range map[string]int{table + "_p" + suffix: 1, table + "_pdefault": 1} {
			var n int
			require.NoError(t, b.newPool.QueryRow(ctx, `SELECT count(*) FROM walhook.`+part).Scan(&n))
			require.Equal(t, want, n, "walhook.%s in the new database", part)
		}
	}
	d, err := b.new.RetentionWeekDrop(ctx, week)
	require.NoError(t, err)
	require.Equal(t, 3, d.Partitions, "the week is dropped whole in the new database")
	require.EqualValues(t, 1, d.Pending)
}
