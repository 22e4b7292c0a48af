package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/walhook/walhook/relay/store"
)

const migrateSynopsis = "Usage: walhook migrate up|down [steps]|status [flags]\n\n" +
	"up      applies every pending migration\n" +
	"down    reverts the newest migration, or steps of them (0 reverts all)\n" +
	"status  lists every migration and when it was applied; changes nothing\n\n" +
	"With --source-database-url (walhook's own database apart from the application's), each action\n" +
	"acts on both: walhook's migrations on --database-url, the source set (only what capture needs:\n" +
	"walhook.outbox, walhook.emit, its keys and settings) on the application's database; down\n" +
	"reverts steps of each.\n\n" +
	"Flags may come before or after the action. The migrator needs no --encryption-keys: it opens\n" +
	"no secret. It refuses a database holding a migration this binary does not know (a newer\n" +
	"walhook migrated it)."

func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	fs := cfg.sourceToolFlags("migrate")
	durationVar(fs, &cfg.ConnectTimeout, "connect-timeout", 2*time.Minute, "how long to retry an unreachable database before giving up")
	if err := parseFlags(fs, args, migrateSynopsis); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("want up, down or status")
	}
	action := fs.Arg(0)
	steps := 1
	switch {
	case action == "down" && fs.NArg() == 2:
		var err error
		if steps, err = strconv.Atoi(fs.Arg(1)); err != nil || steps < 0 {
			return fmt.Errorf("steps: want a whole number, got %q", fs.Arg(1))
		}
	case action != "up" && action != "down" && action != "status":
		return fmt.Errorf("unknown migrate action %q: want up, down or status", action)
	case fs.NArg() > 1:
		return fmt.Errorf("migrate %s: unexpected arguments %q", action, fs.Args()[1:])
	}
	pool, log, err := cfg.connectLogged(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Migrations never touch secrets: the store needs no keyring.
	st := store.New(pool, nil)
	src, closeSrc, err := cfg.openSource(ctx, log, st)
	if err != nil {
		return err
	}
	defer closeSrc()
	two := src != st
	switch action {
	case "up":
		applied, err := st.MigrateUp(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s) %v\n", len(applied), applied)
		if two {
			if applied, err = src.MigrateSourceUp(ctx); err != nil {
				return fmt.Errorf("source database: %w", err)
			}
			fmt.Fprintf(stdout, "source database: applied %d migration(s) %v\n", len(applied), applied)
		}
	case "down":
		reverted, err := st.MigrateDown(ctx, steps)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reverted %d migration(s) %v\n", len(reverted), reverted)
		if two {
			if reverted, err = src.MigrateSourceDown(ctx, steps); err != nil {
				return fmt.Errorf("source database: %w", err)
			}
			fmt.Fprintf(stdout, "source database: reverted %d migration(s) %v\n", len(reverted), reverted)
		}
	case "status":
		if two {
			fmt.Fprintln(stdout, "walhook database (--database-url):")
		}
		sts, err := st.MigrationStatuses(ctx)
		printStatuses(stdout, sts)
		if err != nil || !two {
			return err
		}
		fmt.Fprintln(stdout, "\nsource database (--source-database-url):")
		sts, err = src.SourceMigrationStatuses(ctx)
		printStatuses(stdout, sts)
		return err
	}
	return nil
}

func printStatuses(w io.Writer, sts []store.MigrationStatus) {
	for _, m := range sts {
		state := "pending"
		if m.AppliedAt != nil {
			state = "applied " + m.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(w, "%04d_%-30s %s\n", m.Version, m.Name, state)
	}
}
