package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// TestBootstrap makes a company, its owner and a token with the CLI, as the README shows, and the
// token authenticates as the owner.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	ctx := xtest.Context(t)
	db := xtest.DatabaseURL(t)
	run := func(f func(context.Context, []string, io.Writer) error, args ...string) (string, error) {
		var out bytes.Buffer
		err := f(ctx, append(args, "--database-url", db, "--log-format", "json"), &out)
		return out.String(), err
	}
	out, err := run(runCompany, "create", "--id", "42", "--name", "Acme")
	require.NoError(t, err)
	require.Contains(t, out, "company 42 (Acme) created")
	_, err = run(runCompany, "create", "--id", "42", "--name", "Again")
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = run(runCompany, "create", "--id", "43")
	require.ErrorContains(t, err, "--id and --name are required")
	_, err = run(runCompany, "delete", "--id", "43", "--name", "x")
	require.ErrorContains(t, err, "want: company create")

	out, err = run(runMember, "add", "--company", "42", "--email", "owner@acme.test", "--owner")
	require.NoError(t, err)
	require.Contains(t, out, "owner=true")
	// The verb may also come after the flags, as before.
	var buf bytes.Buffer
	require.NoError(t, runMember(ctx, []string{"--database-url", db, "--company", "42", "--email", "dev@acme.test", "add"}, &buf))
	_, err = run(runMember, "add", "--company", "nope", "--email", "x@y.test")
	require.Error(t, err)

	token, err := run(runToken, "create", "--company", "42", "--email", "owner@acme.test", "--ttl", "24h")
	require.NoError(t, err)
	_, err = run(runToken, "create", "--company", "42", "--email", "ghost@acme.test")
	require.ErrorIs(t, err, store.ErrNotFound)

	pool, err := pgxpool.New(ctx, db)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	p, err := store.New(pool, xtest.Keys()).Authenticate(ctx, strings.TrimSpace(token))
	require.NoError(t, err)
	require.Equal(t, "42", p.CompanyID)
	require.True(t, p.IsOwner)
	require.True(t, p.Can(webhook.PermManageWebhooks))
}

// TestEmitKeyRotate rotates the emit key with the CLI: the new key is the newest, the previous
// one stays, older ones go.
func TestEmitKeyRotate(t *testing.T) {
	t.Parallel()
	ctx := xtest.Context(t)
	db := xtest.DatabaseURL(t)
	for _, want := range []string{"emit key 2 signs from now on; key 1 still verifies\n", "emit key 3 signs from now on; key 2 still verifies\n"} {
		var out bytes.Buffer
		require.NoError(t, runEmitKey(ctx, []string{"rotate", "--database-url", db, "--log-format", "json"}, &out))
		require.Equal(t, want, out.String())
	}
	pool, err := pgxpool.New(ctx, db)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	keys, _, err := store.New(pool, nil).EmitKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.Equal(t, []int32{3, 2}, []int32{keys[0].ID, keys[1].ID})
	require.ErrorContains(t, runEmitKey(ctx, []string{"spin"}, io.Discard), "want emit-key rotate")
}
