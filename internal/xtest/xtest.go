// Package xtest gives tests a real PostgreSQL: one private cluster per test binary (started on
// first use, stopped by Main), a template database migrated once, and a fresh clone of it per
// test, so tests run in parallel and never see each other's rows. It is also the one way tests
// run walhook as a process (proc.go: the binary built once, Start, Serve, Run), it has the
// bounded wait on a condition tests use instead of sleeping (Eventually), it reads the shell
// commands out of a doc for the tests that run them as written (DocCommands), it makes an
// application's low-privilege role (LoginRole), and it reads a metric from the registry a test
// gave a component (Sample).
//
// Every package whose tests touch the database has
//
//	func TestMain(m *testing.M) { xtest.Main(m) }
package xtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

const (
	templateDB       = "walhook_template"
	sourceTemplateDB = "walhook_source_template"
)

// TwoDatabasesEnv set to 1 runs the tests that capture with the application's database apart from
// walhook's (Source returns a database of its own): `make test` runs the capture packages again so.
const TwoDatabasesEnv = "WALHOOK_TEST_TWO_DATABASES"

// TwoDatabases reports whether this test run keeps the application's database apart from
// walhook's (TwoDatabasesEnv=1).
func TwoDatabases() bool { return os.Getenv(TwoDatabasesEnv) == "1" }

// The test binary's cluster. Test helpers are the one place package state is fine: a test binary
// is one process, and Main owns the cluster's lifetime.
var (
	mu       sync.Mutex
	cluster  *pgcluster.Cluster
	dataRoot string
	errStart error
	// sourceReady and errSource: the source template (makeSourceTemplate).
	sourceReady bool
	errSource   error
	inMain      bool
	dbSeq       atomic.Int64
	binOnce     sync.Once
	binDir      string
	binPath     string
	errBin      error
	keys        = mustKeys()
)

func mustKeys() *crypt.Keyring {
	k, err := crypt.ParseKeyring(crypt.GenerateKeySpec("test"))
	if err != nil {
		panic(err)
	}
	return k
}

// Main runs the package's tests and stops the cluster afterwards. Call it from TestMain. The
// functions in after run once the tests are done, before the process exits (Main never returns).
func Main(m *testing.M) {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "xtest: stop cluster:", err)
		}
		cancel()
		_ = os.RemoveAll(dataRoot)
	}
	mu.Unlock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Cluster returns the test binary's cluster, starting it (and building the template database) on
// first use.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("xtest: add `func TestMain(m *testing.M) { xtest.Main(m) }` to this package's tests")
	}
	if cluster == nil && errStart == nil {
		errStart = start()
	}
	if errStart != nil {
		t.Fatalf("xtest: start PostgreSQL: %v", errStart)
	}
	return cluster
}

func start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if dataRoot, err = os.MkdirTemp("", "walhook-test-"); err != nil {
		return fmt.Errorf("make data dir: %w", err)
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dataRoot + "/data"})
	if err != nil {
		return err
	}
	cluster = c
	return createMigrated(ctx, templateDB, "template", (*store.Store).MigrateUp)
}

// createMigrated creates database name on the cluster and migrates it with migrate; what names
// it in errors.
func createMigrated(ctx context.Context, name, what string, migrate func(*store.Store, context.Context) ([]int, error)) error {
	admin, err := pgx.Connect(ctx, cluster.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	pool, err := pgxpool.New(ctx, cluster.URL(name))
	if err != nil {
		return fmt.Errorf("connect %s: %w", what, err)
	}
	defer pool.Close()
	if _, err := migrate(store.New(pool, keys), ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", what, err)
	}
	return nil
}

// makeSourceTemplate creates the source template database (the source migration set only) on
// first use. Call with mu held.
func makeSourceTemplate() error {
	if sourceReady || errSource != nil {
		return errSource
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errSource = createMigrated(ctx, sourceTemplateDB, "source template", (*store.Store).MigrateSourceUp)
	sourceReady = errSource == nil
	return errSource
}

// DatabaseURL creates a fresh database, migrated, for this test alone and returns its URL. It is
// dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	return clone(t, templateDB)
}

// SourceURL returns the application's database for a test whose walhook database is walhookURL:
// walhookURL itself (one database, the default), or, with TwoDatabasesEnv=1, a fresh database of
// its own in the same cluster, migrated with the source set only (walhook.outbox, walhook.emit,
// its keys and settings), dropped when the test ends.
func SourceURL(t testing.TB, walhookURL string) string {
	t.Helper()
	if !TwoDatabases() {
		return walhookURL
	}
	return SeparateSourceURL(t)
}

// SeparateSourceURL creates an application's database apart from walhook's for this test alone,
// whatever TwoDatabasesEnv says (for tests about two databases): a fresh database in the test
// cluster, migrated with the source set only, dropped when the test ends.
func SeparateSourceURL(t testing.TB) string {
	t.Helper()
	Cluster(t)
	mu.Lock()
	err := makeSourceTemplate()
	mu.Unlock()
	if err != nil {
		t.Fatalf("xtest: %v", err)
	}
	return clone(t, sourceTemplateDB)
}

// Source returns the application's database for a test whose walhook database is st at
// walhookURL (see SourceURL): st itself by default; with TwoDatabasesEnv=1 a store over a pool on
// a database of its own (closed when the test ends). Pass it as capture.Config.Source (nil
// when it is st).
func Source(t testing.TB, st *store.Store, walhookURL string) (*store.Store, string) {
	t.Helper()
	url := SourceURL(t, walhookURL)
	if url == walhookURL {
		return st, url
	}
	return SourceStore(t, url), url
}

// SourceStore returns a store over a pool on the database at url (closed when the test ends).
func SourceStore(t testing.TB, url string) *store.Store {
	t.Helper()
	return store.New(PoolOn(t, url), keys)
}

// PoolOn opens a pool of up to 8 connections on the database at url, closed when the test ends:
// for a test that hands a database's URL to a command or a process (DatabaseURL) and reads or
// seeds that database itself.
func PoolOn(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("xtest: parse url: %v", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("xtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// clone creates a database from template for this test alone and returns its URL; it is dropped
// when the test ends.
func clone(t testing.TB, template string) string {
	t.Helper()
	c := Cluster(t)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("xtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	// CREATE DATABASE … TEMPLATE fails while another session is copying the same template; retry.
	for i := 0; ; i++ {
		_, err = admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template)
		if err == nil {
			break
		}
		if i == 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			t.Fatalf("xtest: create database: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			t.Logf("xtest: connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// Replication slots made by the test hold the database open; drop them first.
		_, _ = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE database = $1 AND NOT active`, name)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("xtest: drop %s: %v", name, err)
		}
	})
	return c.URL(name)
}

// Pool returns a pool on a fresh database for this test.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolOn(t, DatabaseURL(t))
}

// Keys is the keyring every test store uses.
func Keys() *crypt.Keyring { return keys }

// Store returns a store on a fresh database for this test, and its pool.
func Store(t testing.TB) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool := Pool(t)
	return store.New(pool, keys), pool
}

// Walhook builds the walhook binary once per test binary — the way the image does: static
// (CGO_ENABLED=0) and -trimpath — for tests that run it as a real process (Start, Serve, Run
// run it; a test needs the path itself only to check the file or hand it to other code). Main
// removes it.
func Walhook(t testing.TB) string {
	t.Helper()
	mu.Lock()
	ok := inMain
	mu.Unlock()
	if !ok {
		t.Fatal("xtest: add `func TestMain(m *testing.M) { xtest.Main(m) }` to this package's tests")
	}
	binOnce.Do(func() {
		if binDir, errBin = os.MkdirTemp("", "walhook-bin-"); errBin != nil {
			return
		}
		binPath = filepath.Join(binDir, "walhook")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", binPath, "github.com/walhook/walhook/cmd/walhook") //nolint:gosec // the output path is our own temp dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			errBin = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	if errBin != nil {
		t.Fatalf("xtest: build walhook: %v", errBin)
	}
	return binPath
}
