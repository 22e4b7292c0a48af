// Package source holds the migration set for the application's database when walhook keeps its
// own database apart (--source-database-url): numbered up/down SQL files creating only what
// capture needs there (walhook.outbox, walhook.emit_key, walhook.emit, walhook.capture_setting),
// embedded in the binary. They are written to apply over a database the main set (package
// migrations) already migrated. The migrator lives in relay/store (MigrateSourceUp); the version
// table is walhook.source_schema_migration. sqlc's schema stays the main set.
package source

import "embed"

// FS holds NNNN_name.up.sql and NNNN_name.down.sql files.
//
//go:embed *.sql
var FS embed.FS
