package admin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// TestPermissionMatrix calls every company route as the owner, a member with manage_webhooks, a
// member without it, the owner of another company, the platform token and nobody, each on fresh
// objects of acme, and compares with the status written by hand for each (not derived from the
// route table under test). A platform token is refused (403) on every one of them, so it never reads a
// webhook, a credential, the history or a secret. The platform routes have their own matrix
// (TestPlatformPermissionMatrix).
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cred := e.newOAuth("acme", "acme-cred")

	hook := func() int64 { return e.newWebhook(fmt.Sprintf("h%d", seq.Add(1)), nil).ID }
	oauth := func() int64 { return e.newOAuth("acme", fmt.Sprintf("c%d", seq.Add(1))).ID }
	// Resync needs a webhook that is on (one that is off answers 409: TestResyncInactiveWebhook).
	on := func(w *webhook.Webhook) { w.Active = true }
	failedDelivery := func() string {
		w := e.newWebhook(fmt.Sprintf("d%d", seq.Add(1)), on)
		return e.pub("acme", e.newDelivery(w, "failed", time.Now()))
	}
	withOAuth := func() map[string]any { b := hookBody("matrix"); b["oauth_id"] = cred.ID; return b }
	newOAuthBody := func() map[string]any { return oauthBody(fmt.Sprintf("o%d", seq.Add(1))) } // a name of its own each time

	const (
		owner = iota
		manager
		viewer
		other
		anonymous
		platform
	)
	type tc struct {
		// want is the status per caller, written by hand: owner, manager (a member whose role
		// holds manage_webhooks), viewer (a member without permissions), the owner of another
		// company (404 where the path or body names an object of acme), no token, the platform
		// token.
		want  [6]int
		setup func() (path string, body any)
		// fresh: the call spends its token (sign-out), so each caller makes it with a new token of
		// its own member.
		fresh bool
	}
	cases := map[string]tc{
		"GET /v1/me":             {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/me", nil }},
		"GET /v1/events":         {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/events", nil }},
		"GET /v1/events/fields":  {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/events/fields?events=contact.created,contact.updated", nil }},
		"GET /v1/webhooks":       {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/webhooks", nil }},
		"POST /v1/webhooks":      {want: [6]int{201, 201, 403, 404, 401, 403}, setup: func() (string, any) { return "/v1/webhooks", withOAuth() }},
		"POST /v1/webhooks/test": {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) { return "/v1/webhooks/test", withOAuth() }},
		"GET /v1/webhooks/{id}":  {want: [6]int{200, 200, 200, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d", hook()), nil }},
		"PUT /v1/webhooks/{id}": {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/webhooks/%d", hook()), hookBody("put")
		}},
		"PATCH /v1/webhooks/{id}": {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/webhooks/%d", hook()), map[string]any{"active": true}
		}},
		"DELETE /v1/webhooks/{id}":             {want: [6]int{204, 204, 403, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d", hook()), nil }},
		"POST /v1/webhooks/{id}/duplicate":     {want: [6]int{201, 201, 403, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d/duplicate", hook()), nil }},
		"POST /v1/webhooks/{id}/test":          {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d/test", hook()), nil }},
		"POST /v1/webhooks/{id}/rotate-secret": {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d/rotate-secret", hook()), nil }},
		"GET /v1/webhooks/{id}/deliveries":     {want: [6]int{200, 200, 200, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d/deliveries", hook()), nil }},
		"GET /v1/webhooks/{id}/stats":          {want: [6]int{200, 200, 200, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/webhooks/%d/stats", hook()), nil }},
		"POST /v1/webhooks/{id}/deliveries/resync": {want: [6]int{202, 202, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/webhooks/%d/deliveries/resync", e.newWebhook(fmt.Sprintf("h%d", seq.Add(1)), on).ID), map[string]any{"status": "failed", "since": time.Now().Add(-time.Hour)}
		}},
		"POST /v1/webhooks/{id}/replay/preview": {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/webhooks/%d/replay/preview", e.newWebhook(fmt.Sprintf("h%d", seq.Add(1)), on).ID), map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour)}
		}},
		"POST /v1/webhooks/{id}/replay": {want: [6]int{202, 202, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/webhooks/%d/replay", e.newWebhook(fmt.Sprintf("h%d", seq.Add(1)), on).ID), map[string]any{"mode": "all", "since": time.Now().Add(-time.Hour)}
		}},
		"GET /v1/deliveries/{id}":         {want: [6]int{200, 200, 200, 404, 401, 403}, setup: func() (string, any) { return "/v1/deliveries/" + failedDelivery(), nil }},
		"POST /v1/deliveries/{id}/resync": {want: [6]int{202, 202, 403, 404, 401, 403}, setup: func() (string, any) { return "/v1/deliveries/" + failedDelivery() + "/resync", nil }},
		"GET /v1/oauth":                   {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/oauth", nil }},
		"POST /v1/oauth":                  {want: [6]int{201, 201, 403, 201, 401, 403}, setup: func() (string, any) { return "/v1/oauth", newOAuthBody() }},
		"GET /v1/oauth/{id}":              {want: [6]int{200, 200, 200, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/oauth/%d", oauth()), nil }},
		"PUT /v1/oauth/{id}":              {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/oauth/%d", oauth()), newOAuthBody() }},
		"PATCH /v1/oauth/{id}": {want: [6]int{200, 200, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/oauth/%d", oauth()), map[string]any{"scope": "x"}
		}},
		"DELETE /v1/oauth/{id}": {want: [6]int{204, 204, 403, 404, 401, 403}, setup: func() (string, any) { return fmt.Sprintf("/v1/oauth/%d", oauth()), nil }},
		"GET /v1/roles":         {want: [6]int{200, 403, 403, 200, 401, 403}, setup: func() (string, any) { return "/v1/roles", nil }},
		"POST /v1/roles": {want: [6]int{201, 403, 403, 201, 401, 403}, setup: func() (string, any) {
			return "/v1/roles", map[string]any{"name": fmt.Sprintf("r%d", seq.Add(1))}
		}},
		"PUT /v1/roles/{id}/permissions": {want: [6]int{200, 403, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/roles/%d/permissions", e.role.ID), map[string]any{"permissions": []string{"manage_webhooks"}}
		}},
		"GET /v1/members": {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/members", nil }},
		"PATCH /v1/members/{id}": {want: [6]int{200, 403, 403, 404, 401, 403}, setup: func() (string, any) {
			return fmt.Sprintf("/v1/members/%d", e.viewerM.ID), map[string]any{"role_id": nil}
		}},
		"GET /v1/tokens":  {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/tokens", nil }},
		"POST /v1/tokens": {want: [6]int{201, 201, 201, 201, 401, 403}, setup: func() (string, any) { return "/v1/tokens", map[string]any{"name": "t"} }},
		// A token of acme's viewer: the owner and the viewer may revoke it, nobody else sees it.
		"DELETE /v1/tokens/{id}": {want: [6]int{204, 404, 204, 404, 401, 403}, setup: func() (string, any) {
			_, tok, err := e.st.APITokenCreate(e.ctx, "acme", e.viewerM.ID, "spare", nil)
			require.NoError(t, err)
			return fmt.Sprintf("/v1/tokens/%d", tok.ID), nil
		}},
		"GET /v1/audit":   {want: [6]int{200, 200, 200, 200, 401, 403}, setup: func() (string, any) { return "/v1/audit", nil }},
		"POST /v1/logout": {want: [6]int{204, 204, 204, 204, 401, 403}, fresh: true, setup: func() (string, any) { return "/v1/logout", nil }},
	}
	members := map[int]struct {
		company string
		id      int64
	}{owner: {"acme", e.ownerM.ID}, manager: {"acme", e.managerM.ID}, viewer: {"acme", e.viewerM.ID}, other: {"other", e.otherM.ID}}

	callerName := [6]string{"owner", "manager", "viewer", "another company's owner", "no token", "the platform token"}
	srv := &Server{}
	seen := map[string]bool{}
	for _, rt := range srv.routes() {
		key := rt.method + " " + rt.path
		seen[key] = true
		if strings.HasPrefix(rt.path, "/v1/platform/") {
			continue // TestPlatformPermissionMatrix
		}
		c, ok := cases[key]
		require.True(t, ok, "route %s has no permission case", key)
		for who, token := range map[int]string{owner: e.owner, manager: e.manager, viewer: e.viewer, other: e.other, anonymous: "", platform: e.platform} {
			want := c.want[who]
			if m, ok := members[who]; ok && c.fresh {
				var err error
				token, _, err = e.st.APITokenCreate(e.ctx, m.company, m.id, "fresh", nil)
				require.NoError(t, err)
			}
			path, body := c.setup()
			r := e.do(rt.method, path, token, body)
			require.Equal(t, want, r.status, "%s as %s: %s", key, callerName[who], r.raw)
			if want == 403 {
				detail := r.obj(t)["detail"].(string)
				switch {
				case who == platform:
					require.Contains(t, detail, "platform token can only call /v1/platform")
				case strings.Contains(key, "/roles") || strings.HasPrefix(key, "PATCH /v1/members"):
					require.Contains(t, detail, "only the company owner")
				default:
					require.Contains(t, detail, "manage_webhooks")
				}
			}
		}
	}
	for key := range cases {
		require.True(t, seen[key], "case %s has no route", key)
	}
}

// TestPlatformPermissionMatrix calls every platform route as the platform token, the owner of a
// company (acme's, and other's) and nobody. Only the platform token
// gets through; a company token is refused with 403 even on its own company. The statuses are
// written out by hand.
func TestPlatformPermissionMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const P = "/v1/platform/companies"
	company := func() string {
		id := fmt.Sprintf("co-%d", seq.Add(1))
		_, err := e.st.CompanyCreate(e.ctx, id, "Company "+id)
		require.NoError(t, err)
		return id
	}
	member := func() (string, int64) {
		id := company()
		m, err := e.st.MemberCreate(e.ctx, store.Member{CompanyID: id, Email: fmt.Sprintf("m%d@example.test", seq.Add(1))})
		require.NoError(t, err)
		return id, m.ID
	}
	role := func() (string, string) {
		id := company()
		r, err := e.st.RoleCreate(e.ctx, id, "Role")
		require.NoError(t, err)
		return id, r.Name
	}
	type tc struct {
		setup func() (path string, body any)
		// want is the status per caller: platform, acme's owner, other's owner, no token. (An
		// unknown platform token is 401 in TestPlatformLifecycle: here its failures would trip
		// the address's hold-off.)
		want [4]int
	}
	cases := map[string]tc{
		"GET " + P: {func() (string, any) { return P, nil }, [4]int{200, 403, 403, 401}},
		"POST " + P: {func() (string, any) {
			return P, map[string]any{"name": "New", "external_id": fmt.Sprintf("new-%d", seq.Add(1))}
		}, [4]int{201, 403, 403, 401}},
		"GET " + P + "/{id}":          {func() (string, any) { return P + "/acme", nil }, [4]int{200, 403, 403, 401}},
		"PATCH " + P + "/{id}":        {func() (string, any) { return P + "/" + company(), map[string]any{"name": "Renamed"} }, [4]int{200, 403, 403, 401}},
		"POST " + P + "/{id}/disable": {func() (string, any) { return P + "/" + company() + "/disable", nil }, [4]int{200, 403, 403, 401}},
		"POST " + P + "/{id}/enable":  {func() (string, any) { return P + "/" + company() + "/enable", nil }, [4]int{200, 403, 403, 401}},
		"GET " + P + "/{id}/members":  {func() (string, any) { return P + "/acme/members", nil }, [4]int{200, 403, 403, 401}},
		"POST " + P + "/{id}/members": {func() (string, any) {
			return P + "/" + company() + "/members", map[string]any{"email": "a@example.test", "role": "owner"}
		}, [4]int{201, 403, 403, 401}},
		"DELETE " + P + "/{id}/members/{member_id}": {func() (string, any) {
			id, m := member()
			return fmt.Sprintf("%s/%s/members/%d", P, id, m), nil
		}, [4]int{204, 403, 403, 401}},
		"POST " + P + "/{id}/members/{member_id}/portal-links": {func() (string, any) {
			id, m := member()
			return fmt.Sprintf("%s/%s/members/%d/portal-links", P, id, m), nil
		}, [4]int{201, 403, 403, 401}},
		"GET " + P + "/{id}/roles": {func() (string, any) { return P + "/acme/roles", nil }, [4]int{200, 403, 403, 401}},
		"POST " + P + "/{id}/roles": {func() (string, any) {
			return P + "/" + company() + "/roles", map[string]any{"name": "Ops", "permissions": []string{"manage_webhooks"}}
		}, [4]int{201, 403, 403, 401}},
		"DELETE " + P + "/{id}/roles/{name}": {func() (string, any) {
			id, name := role()
			return P + "/" + id + "/roles/" + name, nil
		}, [4]int{204, 403, 403, 401}},
	}
	callers := [4]string{e.platform, e.owner, e.other, ""}
	srv := &Server{}
	seen := map[string]bool{}
	for _, rt := range srv.routes() {
		if rt.access != accessPlatform {
			continue
		}
		key := rt.method + " " + rt.path
		require.True(t, strings.HasPrefix(rt.path, "/v1/platform/"), "%s: platform routes live under /v1/platform", key)
		seen[key] = true
		c, ok := cases[key]
		require.True(t, ok, "platform route %s has no permission case", key)
		for who, token := range callers {
			path, body := c.setup()
			r := e.do(rt.method, path, token, body)
			require.Equal(t, c.want[who], r.status, "%s as caller %d: %s", key, who, r.raw)
			if c.want[who] == 403 {
				require.Contains(t, r.obj(t)["detail"], "needs a platform token")
			}
		}
	}
	for key := range cases {
		require.True(t, seen[key], "case %s has no route", key)
	}
}
