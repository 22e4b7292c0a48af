package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/walhook/walhook/relay/crypt"
)

func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfg.register(fs)
	if err := parseFlags(fs, args, "Usage: walhook migrate up|down [steps]|status [flags]\n\ndown reverts one migration unless steps is given (0 reverts all)."); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("want up, down or status")
	}
	log, err := cfg.logger(os.Stderr)
	if err != nil {
		return err
	}
	if cfg.EncryptionKeys == "" {
		// Migrations never touch secrets; any keyring opens the store.
		cfg.EncryptionKeys = crypt.GenerateKeySpec("unused")
	}
	st, pool, err := cfg.open(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch fs.Arg(0) {
	case "up":
		applied, err := st.MigrateUp(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s) %v\n", len(applied), applied)
	case "down":
		steps := 1
		if fs.NArg() > 1 {
			if steps, err = strconv.Atoi(fs.Arg(1)); err != nil || steps < 0 {
				return fmt.Errorf("steps: want a whole number, got %q", fs.Arg(1))
			}
		}
		reverted, err := st.MigrateDown(ctx, steps)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reverted %d migration(s) %v\n", len(reverted), reverted)
	case "status":
		sts, err := st.MigrationStatuses(ctx)
		if err != nil {
			return err
		}
		for _, m := range sts {
			state := "pending"
			if m.AppliedAt != nil {
				state = "applied " + m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(stdout, "%04d_%-30s %s\n", m.Version, m.Name, state)
		}
	default:
		return fmt.Errorf("unknown migrate action %q: want up, down or status", fs.Arg(0))
	}
	return nil
}
