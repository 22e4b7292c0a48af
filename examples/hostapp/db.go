package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaSQL creates the application's tables; it is idempotent and runs at every start.
//
//go:embed schema.sql
var schemaSQL string

// errNotFound is a company, user or contact that does not exist.
var errNotFound = errors.New("not found")

// db is the host application's own data access. It is the application's code, not walhook's:
// plain pgx over its own schema, the way any application reads and writes its tables. walhook
// sees the writes to hostapp.contacts through logical replication; nothing here calls walhook.
type db struct {
	pool *pgxpool.Pool
}

type company struct {
	ID        string // a UUID
	Name      string
	WalhookID string // "" until provisioned
	CreatedAt time.Time
}

type user struct {
	ID              int64
	CompanyID       string
	Email           string
	Role            string
	WalhookMemberID int64 // 0 until provisioned
}

type contact struct {
	ID        int64
	CompanyID string
	Name      string
	Email     string
	CreatedAt time.Time
}

// migrate creates the application's tables when they do not exist.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create hostapp tables: %w", err)
	}
	return nil
}

func (d *db) companies(ctx context.Context) ([]company, error) {
	rows, err := d.pool.Query(ctx, `SELECT id::text, name, coalesce(walhook_id, ''), created_at FROM hostapp.companies ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list companies: %w", err)
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[company])
	if err != nil {
		return nil, fmt.Errorf("list companies: %w", err)
	}
	return cs, nil
}

func (d *db) company(ctx context.Context, id string) (company, error) {
	var c company
	err := d.pool.QueryRow(ctx, `SELECT id::text, name, coalesce(walhook_id, ''), created_at FROM hostapp.companies WHERE id = $1::uuid`, id).
		Scan(&c.ID, &c.Name, &c.WalhookID, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errNotFound
	}
	if err != nil {
		return c, fmt.Errorf("get company %s: %w", id, err)
	}
	return c, nil
}

// createCompany adds a company and its first user (the one who signed up) in one transaction.
func (d *db) createCompany(ctx context.Context, name, email string) (string, error) {
	var id string
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO hostapp.companies (name) VALUES ($1) RETURNING id::text`, name).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO hostapp.users (company_id, email, role) VALUES ($1::uuid, $2, 'owner')`, id, email)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create company: %w", err)
	}
	return id, nil
}

func (d *db) setCompanyWalhookID(ctx context.Context, id, walhookID string) error {
	if _, err := d.pool.Exec(ctx, `UPDATE hostapp.companies SET walhook_id = $2 WHERE id = $1::uuid`, id, walhookID); err != nil {
		return fmt.Errorf("record walhook id of company %s: %w", id, err)
	}
	return nil
}

func (d *db) users(ctx context.Context, companyID string) ([]user, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, company_id::text, email, role, coalesce(walhook_member_id, 0)
		FROM hostapp.users WHERE company_id = $1::uuid ORDER BY id`, companyID)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, pgx.RowToStructByPos[user])
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

func (d *db) addUser(ctx context.Context, companyID, email, role string) error {
	if _, err := d.pool.Exec(ctx, `INSERT INTO hostapp.users (company_id, email, role) VALUES ($1::uuid, $2, $3)
		ON CONFLICT (company_id, email) DO NOTHING`, companyID, email, role); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

func (d *db) setUserWalhookID(ctx context.Context, id, memberID int64) error {
	if _, err := d.pool.Exec(ctx, `UPDATE hostapp.users SET walhook_member_id = $2 WHERE id = $1`, id, memberID); err != nil {
		return fmt.Errorf("record walhook id of user %d: %w", id, err)
	}
	return nil
}

func (d *db) contacts(ctx context.Context, companyID string) ([]contact, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, company_id::text, name, coalesce(email, ''), created_at
		FROM hostapp.contacts WHERE company_id = $1::uuid ORDER BY id DESC LIMIT 100`, companyID)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[contact])
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return cs, nil
}

// addContact is an ordinary INSERT: walhook turns it into contact.created for the company's
// webhooks, because catalog.yaml maps inserts into hostapp.contacts to that event.
func (d *db) addContact(ctx context.Context, companyID, name, email string) error {
	if _, err := d.pool.Exec(ctx, `INSERT INTO hostapp.contacts (company_id, name, email) VALUES ($1::uuid, $2, NULLIF($3, ''))`,
		companyID, name, email); err != nil {
		return fmt.Errorf("add contact: %w", err)
	}
	return nil
}

// deleteContact is an ordinary DELETE, which walhook sends as contact.deleted.
func (d *db) deleteContact(ctx context.Context, companyID string, id int64) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM hostapp.contacts WHERE company_id = $1::uuid AND id = $2`, companyID, id); err != nil {
		return fmt.Errorf("delete contact: %w", err)
	}
	return nil
}

// captured reports whether a publication includes hostapp.contacts: whether walhook, started
// with this example's catalog, captures its writes (walhook keeps its publication to the tables
// its catalog maps).
func (d *db) captured(ctx context.Context) (bool, error) {
	var ok bool
	err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE schemaname = 'hostapp' AND tablename = 'contacts')`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up publications: %w", err)
	}
	return ok, nil
}
