package deploy_test

import (
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// root is the repository root, relative to this package's directory.
const root = ".."

// buildBinary builds walhook the way the image does (static, CGO_ENABLED=0; xtest.Walhook) and
// checks it really is static: no program interpreter, no shared libraries.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := xtest.Walhook(t)

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary must be static (no ELF interpreter)")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "the binary must not need shared libraries")
	return bin
}

// cli is what the binary says about itself: its subcommands, and each one's flags with their
// environment variables.
type cli struct {
	commands map[string]bool
	flags    map[string]map[string]string // command → flag name → WALHOOK_ variable
}

var (
	commandLine = regexp.MustCompile(`^  ([a-z][a-z-]*)\s+\S`)
	flagLine    = regexp.MustCompile(`^  --([a-z0-9-]+)  \[(WALHOOK_[A-Z0-9_]+)\]$`)
)

// describe runs `walhook help` and `walhook <command> --help` for every command.
func describe(t *testing.T) cli {
	t.Helper()
	code, out := xtest.Run(t, nil, "help")
	require.Zero(t, code, out)
	c := cli{commands: map[string]bool{}, flags: map[string]map[string]string{}}
	inCommands := false
	for line := range strings.SplitSeq(out, "\n") {
		switch {
		case strings.HasPrefix(line, "Commands:"):
			inCommands = true
		case inCommands && line == "":
			inCommands = false
		case inCommands:
			if m := commandLine.FindStringSubmatch(line); m != nil {
				c.commands[m[1]] = true
			}
		}
	}
	require.True(t, c.commands["serve"], "walhook help lists serve:\n%s", out)
	for name := range c.commands {
		// --help exits 0 with the flags on stderr; commands without flags print nothing useful.
		_, help := xtest.Run(t, nil, name, "--help")
		flags := map[string]string{}
		for line := range strings.SplitSeq(help, "\n") {
			if m := flagLine.FindStringSubmatch(line); m != nil {
				flags[m[1]] = m[2]
			}
		}
		c.flags[name] = flags
	}
	require.NotEmpty(t, c.flags["serve"]["database-url"], "serve --help lists --database-url")
	return c
}

// hasEnv reports whether command reads the environment variable env.
func (c cli) hasEnv(command, env string) bool {
	for _, v := range c.flags[command] {
		if v == env {
			return true
		}
	}
	return false
}

// serveEnv is the environment a walhook process needs for a database and a key spec.
func serveEnv(databaseURL, keySpec string) []string {
	return []string{"WALHOOK_DATABASE_URL=" + databaseURL, "WALHOOK_ENCRYPTION_KEYS=" + keySpec}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	require.NoError(t, err)
	return string(b)
}
