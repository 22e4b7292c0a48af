package webhook

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/netguard"
)

func valid() Webhook {
	return Webhook{Name: "n", URL: "https://example.com/hook", Method: MethodPost, EventKeys: []string{"contact.created"}, RawData: true}
}

func fields(err error) map[string]string {
	out := map[string]string{}
	if err == nil {
		return out
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return map[string]string{"(not a ValidationError)": err.Error()}
	}
	for _, f := range ve.Fields {
		out[f.Field] = f.Message
	}
	return out
}

func TestWebhookValidate(t *testing.T) {
	t.Parallel()
	w := valid()
	require.NoError(t, w.Validate(Rules{}))

	cases := []struct {
		mod   func(*Webhook)
		field string
		msg   string
	}{
		{func(w *Webhook) { w.Name = strings.Repeat("x", 101) }, "name", "at most 100"},
		{func(w *Webhook) { w.Name = "\xff" }, "name", "UTF-8"},
		{func(w *Webhook) { w.URL = "https://[::1]/" }, "url", "private, loopback"},
		{func(w *Webhook) { w.URL = "http://100.64.0.1/" }, "url", "private, loopback"},
		{func(w *Webhook) { w.URL = "http://[fe80::1]/" }, "url", "private, loopback"},
		{func(w *Webhook) { w.URL = "http://[::ffff:127.0.0.1]/" }, "url", "private, loopback"},
		{func(w *Webhook) { w.URL = "http://0.0.0.0/" }, "url", "private, loopback"},
		{func(w *Webhook) { w.URL = "https://example.com:99999/" }, "url", "port"},
		{func(w *Webhook) { w.Method = "OPTIONS" }, "method", "one of"},
		{func(w *Webhook) { w.Headers = []Header{{Key: "webhook-id", Value: "x"}} }, "headers[0].key", "set by walhook"},
		{func(w *Webhook) { w.Headers = []Header{{Key: "X-A", Value: "a\x00"}} }, "headers[0].value", "CR, LF or NUL"},
		{func(w *Webhook) { w.Headers = []Header{{Key: "X-A", Value: strings.Repeat("v", MaxHeaderValueLen+1)}} }, "headers[0].value", "at most"},
		{func(w *Webhook) { w.Headers = []Header{{Key: "Ünïcode", Value: "v"}} }, "headers[0].key", "valid header name"},
		{func(w *Webhook) { w.Params = []Param{{Key: "k", Path: "data.a b"}} }, "params[0].path", "dotted path"},
		{func(w *Webhook) { w.Params = []Param{{Key: "k", Path: "data." + strings.Repeat("a.", 40) + "b"}} }, "params[0].path", "dotted path"},
		{func(w *Webhook) { w.Name = "a\x00b" }, "name", "control characters"},
		{func(w *Webhook) { w.Name = "invoice\u202egnp.exe" }, "name", "bidirectional"},
		{func(w *Webhook) { w.Name = "\u200b\ufeff" }, "name", "is required"},
		{func(w *Webhook) { w.URL = "http://2130706433/" }, "url", "four dotted decimal"},
		{func(w *Webhook) { w.URL = "http://0x7f.1/" }, "url", "four dotted decimal"},
		{func(w *Webhook) { w.URL = "http://0177.0.0.01/" }, "url", "four dotted decimal"},
		{func(w *Webhook) { w.Params = []Param{{Key: "k\x00", Path: "data.a"}} }, "params[0].key", "control characters"},
		{func(w *Webhook) { w.RateLimit = ptr(0) }, "rate_limit", "from 1 to 1000"},
		{func(w *Webhook) { w.RateLimit = ptr(1001) }, "rate_limit", "from 1 to 1000"},
	}
	for _, c := range cases {
		w := valid()
		c.mod(&w)
		fe := fields(w.Validate(Rules{}))
		require.Contains(t, fe, c.field, "%+v", w)
		require.Contains(t, fe[c.field], c.msg)
	}

	// Allowed: public literals, the allow-list, every envelope field, nested and indexed paths.
	for _, u := range []string{"https://93.184.216.34/x", "http://[2606:4700::1111]:8443/x", "HTTPS://Example.COM/x?y=1#f", "https://1.example/x", "https://cafe.0x1.io/"} {
		w := valid()
		w.URL = u
		require.NoError(t, w.Validate(Rules{}), u)
	}
	w = valid()
	w.URL = "http://127.0.0.1:8080/"
	require.NoError(t, w.Validate(Rules{AllowIP: func(a netip.Addr) bool { return a.IsLoopback() }}))
	w = valid()
	w.RawData = false
	for _, f := range EnvelopeFields {
		w.Params = append(w.Params, Param{Key: f, Path: f})
	}
	w.Params = append(w.Params, Param{Key: "sku", Path: "data.items.0.sku"})
	require.NoError(t, w.Validate(Rules{}))
	for _, n := range []int{1, 50, 1000} {
		w = valid()
		w.RateLimit = ptr(n)
		require.NoError(t, w.Validate(Rules{}), n)
	}
}

func ptr[T any](v T) *T { return &v }

func TestOAuthValidate(t *testing.T) {
	t.Parallel()
	c := OAuthCredential{Name: "c", TokenURL: "https://a.example.com/t", GrantType: GrantRefreshToken, RefreshToken: "r"}
	require.NoError(t, c.Validate(Rules{}))
	c.ExtraParams = make([]KeyValue, MaxExtraParams+1)
	require.Contains(t, fields(c.Validate(Rules{})), "extra_params")
}

// Without an AllowIP rule, a literal address is judged by the relay's own guard (netguard): one
// policy at save time and at dial time, IPv6 forms that embed IPv4 included.
func TestValidateURLLiteralAddresses(t *testing.T) {
	t.Parallel()
	for host, ok := range map[string]bool{
		"8.8.8.8": true, "[2001:4860:4860::8888]": true, "[2002:808:808::1]": true, "[64:ff9b::808:808]": true,
		"10.0.0.1": false, "192.168.1.1": false, "172.16.0.1": false, "127.0.0.1": false, "[::1]": false,
		"169.254.169.254": false, "100.100.100.200": false, "[fd00::1]": false, "224.0.0.1": false,
		"[::ffff:10.0.0.1]": false, "192.0.2.1": false, "198.18.0.1": false,
		"[::7f00:1]": false, "[2002:7f00:1::1]": false, "[64:ff9b:1::7f00:1]": false, "[fec0::1]": false,
		"[2001::1]": false, "[3ffe::1]": false, "[100::1]": false, "[2001:db8::1]": false, "[2001:20::1]": false,
		"[2001:db9::5efe:7f00:1]": false,
	} {
		e := &ValidationError{}
		ValidateURL(e, "url", "https://"+host+"/in", Rules{})
		if ok {
			require.NoError(t, e.Err(), host)
		} else {
			require.Contains(t, fields(e.Err()), "url", host)
		}
	}
}

// The SSRF policy has one home, relay/netguard: a URL naming a literal address is refused at save
// time exactly when the relay would refuse to dial that address. Tricky forms, each with its
// verdict written out by hand; at dial time the refused ones are really dialled through the guard
// (so the address is the one the socket connects to, as Go presents it: an IPv4-mapped address
// is dialled as IPv4).
func TestSaveAndDialAgree(t *testing.T) {
	t.Parallel()
	g := netguard.New(nil)
	for host, public := range map[string]bool{
		// IPv4-mapped IPv6: judged by the IPv4 address.
		"[::ffff:8.8.8.8]": true, "[::ffff:127.0.0.1]": false, "[::ffff:10.1.2.3]": false,
		"[::ffff:169.254.169.254]": false, "[::ffff:100.64.0.1]": false,
		// 6to4 (2002:AABB:CCDD::): judged as itself and by the IPv4 address in it.
		"[2002:808:808::1]": true, "[2002:a00:1::1]": false, "[2002:c0a8:101::1]": false, "[2002:7f00:1::1]": false,
		// NAT64: well-known by the IPv4 address; local-use always refused.
		"[64:ff9b::808:808]": true, "[64:ff9b::a00:1]": false, "[64:ff9b::7f00:1]": false, "[64:ff9b:1::808:808]": false,
		// CGNAT 100.64/10, and just outside it.
		"100.64.0.1": false, "100.127.255.254": false, "100.63.255.255": true, "100.128.0.1": true,
		// "This network" 0.0.0.0/8.
		"0.0.0.0": false, "0.1.2.3": false,
		// Benchmarking 198.18/15 (and 2001:2::/48), and just outside it.
		"198.18.0.1": false, "198.19.255.254": false, "198.17.255.255": true, "198.20.0.1": true, "[2001:2::1]": false,
		// Multicast.
		"224.0.0.1": false, "239.255.255.250": false, "[ff02::1]": false, "[ff0e::1]": false,
		// Link-local, metadata included.
		"169.254.1.1": false, "169.254.169.254": false, "[fe80::1]": false,
		// Documentation.
		"192.0.2.1": false, "198.51.100.7": false, "203.0.113.9": false, "[2001:db8::1]": false, "[3fff::1]": false,
		// Public.
		"1.1.1.1": true, "[2606:4700::1111]": true,
	} {
		e := &ValidationError{}
		ValidateURL(e, "url", "https://"+host+"/in", Rules{})
		require.Equal(t, public, e.Err() == nil, "%s at save time: %v", host, e.Err())

		addr := host + ":443"
		if public {
			require.NoError(t, g.Control("tcp", addr, nil), "%s at dial time", host)
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := g.Dialer(10*time.Second).DialContext(ctx, "tcp", addr)
		cancel()
		if c != nil {
			_ = c.Close()
		}
		require.True(t, netguard.IsBlocked(err), "%s at dial time: %v", host, err)
	}
}
