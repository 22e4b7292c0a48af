// Package dbsqlc is the code sqlc generates from queries/*.sql over the schema in sql/migrations:
// one typed method per named query. It is internal to relay/store, the only package that runs SQL
// (and to its test helpers, relay/store/storetest); regenerate it with `make generate`, never edit
// it (this file is the one written by hand).
package dbsqlc
