// Package store is the only package that runs SQL. It wraps the sqlc-generated queries in
// store/internal/dbsqlc, maps PostgreSQL errors once to ErrNotFound, ErrConflict and ErrInvalid,
// seals and opens secret columns with the keyring, and scopes every tenant-owned query by company:
// each such method takes the company id, and a row of another company is simply not found. What
// tests need beyond that (reads by id alone, events enqueued without capture) is in
// relay/store/storetest, which production code does not import.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store/internal/dbsqlc"
)

// Errors every store method returns in place of driver errors.
var (
	// ErrNotFound: no such row, or a row of another company.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key is taken, or a referenced row is in use or missing.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the database refused a value (a CHECK constraint or a bad value).
	ErrInvalid = errors.New("invalid value")
	// ErrCompanyDisabled: the company is disabled (platform API); its members cannot sign in.
	ErrCompanyDisabled = errors.New("company disabled")
)

// ConstraintError wraps ErrConflict or ErrInvalid with the name of the constraint that fired, so
// the admin API can name the field.
type ConstraintError struct {
	Kind       error // ErrConflict or ErrInvalid
	Constraint string
	Detail     string
	// Code is the SQLSTATE PostgreSQL answered, for Permanent.
	Code string
}

func (e *ConstraintError) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Kind, e.Constraint, e.Detail)
}

func (e *ConstraintError) Unwrap() error { return e.Kind }

// mapErr maps a driver error to the store's errors; it is applied once, at the store's boundary.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "23P01", "23503", "42710": // unique, exclusion, foreign key, duplicate object
			return &ConstraintError{Kind: ErrConflict, Constraint: pgErr.ConstraintName, Detail: pgErr.Detail, Code: pgErr.Code}
		case "23514", "23502", "22P02", "22001", "22003", "22007", "22008", "22023", "22P05":
			return &ConstraintError{Kind: ErrInvalid, Constraint: pgErr.ConstraintName, Detail: pgErr.Message, Code: pgErr.Code}
		}
	}
	return err
}

// affected is mapErr for a statement that changes one row: none changed is ErrNotFound.
func affected(n int64, err error) error {
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// rowsAs is mapErr for a statement that lists rows: each converted by from.
func rowsAs[R, T any](rows []R, err error, from func(R) T) ([]T, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = from(r)
	}
	return out, nil
}

// rowsOpened is rowsAs for a conversion that may fail (a sealed value that does not open): the
// first error stops it.
func rowsOpened[R, T any](rows []R, err error, from func(R) (T, error)) ([]T, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		if out[i], err = from(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DBTX is what the store runs queries on: a pool, a connection or a transaction.
type DBTX interface {
	dbsqlc.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Store runs walhook's queries.
type Store struct {
	db   DBTX
	q    *dbsqlc.Queries
	keys *crypt.Keyring
	ids  *idKey // the public-id cipher, loaded on first use; shared with transactions
}

// New returns a store over a pool (or any DBTX). keys seals and opens secret columns.
func New(db DBTX, keys *crypt.Keyring) *Store {
	return &Store{db: db, q: dbsqlc.New(db), keys: keys, ids: &idKey{}}
}

// Keys is the keyring the store seals secrets with.
func (s *Store) Keys() *crypt.Keyring { return s.keys }

// Pool returns the underlying pool when the store was made over one (nil inside a transaction).
func (s *Store) Pool() *pgxpool.Pool {
	p, _ := s.db.(*pgxpool.Pool)
	return p
}

// Tx runs fn in a transaction with a store bound to it: committed when fn returns nil, rolled back
// otherwise (also on panic). Inside a transaction, Tx makes a savepoint.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		return fn(&Store{db: tx, q: s.q.WithTx(tx), keys: s.keys, ids: s.ids})
	})
}
