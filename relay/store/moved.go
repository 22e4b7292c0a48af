package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrMoved: the database was moved to two databases by `walhook split`; walhook's data lives in
// walhook's own database now, and this one is only the application's (the source).
var ErrMoved = errors.New("database moved by walhook split")

// MovedError says the database walhook was pointed at (its --database-url) was moved by
// `walhook split`: running on it alone would deliver the copied pending deliveries a second time,
// and whatever it wrote would be missing from walhook's database.
type MovedError struct {
	At time.Time
	// To names walhook's database now (host, port and database; no password). Empty when the
	// split did not say.
	To string
}

func (e *MovedError) Error() string {
	to := "walhook's own database"
	if e.To != "" {
		to = e.To
	}
	return fmt.Sprintf("this database was moved to two databases by walhook split at %s: walhook's data is in %s now, and this one is the application's (the source); "+
		"start walhook with --database-url <walhook's database> --source-database-url <this database> (WALHOOK_DATABASE_URL, WALHOOK_SOURCE_DATABASE_URL)",
		e.At.UTC().Format(time.RFC3339), to)
}

func (e *MovedError) Unwrap() error { return ErrMoved }

// Moved returns the split's mark: nil when the database was not moved.
func (s *Store) Moved(ctx context.Context) (*MovedError, error) {
	r, err := s.q.CaptureSettingMovedGet(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" {
		// undefined_column: a schema older than migration 0025 (serve --migrate=false) was never
		// moved: the split migrates the database it moves.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read moved mark: %w", mapErr(err))
	}
	if r.MovedAt == nil {
		return nil, nil
	}
	return &MovedError{At: *r.MovedAt, To: r.MovedTo}, nil
}

// MovedCheck returns a *MovedError when `walhook split` moved this database: walhook must not run
// with it as its own database. serve, relay, admin and the commands that change walhook's data
// call it at start.
func (s *Store) MovedCheck(ctx context.Context) error {
	m, err := s.Moved(ctx)
	if err != nil {
		return err
	}
	if m != nil {
		return m
	}
	return nil
}

// SourceMovedCheck is for a walhook started with its own database st apart from the application's
// src: when `walhook split` moved src, its mark must name st, and st must hold the split's
// committed copy. A relay on the new database while the split is still copying (or after it died
// past its mark) would find no company there, skip every event as of an unknown company and
// acknowledge the slot past them: lost for every tenant. The split's commit records st's capture
// source (apart) with the copy, so a source still unrecorded there means the copy is not in.
func SourceMovedCheck(ctx context.Context, src, st *Store) error {
	m, err := src.Moved(ctx)
	if err != nil || m == nil {
		return err
	}
	if err := movedHere(ctx, m, st, "this walhook database (--database-url)"); err != nil {
		return err
	}
	recorded, err := st.q.CaptureSettingSourceGet(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" {
		return nil // a schema older than migration 0028 (serve --migrate=false): nothing to tell by
	}
	if err != nil {
		return fmt.Errorf("read the capture source: %w", mapErr(err))
	}
	if recorded == "" {
		return &SplitRefusedError{Reasons: []string{"walhook split into this database (--database-url) has not finished: " +
			"its copy of walhook's data is not committed (the split still runs, or died after marking the application's database); " +
			"run walhook split again to complete it, or walhook split --undo"}}
	}
	return nil
}
