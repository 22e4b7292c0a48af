package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the flag definitions")

// TestConfigurationDoc keeps docs/configuration.md equal to what the flags say.
func TestConfigurationDoc(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	writeConfigReference(&b)
	path := filepath.Join("..", "..", "docs", "configuration.md")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	have, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, b.String(), string(have), "docs/configuration.md is stale: run go test ./cmd/walhook -run TestConfigurationDoc -update")
}
