package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/crypt"
)

// TestParseFlagsAnyOrder: flags are read before, between and after the arguments; "--" ends them.
func TestParseFlagsAnyOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		wantArgs []string
		wantURL  string
		wantYes  bool
	}{
		{[]string{"up", "--database-url", "U"}, []string{"up"}, "U", false},
		{[]string{"--database-url", "U", "up"}, []string{"up"}, "U", false},
		{[]string{"down", "--yes", "2", "--database-url=U"}, []string{"down", "2"}, "U", true},
		{[]string{"show", "7"}, []string{"show", "7"}, "", false},
		{[]string{"--yes", "show", "--", "--database-url", "U"}, []string{"show", "--database-url", "U"}, "", true},
		{nil, []string{}, "", false},
	} {
		var url string
		var yes bool
		fs := newFlagSet("t")
		fs.SetOutput(io.Discard)
		fs.StringVar(&url, "database-url", "", "")
		fs.BoolVar(&yes, "yes", false, "")
		require.NoError(t, parseFlags(fs, tc.args, ""), "%q", tc.args)
		require.Equal(t, tc.wantArgs, fs.Args(), "%q", tc.args)
		require.Equal(t, tc.wantURL, url, "%q", tc.args)
		require.Equal(t, tc.wantYes, yes, "%q", tc.args)
	}
	fs := newFlagSet("t")
	fs.SetOutput(io.Discard)
	require.ErrorContains(t, parseFlagsOnly(fs, []string{"extra"}, ""), `unexpected argument(s) ["extra"]`)
}

// TestEveryCommandTakesFlagsAfterItsArguments runs each subcommand with its arguments first and
// its flags after them, as the usage lines show: the flags are read (the command does its work or
// fails for a reason other than a missing flag). Commands that take no arguments refuse a stray
// one instead of ignoring it.
func TestEveryCommandTakesFlagsAfterItsArguments(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := xtest.DatabaseURL(t)
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(health.Close)
	keys := crypt.GenerateKeySpec("k1")
	cmd := func(name string) func(context.Context, []string, io.Writer) error {
		for _, c := range commands() {
			if c.name == name {
				return c.run
			}
		}
		t.Fatalf("no command %q", name)
		return nil
	}
	// Ordered: later rows use what earlier ones made (company 7, its member).
	rows := []struct {
		args    []string
		wantOut string
		wantErr string
	}{
		{[]string{"migrate", "up", "--database-url", db, "--log-format", "json"}, "applied 0 migration(s) []", ""},
		{[]string{"migrate", "status", "--database-url", db}, "0001_", ""},
		{[]string{"migrate", "down", "0", "--database-url", db, "--connect-timeout", "5s"}, "reverted ", ""}, // the next row re-applies
		{[]string{"migrate", "up", "--database-url", db}, "applied ", ""},
		{[]string{"migrate", "sideways", "--database-url", db}, "", `unknown migrate action "sideways"`},
		{[]string{"company", "create", "--database-url", db, "--id", "7", "--name", "Seven"}, "company 7 (Seven) created", ""},
		{[]string{"member", "add", "--database-url", db, "--company", "7", "--email", "o@seven.test", "--owner"}, "owner=true", ""},
		{[]string{"token", "create", "--database-url", db, "--company", "7", "--email", "o@seven.test"}, "wh", ""},
		{[]string{"token", "list", "--database-url", db, "--platform"}, "ID", ""},
		{[]string{"keys", "reseal", "--database-url", db, "--encryption-keys", keys, "--log-format", "json"}, "resealed 0", ""},
		{[]string{"slot", "status", "--database-url", db, "--slot", "no_such_slot"}, "", `no replication slot "no_such_slot"`},
		{[]string{"quarantine", "list", "--database-url", db}, "", ""},
		{[]string{"quarantine", "show", "--database-url", db, "99"}, "", "99"},
		{[]string{"emit-key", "rotate", "--database-url", db}, "emit key 2 signs", ""},
		{[]string{"split", "--database-url", db, "--source-database-url", db}, "", "are the same database"},
		{[]string{"split", "extra", "--database-url", db, "--source-database-url", db}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"keygen", "--id", "k9"}, "k9:", ""},
		{[]string{"healthcheck", "--url", health.URL}, "", ""},
		{[]string{"serve", "extra", "--database-url", db}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"relay", "extra", "--database-url", db}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"admin", "extra", "--database-url", db}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"dev", "extra", "--dir", t.TempDir()}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"bench", "extra", "--quick"}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"keygen", "extra"}, "", `unexpected argument(s) ["extra"]`},
		{[]string{"company", "create", "extra", "--database-url", db, "--id", "8", "--name", "Eight"}, "", `unexpected arguments ["extra"]`},
	}
	seen := map[string]bool{"version": true} // version takes nothing
	for _, tc := range rows {
		seen[tc.args[0]] = true
		var out bytes.Buffer
		err := cmd(tc.args[0])(ctx, tc.args[1:], &out)
		if tc.wantErr == "" {
			require.NoError(t, err, "%q", tc.args)
			require.Contains(t, out.String(), tc.wantOut, "%q", tc.args)
		} else {
			require.ErrorContains(t, err, tc.wantErr, "%q", tc.args)
		}
		if err != nil {
			require.NotContains(t, err.Error(), "is required", "%q: a flag after the arguments was not read", tc.args)
			require.NotErrorIs(t, err, flag.ErrHelp)
		}
		require.False(t, strings.Contains(out.String(), "--database-url is required"))
	}
	for _, c := range commands() {
		require.True(t, seen[c.name], "command %q has no row in this test", c.name)
	}
}
