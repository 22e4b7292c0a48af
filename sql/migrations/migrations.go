// Package migrations holds walhook's schema as numbered up/down SQL files, embedded in the binary.
// The files are also sqlc's schema (sqlc.yaml), so the generated queries always match them. The
// migrator that applies them lives in relay/store.
package migrations

import "embed"

// FS holds NNNN_name.up.sql and NNNN_name.down.sql files.
//
//go:embed *.sql
var FS embed.FS
