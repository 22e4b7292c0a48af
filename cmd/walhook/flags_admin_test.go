package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFrameAncestorsFlag: --frame-ancestors and WALHOOK_FRAME_ANCESTORS reach the admin
// configuration normalised, and a bad entry stops the start with a message naming it.
func TestFrameAncestorsFlag(t *testing.T) {
	parse := func(args ...string) (serveConfig, error) {
		var cfg serveConfig
		fs := newFlagSet("serve")
		fs.SetOutput(io.Discard)
		cfg.register(fs)
		return cfg, parseFlags(fs, args, "")
	}
	cfg, err := parse()
	require.NoError(t, err)
	require.Empty(t, cfg.admin.FrameAncestors, "default: no frame ancestors")

	cfg, err = parse("--frame-ancestors", "https://App.example.com/, http://localhost:3000")
	require.NoError(t, err)
	require.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, cfg.admin.FrameAncestors)

	t.Setenv("WALHOOK_FRAME_ANCESTORS", "https://app.example.com,https://*.example.com")
	_, err = parse()
	require.ErrorContains(t, err, `WALHOOK_FRAME_ANCESTORS: entry 2 "https://*.example.com": wildcards are not allowed`)
}
