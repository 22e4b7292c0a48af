package admin

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oapi-codegen/nullable"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/client"
)

// platformClient is the generated client against a server configured with a public URL, with
// the given token.
func platformClient(t *testing.T, e *env, srvURL string, token string) *client.ClientWithResponses {
	t.Helper()
	opts := []client.ClientOption{}
	if token != "" {
		opts = append(opts, client.WithBearerToken(token))
	}
	c, err := client.NewClientWithResponses(srvURL, opts...)
	require.NoError(t, err)
	return c
}

// TestPlatformLifecycle is a host application provisioning a company through the platform API,
// with the generated client: create, duplicate and invalid companies, rename, list by pages,
// roles (owner built in), members by role name, a portal link spent at POST /v1/login exactly
// once, disable and enable, and removals; each action in the company's audit log as the platform.
func TestPlatformLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := New(Config{API: true, PublicURL: "https://walhook.example.com/"}, e.st, e.tester, zerolog.Nop(), prometheus.NewRegistry())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	pc := platformClient(t, e, srv.URL, e.platform)
	ctx := e.ctx

	// Companies.
	cr, err := pc.PlatformCreateCompanyWithResponse(ctx, client.PlatformCompanyInput{Name: "Globex", ExternalId: "globex-42"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, cr.StatusCode(), "%s", cr.Body)
	require.Equal(t, "globex-42", cr.JSON201.Id)
	require.Equal(t, "globex-42", cr.JSON201.ExternalId)
	require.Equal(t, "Globex", cr.JSON201.Name)
	require.False(t, cr.JSON201.Disabled)
	require.Equal(t, "/v1/platform/companies/globex-42", cr.HTTPResponse.Header.Get("Location"))

	cr, err = pc.PlatformCreateCompanyWithResponse(ctx, client.PlatformCompanyInput{Name: "Again", ExternalId: "globex-42"})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, cr.StatusCode())
	require.Contains(t, fields(cr.ApplicationproblemJSON409), "external_id")

	cr, err = pc.PlatformCreateCompanyWithResponse(ctx, client.PlatformCompanyInput{Name: " ", ExternalId: " globex"})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, cr.StatusCode())
	require.Equal(t, []string{"external_id", "name"}, sortedKeys(fields(cr.ApplicationproblemJSON422)))

	// A company id with a slash and spaces inside travels escaped in the path.
	cr, err = pc.PlatformCreateCompanyWithResponse(ctx, client.PlatformCompanyInput{Name: "Slash", ExternalId: "org/7 b"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, cr.StatusCode(), "%s", cr.Body)
	gr, err := pc.PlatformGetCompanyWithResponse(ctx, "org/7 b")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, gr.StatusCode(), "%s", gr.Body)
	require.Equal(t, "Slash", gr.JSON200.Name)

	rn, err := pc.PlatformRenameCompanyWithResponse(ctx, "globex-42", client.PlatformCompanyPatch{Name: "Globex Corp"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, rn.StatusCode(), "%s", rn.Body)
	require.Equal(t, "Globex Corp", rn.JSON200.Name)

	gr, err = platformClient(t, e, srv.URL, "whp_unknown").PlatformGetCompanyWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, gr.StatusCode(), "an unknown platform token")

	gr, err = pc.PlatformGetCompanyWithResponse(ctx, "nope")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, gr.StatusCode())

	// Every company, one per page, in id order: acme, globex-42, org/7 b, other.
	var ids []string
	var cur *string
	for range 10 {
		lr, err := pc.PlatformListCompaniesWithResponse(ctx, &client.PlatformListCompaniesParams{Limit: some(1), Cursor: cur})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, lr.StatusCode(), "%s", lr.Body)
		for _, c := range lr.JSON200.Items {
			ids = append(ids, c.Id)
		}
		if lr.JSON200.NextCursor.IsNull() || !lr.JSON200.NextCursor.IsSpecified() {
			break
		}
		next := lr.JSON200.NextCursor.MustGet()
		cur = &next
	}
	require.Equal(t, []string{"acme", "globex-42", "org/7 b", "other"}, ids)

	// Roles: owner is built in and cannot be made or removed.
	rl, err := pc.PlatformListRolesWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	require.Equal(t, []client.PlatformRole{{Name: "owner", Builtin: true, Permissions: []client.Permission{"manage_webhooks"}}}, rl.JSON200.Items)
	rc, err := pc.PlatformCreateRoleWithResponse(ctx, "globex-42", client.RoleInput{Name: "Developers", Permissions: &[]client.Permission{"manage_webhooks"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, rc.StatusCode(), "%s", rc.Body)
	require.Equal(t, client.PlatformRole{Name: "Developers", Permissions: []client.Permission{"manage_webhooks"}}, *rc.JSON201)
	rc, err = pc.PlatformCreateRoleWithResponse(ctx, "globex-42", client.RoleInput{Name: "Readers"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, rc.StatusCode(), "%s", rc.Body)
	rc, err = pc.PlatformCreateRoleWithResponse(ctx, "globex-42", client.RoleInput{Name: "owner"})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, rc.StatusCode())
	rc, err = pc.PlatformCreateRoleWithResponse(ctx, "globex-42", client.RoleInput{Name: "Developers"})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, rc.StatusCode())
	require.Contains(t, fields(rc.ApplicationproblemJSON409), "name")
	rc, err = pc.PlatformCreateRoleWithResponse(ctx, "globex-42", client.RoleInput{Name: "Bad", Permissions: &[]client.Permission{"fly"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, rc.StatusCode())
	require.Contains(t, fields(rc.ApplicationproblemJSON422), "permissions[0]")

	// Members, by role name.
	mc, err := pc.PlatformCreateMemberWithResponse(ctx, "globex-42", client.PlatformMemberInput{Email: "boss@globex.test", Role: nullable.NewNullableWithValue("owner")})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, mc.StatusCode(), "%s", mc.Body)
	boss := *mc.JSON201
	require.True(t, boss.IsOwner)
	require.Equal(t, "owner", boss.Role.MustGet())
	mc, err = pc.PlatformCreateMemberWithResponse(ctx, "globex-42", client.PlatformMemberInput{Email: "dev@globex.test", Name: some("Dev"), Role: nullable.NewNullableWithValue("Developers")})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, mc.StatusCode(), "%s", mc.Body)
	dev := *mc.JSON201
	require.False(t, dev.IsOwner)
	require.Equal(t, "Developers", dev.Role.MustGet())
	mc, err = pc.PlatformCreateMemberWithResponse(ctx, "globex-42", client.PlatformMemberInput{Email: "reader@globex.test"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, mc.StatusCode(), "%s", mc.Body)
	require.True(t, mc.JSON201.Role.IsNull(), "no role: null")
	reader := *mc.JSON201

	mc, err = pc.PlatformCreateMemberWithResponse(ctx, "globex-42", client.PlatformMemberInput{Email: "x@globex.test", Role: nullable.NewNullableWithValue("Pilots")})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, mc.StatusCode())
	require.Contains(t, fields(mc.ApplicationproblemJSON422), "role")
	mc, err = pc.PlatformCreateMemberWithResponse(ctx, "globex-42", client.PlatformMemberInput{Email: "boss@globex.test"})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, mc.StatusCode())
	require.Contains(t, fields(mc.ApplicationproblemJSON409), "email")
	mc, err = pc.PlatformCreateMemberWithResponse(ctx, "globex-42", client.PlatformMemberInput{Email: "not-an-address"})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, mc.StatusCode())
	require.Contains(t, fields(mc.ApplicationproblemJSON422), "email")
	mc, err = pc.PlatformCreateMemberWithResponse(ctx, "nope", client.PlatformMemberInput{Email: "a@b.test"})
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, mc.StatusCode())

	ml, err := pc.PlatformListMembersWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	require.Len(t, ml.JSON200.Items, 3)

	// A portal link signs the member in once; the token it gives is the member's.
	pl, err := pc.PlatformCreatePortalLinkWithResponse(ctx, "globex-42", dev.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, pl.StatusCode(), "%s", pl.Body)
	link := *pl.JSON201
	require.True(t, strings.HasPrefix(link.Code, "whl_"))
	require.Equal(t, "https://walhook.example.com/#login="+link.Code, link.Url)
	require.WithinDuration(t, time.Now().Add(defaultPortalLinkTTL), link.ExpiresAt, time.Minute)

	anon := platformClient(t, e, srv.URL, "")
	lg, err := anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: link.Code})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, lg.StatusCode(), "%s", lg.Body)
	devToken := lg.JSON200.Token
	me, err := platformClient(t, e, srv.URL, devToken).GetMeWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, "globex-42", *me.JSON200.Company.Id)
	require.Equal(t, "dev@globex.test", *me.JSON200.Member.Email)
	require.Equal(t, []client.Permission{"manage_webhooks"}, *me.JSON200.Permissions)
	lg, err = anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: link.Code})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, lg.StatusCode(), "a portal link works once")

	pl, err = pc.PlatformCreatePortalLinkWithResponse(ctx, "acme", dev.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, pl.StatusCode(), "a member of another company is not found")

	// Disabled: the member's token is refused, an unspent link is ended, and no new link is made.
	spare, err := pc.PlatformCreatePortalLinkWithResponse(ctx, "globex-42", boss.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, spare.StatusCode())
	dr, err := pc.PlatformDisableCompanyWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, dr.StatusCode(), "%s", dr.Body)
	require.True(t, dr.JSON200.Disabled)
	disabledAt := dr.JSON200.DisabledAt.MustGet()
	dr, err = pc.PlatformDisableCompanyWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	require.Equal(t, disabledAt, dr.JSON200.DisabledAt.MustGet(), "disabling again changes nothing")

	me, err = platformClient(t, e, srv.URL, devToken).GetMeWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, me.StatusCode())
	require.Contains(t, string(me.Body), "disabled")
	lg, err = anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: spare.JSON201.Code})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, lg.StatusCode(), "%s", lg.Body)
	pl, err = pc.PlatformCreatePortalLinkWithResponse(ctx, "globex-42", boss.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, pl.StatusCode())

	er, err := pc.PlatformEnableCompanyWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	require.False(t, er.JSON200.Disabled)
	require.True(t, er.JSON200.DisabledAt.IsNull())
	me, err = platformClient(t, e, srv.URL, devToken).GetMeWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, me.StatusCode(), "enabled again, the token works")
	lg, err = anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Code: spare.JSON201.Code})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, lg.StatusCode(), "a link minted before the company was disabled does not outlive it")

	// Removing a role leaves its members without one; owner stays.
	rr, err := pc.PlatformRemoveRoleWithResponse(ctx, "globex-42", "Developers")
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, rr.StatusCode(), "%s", rr.Body)
	rr, err = pc.PlatformRemoveRoleWithResponse(ctx, "globex-42", "Developers")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, rr.StatusCode())
	rr, err = pc.PlatformRemoveRoleWithResponse(ctx, "globex-42", "owner")
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, rr.StatusCode())
	ml, err = pc.PlatformListMembersWithResponse(ctx, "globex-42")
	require.NoError(t, err)
	for _, m := range ml.JSON200.Items {
		if m.Id == dev.Id {
			require.True(t, m.Role.IsNull(), "the removed role's member has none")
		}
	}

	// Removing a member ends their tokens.
	rm, err := pc.PlatformRemoveMemberWithResponse(ctx, "globex-42", dev.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, rm.StatusCode(), "%s", rm.Body)
	me, err = platformClient(t, e, srv.URL, devToken).GetMeWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, me.StatusCode())
	rm, err = pc.PlatformRemoveMemberWithResponse(ctx, "globex-42", dev.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, rm.StatusCode())
	rm, err = pc.PlatformRemoveMemberWithResponse(ctx, "acme", reader.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, rm.StatusCode(), "a member of another company is not found")

	// The company's audit log names the platform as the actor, and the member as the actor of
	// a sign-in with a portal link.
	bossToken, _, err := e.st.APITokenCreate(ctx, "globex-42", boss.Id, "t", nil)
	require.NoError(t, err)
	au, err := platformClient(t, e, srv.URL, bossToken).ListAuditWithResponse(ctx, &client.ListAuditParams{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, au.StatusCode(), "%s", au.Body)
	var got []string
	for _, a := range *au.JSON200.Items {
		got = append(got, string(*a.ObjectType)+" "+*a.Action)
		if *a.Action == "signed_in" {
			require.True(t, a.Actor.IsNull() || !a.Actor.IsSpecified(), "a sign-in is the member's own")
			require.Equal(t, dev.Id, a.MemberId.MustGet())
			continue
		}
		require.Equal(t, "platform:hostapp", a.Actor.MustGet(), "%s", *a.Action)
		require.True(t, a.MemberId.IsNull() || !a.MemberId.IsSpecified())
	}
	require.Equal(t, []string{
		"member deleted", "role deleted", "company enabled", "company disabled", "member portal_link_created",
		"api_token signed_in", "member portal_link_created", "member created", "member created", "member created", "role created", "role created",
		"company renamed", "company created",
	}, got)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
