// Package client is a Go client of walhook's admin API (/v1), generated from admin/openapi.yaml
// by oapi-codegen (client.gen.go; `make generate` writes it, `make verify` fails when it is
// stale). A host application that provisions webhooks from its own code uses it instead of
// hand-written HTTP calls, and walhook's own API tests use it (admin/client_test.go), so a change
// to the API that the document does not describe breaks a test instead of a user.
//
// Every call carries a member's API token:
//
//	c, err := client.NewClientWithResponses("https://walhook.example.com", client.WithBearerToken(token))
//	me, err := c.GetMeWithResponse(ctx)
//	// me.JSON200 is the answer on 200, me.ApplicationproblemJSON401 the problem details of a 401
//
// The package holds only generated code and this small helper; it imports nothing of walhook.
package client

import (
	"context"
	"net/http"
)

// WithBearerToken sends token (whk_…) as the Authorization header of every request.
func WithBearerToken(token string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	})
}
