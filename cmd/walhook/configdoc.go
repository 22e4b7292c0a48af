package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// configHeader is the top of docs/configuration.md; ' stands for a backquote.
const configHeader = `# Configuration reference

'walhook serve', 'walhook relay' and 'walhook admin' take the flags below. Every flag can also be
set by the environment variable shown; a flag given on the command line wins over its variable.
Durations take Go syntax ('500ms', '15s', '2m', '720h'). Other subcommands ('dev', 'migrate',
'slot', 'split', 'bench', 'company', 'member', 'token', 'healthcheck', 'keygen', 'keys', 'emit-key', 'quarantine') list their own flags with
'walhook <command> --help'.

This file is generated from the flag definitions by
'go test ./cmd/walhook -run TestConfigurationDoc -update'; the test fails when it is stale.

| flag | environment variable | default | meaning |
| --- | --- | --- | --- |
`

// writeConfigReference renders docs/configuration.md from the flag set of serve/relay/admin, so
// the reference cannot drift from the binary (TestConfigurationDoc compares them).
func writeConfigReference(w io.Writer) {
	var cfg serveConfig
	fs := newFlagSet("serve")
	cfg.register(fs)
	fmt.Fprint(w, strings.ReplaceAll(configHeader, "'", "`"))
	fs.VisitAll(func(f *flag.Flag) {
		def := "—"
		if f.DefValue != "" {
			def = "`" + f.DefValue + "`"
		}
		usage := strings.ReplaceAll(f.Usage, "|", `\|`)
		fmt.Fprintf(w, "| `--%s` | `%s` | %s | %s |\n", f.Name, envName(f.Name), def, usage)
	})
}
