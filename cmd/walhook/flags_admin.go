package main

import (
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/walhook/walhook/admin"
	"github.com/walhook/walhook/relay/webhook"
)

// defaultTokenLifetime is the longest an API token lives unless the operator says otherwise.
const defaultTokenLifetime = 90 * 24 * time.Hour

// registerAdmin registers the admin API's limits (package admin documents each: quota.go,
// throttle.go, Config.TokenMaxLifetime).
func registerAdmin(fs *flag.FlagSet, c *admin.Config) {
	fs.IntVar(&c.Quotas.Webhooks, "quota-webhooks", admin.DefaultWebhookQuota, "webhooks per company at most")
	fs.IntVar(&c.Quotas.OAuthCredentials, "quota-oauth-credentials", admin.DefaultOAuthQuota, "OAuth credentials per company at most")
	fs.IntVar(&c.Quotas.APITokens, "quota-api-tokens", admin.DefaultTokenQuota, "active (unrevoked, unexpired) API tokens per company at most; POST /v1/tokens is refused past it")
	fs.IntVar(&c.Quotas.HeadersPerWebhook, "quota-headers-per-webhook", webhook.MaxHeaders, "custom headers per webhook at most (50 at most)")
	fs.IntVar(&c.Quotas.ParamsPerWebhook, "quota-params-per-webhook", webhook.MaxParams, "selected parameters per webhook at most (100 at most)")
	durationVar(fs, &c.TokenMaxLifetime, "token-max-lifetime", defaultTokenLifetime, "longest lifetime of an API token made through the API (and the lifetime of one asked for without expiry); 0 lets tokens never expire")
	fs.IntVar(&c.AuthFailures.Limit, "auth-failure-limit", 10, "failed sign-ins and unknown tokens from one address before it is held off (429), for 1s doubling per further failure")
	durationVar(fs, &c.AuthFailures.Window, "auth-failure-window", 10*time.Minute, "how long an address's failures are remembered after its last one or its last hold-off")
	durationVar(fs, &c.AuthFailures.MaxDelay, "auth-failure-max-delay", 15*time.Minute, "longest hold-off of an address")
	registerFrameAncestors(fs, &c.FrameAncestors)
	registerPortal(fs, c)
	fs.Var((*cidrFlag)(&c.AuthFailures.TrustedProxies), "trusted-proxies", "reverse-proxy networks whose X-Forwarded-For names the client, comma-separated; default none (the header is ignored)")
}

// registerPortal registers --public-url and --portal-link-ttl (admin.Config documents them),
// shared by serve/admin and dev.
func registerPortal(fs *flag.FlagSet, c *admin.Config) {
	fs.Var((*publicURLFlag)(&c.PublicURL), "public-url", "where browsers reach the web page (https://walhook.example.com): the start of portal links the platform API mints; default http:// and the listen address")
	durationVar(fs, &c.PortalLinkTTL, "portal-link-ttl", 5*time.Minute, "how long a portal link (a one-time sign-in code minted by the platform API) stays valid")
}

// publicURLFlag is an absolute http(s) URL with a host and no query or fragment.
type publicURLFlag string

func (f *publicURLFlag) String() string {
	if f == nil {
		return ""
	}
	return string(*f)
}

func (f *publicURLFlag) Set(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want an absolute http or https URL with a host, without user, query or fragment: %q", s)
	}
	*f = publicURLFlag(strings.TrimRight(s, "/"))
	return nil
}

// frameAncestorsUsage is the --frame-ancestors help, shared by serve/admin and dev.
const frameAncestorsUsage = "origins of the host application that may show the web page in an iframe, comma-separated " +
	"scheme://host[:port] (https; http only for localhost/loopback; no wildcards or paths); default none: the page refuses every frame"

// registerFrameAncestors registers --frame-ancestors (admin.ParseFrameAncestors has the rules).
func registerFrameAncestors(fs *flag.FlagSet, p *[]string) {
	fs.Var((*originsFlag)(p), "frame-ancestors", frameAncestorsUsage)
}

// originsFlag is a comma-separated list of origins, checked by admin.ParseFrameAncestors.
type originsFlag []string

func (f *originsFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *originsFlag) Set(s string) error {
	o, err := admin.ParseFrameAncestors(s)
	if err != nil {
		return err
	}
	*f = o
	return nil
}
