// Package pgcluster starts a private PostgreSQL cluster from the distribution's binaries: initdb
// and pg_ctl, wal_level=logical, a Unix socket in a short temporary directory, and TCP only when
// asked. The tests, `walhook dev` and `walhook bench` all use it, so the database they run against
// is a real one configured the same way.
//
// PostgreSQL refuses to run as root. When the current user is root (as in CI), the cluster's files
// are owned by, and its processes run as, the `postgres` system user.
package pgcluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries can be found.
var ErrNoBinaries = errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql` (Debian package postgresql)")

// Options configure a cluster. The zero value of every field is a usable default.
type Options struct {
	// DataDir is the cluster's data directory. It is created with initdb when it does not hold a
	// cluster yet, and reused when it does. Required.
	DataDir string
	// Port is the port number (also the socket file's name). Default 5432 without TCP; with TCP,
	// 0 picks a free port.
	Port int
	// TCP makes the cluster listen on 127.0.0.1 as well as on its socket. Default false.
	TCP bool
	// Durable keeps fsync and full_page_writes on. Default false: tests and benchmarks of the
	// relay do not need crash safety of the test cluster itself.
	Durable bool
	// Settings are extra postgresql.conf settings, name → value, applied on every start.
	Settings map[string]string
}

// Cluster is a running private PostgreSQL cluster.
type Cluster struct {
	binDir  string
	dataDir string
	sockDir string
	port    int
	tcp     bool
	runAs   *syscall.Credential
	started bool // true when Start started the server (as opposed to finding it running)
}

// Superuser is the name of the cluster's superuser.
const Superuser = "postgres"

// FindBinaries returns the directory holding initdb and pg_ctl: PATH first, then the newest
// /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises the data directory when needed and starts the server, or attaches to a server
// already running on it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgcluster: Options.DataDir is required")
	}
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: resolve data dir: %w", err)
	}
	c := &Cluster{binDir: binDir, dataDir: dataDir, tcp: opts.TCP, port: opts.Port}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		c.runAs = cred
	}

	// Reuse a running server on this data directory (`walhook dev` run twice, say).
	if pid, port, sock, ok := readPostmasterPID(dataDir); ok && processAlive(pid) {
		c.port, c.sockDir = port, sock
		c.tcp = opts.TCP
		return c, c.waitReady(ctx)
	}

	if err := c.ensureDirs(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if c.port == 0 {
		if c.tcp {
			if c.port, err = freePort(); err != nil {
				return nil, err
			}
		} else {
			c.port = 5432
		}
	}
	if err := c.writeConf(opts); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	c.started = true
	return c, c.waitReady(ctx)
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root needs the `postgres` system user (created by Debian package postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// sockDirFor is a short, stable socket directory for a data directory: Unix socket paths are
// limited to about 100 bytes, and a data directory can be deep.
func sockDirFor(dataDir string) string {
	h := sha256.Sum256([]byte(dataDir))
	base := "/tmp"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		base = os.TempDir()
	}
	return filepath.Join(base, "walhook-pg-"+hex.EncodeToString(h[:6]))
}

func (c *Cluster) ensureDirs() error {
	c.sockDir = sockDirFor(c.dataDir)
	for _, d := range []string{c.dataDir, c.sockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("pgcluster: create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil { //nolint:gosec // a directory needs x to be entered; 0700 is owner-only
			return fmt.Errorf("pgcluster: chmod %s: %w", d, err)
		}
		if c.runAs != nil {
			if err := os.Chown(d, int(c.runAs.Uid), int(c.runAs.Gid)); err != nil {
				return fmt.Errorf("pgcluster: chown %s: %w", d, err)
			}
		}
	}
	if c.runAs != nil {
		// The postgres user must be able to reach the data directory through its parents.
		for p := filepath.Dir(c.dataDir); p != "/" && p != "."; p = filepath.Dir(p) {
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("pgcluster: stat %s: %w", p, err)
			}
			if fi.Mode().Perm()&0o001 == 0 {
				if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
					return fmt.Errorf("pgcluster: let postgres traverse %s: %w", p, err)
				}
			}
		}
	}
	return nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...) //nolint:gosec // runs the PostgreSQL binaries found by FindBinaries
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.runAs != nil {
		cmd.SysProcAttr.Credential = c.runAs
		cmd.Dir = "/"
	}
	return cmd
}

func (c *Cluster) initdb(ctx context.Context) error {
	cmd := c.command(ctx, "initdb", "--pgdata", c.dataDir, "--username", Superuser,
		"--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: initdb %s: %w\n%s", c.dataDir, err, out)
	}
	return nil
}

func (c *Cluster) writeConf(opts Options) error {
	listen := "''"
	if c.tcp {
		listen = "'127.0.0.1'"
	}
	fsync := "off"
	if opts.Durable {
		fsync = "on"
	}
	set := map[string]string{
		"listen_addresses":        listen,
		"port":                    strconv.Itoa(c.port),
		"unix_socket_directories": "'" + c.sockDir + "'",
		"wal_level":               "logical",
		"max_replication_slots":   "64",
		"max_wal_senders":         "64",
		"max_connections":         "400",
		"fsync":                   fsync,
		"full_page_writes":        fsync,
		"synchronous_commit":      "on",
		"timezone":                "'UTC'",
		"log_min_messages":        "warning",
		"logging_collector":       "off",
	}
	for k, v := range opts.Settings {
		set[k] = v
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# written by walhook's pgcluster on every start\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, set[k])
	}
	path := filepath.Join(c.dataDir, "walhook.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("pgcluster: write %s: %w", path, err)
	}
	if c.runAs != nil {
		if err := os.Chown(path, int(c.runAs.Uid), int(c.runAs.Gid)); err != nil {
			return fmt.Errorf("pgcluster: chown %s: %w", path, err)
		}
	}
	// postgresql.conf includes walhook.conf once.
	main := filepath.Join(c.dataDir, "postgresql.conf")
	data, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("pgcluster: read %s: %w", main, err)
	}
	if !strings.Contains(string(data), "include_if_exists = 'walhook.conf'") {
		f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("pgcluster: open %s: %w", main, err)
		}
		_, werr := f.WriteString("\ninclude_if_exists = 'walhook.conf'\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("pgcluster: append to %s: %w", main, werr)
		}
	}
	return nil
}

func (c *Cluster) logPath() string { return filepath.Join(c.dataDir, "server.log") }

func (c *Cluster) start(ctx context.Context) error {
	// Remove a stale socket lock left by a killed server so the new one can bind.
	_ = os.Remove(filepath.Join(c.sockDir, fmt.Sprintf(".s.PGSQL.%d.lock", c.port)))
	cmd := c.command(ctx, "pg_ctl", "start", "--pgdata", c.dataDir, "--wait", "--timeout", "60",
		"--log", c.logPath(), "--silent")
	if out, err := cmd.CombinedOutput(); err != nil {
		tail, _ := os.ReadFile(c.logPath())
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return fmt.Errorf("pgcluster: pg_ctl start %s: %w\n%s\n%s", c.dataDir, err, out, tail)
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	sock := filepath.Join(c.sockDir, fmt.Sprintf(".s.PGSQL.%d", c.port))
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "unix", sock)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgcluster: server on %s not ready: %w", sock, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: wait for server: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the server with a fast shutdown if Start started it. A cluster Start merely
// attached to keeps running.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.started {
		return nil
	}
	return c.Shutdown(ctx, "fast")
}

// Shutdown stops the server with the given mode ("smart", "fast" or "immediate"), whoever
// started it. Tests use it to restart the database under a running relay.
func (c *Cluster) Shutdown(ctx context.Context, mode string) error {
	cmd := c.command(ctx, "pg_ctl", "stop", "--pgdata", c.dataDir, "--mode", mode, "--wait", "--timeout", "60", "--silent")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop %s: %w\n%s", c.dataDir, err, out)
	}
	c.started = false
	return nil
}

// Restart starts a cluster stopped with Shutdown again, on the same port and socket.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.start(ctx); err != nil {
		return err
	}
	c.started = true
	return c.waitReady(ctx)
}

// URL is a connection URL for database db over the Unix socket.
func (c *Cluster) URL(db string) string {
	q := url.Values{"host": {c.sockDir}, "port": {strconv.Itoa(c.port)}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User(Superuser), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// TCPURL is a connection URL for database db over TCP; empty when the cluster has no TCP.
func (c *Cluster) TCPURL(db string) string {
	if !c.tcp {
		return ""
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.port, db)
}

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// SocketDir is the directory holding the cluster's Unix socket.
func (c *Cluster) SocketDir() string { return c.sockDir }

// Port is the cluster's port number.
func (c *Cluster) Port() int { return c.port }

// BinDir is the directory of the PostgreSQL binaries in use (psql, pg_dump, … live there too).
func (c *Cluster) BinDir() string { return c.binDir }

// readPostmasterPID reads pid, port and socket directory from a running server's postmaster.pid.
func readPostmasterPID(dataDir string) (pid, port int, sockDir string, ok bool) {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, "", false
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if len(lines) < 5 {
		return 0, 0, "", false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil {
		return 0, 0, "", false
	}
	return pid, port, strings.TrimSpace(lines[4]), true
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
