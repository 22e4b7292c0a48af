package store_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// testBundle is what setup gives a test besides its store.
type testBundle struct {
	pool   *pgxpool.Pool           // the store's pool, to read and write rows as they are stored
	owners map[string]store.Member // the owner of each company setup made, by company id
}

// setup gives a test a store on a fresh database (xtest.Store) with the catalog contactCreated
// and, for each of companies, the company and its owner (seed).
func setup(t *testing.T, companies ...string) (*store.Store, *testBundle) {
	t.Helper()
	return setupCatalog(t, contactCreated(), companies...)
}

// setupCatalog is setup with catalog as the event types instead of contactCreated.
func setupCatalog(t *testing.T, catalog []webhook.EventType, companies ...string) (*store.Store, *testBundle) {
	t.Helper()
	s, pool := xtest.Store(t)
	return s, &testBundle{pool: pool, owners: seed(t, s, catalog, companies...)}
}

// contactCreated is the catalog most tests need: one event type, contact.created, captured from
// the inserts into the contacts table.
func contactCreated() []webhook.EventType {
	return []webhook.EventType{
		{Key: "contact.created", Source: webhook.SourceTable, SourceTable: "contacts", TenantColumn: "company_id", Operations: []string{"insert"}},
	}
}

// seed syncs catalog into the store's database and creates each of companies, named "Company
// <id>", with its owner, owner@<id>.test; it returns the owners by company id.
func seed(t *testing.T, s *store.Store, catalog []webhook.EventType, companies ...string) map[string]store.Member {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.EventTypeSync(ctx, catalog))
	owners := make(map[string]store.Member, len(companies))
	for _, id := range companies {
		_, err := s.CompanyCreate(ctx, id, "Company "+id)
		require.NoError(t, err)
		owners[id], err = s.MemberCreate(ctx, store.Member{CompanyID: id, Email: "owner@" + id + ".test", IsOwner: true})
		require.NoError(t, err)
	}
	return owners
}

// seedWebhook creates an inactive contact.created webhook of company, named name, to
// https://<company>.example/hook, with headers.
func seedWebhook(t *testing.T, s *store.Store, company, name string, headers ...webhook.Header) webhook.Webhook {
	t.Helper()
	w, err := s.WebhookCreate(t.Context(), webhook.Webhook{
		CompanyID: company, Name: name, URL: "https://" + company + ".example/hook", Method: webhook.MethodPost,
		EventKeys: []string{"contact.created"}, RawData: true, Headers: headers,
	}, nil)
	require.NoError(t, err)
	return w
}

// seedCredential creates an authorization-code OAuth credential of company, named name, with
// secret as its client secret, and code and refresh token code-<name> and refresh-<name>.
func seedCredential(t *testing.T, s *store.Store, company, name, secret string) webhook.OAuthCredential {
	t.Helper()
	c, err := s.OAuthCredentialCreate(t.Context(), webhook.OAuthCredential{
		CompanyID: company, Name: name, TokenURL: "https://" + company + ".example/token",
		GrantType: webhook.GrantAuthorizationCode, ClientID: "cid", ClientSecret: secret,
		Code: "code-" + name, RefreshToken: "refresh-" + name,
	}, nil)
	require.NoError(t, err)
	return c
}
