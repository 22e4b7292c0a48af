package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

//go:embed devdata/demo.sql
var demoSQL string

const (
	devDatabase     = "walhook"
	devCompanyID    = "1"
	devCompanyName  = "Acme"
	devOwnerEmail   = "owner@acme.test"
	devOwnerName    = "Acme Owner"
	devKeysFile     = "encryption-keys"
	devTokenFile    = "token"
	devPlatformFile = "platform_token"
	devDBURLFile    = "database_url"
	devClusterDir   = "pgdata"
	devFilePerm     = 0o600
	devClusterStart = 2 * time.Minute
	// devLoginCodeTTL is how long the printed one-time sign-in link stays valid.
	devLoginCodeTTL = time.Hour
)

// devCatalogYAML is the demo's trigger-event catalog over the contacts table.
//
//go:embed devdata/catalog.yaml
var devCatalogYAML []byte

func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg serveConfig
	var dir, catalogPath string
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.StringVar(&dir, "dir", ".walhook", "where the private PostgreSQL cluster, keys and token live")
	fs.StringVar(&catalogPath, "catalog", "", "your own trigger-event catalog (YAML) instead of the demo's, validated against the\n"+
		"database as at serve; its tables must exist in the dev database (the demo table contacts always does)")
	fs.StringVar(&cfg.admin.Addr, "addr", "127.0.0.1:8080", "listen address of the admin service")
	registerFrameAncestors(fs, &cfg.admin.FrameAncestors)
	registerPortal(fs, &cfg.admin)
	fs.StringVar(&cfg.common.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&cfg.common.LogFormat, "log-format", "auto", "log format: json, console, or auto")
	if err := parseFlagsOnly(fs, args, "Usage: walhook dev [flags]\n\nStarts (or reuses) a private PostgreSQL under --dir, migrates, seeds the company Acme\nwith an owner and the demo contacts table, prints the owner's API token, and serves\nthe relay and the admin service until Ctrl-C. Data survives a restart. With --catalog,\nthe events are yours: create your tables in the dev database (psql line printed at\nstart), then restart with --catalog."); err != nil {
		return err
	}
	// The catalog's syntax is checked before anything starts; its tables once the database runs.
	catalogName := "demo (contacts; cmd/walhook/devdata/catalog.yaml)"
	var devCat *catalog.Catalog
	var err error
	if catalogPath != "" {
		if devCat, err = catalog.Load(catalogPath); err != nil {
			return fmt.Errorf("--catalog: %w", err)
		}
		catalogName = catalogPath
	} else if devCat, err = catalog.Parse(devCatalogYAML); err != nil {
		return fmt.Errorf("parse demo catalog: %w", err)
	}
	cfg.migrate = true
	cfg.prepareCapture = true
	cfg.admin.TokenMaxLifetime = defaultTokenLifetime
	devDispatch(&cfg.relay.Dispatch) // deliver to receivers on this machine (loopback allowed)
	cfg.common.MaxConns = 20
	cfg.common.ConnectTimeout = 30 * time.Second
	log, err := cfg.common.logger(os.Stderr)
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve --dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // the cluster's parent must be traversable by the postgres user
		return fmt.Errorf("create %s: %w", dir, err)
	}

	sctx, cancel := context.WithTimeout(ctx, devClusterStart)
	cluster, err := pgcluster.Start(sctx, pgcluster.Options{DataDir: filepath.Join(dir, devClusterDir), Durable: true})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := cluster.Stop(stopCtx); err != nil {
			log.Error().Err(err).Msg("stop PostgreSQL")
		}
	}()
	if err := ensureDatabase(ctx, cluster, devDatabase); err != nil {
		return err
	}
	cfg.common.DatabaseURL = cluster.URL(devDatabase)
	if cfg.common.EncryptionKeys, err = readOrCreate(filepath.Join(dir, devKeysFile), func() (string, error) {
		return crypt.GenerateKeySpec("dev1"), nil
	}); err != nil {
		return err
	}
	st, pool, err := cfg.common.open(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := st.MigrateUp(ctx); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, demoSQL); err != nil {
		return fmt.Errorf("create demo table: %w", err)
	}
	if err := devCat.Sync(ctx, st, st); err != nil {
		if catalogPath != "" {
			return fmt.Errorf("--catalog %s: %w", catalogPath, err)
		}
		return fmt.Errorf("load demo catalog: %w", err)
	}
	token, err := seedDev(ctx, st, filepath.Join(dir, devTokenFile))
	if err != nil {
		return err
	}
	platformToken, err := seedDevPlatform(ctx, st, filepath.Join(dir, devPlatformFile))
	if err != nil {
		return err
	}
	owner, err := st.MemberGetByEmail(ctx, devCompanyID, devOwnerEmail)
	if err != nil {
		return fmt.Errorf("look up the owner: %w", err)
	}
	loginCode, err := st.LoginCodeCreate(ctx, devCompanyID, owner.ID, devLoginCodeTTL)
	if err != nil {
		return fmt.Errorf("make a sign-in link: %w", err)
	}
	dbURL := cluster.URL(devDatabase)
	if err := os.WriteFile(filepath.Join(dir, devDBURLFile), []byte(dbURL+"\n"), devFilePerm); err != nil {
		return fmt.Errorf("write database url: %w", err)
	}

	emitExample := "" // the demo's outbox event; a catalog of your own has its own
	if catalogPath == "" {
		emitExample = fmt.Sprintf("        %s/psql '%s' -c \"SELECT walhook.emit('1', 'contact.note_added', '{\\\"contact_id\\\": 1, \\\"note\\\": \\\"Called back\\\"}')\"\n",
			cluster.BinDir(), dbURL)
	}
	return serve(ctx, cfg, st, log, true, true, func(addr net.Addr) {
		// The sign-in link is built like the platform API's portal links: --public-url when given.
		base := "http://" + addr.String()
		if cfg.admin.PublicURL != "" {
			base = cfg.admin.PublicURL
		}
		loginLink := base + "/#login=" + loginCode
		fmt.Fprintf(stdout, `
walhook dev is running.

  Web page       %[11]s
                 (a one-time link that signs you in as the owner; valid for an hour, once)
  Admin API      http://%[1]s/v1   (health: http://%[1]s/healthz, metrics: http://%[1]s/metrics)
  Company        %[2]s (id %[3]s), owner %[4]s
  API token      %[5]s
                 (also in %[6]s)
  Platform token %[14]s
                 (also in %[15]s; for /v1/platform: companies, members, portal links)
  Database       %[7]s
                 (also in %[8]s)
  psql           %[9]s/psql '%[7]s'
  Catalog        %[12]s

  Try:  curl -H "Authorization: Bearer $(cat %[6]s)" http://%[1]s/v1/me
        %[9]s/psql '%[7]s' -c "INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Ada', 'ada@example.com')"
%[13]s
Ctrl-C stops walhook and its PostgreSQL; data stays in %[10]s.
`, addr, devCompanyName, devCompanyID, devOwnerEmail, token, filepath.Join(dir, devTokenFile), dbURL,
			filepath.Join(dir, devDBURLFile), cluster.BinDir(), dir, loginLink, catalogName, emitExample,
			platformToken, filepath.Join(dir, devPlatformFile))
	})
}

func ensureDatabase(ctx context.Context, c *pgcluster.Cluster, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the private cluster: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// readOrCreate returns a file's trimmed content, creating it with make() when missing.
func readOrCreate(path string, make func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v, err := make()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(v+"\n"), devFilePerm); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

// seedDev makes sure Acme, its owner and a working owner token exist; it reuses the token in
// tokenPath while it still authenticates.
func seedDev(ctx context.Context, st *store.Store, tokenPath string) (string, error) {
	if _, err := st.CompanyGet(ctx, devCompanyID); errors.Is(err, store.ErrNotFound) {
		if _, err := st.CompanyCreate(ctx, devCompanyID, devCompanyName); err != nil {
			return "", fmt.Errorf("seed company: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("look up company: %w", err)
	}
	owner, err := st.MemberGetByEmail(ctx, devCompanyID, devOwnerEmail)
	if errors.Is(err, store.ErrNotFound) {
		owner, err = st.MemberCreate(ctx, store.Member{CompanyID: devCompanyID, Email: devOwnerEmail, Name: devOwnerName, IsOwner: true})
	}
	if err != nil {
		return "", fmt.Errorf("seed owner: %w", err)
	}
	if b, err := os.ReadFile(tokenPath); err == nil {
		tok := strings.TrimSpace(string(b))
		if p, err := st.Authenticate(ctx, tok); err == nil && p.MemberID == owner.ID {
			return tok, nil
		}
	}
	// Like every token it expires; a later start makes a new one when this one no longer works.
	exp := time.Now().Add(defaultTokenLifetime)
	tok, _, err := st.APITokenCreate(ctx, devCompanyID, owner.ID, "walhook dev", &exp)
	if err != nil {
		return "", fmt.Errorf("create owner token: %w", err)
	}
	if err := os.WriteFile(tokenPath, []byte(tok+"\n"), devFilePerm); err != nil {
		return "", fmt.Errorf("write token: %w", err)
	}
	return tok, nil
}

// seedDevPlatform makes sure a working platform token exists (the host application's, for
// /v1/platform); it reuses the one in path while it still authenticates, like the owner's token.
func seedDevPlatform(ctx context.Context, st *store.Store, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if _, err := st.PlatformAuthenticate(ctx, tok); err == nil {
			return tok, nil
		}
	}
	exp := time.Now().Add(defaultTokenLifetime)
	tok, _, err := st.PlatformTokenCreate(ctx, "walhook dev", &exp)
	if err != nil {
		return "", fmt.Errorf("create platform token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), devFilePerm); err != nil {
		return "", fmt.Errorf("write platform token: %w", err)
	}
	return tok, nil
}
