package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestPlatformToken: a platform token is stored hashed, authenticates only as the platform (never
// as a member), and stops when it expires.
func TestPlatformToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, pool := xtest.Store(t)
	tok, info, err := s.PlatformTokenCreate(ctx, "hostapp", nil)
	require.NoError(t, err)
	require.Regexp(t, `^whp_`, tok)
	require.Equal(t, tok[:10], info.Prefix)
	p, err := s.PlatformAuthenticate(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, "platform:hostapp", p.Actor())
	_, err = s.Authenticate(ctx, tok)
	require.ErrorIs(t, err, store.ErrNotFound, "a platform token is not a member's")

	var stored int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM walhook.platform_token WHERE position($1::bytea in token_hash) > 0`, []byte(tok)).Scan(&stored))
	require.Zero(t, stored, "the token is stored hashed")

	past := time.Now().Add(-time.Minute)
	old, _, err := s.PlatformTokenCreate(ctx, "", &past)
	require.NoError(t, err)
	_, err = s.PlatformAuthenticate(ctx, old)
	require.ErrorIs(t, err, store.ErrNotFound, "an expired platform token")
	unnamed, info, err := s.PlatformTokenCreate(ctx, "", nil)
	require.NoError(t, err)
	p, err = s.PlatformAuthenticate(ctx, unnamed)
	require.NoError(t, err)
	require.Equal(t, "platform:"+info.Prefix, p.Actor(), "an unnamed token is named by its prefix")
}

// TestDisabledCompany: while a company is disabled its members' tokens say so, disabling ends its
// sign-in codes, none is made and one refused is spent, its new events are stored but fanned out to no webhook, and
// the relay sees its webhooks turned off (so deliveries already due are not sent); another
// company is not affected, and once enabled everything works again.
func TestDisabledCompany(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a", "b")
	ownerA, ownerB := b.owners["a"], b.owners["b"]
	var hookIDs []int64
	for _, c := range []struct {
		company string
		owner   int64
	}{{"a", ownerA.ID}, {"b", ownerB.ID}} {
		w, err := s.WebhookCreate(ctx, webhook.Webhook{CompanyID: c.company, Name: "hook", URL: "https://x.example/hook",
			Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true, Active: true}, &c.owner)
		require.NoError(t, err)
		hookIDs = append(hookIDs, w.ID)
	}
	relaySees := func() map[string]bool {
		hooks, err := s.DispatchWebhooks(ctx, hookIDs)
		require.NoError(t, err)
		out := map[string]bool{}
		for _, h := range hooks {
			out[h.CompanyID] = h.Active
			if !h.Active {
				require.Equal(t, store.CompanyDisabledReason, *h.DisabledReason)
			}
		}
		return out
	}
	require.Equal(t, map[string]bool{"a": true, "b": true}, relaySees())
	token, _, err := s.APITokenCreate(ctx, "a", ownerA.ID, "t", nil)
	require.NoError(t, err)
	code, err := s.LoginCodeCreate(ctx, "a", ownerA.ID, time.Hour)
	require.NoError(t, err)
	n := 0
	capture := func(company string) store.CaptureResult {
		n++
		res, err := s.CaptureCommit(ctx, store.CaptureBatch{Events: []store.CaptureEvent{{
			SourceKey: "test:" + company + ":" + string(rune('a'+n)), CompanyID: company, EventKey: "contact.created",
			Payload: []byte(`{"id":"evt_x","type":"contact.created","company_id":"` + company + `","data":{}}`), OccurredAt: time.Now(),
		}}})
		require.NoError(t, err)
		return res
	}

	co, err := s.CompanySetDisabled(ctx, "a", true)
	require.NoError(t, err)
	require.NotNil(t, co.DisabledAt)
	p, err := s.Authenticate(ctx, token)
	require.NoError(t, err)
	require.True(t, p.CompanyDisabled)
	_, _, err = s.LoginCodeRedeem(ctx, code, time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound, "disabling ended the code minted before")
	_, err = s.LoginCodeCreate(ctx, "a", ownerA.ID, time.Hour)
	require.ErrorIs(t, err, store.ErrCompanyDisabled, "a disabled company gets no sign-in code")
	// A code that exists while the company is disabled (made by a request that read the company
	// enabled just before) is refused and spent.
	codeWhileDisabled, hash := crypt.NewLoginCode()
	_, err = b.pool.Exec(ctx, `INSERT INTO walhook.login_code (code_hash, company_id, member_id, expires_at)
		VALUES ($1, 'a', $2, now() + interval '1 hour')`, hash, ownerA.ID)
	require.NoError(t, err)
	_, _, err = s.LoginCodeRedeem(ctx, codeWhileDisabled, time.Hour)
	require.ErrorIs(t, err, store.ErrCompanyDisabled)
	res := capture("a")
	require.Equal(t, int64(1), res.Events, "a disabled company's event is stored")
	require.Zero(t, res.Deliveries, "a disabled company's event reaches no webhook")
	require.Empty(t, res.UnknownCompany)
	res = capture("b")
	require.Equal(t, int64(1), res.Deliveries, "another company is not affected")
	require.Equal(t, map[string]bool{"a": false, "b": true}, relaySees(), "the relay sees a disabled company's webhooks off")

	co, err = s.CompanySetDisabled(ctx, "a", false)
	require.NoError(t, err)
	require.Nil(t, co.DisabledAt)
	p, err = s.Authenticate(ctx, token)
	require.NoError(t, err)
	require.False(t, p.CompanyDisabled)
	_, _, err = s.LoginCodeRedeem(ctx, code, time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound, "a sign-in code minted before the company was disabled does not outlive it")
	_, _, err = s.LoginCodeRedeem(ctx, codeWhileDisabled, time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound, "a code refused while disabled was spent")
	code, err = s.LoginCodeCreate(ctx, "a", ownerA.ID, time.Hour)
	require.NoError(t, err)
	_, _, err = s.LoginCodeRedeem(ctx, code, time.Hour)
	require.NoError(t, err, "a code minted after enabling signs in")
	res = capture("a")
	require.Equal(t, int64(1), res.Deliveries, "enabled again, events fan out")
	require.Equal(t, map[string]bool{"a": true, "b": true}, relaySees())
}

// TestLoginCodeRedeemAudited: spending a sign-in code (a portal link) creates a web session token
// and says so in the company's audit log, as a token created through the API is.
func TestLoginCodeRedeemAudited(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := setup(t, "a")
	owner := b.owners["a"]
	code, err := s.LoginCodeCreate(ctx, "a", owner.ID, time.Hour)
	require.NoError(t, err)
	_, info, err := s.LoginCodeRedeem(ctx, code, time.Hour)
	require.NoError(t, err)
	typ := store.AuditToken
	log, err := s.AuditList(ctx, "a", store.AuditFilter{ObjectType: &typ})
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Equal(t, "signed_in", log[0].Action)
	require.Equal(t, info.ID, log[0].ObjectID)
	require.Equal(t, owner.ID, *log[0].MemberID)
	require.NotContains(t, string(log[0].Detail), code)
}
