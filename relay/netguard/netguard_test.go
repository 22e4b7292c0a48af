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

func TestCheckClasses(t *testing.T) {
	t.Parallel()
	g := netguard.New(nil)
	for addr, reason := range map[string]string{
		"127.0.0.1":          "loopback",
		"127.8.9.10":         "loopback",
		"::1":                "loopback",
		"10.1.2.3":           "private (RFC 1918)",
		"172.16.0.1":         "private (RFC 1918)",
		"172.31.255.255":     "private (RFC 1918)",
		"192.168.1.1":        "private (RFC 1918)",
		"169.254.1.1":        "link-local",
		"fe80::1":            "link-local",
		"100.64.0.1":         "shared (CGNAT)",
		"fc00::1":            "unique-local (IPv6)",
		"fd12:3456::1":       "unique-local (IPv6)",
		"224.0.0.1":          "multicast",
		"ff02::1":            "multicast",
		"0.0.0.0":            "unspecified",
		"::":                 "unspecified",
		"255.255.255.255":    "broadcast",
		"169.254.169.254":    "cloud metadata",
		"fd00:ec2::254":      "cloud metadata",
		"::ffff:127.0.0.1":   "loopback",
		"::ffff:10.0.0.1":    "private (RFC 1918)",
		"64:ff9b::a9fe:a9fe": "cloud metadata",
	} {
		err := g.Check(netip.MustParseAddr(addr))
		var b *netguard.BlockedError
		require.ErrorAs(t, err, &b, addr)
		require.Equal(t, reason, b.Reason, addr)
		require.True(t, netguard.IsBlocked(err))
	}
	for _, addr := range []string{"93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"} {
		require.NoError(t, g.Check(netip.MustParseAddr(addr)), addr)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
