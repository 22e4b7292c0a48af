package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/oapi-codegen/nullable"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/client"
	"github.com/walhook/walhook/relay/webhook"
)

// These API tests go through the generated Go client (package client, from openapi.yaml) against
// the real server: an answer the document does not describe (a field renamed, a status or
// content type missing) decodes to nothing here and fails the test, so the client and the
// document stay true to the server.

// apiClient is the generated client with one member's token.
func (e *env) apiClient(token string) *client.ClientWithResponses {
	e.t.Helper()
	opts := []client.ClientOption{client.WithHTTPClient(e.srv.Client())}
	if token != "" {
		opts = append(opts, client.WithBearerToken(token))
	}
	c, err := client.NewClientWithResponses(e.srv.URL, opts...)
	require.NoError(e.t, err)
	return c
}

func some[T any](v T) *T { return &v }

// fields is a problem's field errors as field → message.
func fields(p *client.Problem) map[string]string {
	out := map[string]string{}
	if p != nil && p.Errors != nil {
		for _, fe := range *p.Errors {
			out[fe.Field] = fe.Message
		}
	}
	return out
}

func TestMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r, err := e.apiClient(e.manager).GetMeWithResponse(e.ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode())
	me := r.JSON200
	require.Equal(t, "acme", *me.Company.Id)
	require.Equal(t, "dev@acme.test", *me.Member.Email)
	require.Equal(t, "Developers", *me.Role.MustGet().Name)
	require.Equal(t, []client.Permission{"manage_webhooks"}, *me.Permissions)

	r, err = e.apiClient(e.viewer).GetMeWithResponse(e.ctx)
	require.NoError(t, err)
	require.True(t, r.JSON200.Role.IsNull(), "a member without a role: role is null")
	require.Equal(t, []client.Permission{}, *r.JSON200.Permissions)
	r, err = e.apiClient(e.owner).GetMeWithResponse(e.ctx)
	require.NoError(t, err)
	require.Equal(t, []client.Permission{"manage_webhooks"}, *r.JSON200.Permissions)
	require.True(t, *r.JSON200.Member.IsOwner)

	r, err = e.apiClient("").GetMeWithResponse(e.ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode())
	require.Contains(t, r.HTTPResponse.Header.Get("WWW-Authenticate"), "Bearer")
	require.NotNil(t, r.ApplicationproblemJSON401, "a 401 is problem details")
	require.Equal(t, 401, r.ApplicationproblemJSON401.Status)
	r, err = e.apiClient("whk_nope").GetMeWithResponse(e.ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, r.StatusCode())

	ev, err := e.apiClient(e.viewer).ListEventsWithResponse(e.ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ev.StatusCode())
	items := *ev.JSON200.Items
	require.Len(t, items, 2)
	require.Equal(t, "contact.created", *items[0].Key)
	require.Equal(t, "A contact was created", *items[0].Description)
	require.Equal(t, "Ada", (*items[0].Sample)["name"])
	require.True(t, ev.JSON200.NextCursor.IsNull(), "next_cursor is null on the last page")
}

func TestOAuthLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	viewer, manager, owner := e.apiClient(e.viewer), e.apiClient(e.manager), e.apiClient(e.owner)

	l, err := viewer.ListOAuthWithResponse(e.ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, l.StatusCode())
	require.Empty(t, *l.JSON200.Items)

	extra := []client.ExtraParam{{Key: "audience", Value: "api"}, {Key: "assertion", Value: "jwt-assertion-value", Secret: some(true)}}
	c, err := manager.CreateOAuthWithResponse(e.ctx, client.OAuthInput{
		Name: some("CRM"), TokenUrl: some("https://auth.example.com/token"), GrantType: some(client.OAuthInputGrantType("authorization_code")),
		ClientId: some("cid"), ClientSecret: some("s3cret-value"), Code: some("code-value"), Scope: some("contacts"), ExtraParams: &extra,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, c.StatusCode(), "%s", c.Body)
	cred := c.JSON201
	id := *cred.Id
	require.Equal(t, client.OAuthCredentialMethod("POST"), *cred.Method, "method defaults to POST")
	require.Equal(t, webhook.Mask, *cred.ClientSecret)
	require.True(t, *cred.ClientSecretSet)
	require.Equal(t, webhook.Mask, *cred.Code)
	require.Equal(t, "", *cred.RefreshToken)
	require.False(t, *cred.RefreshTokenSet)
	require.Equal(t, "audience", (*cred.ExtraParams)[0].Key)
	require.Equal(t, "api", (*cred.ExtraParams)[0].Value)
	require.Equal(t, client.ExtraParam{Key: "assertion", Value: webhook.Mask, Secret: some(true)}, (*cred.ExtraParams)[1], "a secret parameter reads back masked")

	l, err = viewer.ListOAuthWithResponse(e.ctx)
	require.NoError(t, err)
	require.Len(t, *l.JSON200.Items, 1)
	require.NotContains(t, string(l.Body), "s3cret-value")
	require.NotContains(t, string(l.Body), "jwt-assertion-value")
	require.NotContains(t, string(l.Body), "code-value")

	// A viewer may read but not write.
	forbidden, err := viewer.PatchOAuthWithResponse(e.ctx, id, client.OAuthInput{Name: some("mine")})
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, forbidden.StatusCode())
	require.NotNil(t, forbidden.ApplicationproblemJSON403)

	// PATCH without secrets keeps them; PUT with the mask keeps them; a new value replaces.
	p, err := manager.PatchOAuthWithResponse(e.ctx, id, client.OAuthInput{Name: some("CRM 2"), Method: some(client.OAuthInputMethod("GET"))})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, p.StatusCode(), "%s", p.Body)
	require.Equal(t, "CRM 2", *p.JSON200.Name)
	stored, err := e.st.OAuthCredentialGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, "CRM 2", stored.Name)
	require.Equal(t, "GET", stored.Method)
	require.Equal(t, "s3cret-value", stored.ClientSecret)
	require.Equal(t, "code-value", stored.Code)
	require.Equal(t, []webhook.KeyValue{{Key: "audience", Value: "api"}, {Key: "assertion", Value: "jwt-assertion-value", Secret: true}}, stored.ExtraParams, "PATCH keeps the hidden parameter")
	put, err := owner.ReplaceOAuthWithResponse(e.ctx, id, client.OAuthInput{
		Name: some("CRM 3"), TokenUrl: some("https://AUTH.example.com:443/token"), GrantType: some(client.OAuthInputGrantType("authorization_code")),
		ClientId: some("cid"), ClientSecret: some(webhook.Mask), Code: some("new-code"),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, put.StatusCode(), "%s", put.Body)
	stored, err = e.st.OAuthCredentialGet(e.ctx, "acme", id)
	require.NoError(t, err)
	require.Equal(t, "s3cret-value", stored.ClientSecret)
	require.Equal(t, "new-code", stored.Code)
	require.Equal(t, "POST", stored.Method, "PUT replaces: method back to its default")
	require.Empty(t, stored.ExtraParams)

	// A new token URL without the secrets again: 422 naming each, nothing stored.
	moved, err := manager.PatchOAuthWithResponse(e.ctx, id, client.OAuthInput{TokenUrl: some("https://evil.example.net/token")})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, moved.StatusCode(), "%s", moved.Body)
	require.Contains(t, fields(moved.ApplicationproblemJSON422), "client_secret")

	// A duplicate name is a conflict on the name field.
	dup, err := manager.CreateOAuthWithResponse(e.ctx, client.OAuthInput{Name: some("CRM 3"), TokenUrl: some("https://a.example.com/t"),
		GrantType: some(client.OAuthInputGrantType("client_credentials")), ClientId: some("x"), ClientSecret: some("y")})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, dup.StatusCode())
	require.Contains(t, fields(dup.ApplicationproblemJSON409), "name")

	// In use: 409 naming the webhook; detached (oauth_id: null, an explicit null): deleted.
	w := e.newWebhook("Uses CRM", func(w *webhook.Webhook) { w.OAuthID = &id })
	del, err := manager.DeleteOAuthWithResponse(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, del.StatusCode())
	require.Contains(t, *del.ApplicationproblemJSON409.Detail, `"Uses CRM"`)
	require.Equal(t, w.ID, *(*del.ApplicationproblemJSON409.Webhooks)[0].Id)
	detach, err := manager.PatchWebhookWithResponse(e.ctx, w.ID, client.WebhookPatch{OauthId: nullable.NewNullNullable[int64]()})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, detach.StatusCode(), "%s", detach.Body)
	require.True(t, detach.JSON200.OauthId.IsNull(), "%s", detach.Body)
	del, err = manager.DeleteOAuthWithResponse(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, del.StatusCode())
	gone, err := manager.GetOAuthWithResponse(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, gone.StatusCode())
	require.True(t, strings.HasPrefix(gone.HTTPResponse.Header.Get("Content-Type"), "application/problem+json"))

	audit, err := viewer.ListAuditWithResponse(e.ctx, &client.ListAuditParams{
		ObjectType: some(client.ListAuditParamsObjectType("oauth_credential")), ObjectId: &id})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, audit.StatusCode(), "%s", audit.Body)
	require.Len(t, *audit.JSON200.Items, 4) // created, updated twice, deleted
}
