// Command hostapp is a worked example of a host application that adds walhook to itself: a tiny
// CRM (companies, their users, their contacts) over its own tables in the same PostgreSQL as
// walhook. It shows the three things a host application does:
//
//   - provisions its companies and users into walhook through the platform API, with the
//     generated Go client (github.com/walhook/walhook/client) and a platform token (walhook.go);
//   - embeds walhook's web page in its own settings screen, in an iframe opened on a one-time
//     portal link minted for the signed-in user at every visit (walhook runs with
//     --frame-ancestors naming this application's origin);
//   - writes contacts as it always would; walhook's catalog (catalog.yaml) maps inserts into
//     hostapp.contacts to contact.created, so each new contact reaches the company's webhooks.
//
// Run it against `walhook dev` (docs/integration.md walks through it):
//
//	go run ./cmd/walhook dev --catalog examples/hostapp/catalog.yaml --frame-ancestors http://127.0.0.1:8090
//	go run ./examples/hostapp            # or: make hostapp
//
// It reads the database URL and the platform token that `walhook dev` writes to
// ./.walhook/database_url and ./.walhook/platform_token, creates its tables, and serves
// http://127.0.0.1:8090. Sign-in, sessions and CSRF protection are left out to keep the example
// short: every visitor acts as the user the page names. A real application mints portal links
// only for its signed-in user.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// config is the application's settings: flags, each with an environment variable.
type config struct {
	Addr          string // listen address of the application
	WalhookURL    string // walhook's admin service, where the platform API and the web page are
	WalhookDir    string // where `walhook dev` wrote database_url and platform_token
	DatabaseURL   string // the shared PostgreSQL; default: <WalhookDir>/database_url
	PlatformToken string // walhook's platform token; default: <WalhookDir>/platform_token
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		var ln net.Listener
		if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr); err == nil {
			err = run(ctx, cfg, ln, os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostapp:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("hostapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", envOr("HOSTAPP_ADDR", "127.0.0.1:8090"), "listen address [HOSTAPP_ADDR]")
	fs.StringVar(&cfg.WalhookURL, "walhook-url", envOr("HOSTAPP_WALHOOK_URL", "http://127.0.0.1:8080"), "walhook's admin service [HOSTAPP_WALHOOK_URL]")
	fs.StringVar(&cfg.WalhookDir, "walhook-dir", envOr("HOSTAPP_WALHOOK_DIR", ".walhook"), "the directory `walhook dev` writes database_url and platform_token to [HOSTAPP_WALHOOK_DIR]")
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("HOSTAPP_DATABASE_URL"), "PostgreSQL URL (default: read from <walhook-dir>/database_url) [HOSTAPP_DATABASE_URL]")
	fs.StringVar(&cfg.PlatformToken, "platform-token", os.Getenv("HOSTAPP_PLATFORM_TOKEN"), "walhook platform token (default: read from <walhook-dir>/platform_token) [HOSTAPP_PLATFORM_TOKEN]")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.DatabaseURL == "" {
		if cfg.DatabaseURL, err = readWalhookFile(cfg.WalhookDir, "database_url"); err != nil {
			return cfg, err
		}
	}
	if cfg.PlatformToken == "" {
		if cfg.PlatformToken, err = readWalhookFile(cfg.WalhookDir, "platform_token"); err != nil {
			return cfg, err
		}
	}
	cfg.WalhookURL = strings.TrimRight(cfg.WalhookURL, "/")
	return cfg, nil
}

// readWalhookFile reads one of the files `walhook dev` writes.
func readWalhookFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("read %s (start `walhook dev` first, from this directory, or pass --walhook-dir): %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// run creates the tables, provisions what is not yet in walhook, and serves on ln until ctx ends.
func run(ctx context.Context, cfg config, ln net.Listener, stdout io.Writer) error {
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool); err != nil {
		return err
	}
	wh, err := newPlatform(cfg.WalhookURL, cfg.PlatformToken)
	if err != nil {
		return err
	}
	a := &app{db: &db{pool: pool}, walhook: wh}
	if ok, err := a.db.captured(ctx); err != nil {
		return err
	} else if !ok {
		// The first run: walhook dev started before these tables existed, with the demo catalog.
		fmt.Fprintf(stdout, "hostapp: walhook does not capture hostapp.contacts yet: restart walhook dev with this example's catalog,\n"+
			"  go run ./cmd/walhook dev --catalog examples/hostapp/catalog.yaml --frame-ancestors http://%s   (make dev-hostapp)\n", ln.Addr())
	}
	// What an earlier run could not provision (walhook was down) goes in now; the pages retry too.
	if err := a.provisionAll(ctx); err != nil {
		fmt.Fprintf(stdout, "hostapp: walhook not reachable yet, companies are provisioned at their next visit: %v\n", err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "hostapp is running on http://%s (walhook at %s)\n", ln.Addr(), cfg.WalhookURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
