package webhook_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

func TestCredentialName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"Authorization": true, "proxy-authorization": true, "Cookie": true, "Set-Cookie": true,
		"X-Api-Key": true, "X-Auth-Token": true, "Api-Key": true, "apikey": true,
		"X-Client-Token": true, "X-Webhook-Secret": true, "X-Password": true, "X-Api_Key": true,
		"X-Auth-User": true, "X-Session-Id": true, "X-Credentials": true, "X-Signature": true,
		" authorization ": true,
		"Content-Type":    false, "X-Plain": false, "Accept": false, "X-Request-Id": false, "User-Agent": false,
		"X-Tenant": false, "": false,
		// OAuth extra parameter keys.
		"password": true, "client_assertion": true, "assertion": true, "api_key": true, "access_token": true,
		"audience": false, "resource": false, "username": false, "tenant": false,
	} {
		require.Equal(t, want, webhook.CredentialName(name), name)
	}
}

func TestMaskParams(t *testing.T) {
	t.Parallel()
	in := []webhook.KeyValue{
		{Key: "audience", Value: "api"},
		{Key: "tenant", Value: "marked", Secret: true},
		{Key: "password", Value: "hunter2"},
	}
	require.Equal(t, []webhook.KeyValue{
		{Key: "audience", Value: "api"},
		{Key: "tenant", Value: webhook.Mask, Secret: true},
		{Key: "password", Value: webhook.Mask},
	}, webhook.MaskParams(in))
	require.Equal(t, "hunter2", in[2].Value, "the input is left alone")
}

func TestMaskHeaders(t *testing.T) {
	t.Parallel()
	in := []webhook.Header{
		{Key: "X-Plain", Value: "plain"},
		{Key: "X-Custom", Value: "marked", Secret: true},
		{Key: "Authorization", Value: "Bearer live"},
		{Key: "x-my-token", Value: "tok"},
	}
	require.Equal(t, []webhook.Header{
		{Key: "X-Plain", Value: "plain"},
		{Key: "X-Custom", Value: "••••••", Secret: true},
		{Key: "Authorization", Value: "••••••"},
		{Key: "x-my-token", Value: "••••••"},
	}, webhook.MaskHeaders(in))
	require.Equal(t, "Bearer live", in[2].Value, "the input is not changed")
}

func TestSameDestination(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://hooks.example.com/in", "https://hooks.example.com/in", true},
		{"https://hooks.example.com/in", "HTTPS://Hooks.Example.COM/in", true},
		{"https://hooks.example.com/in", "https://hooks.example.com:443/in", true},
		{"http://hooks.example.com/in", "http://hooks.example.com:80/in", true},
		{"https://hooks.example.com", "https://hooks.example.com/", true},
		{"https://hooks.example.com/in", "https://hooks.example.com/in#frag", true},
		{"https://hooks.example.com/in", "https://evil.example.com/in", false},
		{"https://hooks.example.com/in", "http://hooks.example.com/in", false},
		{"https://hooks.example.com/in", "https://hooks.example.com:8443/in", false},
		{"https://hooks.slack.com/services/T1/B1/x", "https://hooks.slack.com/services/T2/B2/y", false},
		{"https://hooks.example.com/in", "https://hooks.example.com/In", false},
		{"https://hooks.example.com/in?a=1", "https://hooks.example.com/in?a=2", false},
		{"https://hooks.example.com/in", "https://hooks.example.com/in?", false},
		{"https://hooks.example.com/in", "https://hooks.example.com.evil.test/in", false},
		{"https://hooks.example.com/in", "https://user@hooks.example.com/in", true},
		{"https://hooks.example.com/in", "::not a url", false},
		{"", "", true},
		{"", "https://hooks.example.com/in", false},
	} {
		require.Equal(t, c.same, webhook.SameDestination(c.a, c.b), "%q vs %q", c.a, c.b)
		require.Equal(t, c.same, webhook.SameDestination(c.b, c.a), "%q vs %q", c.b, c.a)
	}
}

func FuzzSameDestination(f *testing.F) {
	f.Add("https://hooks.example.com/in", "HTTPS://hooks.example.com:443/in")
	f.Add("http://[::1]:80/a?b", "http://[::1]/a?b")
	f.Fuzz(func(t *testing.T, a, b string) {
		if webhook.SameDestination(a, b) != webhook.SameDestination(b, a) {
			t.Fatalf("not symmetric: %q %q", a, b)
		}
		if !webhook.SameDestination(a, a) {
			t.Fatalf("not reflexive: %q", a)
		}
	})
}
