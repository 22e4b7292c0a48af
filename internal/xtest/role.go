package xtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LoginRole creates a LOGIN role with no privileges beyond PUBLIC's, for a test that shows what
// an application's role can and cannot do to walhook, and returns its name and a connection as
// it to the database at dbURL (closed when the test ends). Roles are cluster-wide, so the name is
// the test's own. The role is dropped when the test ends, after DROP OWNED BY it in each pool of
// owns: the databases where the test gives it objects or grants, which otherwise keep the role
// from being dropped.
func LoginRole(t testing.TB, dbURL string, owns ...*pgxpool.Pool) (string, *pgx.Conn) {
	t.Helper()
	ctx := t.Context()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	role := "role_" + hex.EncodeToString(b)
	admin := Cluster(t).URL("postgres")
	if err := roleExec(ctx, admin, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatalf("xtest: create role: %v", err)
	}
	t.Cleanup(func() {
		// The test's context is cancelled before its cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, p := range owns {
			_, _ = p.Exec(ctx, "DROP OWNED BY "+role)
		}
		if err := roleExec(ctx, admin, "DROP ROLE IF EXISTS "+role); err != nil {
			t.Logf("xtest: drop role %s: %v", role, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("xtest: parse url: %v", err)
	}
	u.User = url.User(role)
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("xtest: connect as %s: %v", role, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return role, conn
}

// roleExec runs one statement on a connection of its own to the database at url.
func roleExec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql)
	return err
}
