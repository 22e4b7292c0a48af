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

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
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
		body, err := fs.ReadFile(migrations.FS, e.Name())
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
const migrationLockKey = 0x77616c686f6f6b // "walhook"

const migrationTableDDL = `
CREATE SCHEMA IF NOT EXISTS walhook;
CREATE TABLE IF NOT EXISTS walhook.schema_migration (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// The migrator runs DDL, which sqlc does not model, so these statements are the one place in the
// store with SQL outside queries/.
func (s *Store) withMigrationLock(ctx context.Context, fn func(conn pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockKey)); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		if _, err := tx.Exec(ctx, migrationTableDDL); err != nil {
			return fmt.Errorf("create migration table: %w", err)
		}
		return fn(tx)
	})
}

func appliedVersions(ctx context.Context, tx pgx.Tx) (map[int]time.Time, error) {
	rows, err := tx.Query(ctx, "SELECT version, applied_at FROM walhook.schema_migration")
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
}

func (e *SchemaNewerError) Error() string {
	vs := make([]string, len(e.Unknown))
	for i, v := range e.Unknown {
		vs[i] = fmt.Sprintf("%04d", v)
	}
	return fmt.Sprintf("the database schema is newer than this walhook: it has migration(s) %s applied, which this binary does not know (its newest is %04d); run the walhook release that applied them, or a newer one",
		strings.Join(vs, ", "), e.Newest)
}

// checkKnown returns a *SchemaNewerError when done holds a version that all lacks. Migration
// numbers have gaps, so "newer" means an applied version this binary does not have, whatever its
// number.
func checkKnown(all []Migration, done map[int]time.Time) error {
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
	return &SchemaNewerError{Unknown: unknown, Newest: newest}
}

// MigrateUp applies every pending migration, each in the one transaction that also records it.
// It returns the versions applied.
func (s *Store) MigrateUp(ctx context.Context) ([]int, error) {
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	var applied []int
	err = s.withMigrationLock(ctx, func(tx pgx.Tx) error {
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkKnown(all, done); err != nil {
			return err
		}
		for _, m := range all {
			if _, ok := done[m.Version]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, m.Up); err != nil {
				return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO walhook.schema_migration (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
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

// MigrateDown reverts the newest applied migrations, steps of them (all of them when steps <= 0).
// It returns the versions reverted.
func (s *Store) MigrateDown(ctx context.Context, steps int) ([]int, error) {
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	var reverted []int
	err = s.withMigrationLock(ctx, func(tx pgx.Tx) error {
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkKnown(all, done); err != nil {
			return err
		}
		for i := len(all) - 1; i >= 0; i-- {
			m := all[i]
			if _, ok := done[m.Version]; !ok {
				continue
			}
			if steps > 0 && len(reverted) == steps {
				break
			}
			if _, err := tx.Exec(ctx, m.Down); err != nil {
				return fmt.Errorf("revert migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM walhook.schema_migration WHERE version = $1", m.Version); err != nil {
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
// database never migrated has no walhook.schema_migration and so nothing applied) and takes no lock.
func (s *Store) readApplied(ctx context.Context) (map[int]time.Time, error) {
	done := map[int]time.Time{}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION READ ONLY"); err != nil {
			return fmt.Errorf("begin read-only: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass('walhook.schema_migration') IS NOT NULL").Scan(&exists); err != nil {
			return fmt.Errorf("find migration table: %w", err)
		}
		if !exists {
			return nil
		}
		var err error
		done, err = appliedVersions(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// MigrationCheck returns a *SchemaNewerError when the database holds a migration this binary does
// not have. It changes nothing; serve calls it at start when it does not migrate.
func (s *Store) MigrationCheck(ctx context.Context) error {
	all, err := Migrations()
	if err != nil {
		return err
	}
	done, err := s.readApplied(ctx)
	if err != nil {
		return err
	}
	return checkKnown(all, done)
}

// MigrationStatuses lists every migration with when it was applied. It changes nothing (a
// read-only transaction, no table created), and returns a *SchemaNewerError when the database
// holds a migration this binary does not have.
func (s *Store) MigrationStatuses(ctx context.Context) ([]MigrationStatus, error) {
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	done, err := s.readApplied(ctx)
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
	return out, checkKnown(all, done)
}
