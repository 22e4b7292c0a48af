package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/oapi-codegen/nullable"

	"github.com/walhook/walhook/client"
)

// platform is the application's side of walhook's platform API (/v1/platform), through the Go
// client generated from walhook's OpenAPI document. Its token is a platform token (whp_…): it
// manages companies, members and portal links, and can never read a company's webhooks or
// secrets.
type platform struct {
	c *client.ClientWithResponses
}

func newPlatform(walhookURL, token string) (*platform, error) {
	c, err := client.NewClientWithResponses(walhookURL, client.WithBearerToken(token))
	if err != nil {
		return nil, fmt.Errorf("make walhook client: %w", err)
	}
	return &platform{c: c}, nil
}

// walhookError is an answer of walhook that is not the one asked for.
type walhookError struct {
	Op     string
	Status int
	Body   string // the problem details walhook answered
}

func (e *walhookError) Error() string {
	return fmt.Sprintf("walhook %s: %d %s", e.Op, e.Status, strings.TrimSpace(e.Body))
}

func unexpected(op string, resp *http.Response, body []byte) error {
	if len(body) > 500 {
		body = body[:500]
	}
	return &walhookError{Op: op, Status: resp.StatusCode, Body: string(body)}
}

// createCompany creates the company in walhook under the application's own id (external_id),
// and answers walhook's id of it (the same value). A company already there — the application
// stopped between creating it and recording that — is taken as it is.
func (p *platform) createCompany(ctx context.Context, externalID, name string) (string, error) {
	resp, err := p.c.PlatformCreateCompanyWithResponse(ctx, client.PlatformCompanyInput{ExternalId: externalID, Name: name})
	if err != nil {
		return "", fmt.Errorf("create walhook company: %w", err)
	}
	switch {
	case resp.JSON201 != nil:
		return resp.JSON201.Id, nil
	case resp.StatusCode() == http.StatusConflict:
		got, err := p.c.PlatformGetCompanyWithResponse(ctx, externalID)
		if err != nil {
			return "", fmt.Errorf("get walhook company: %w", err)
		}
		if got.JSON200 == nil {
			return "", unexpected("get company "+externalID, got.HTTPResponse, got.Body)
		}
		return got.JSON200.Id, nil
	default:
		return "", unexpected("create company "+externalID, resp.HTTPResponse, resp.Body)
	}
}

// addMember adds a member with a role name (owner, or a role of the company; "" for none: the
// member can only read) and answers its id; a member already there with that email is taken as
// it is.
func (p *platform) addMember(ctx context.Context, companyID, email, role string) (int64, error) {
	in := client.PlatformMemberInput{Email: email}
	if role != "" {
		in.Role = nullable.NewNullableWithValue(role)
	}
	resp, err := p.c.PlatformCreateMemberWithResponse(ctx, companyID, in)
	if err != nil {
		return 0, fmt.Errorf("add walhook member: %w", err)
	}
	switch {
	case resp.JSON201 != nil:
		return resp.JSON201.Id, nil
	case resp.StatusCode() == http.StatusConflict:
		list, err := p.c.PlatformListMembersWithResponse(ctx, companyID)
		if err != nil {
			return 0, fmt.Errorf("list walhook members: %w", err)
		}
		if list.JSON200 == nil {
			return 0, unexpected("list members of "+companyID, list.HTTPResponse, list.Body)
		}
		for _, m := range list.JSON200.Items {
			if strings.EqualFold(m.Email, email) {
				return m.Id, nil
			}
		}
		return 0, unexpected("add member to "+companyID, resp.HTTPResponse, resp.Body)
	default:
		return 0, unexpected("add member to "+companyID, resp.HTTPResponse, resp.Body)
	}
}

// portalLink mints a one-time link that signs the member in to walhook's page; the settings
// screen puts it in its iframe's src. It is short-lived and single use, so it is minted per visit.
func (p *platform) portalLink(ctx context.Context, companyID string, memberID int64) (string, error) {
	resp, err := p.c.PlatformCreatePortalLinkWithResponse(ctx, companyID, memberID)
	if err != nil {
		return "", fmt.Errorf("mint walhook portal link: %w", err)
	}
	if resp.JSON201 == nil {
		return "", unexpected("mint portal link", resp.HTTPResponse, resp.Body)
	}
	return resp.JSON201.Url, nil
}
