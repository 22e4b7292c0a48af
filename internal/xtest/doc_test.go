package xtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocCommands: only the sh blocks of the part asked for, continuation lines joined, only the
// lines with a prefix asked for.
func TestDocCommands(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "doc.md")
	require.NoError(t, os.WriteFile(path, []byte("# Doc\n\n```sh\ncurl before\n```\n\n## Run\n\nThen:\n\n"+
		"```sh\ncurl -s a \\\n  -d '{}'\n# a comment\npsql -c 'SELECT 1'\nexport X=1\n```\n\n```json\ncurl in json\n```\n\n"+
		"```sh\n  curl indented\n```\n\n## Next\n\n```sh\ncurl after\n```\n"), 0o600))
	require.Equal(t, []string{"curl -s a   -d '{}'", "psql -c 'SELECT 1'", "curl indented"},
		DocCommands(t, path, "## Run", "\n## ", "curl ", "psql "))
}
