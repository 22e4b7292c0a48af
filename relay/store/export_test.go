package store

import (
	"context"
	"io/fs"
)

// MigrateUpFrom and MigrateDownFrom run the migrator over the migrations in files, recorded in
// table (schema-qualified), for tests of the migrator itself with migrations made to fail.
func (s *Store) MigrateUpFrom(ctx context.Context, files fs.FS, table string) ([]int, error) {
	return s.migrateUp(ctx, migrationSet{name: "test", files: files, table: table})
}

func (s *Store) MigrateDownFrom(ctx context.Context, files fs.FS, table string, steps int) ([]int, error) {
	return s.migrateDown(ctx, migrationSet{name: "test", files: files, table: table}, steps, 0)
}

// SplitMark is splitMark, for the test of two splits that checked before either marked.
func (s *Store) SplitMark(ctx context.Context, slot, movedTo string, target *Store) error {
	_, err := s.splitMark(ctx, slot, movedTo, target)
	return err
}
