package store

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/sql/migrations"
	"github.com/walhook/walhook/sql/source"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// MigrationStatus is a migration and when it was applied (nil: pending).
type MigrationStatus struct {
	Migration
	AppliedAt *time.Time
}

var migrationFile = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// migrationSet is one numbered set of migrations and the table that records which are applied.
// There are two: walhook's own database (the main set, sql/migrations) and, when walhook keeps its
// own database apart from the application's, the source set in the application's database
// (sql/source: only what capture needs there). Both go through the same migrator.
type migrationSet struct {
	name  string // for messages
	files fs.FS
	table string // the version table, schema-qualified
}

var (
	mainSet   = migrationSet{name: "walhook", files: migrations.FS, table: "walhook.schema_migration"}
	sourceSet = migrationSet{name: "source", files: source.FS, table: "walhook.source_schema_migration"}
)

// Migrations returns the embedded migrations of walhook's database in version order.
func Migrations() ([]Migration, error) { return mainSet.migrations() }

// SourceMigrations returns the embedded migrations of the application's (source) database in
// version order.
func SourceMigrations() ([]Migration, error) { return sourceSet.migrations() }

func (set migrationSet) migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(set.files, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(set.files, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		}
		if m[3] == "up" {
			mig.Up = string(body)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %04d_%s: needs both .up.sql and .down.sql", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrationLockKey is the advisory lock that serialises migrators (two replicas starting at once).
// Both sets take it: in one database they then never run at once either.
const migrationLockKey = 0x77616c686f6f6b // "walhook"

func (set migrationSet) tableDDL() string {
	return `
CREATE SCHEMA IF NOT EXISTS walhook;
CREATE TABLE IF NOT EXISTS ` + set.table + ` (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`
}

// withMigrationLock runs fn in one transaction that holds the migration lock (an advisory lock
// released when the transaction ends) and has the version table: everything fn does, every
// migration it applies or reverts with its version row, commits together or not at all.
//
// The migrator runs DDL, which sqlc does not model, so these statements are the one place in the
// store with SQL outside queries/. The version table's name is one of the two constants above.
func (s *Store) withMigrationLock(ctx context.Context, set migrationSet, fn func(conn pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockKey)); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		// A migration runs to its end: one that copies a table (0029 copies the history) takes
		// minutes on a large installation, and the role's statement_timeout (60 s in
		// deploy/postgresql/grant.sql) would roll it back at every start. Waiting for a lock
		// stays bounded, so one held elsewhere fails the start rather than hangs it.
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '60s'"); err != nil {
			return fmt.Errorf("lift the statement timeout: %w", err)
		}
		if _, err := tx.Exec(ctx, set.tableDDL()); err != nil {
			return fmt.Errorf("create migration table: %w", err)
		}
		return fn(tx)
	})
}

func (set migrationSet) applied(ctx context.Context, tx pgx.Tx) (map[int]time.Time, error) {
	rows, err := tx.Query(ctx, "SELECT version, applied_at FROM "+set.table)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		out[v] = at
	}
	return out, rows.Err()
}

// SchemaNewerError says the database holds migrations this binary does not have: a newer walhook
// migrated it. Running against it (or migrating it down or up) could misread tables the newer
// release changed, so the migrator refuses.
type SchemaNewerError struct {
	// Unknown are the applied versions this binary has no migration for, in order.
	Unknown []int
	// Newest is the newest migration this binary has.
	Newest int
	// Set names the migration set: "walhook" (walhook's database) or "source" (the application's).
	Set string
}

func (e *SchemaNewerError) Error() string {
	vs := make([]string, len(e.Unknown))
	for i, v := range e.Unknown {
		vs[i] = fmt.Sprintf("%04d", v)
	}
	db := "the database"
	if e.Set == sourceSet.name {
		db = "the source database"
	}
	return fmt.Sprintf("%s schema is newer than this walhook: it has migration(s) %s applied, which this binary does not know (its newest is %04d); run the walhook release that applied them, or a newer one",
		db, strings.Join(vs, ", "), e.Newest)
}

// checkKnown returns a *SchemaNewerError when done holds a version that all lacks. Migration
// numbers have gaps, so "newer" means an applied version this binary does not have, whatever its
// number.
func (set migrationSet) checkKnown(all []Migration, done map[int]time.Time) error {
	known := make(map[int]bool, len(all))
	newest := 0
	for _, m := range all {
		known[m.Version] = true
		newest = max(newest, m.Version)
	}
	var unknown []int
	for v := range done {
		if !known[v] {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Ints(unknown)
	return &SchemaNewerError{Unknown: unknown, Newest: newest, Set: set.name}
}

// withAppliedLocked runs fn under withMigrationLock with the versions applied, once checkKnown
// found none that all lacks.
func (s *Store) withAppliedLocked(ctx context.Context, set migrationSet, all []Migration, fn func(tx pgx.Tx, done map[int]time.Time) error) error {
	return s.withMigrationLock(ctx, set, func(tx pgx.Tx) error {
		done, err := set.applied(ctx, tx)
		if err != nil {
			return err
		}
		if err := set.checkKnown(all, done); err != nil {
			return err
		}
		return fn(tx, done)
	})
}

// MigrateUp applies every pending migration of walhook's database, in version order, in one
// transaction that also records them (withMigrationLock): when one fails, none of them is applied
// and the error names it. It returns the versions applied.
func (s *Store) MigrateUp(ctx context.Context) ([]int, error) { return s.migrateUp(ctx, mainSet) }

// MigrateSourceUp applies every pending migration of the source set to the store's database: the
// application's database when walhook keeps its own apart (see package source). It applies over
// a database the main set migrated too. It returns the versions applied.
func (s *Store) MigrateSourceUp(ctx context.Context) ([]int, error) {
	return s.migrateUp(ctx, sourceSet)
}

func (s *Store) migrateUp(ctx context.Context, set migrationSet) ([]int, error) {
	all, err := set.migrations()
	if err != nil {
		return nil, err
	}
	// Nothing pending (every start but an upgrade's): done without the lock. Any role that can
	// connect may take an advisory lock, and one holding the migrators' key in the application's
	// database would otherwise keep every relay from starting.
	if done, err := s.readApplied(ctx, set); err == nil {
		if err := set.checkKnown(all, done); err != nil {
			return nil, err
		}
		pending := false
		for _, m := range all {
			if _, ok := done[m.Version]; !ok {
				pending = true
			}
		}
		if !pending {
			return nil, nil
		}
	}
	var applied []int
	err = s.withAppliedLocked(ctx, set, all, func(tx pgx.Tx, done map[int]time.Time) error {
		for _, m := range all {
			if _, ok := done[m.Version]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, m.Up); err != nil {
				return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+set.table+" (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %04d: %w", m.Version, err)
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// MigrateDown reverts the newest applied migrations of walhook's database, steps of them (all of
// them when steps <= 0), newest first, in one transaction as MigrateUp: when one fails, none is
// reverted. It returns the versions reverted.
func (s *Store) MigrateDown(ctx context.Context, steps int) ([]int, error) {
	return s.migrateDown(ctx, mainSet, steps, 0)
}

// MigrateDownTo reverts every applied migration of walhook's database newer than version, newest
// first, in one transaction as MigrateDown, and returns the versions reverted: the schema as that
// migration left it, whatever migrations came after it (the history bench's layout before 0029,
// tests of a migration's up and down).
func (s *Store) MigrateDownTo(ctx context.Context, version int) ([]int, error) {
	return s.migrateDown(ctx, mainSet, 0, version)
}

// MigrateSourceDown is MigrateDown for the source set (see MigrateSourceUp).
func (s *Store) MigrateSourceDown(ctx context.Context, steps int) ([]int, error) {
	return s.migrateDown(ctx, sourceSet, steps, 0)
}

// migrateDown reverts set's applied migrations newest first, down to (not including) version to,
// and no more than steps of them when steps > 0.
func (s *Store) migrateDown(ctx context.Context, set migrationSet, steps, to int) ([]int, error) {
	all, err := set.migrations()
	if err != nil {
		return nil, err
	}
	var reverted []int
	err = s.withAppliedLocked(ctx, set, all, func(tx pgx.Tx, done map[int]time.Time) error {
		for i := len(all) - 1; i >= 0; i-- {
			m := all[i]
			if _, ok := done[m.Version]; !ok {
				continue
			}
			if m.Version <= to || (steps > 0 && len(reverted) == steps) {
				break
			}
			if _, err := tx.Exec(ctx, m.Down); err != nil {
				return fmt.Errorf("revert migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM "+set.table+" WHERE version = $1", m.Version); err != nil {
				return fmt.Errorf("unrecord migration %04d: %w", m.Version, err)
			}
			reverted = append(reverted, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return reverted, nil
}

// readApplied reads the applied versions in a read-only transaction: it creates nothing (a
// database never migrated has no version table and so nothing applied) and takes no lock.
func (s *Store) readApplied(ctx context.Context, set migrationSet) (map[int]time.Time, error) {
	done := map[int]time.Time{}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION READ ONLY"); err != nil {
			return fmt.Errorf("begin read-only: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", set.table).Scan(&exists); err != nil {
			return fmt.Errorf("find migration table: %w", err)
		}
		if !exists {
			return nil
		}
		var err error
		done, err = set.applied(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// MigrationCheck returns a *SchemaNewerError when the database holds a migration this binary does
// not have. It changes nothing; serve calls it at start when it does not migrate.
func (s *Store) MigrationCheck(ctx context.Context) error { return s.migrationCheck(ctx, mainSet) }

// SourceMigrationCheck is MigrationCheck for the source set.
func (s *Store) SourceMigrationCheck(ctx context.Context) error {
	return s.migrationCheck(ctx, sourceSet)
}

func (s *Store) migrationCheck(ctx context.Context, set migrationSet) error {
	all, err := set.migrations()
	if err != nil {
		return err
	}
	done, err := s.readApplied(ctx, set)
	if err != nil {
		return err
	}
	return set.checkKnown(all, done)
}

// MigrationStatuses lists every migration of walhook's database with when it was applied. It
// changes nothing (a read-only transaction, no table created), and returns a *SchemaNewerError
// when the database holds a migration this binary does not have.
func (s *Store) MigrationStatuses(ctx context.Context) ([]MigrationStatus, error) {
	return s.migrationStatuses(ctx, mainSet)
}

// SourceMigrationStatuses is MigrationStatuses for the source set.
func (s *Store) SourceMigrationStatuses(ctx context.Context) ([]MigrationStatus, error) {
	return s.migrationStatuses(ctx, sourceSet)
}

func (s *Store) migrationStatuses(ctx context.Context, set migrationSet) ([]MigrationStatus, error) {
	all, err := set.migrations()
	if err != nil {
		return nil, err
	}
	done, err := s.readApplied(ctx, set)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(all))
	for _, m := range all {
		st := MigrationStatus{Migration: m}
		if at, ok := done[m.Version]; ok {
			st.AppliedAt = &at
		}
		out = append(out, st)
	}
	return out, set.checkKnown(all, done)
}
