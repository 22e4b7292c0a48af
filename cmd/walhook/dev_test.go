package main

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

var adminLine = regexp.MustCompile(`Admin API\s+http://([0-9.:]+)/v1`)

// startDev runs `walhook dev` and returns the admin address once it serves.
func startDev(t *testing.T, bin, dir string) (*exec.Cmd, string, <-chan error) {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--dir", dir, "--addr", "127.0.0.1:0", "--log-format", "json")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := adminLine.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()
	select {
	case addr := <-addrc:
		return cmd, addr, done
	case err := <-done:
		t.Fatalf("walhook dev exited before serving: %v", err)
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("walhook dev did not start in 90s")
	}
	return nil, "", nil
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func stopDev(t *testing.T, cmd *exec.Cmd, done <-chan error) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "walhook dev exits 0 on SIGTERM")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("walhook dev did not stop within 60s of SIGTERM")
	}
}

// TestDev runs `walhook dev` as a real process twice on the same directory: it serves health,
// readiness and metrics, writes the token and database URL, stops its PostgreSQL on SIGTERM, and
// keeps its data (the same token still works) across a restart.
func TestDev(t *testing.T) {
	t.Parallel()
	bin := xtest.Walhook(t)
	dir := filepath.Join(t.TempDir(), ".walhook")

	cmd, addr, done := startDev(t, bin, dir)
	code, body := get(t, "http://"+addr+"/healthz", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, _ = get(t, "http://"+addr+"/readyz", "")
	require.Equal(t, http.StatusOK, code)
	code, body = get(t, "http://"+addr+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "go_goroutines")

	tok, err := os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(tok), "whk_"))
	dbURL, err := os.ReadFile(filepath.Join(dir, "database_url"))
	require.NoError(t, err)
	require.Contains(t, string(dbURL), "postgres://")
	stopDev(t, cmd, done)
	_, err = os.Stat(filepath.Join(dir, "pgdata", "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "PostgreSQL stopped with walhook dev")

	cmd, addr, done = startDev(t, bin, dir)
	tok2, err := os.ReadFile(filepath.Join(dir, "token"))
	require.NoError(t, err)
	require.Equal(t, string(tok), string(tok2), "the owner's token survives a restart")
	code, _ = get(t, "http://"+addr+"/healthz", "")
	require.Equal(t, http.StatusOK, code)
	stopDev(t, cmd, done)
}

func TestHelpListsCommandsAndEnv(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	require.Equal(t, 0, run([]string{"help"}, &out, &out))
	for _, c := range []string{"serve", "relay", "admin", "migrate", "dev", "company", "member", "token"} {
		require.Contains(t, out.String(), "  "+c)
	}
	out.Reset()
	var cfg serveConfig
	fs := newFlagSet("serve")
	fs.SetOutput(&out)
	cfg.register(fs)
	require.ErrorIs(t, parseFlags(fs, []string{"--help"}, "Usage: walhook serve"), flag.ErrHelp)
	require.Contains(t, out.String(), "--database-url  [WALHOOK_DATABASE_URL]")
	out.Reset()
	require.Equal(t, 2, run([]string{"nope"}, &out, &out))
	require.Contains(t, out.String(), `unknown command "nope"`)
}

func TestEnvOverridesDefaultsButNotFlags(t *testing.T) {
	t.Setenv("WALHOOK_ADDR", "127.0.0.1:9999")
	t.Setenv("WALHOOK_LOG_LEVEL", "debug")
	var cfg serveConfig
	fs := newFlagSet("serve")
	cfg.register(fs)
	require.NoError(t, parseFlags(fs, []string{"--log-level", "warn"}, ""))
	require.Equal(t, "127.0.0.1:9999", cfg.admin.Addr)
	require.Equal(t, "warn", cfg.common.LogLevel)
}
