package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/relay/store"
)

const splitSynopsis = "Usage: walhook split --database-url NEW --source-database-url OLD [--yes]\n" +
	"       walhook split --drop-moved|--undo|--back --database-url NEW --source-database-url OLD --yes\n\n" +
	"Moves a single-database installation to two databases (docs/operations.md, \"Moving to two\n" +
	"databases\"). OLD (--source-database-url) is the database walhook ran in so far; it stays the\n" +
	"application's. NEW (--database-url) is walhook's own, empty database. Stop every walhook process\n" +
	"first (serve, relay and admin); the application keeps writing meanwhile.\n\n" +
	"Without --yes it checks everything and prints what it would copy; it changes nothing.\n" +
	"With --yes it migrates both databases, marks OLD as moved (walhook no longer starts on it alone),\n" +
	"copies walhook's data from one snapshot of OLD into NEW in one transaction (pending deliveries\n" +
	"included: they continue from NEW), and records where capture continues in OLD's slot.\n\n" +
	"--drop-moved  deletes the walhook data the split left in OLD (what capture needs stays).\n" +
	"--undo        takes the split back before walhook ran on NEW: empties NEW, clears OLD's mark.\n" +
	"--back        goes back to one database after walhook ran on two: copies NEW's data into OLD\n" +
	"              (replacing what the split left there) and marks NEW as moved."

func runSplit(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var slot string
	var yes, dropMoved, undo, back bool
	fs := cfg.sourceToolFlags("split")
	fs.StringVar(&slot, "slot", "walhook", "capture's logical replication slot in the source database")
	fs.BoolVar(&yes, "yes", false, "really do it (without: check and print the plan)")
	fs.BoolVar(&dropMoved, "drop-moved", false, "delete the walhook data a finished split left in the source database")
	fs.BoolVar(&undo, "undo", false, "take back a split walhook has not run on yet")
	fs.BoolVar(&back, "back", false, "go back to one database (the source) after walhook ran on two")
	if err := parseFlagsOnly(fs, args, splitSynopsis); err != nil {
		return err
	}
	modes := 0
	for _, m := range []bool{dropMoved, undo, back} {
		if m {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("give one of --drop-moved, --undo and --back")
	}
	if cfg.DatabaseURL == "" || cfg.SourceDatabaseURL == "" {
		return errors.New("--database-url (walhook's new, own database) and --source-database-url (the database walhook ran in so far) are both required")
	}
	if modes == 1 && !yes {
		return errors.New("add --yes")
	}
	log, err := cfg.logger(os.Stderr)
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 10 * time.Second
	cfg.applicationName = "walhook split"
	pool, err := cfg.connectURL(ctx, log, cfg.DatabaseURL, "--database-url", splitSession)
	if err != nil {
		return err
	}
	defer pool.Close()
	srcPool, err := cfg.connectURL(ctx, log, cfg.SourceDatabaseURL, "--source-database-url", splitSession)
	if err != nil {
		return err
	}
	defer srcPool.Close()
	st, src := store.New(pool, nil), store.New(srcPool, nil)
	newName, oldName := describeURL(cfg.DatabaseURL), describeURL(cfg.SourceDatabaseURL)
	progress := func(c store.SplitCount) { fmt.Fprintf(stdout, "  %-20s %12d rows\n", c.Name, c.Rows) }

	switch {
	case dropMoved:
		dropped, err := store.SplitDropMoved(ctx, src, st)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "emptied walhook's moved tables in %s:\n", oldName)
		for _, c := range dropped {
			progress(c)
		}
		return nil
	case undo:
		if err := store.SplitUndo(ctx, src, st, slot); err != nil {
			return err
		}
		_, err := fmt.Fprintf(stdout, "split undone: %s is walhook's only database again, %s was emptied.\nStart walhook with --database-url %s (no --source-database-url).\n", oldName, newName, oldName)
		return err
	case back:
		if err := migrateBoth(ctx, st, src, stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "copying walhook's data from %s back into %s:\n", newName, oldName)
		res, err := store.SplitBack(ctx, src, st, slot, oldName, progress)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "back to one database in %v (capture position %s).\n"+
			"%s is marked as moved: walhook refuses to start with it as its database.\n"+
			"Start walhook with --database-url %s (no --source-database-url).\n",
			res.Took.Round(time.Millisecond), orNone(res.Position), newName, oldName)
		return err
	}

	plan, err := store.SplitCheck(ctx, src, st, slot)
	if err != nil {
		return err
	}
	if plan.Resume {
		fmt.Fprintf(stdout, "An earlier split marked %s and did not finish; this one completes it.\n", oldName)
	}
	if !yes {
		printPlan(stdout, plan, oldName, newName)
		_, err := fmt.Fprintln(stdout, "\nNothing changed. Run again with --yes to move.")
		return err
	}
	if err := migrateBoth(ctx, st, src, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copying (one snapshot of %s, one transaction in %s):\n", oldName, newName)
	res, err := store.Split(ctx, src, st, store.SplitOptions{Slot: slot, MovedTo: newName, Progress: progress})
	if err != nil {
		return err
	}
	var total int64
	for _, c := range res.Tables {
		total += c.Rows
	}
	pos := "none (no replication slot: outbox polling, or capture never ran)"
	if res.Position != "" {
		pos = fmt.Sprintf("%s (slot %s's confirmed position)", res.Position, slot)
	}
	_, err = fmt.Fprintf(stdout, "\nmoved %d rows in %v; capture continues from %s.\n\n"+
		"%s is marked as moved: walhook refuses to start with it alone.\n"+
		"Next:\n"+
		"  1. start walhook with  --database-url %s --source-database-url %s\n"+
		"     (WALHOOK_DATABASE_URL, WALHOOK_SOURCE_DATABASE_URL); pending deliveries continue from there\n"+
		"  2. once it runs well, delete what the split left in %s:\n"+
		"     walhook split --drop-moved --database-url … --source-database-url … --yes\n"+
		"To go back before step 1: walhook split --undo …; after it: walhook split --back … (docs/operations.md).\n",
		total, res.Took.Round(time.Millisecond), pos, oldName, newName, oldName, oldName)
	return err
}

// migrateBoth migrates walhook's database (main set) and the source (main set, so both have the
// same tables to copy between, then the source set).
func migrateBoth(ctx context.Context, st, src *store.Store, stdout io.Writer) error {
	applied, err := st.MigrateUp(ctx)
	if err != nil {
		return fmt.Errorf("migrate walhook's database: %w", err)
	}
	fmt.Fprintf(stdout, "walhook's database: applied %d migration(s) %v\n", len(applied), applied)
	if applied, err = src.MigrateUp(ctx); err != nil {
		return fmt.Errorf("migrate the source database: %w", err)
	}
	srcApplied, err := src.MigrateSourceUp(ctx)
	if err != nil {
		return fmt.Errorf("migrate the source database (source set): %w", err)
	}
	fmt.Fprintf(stdout, "source database: applied %d migration(s) %v, source set %d %v\n", len(applied), applied, len(srcApplied), srcApplied)
	return nil
}

func printPlan(w io.Writer, plan store.SplitPlan, oldName, newName string) {
	fmt.Fprintf(w, "walhook's data moves from %s to %s:\n", oldName, newName)
	var total int64
	for _, c := range plan.Tables {
		fmt.Fprintf(w, "  %-20s %12d rows\n", c.Name, c.Rows)
		total += c.Rows
	}
	fmt.Fprintf(w, "  %-20s %12d rows\n", "total", total)
	fmt.Fprintln(w, "Staying in the source: walhook.outbox, walhook.emit_key, walhook.capture_setting, the slot and the publication.")
	if plan.Slot != nil {
		fmt.Fprintf(w, "Capture continues from slot %s at its confirmed position (now %s).\n", plan.Slot.Name, plan.Slot.ConfirmedFlushLSN)
	} else {
		fmt.Fprintln(w, "No replication slot: nothing to continue from (outbox polling, or capture never ran).")
	}
}

// splitSession lifts the statement and idle-in-transaction timeouts grant.sql and
// grant-walhook-db.sql give the walhook role (60 s, 5 min): a split copies each table in one COPY
// and holds its snapshot for the whole copy, which takes minutes for millions of rows (see
// docs/operations.md, "How long"), and would be cancelled at the first limit. Settings in the
// URL win.
func splitSession(cfg *pgxpool.Config) {
	for _, p := range []string{"statement_timeout", "idle_in_transaction_session_timeout"} {
		if _, set := cfg.ConnConfig.RuntimeParams[p]; !set {
			cfg.ConnConfig.RuntimeParams[p] = "0"
		}
	}
}

// describeURL names a database for messages and the moved mark: user, host, port and database,
// never the password or other parameters.
func describeURL(raw string) string {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	c := cfg.ConnConfig
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = url.PathEscape(host)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, host, c.Port, c.Database)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
