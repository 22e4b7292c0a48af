package store

import (
	"context"
	"strings"

	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
	"github.com/walhook/walhook/relay/webhook"
)

func (s *Store) oauthFrom(r dbsqlc.WalhookOauthCredential) (webhook.OAuthCredential, error) {
	c := webhook.OAuthCredential{
		ID: r.ID, CompanyID: r.CompanyID, Name: r.Name, TokenURL: r.TokenUrl, Method: r.Method,
		GrantType: webhook.GrantType(r.GrantType), ClientID: r.ClientID, Scope: r.Scope,
		TokenExpiresAt: r.TokenExpiresAt, CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	// A secret that does not open reads as empty, with SealError saying why (see webhookFrom).
	var sealErrs []string
	extra, sealErr, err := s.joinHidden(colExtraParams(), r.CompanyID, r.ID, r.ExtraParams, r.ExtraParamsEnc, "the hidden extra parameter values")
	if err != nil {
		return c, err
	}
	c.ExtraParams = entriesAs[webhook.KeyValue](extra)
	if sealErr != "" {
		sealErrs = append(sealErrs, sealErr)
	}
	for _, f := range []struct {
		dst    *string
		sealed []byte
		col    sealedColumn
		what   string
	}{
		{&c.ClientSecret, r.ClientSecretEnc, colClientSecret(), "the client secret"},
		{&c.Code, r.CodeEnc, colCode(), "the authorization code"},
		{&c.RefreshToken, r.RefreshTokenEnc, colRefreshToken(), "the refresh token"},
		{&c.AccessToken, r.AccessTokenEnc, colAccessToken(), "the cached access token"},
	} {
		v, err := s.keys.OpenString(f.sealed, f.col.bind(r.CompanyID, r.ID))
		if err != nil {
			sealErrs = append(sealErrs, sealError(f.what, err))
			continue
		}
		*f.dst = v
	}
	c.SealError = strings.Join(sealErrs, "; ")
	return c, nil
}

// OAuthCredentialCreate stores a credential, sealing its secrets.
func (s *Store) OAuthCredentialCreate(ctx context.Context, c webhook.OAuthCredential, actor *int64) (webhook.OAuthCredential, error) {
	if c.Method == "" {
		c.Method = "POST"
	}
	// The id first, from the sequence: the secrets are sealed bound to the row.
	id, err := s.q.OAuthCredentialNextID(ctx)
	if err != nil {
		return webhook.OAuthCredential{}, mapErr(err)
	}
	extra, extraEnc, err := s.splitHidden(colExtraParams(), c.CompanyID, id, entriesOf(c.ExtraParams), paramHidden)
	if err != nil {
		return webhook.OAuthCredential{}, err
	}
	r, err := s.q.OAuthCredentialCreate(ctx, dbsqlc.OAuthCredentialCreateParams{
		ID: id, CompanyID: c.CompanyID, Name: c.Name, TokenUrl: c.TokenURL, Method: c.Method,
		GrantType: string(c.GrantType), ClientID: c.ClientID,
		ClientSecretEnc: s.keys.SealString(c.ClientSecret, colClientSecret().bind(c.CompanyID, id)),
		CodeEnc:         s.keys.SealString(c.Code, colCode().bind(c.CompanyID, id)),
		Scope:           c.Scope, ExtraParams: extra, ExtraParamsEnc: extraEnc,
		RefreshTokenEnc: s.keys.SealString(c.RefreshToken, colRefreshToken().bind(c.CompanyID, id)),
		CreatedBy:       actor,
	})
	if err != nil {
		return webhook.OAuthCredential{}, mapErr(err)
	}
	return s.oauthFrom(r)
}

// OAuthCredentialGet returns a credential of a company, secrets opened.
func (s *Store) OAuthCredentialGet(ctx context.Context, companyID string, id int64) (webhook.OAuthCredential, error) {
	r, err := s.q.OAuthCredentialGet(ctx, dbsqlc.OAuthCredentialGetParams{CompanyID: companyID, ID: id})
	if err != nil {
		return webhook.OAuthCredential{}, mapErr(err)
	}
	return s.oauthFrom(r)
}

// OAuthCredentialList lists a company's credentials, secrets opened.
func (s *Store) OAuthCredentialList(ctx context.Context, companyID string) ([]webhook.OAuthCredential, error) {
	rows, err := s.q.OAuthCredentialList(ctx, companyID)
	return rowsOpened(rows, err, s.oauthFrom)
}

// OAuthCredentialDelete deletes a credential; one still used by a webhook is ErrConflict.
func (s *Store) OAuthCredentialDelete(ctx context.Context, companyID string, id int64) error {
	return affected(s.q.OAuthCredentialDelete(ctx, dbsqlc.OAuthCredentialDeleteParams{CompanyID: companyID, ID: id}))
}

// OAuthCredentialUpdate replaces a credential's fields and secrets (the caller passes the stored
// secrets to keep them) and drops the cached access token.
func (s *Store) OAuthCredentialUpdate(ctx context.Context, c webhook.OAuthCredential, actor *int64) (webhook.OAuthCredential, error) {
	extra, extraEnc, err := s.splitHidden(colExtraParams(), c.CompanyID, c.ID, entriesOf(c.ExtraParams), paramHidden)
	if err != nil {
		return webhook.OAuthCredential{}, err
	}
	if c.Method == "" {
		c.Method = "POST"
	}
	r, err := s.q.OAuthCredentialUpdate(ctx, dbsqlc.OAuthCredentialUpdateParams{
		CompanyID: c.CompanyID, ID: c.ID, Name: c.Name, TokenUrl: c.TokenURL, Method: c.Method,
		GrantType: string(c.GrantType), ClientID: c.ClientID,
		ClientSecretEnc: s.keys.SealString(c.ClientSecret, colClientSecret().bind(c.CompanyID, c.ID)),
		CodeEnc:         s.keys.SealString(c.Code, colCode().bind(c.CompanyID, c.ID)),
		Scope:           c.Scope, ExtraParams: extra, ExtraParamsEnc: extraEnc,
		RefreshTokenEnc: s.keys.SealString(c.RefreshToken, colRefreshToken().bind(c.CompanyID, c.ID)),
		UpdatedBy:       actor,
	})
	if err != nil {
		return webhook.OAuthCredential{}, mapErr(err)
	}
	return s.oauthFrom(r)
}
