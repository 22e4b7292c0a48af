package netguard_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/netguard"
)

// TestCheckClasses lists every class the guard refuses, with the reason it gives, and global
// addresses (also inside the IPv6 forms that embed IPv4) that pass.
func TestCheckClasses(t *testing.T) {
	t.Parallel()
	g := netguard.New(nil)
	for _, c := range []struct{ addr, reason string }{
		// IPv4.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified (this network)"},
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"10.1.2.3", "private (RFC 1918)"},
		{"172.16.0.1", "private (RFC 1918)"},
		{"172.31.255.255", "private (RFC 1918)"},
		{"192.168.1.1", "private (RFC 1918)"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"169.254.1.1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.170.2", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"192.0.0.8", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"192.88.99.1", "6to4 relay anycast (deprecated)"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},

		// IPv6 special ranges.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fc00::1", "unique-local (IPv6)"},
		{"fd12:3456::1", "unique-local (IPv6)"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fec0::1", "site-local (deprecated)"},
		{"feff::1", "site-local (deprecated)"},
		{"ff02::1", "multicast"},
		{"100::1", "discard"},
		{"100:0:0:1::1", "dummy prefix"},
		{"2001:2::1", "benchmarking"},
		{"2001:10::1", "ORCHID (deprecated)"},
		{"2001:20::1", "ORCHIDv2"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"3ffe:b00::1", "6bone (returned)"},
		{"5f00::1", "segment routing (SRv6 SID)"},
		{"2001:100::1", "IETF protocol assignment"},
		{"4000::1", "reserved (IPv6 outside 2000::/3)"},
		{"1::1", "reserved (IPv6 outside 2000::/3)"},
		{"e000::1", "reserved (IPv6 outside 2000::/3)"},

		// IPv6 forms that embed an IPv4 address.
		{"::ffff:127.0.0.1", "loopback"}, // IPv4-mapped
		{"::ffff:10.0.0.1", "private (RFC 1918)"},
		{"::ffff:a9fe:a9fe", "cloud metadata"},
		{"::7f00:1", "IPv4-compatible (deprecated)"}, // IPv4-compatible (::127.0.0.1)
		{"::8.8.8.8", "IPv4-compatible (deprecated)"},
		{"64:ff9b::7f00:1", "NAT64-embedded loopback"}, // well-known NAT64
		{"64:ff9b::a9fe:a9fe", "NAT64-embedded cloud metadata"},
		{"64:ff9b::10.0.0.1", "NAT64-embedded private (RFC 1918)"},
		{"64:ff9b:1::7f00:1", "local-use NAT64"},
		{"64:ff9b:1:ffff::808:808", "local-use NAT64"},
		{"2002:7f00:1::1", "6to4-embedded loopback"},
		{"2002:a9fe:a9fe::1", "6to4-embedded cloud metadata"},
		{"2002:c0a8:101::1", "6to4-embedded private (RFC 1918)"},
		{"2002::1", "6to4-embedded unspecified"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"2001::1", "Teredo"},
		{"2001:470:1f0b::5efe:7f00:1", "ISATAP-embedded loopback"},
		{"2001:470:1f0b::200:5efe:a00:1", "ISATAP-embedded private (RFC 1918)"},
		{"fe80::5efe:a00:1", "link-local"},
	} {
		err := g.Check(netip.MustParseAddr(c.addr))
		var b *netguard.BlockedError
		require.ErrorAs(t, err, &b, c.addr)
		require.Equal(t, c.reason, b.Reason, c.addr)
		require.True(t, netguard.IsBlocked(err))
	}
	for _, addr := range []string{
		"93.184.216.34", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.0.3.1", "198.20.0.1",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860:4860::8888",
		"::ffff:8.8.8.8",                 // IPv4-mapped global
		"64:ff9b::808:808",               // NAT64 of a global address
		"2002:808:808::1",                // 6to4 of a global address
		"2001:470:1f0b::5efe:808:808",    // ISATAP of a global address
		"2001:470:1f0b:0:100:5efe:a00:1", // 0100:5efe is not an ISATAP interface id
		"2600:1f18::1",                   // AWS global
	} {
		require.NoError(t, g.Check(netip.MustParseAddr(addr)), addr)
	}
}

func TestEmbedded(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"::ffff:127.0.0.1":            "IPv4-mapped 127.0.0.1",
		"64:ff9b::c000:221":           "NAT64 192.0.2.33",
		"2002:c000:221::1":            "6to4 192.0.2.33",
		"2001:db8::5efe:c000:221":     "ISATAP 192.0.2.33",
		"2001:db8::200:5efe:c000:221": "ISATAP 192.0.2.33",
	} {
		v4, form, ok := netguard.Embedded(netip.MustParseAddr(addr))
		require.True(t, ok, addr)
		require.Equal(t, want, form+" "+v4.String(), addr)
	}
	for _, addr := range []string{"192.0.2.33", "2001:db8::1", "::7f00:1", "64:ff9b:1::7f00:1", "2001:db8::100:5efe:c000:221"} {
		_, _, ok := netguard.Embedded(netip.MustParseAddr(addr))
		require.False(t, ok, addr)
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	allow, err := netguard.ParseCIDRs("127.0.0.0/8, ::1/128,10.9.9.9")
	require.NoError(t, err)
	g := netguard.New(allow)
	require.NoError(t, g.Check(netip.MustParseAddr("127.0.0.1")))
	require.NoError(t, g.Check(netip.MustParseAddr("::1")))
	require.NoError(t, g.Check(netip.MustParseAddr("10.9.9.9")))
	require.Error(t, g.Check(netip.MustParseAddr("10.9.9.10")))
	require.Error(t, g.Check(netip.MustParseAddr("169.254.169.254")))
	// An embedded allowed address is allowed too (the tests' loopback receivers are reached
	// whichever way they are written).
	require.NoError(t, g.Check(netip.MustParseAddr("::ffff:127.0.0.1")))
	require.Error(t, g.Check(netip.MustParseAddr("2002:a00:1::1")))
	_, err = netguard.ParseCIDRs("10.0.0.0/33")
	require.Error(t, err)
}

// A hostname that resolves to loopback is refused at dial time, on the resolved address.
func TestDialRefusesResolvedLoopback(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	client := &http.Client{Transport: &http.Transport{DialContext: netguard.New(nil).DialContext(5 * time.Second)}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost:"+port+"/", nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	require.True(t, netguard.IsBlocked(err), "error: %v", err)
	require.Contains(t, err.Error(), "loopback")

	allow, err := netguard.ParseCIDRs("127.0.0.0/8,::1/128")
	require.NoError(t, err)
	client = &http.Client{Transport: &http.Transport{DialContext: netguard.New(allow).DialContext(5 * time.Second)}}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost:"+port+"/", nil)
	require.NoError(t, err)
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// FuzzCheck: Check never panics, and every address whose embedded IPv4 address the guard refuses
// is refused too, whatever the IPv6 form around it.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "::7f00:1", "2002:7f00:1::1", "64:ff9b::7f00:1",
		"64:ff9b:1::7f00:1", "fec0::1", "2001::1", "2001:db8::5efe:a00:1", "8.8.8.8", "2606:4700::1111"} {
		a := netip.MustParseAddr(s).As16()
		f.Add(a[:])
	}
	g := netguard.New(nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) != 16 && len(raw) != 4 {
			return
		}
		addr, _ := netip.AddrFromSlice(raw)
		err := g.Check(addr)
		if err != nil && !netguard.IsBlocked(err) {
			t.Fatalf("Check(%s): unexpected error type %T", addr, err)
		}
		if v4, _, ok := netguard.Embedded(addr); ok && g.Check(v4) != nil && err == nil {
			t.Fatalf("Check(%s) passed, but its embedded %s is refused", addr, v4)
		}
		if err == nil && addr.Is6() && !addr.Is4In6() {
			if v4, form, ok := netguard.Embedded(addr); (!ok || form != "NAT64") && !netip.MustParsePrefix("2000::/3").Contains(addr) {
				t.Fatalf("Check(%s) passed outside 2000::/3 (embedded %s %v)", addr, v4, ok)
			}
		}
	})
}
