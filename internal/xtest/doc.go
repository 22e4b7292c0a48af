package xtest

import (
	"os"
	"strings"
	"testing"
)

// DocCommands returns the shell commands a Markdown document tells its reader to run, so a test
// can run them as written: in the file at path, between the first from and the next to after it,
// the lines of the ```sh blocks (continuation lines joined, surrounding spaces trimmed) that
// start with one of prefixes. It fails the test when the file, from or to is missing.
func DocCommands(t testing.TB, path, from, to string, prefixes ...string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("xtest: %v", err)
	}
	_, part, ok := strings.Cut(string(b), from)
	if ok {
		part, _, ok = strings.Cut(part, to)
	}
	if !ok {
		t.Fatalf("xtest: %s has no part between %q and %q", path, from, to)
	}
	var out []string
	for _, block := range strings.Split(part, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		for _, l := range strings.Split(strings.ReplaceAll(block, "\\\n", ""), "\n") {
			l = strings.TrimSpace(l)
			for _, p := range prefixes {
				if strings.HasPrefix(l, p) {
					out = append(out, l)
					break
				}
			}
		}
	}
	return out
}
