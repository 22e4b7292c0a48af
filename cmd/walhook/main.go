// Command walhook turns an application's PostgreSQL writes into webhooks. One binary, several
// subcommands: serve (relay + admin), relay, admin, migrate, split, dev, slot, quarantine, and the bootstrap
// commands company, member and token. Run `walhook help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the relay and the admin service in one process", runServe},
		{"relay", "run the relay only (capture, fan-out, dispatch)", runRelay},
		{"admin", "run the admin service only (API, web page)", runAdmin},
		{"migrate", "apply or revert the schema: migrate up|down|status", runMigrate},
		{"split", "move a single-database installation to two databases: split --database-url NEW --source-database-url OLD [--yes]", runSplit},
		{"dev", "run everything on a private local PostgreSQL with demo data", runDev},
		{"bench", "measure throughput, latency, fan-out, isolation, backlog and scale: bench [--quick]", runBench},
		{"slot", "inspect or drop the replication slot: slot status|drop --yes", runSlot},
		{"quarantine", "events capture set aside: quarantine list|show ID|retry ID|drop ID", runQuarantine},
		{"company", "manage companies: company create --id ID --name NAME", runCompany},
		{"member", "manage members: member add --company ID --email E [--owner]", runMember},
		{"token", "manage API tokens: token create --company ID --email E; platform tokens: token create|list|revoke --platform", runToken},
		{"keygen", "print a new encryption key for --encryption-keys", runKeygen},
		{"keys", "re-seal every secret with the first key: keys reseal", runKeys},
		{"emit-key", "rotate the key walhook.emit signs its messages with: emit-key rotate", runEmitKey},
		{"healthcheck", "probe a running walhook: healthcheck --url http://127.0.0.1:8080/healthz", runHealthcheck},
		{"version", "print the version", func(_ context.Context, _ []string, w io.Writer) error {
			_, err := fmt.Fprintln(w, "walhook", version)
			return err
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "walhook %s — webhooks from PostgreSQL\n\nUsage: walhook <command> [flags]\n\nCommands:\n", version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `walhook <command> --help` for a command's flags; they may come before or after its arguments\n(walhook migrate up --database-url URL). Every flag can also be set with an environment variable WALHOOK_<FLAG_NAME>.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signalContext()
		defer stop()
		err := c.run(ctx, args[1:], stdout)
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "walhook %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "walhook: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// signalContext is cancelled by the first SIGINT or SIGTERM, so everything running stops softly
// within its budget; a second signal exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "walhook: second %v, exiting now\n", s)
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
}
