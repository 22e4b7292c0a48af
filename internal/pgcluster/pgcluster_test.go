package pgcluster_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/pgcluster"
)

// childEnv marks a re-executed test binary that runs as a normal (non-root) user.
const childEnv = "WALHOOK_PGCLUSTER_CHILD"

// startAndCheck starts a cluster in dir, checks it is logical-replication ready and reachable
// only over its socket, restarts it on the same data, and stops it.
func startAndCheck(t *testing.T, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer func() { _ = c.Stop(context.Background()) }()
	require.Empty(t, c.TCPURL("postgres"), "no TCP unless asked")
	require.Less(t, len(c.SocketDir()), 60, "socket directory is short")

	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	var walLevel, listen string
	require.NoError(t, conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel))
	require.NoError(t, conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen))
	require.Equal(t, "logical", walLevel)
	require.Empty(t, listen)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	// Start on a running cluster attaches instead of starting a second server.
	again, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data")})
	require.NoError(t, err)
	require.Equal(t, c.URL("postgres"), again.URL("postgres"))
	require.NoError(t, again.Stop(ctx), "stopping an attached cluster is a no-op")

	// Data survives a stop and a start.
	require.NoError(t, c.Stop(ctx))
	c2, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "data"), TCP: true})
	require.NoError(t, err)
	defer func() { _ = c2.Stop(context.Background()) }()
	require.NotEmpty(t, c2.TCPURL("postgres"))
	conn, err = pgx.Connect(ctx, c2.TCPURL("postgres"))
	require.NoError(t, err)
	var v int
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, 42, v)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, c2.Stop(ctx))
}

// TestStart runs as whoever runs the tests: as root (CI) the server runs as `postgres`.
func TestStart(t *testing.T) {
	t.Parallel()
	if os.Getenv(childEnv) != "" {
		t.Skip("child mode runs TestStartAsNormalUser only")
	}
	dir := t.TempDir()
	startAndCheck(t, dir)
	if os.Geteuid() == 0 {
		fi, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION"))
		require.NoError(t, err)
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		require.Equal(t, u.Uid, strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)), "as root, files belong to postgres")
	}
}

// TestStartAsNormalUser covers the non-root path. As a normal user it runs directly; as root it
// re-executes this test binary as the unprivileged `postgres` system user. The child is test code
// (startAndCheck under another uid), not walhook, so it is the test binary and not xtest.Start.
func TestStartAsNormalUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		startAndCheck(t, t.TempDir())
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres system user to run as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The test binary and a data directory the user can reach.
	dir, err := os.MkdirTemp("", "walhook-pgc-user-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(dir, "pgcluster.test")
	data, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	work := filepath.Join(dir, "work")
	require.NoError(t, os.Mkdir(work, 0o700))
	require.NoError(t, os.Chown(work, uid, gid))

	cmd := exec.Command(bin, "-test.run=^TestStartAsNormalUser$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+work, "HOME="+work)
	cmd.Dir = work
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child run as postgres:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestStartAsNormalUser")
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" && os.Geteuid() != 0 {
		// Re-executed as a normal user: run the non-root path in the given directory.
		os.Setenv("TMPDIR", dir)
	}
	os.Exit(m.Run())
}

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	dir, err := pgcluster.FindBinaries()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir, "initdb"))
}
