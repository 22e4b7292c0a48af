package main

import (
	"bytes"
	"context"
	"io"
)

// runOn runs a subcommand's function (runCompany, runSlot, …) with args followed by the flags
// every test gives it, --database-url db and JSON logs, and returns what the command wrote and
// its error.
func runOn(ctx context.Context, db string, cmd func(context.Context, []string, io.Writer) error, args ...string) (string, error) {
	var out bytes.Buffer
	err := cmd(ctx, append(args, "--database-url", db, "--log-format", "json"), &out)
	return out.String(), err
}
