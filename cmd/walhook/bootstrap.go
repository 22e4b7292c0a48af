package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

// Bootstrap commands create the first company, member and token of a fresh install; after that,
// owners use the API.

// verbArgs splits "VERB --flags…" (or "--flags… VERB") into the verb and the flags, so the verb
// may come first as the usage shows: the flag package stops at the first non-flag argument.
func verbArgs(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func runCompany(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var id, name string
	fs := flag.NewFlagSet("company", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&id, "id", "", "the application's company id (required)")
	fs.StringVar(&name, "name", "", "display name (required)")
	verb, args := verbArgs(args)
	if err := parseFlags(fs, args, "Usage: walhook company create --id ID --name NAME"); err != nil {
		return err
	}
	if verb == "" {
		verb = fs.Arg(0)
	}
	if verb != "create" {
		return errors.New("want: company create --id ID --name NAME")
	}
	if id == "" || name == "" {
		return errors.New("--id and --name are required")
	}
	return withStore(ctx, cfg, func(st *store.Store) error {
		c, err := st.CompanyCreate(ctx, id, name)
		if err != nil {
			return fmt.Errorf("create company %q: %w", id, err)
		}
		_, err = fmt.Fprintf(stdout, "company %s (%s) created\n", c.ID, c.Name)
		return err
	})
}

func runMember(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var company, email, name string
	var owner bool
	fs := flag.NewFlagSet("member", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&company, "company", "", "company id (required)")
	fs.StringVar(&email, "email", "", "member email (required)")
	fs.StringVar(&name, "name", "", "member display name")
	fs.BoolVar(&owner, "owner", false, "make the member the company owner (holds every permission)")
	verb, args := verbArgs(args)
	if err := parseFlags(fs, args, "Usage: walhook member add --company ID --email EMAIL [--name N] [--owner]"); err != nil {
		return err
	}
	if verb == "" {
		verb = fs.Arg(0)
	}
	if verb != "add" {
		return errors.New("want: member add --company ID --email EMAIL")
	}
	if company == "" || email == "" {
		return errors.New("--company and --email are required")
	}
	return withStore(ctx, cfg, func(st *store.Store) error {
		m, err := st.MemberCreate(ctx, store.Member{CompanyID: company, Email: email, Name: name, IsOwner: owner})
		if err != nil {
			return fmt.Errorf("add member %q to company %q: %w", email, company, err)
		}
		_, err = fmt.Fprintf(stdout, "member %d (%s) added to company %s, owner=%v\n", m.ID, m.Email, m.CompanyID, m.IsOwner)
		return err
	})
}

// runToken makes an API token. It expires after --ttl (default 90 days, the server's default
// --token-max-lifetime); one that never expires is the operator's explicit choice, --no-expiry.
func runToken(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var company, email, name string
	var ttl time.Duration
	var noExpiry bool
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&company, "company", "", "company id (required)")
	fs.StringVar(&email, "email", "", "email of the member the token speaks for (required)")
	fs.StringVar(&name, "name", "cli", "a label for the token")
	durationVar(fs, &ttl, "ttl", defaultTokenLifetime, "token lifetime")
	fs.BoolVar(&noExpiry, "no-expiry", false, "make a token that never expires (instead of --ttl)")
	verb, args := verbArgs(args)
	if err := parseFlags(fs, args, "Usage: walhook token create --company ID --email EMAIL [--name N] [--ttl 720h | --no-expiry]"); err != nil {
		return err
	}
	if verb == "" {
		verb = fs.Arg(0)
	}
	if verb != "create" {
		return errors.New("want: token create --company ID --email EMAIL")
	}
	if company == "" || email == "" {
		return errors.New("--company and --email are required")
	}
	if ttl <= 0 && !noExpiry {
		return errors.New("--ttl must be positive; a token that never expires needs --no-expiry")
	}
	return withStore(ctx, cfg, func(st *store.Store) error {
		m, err := st.MemberGetByEmail(ctx, company, email)
		if err != nil {
			return fmt.Errorf("find member %q of company %q: %w", email, company, err)
		}
		var exp *time.Time
		if !noExpiry {
			t := time.Now().Add(ttl)
			exp = &t
		}
		token, _, err := st.APITokenCreate(ctx, company, m.ID, name, exp)
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		_, err = fmt.Fprintln(stdout, token)
		return err
	})
}

func runKeygen(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	id := fs.String("id", "k1", "key id")
	if err := parseFlags(fs, args, "Usage: walhook keygen [--id k1]\n\nPrints a new encryption key spec for --encryption-keys."); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, crypt.GenerateKeySpec(*id))
	return err
}

// withStore opens the store (no migrations, no keyring needed beyond parsing) for a bootstrap
// command.
func withStore(ctx context.Context, cfg commonConfig, fn func(*store.Store) error) error {
	log, err := cfg.logger(os.Stderr)
	if err != nil {
		return err
	}
	if cfg.EncryptionKeys == "" {
		// Companies, members and tokens hold no sealed secrets.
		cfg.EncryptionKeys = crypt.GenerateKeySpec("unused")
	}
	st, pool, err := cfg.open(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(st)
}

// runKeys re-seals every sealed value with the keyring's first key, bound to its row: the upgrade
// from version-1 values and the second half of a key rotation (after it, the old keys can leave
// --encryption-keys). It is idempotent and safe while walhook runs: a row edited meanwhile is
// left to the edit, which sealed it with the current key already.
func runKeys(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var batch int
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	cfg.register(fs)
	fs.IntVar(&batch, "batch-size", 500, "rows re-sealed per transaction")
	verb, args := verbArgs(args)
	if err := parseFlags(fs, args, "Usage: walhook keys reseal [--batch-size 500]\n\nRe-seals every secret with the first key of --encryption-keys, bound to its row."); err != nil {
		return err
	}
	if verb == "" {
		verb = fs.Arg(0)
	}
	if verb != "reseal" {
		return errors.New("want: keys reseal")
	}
	if batch <= 0 {
		return errors.New("--batch-size must be positive")
	}
	log, err := cfg.logger(os.Stderr)
	if err != nil {
		return err
	}
	st, pool, err := cfg.open(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := st.Reseal(ctx, batch, func(table string, c store.ResealCounts) {
		log.Info().Str("table", table).Int("resealed", c.Resealed).Int("current", c.Current).Int("sealed", c.Sealed).Msg("reseal progress")
	})
	if err != nil {
		return fmt.Errorf("reseal: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "resealed %d, already current %d, unreadable %d, changed meanwhile %d, plain values sealed %d (key %s)\n",
		n.Resealed, n.Current, n.Unreadable, n.Changed, n.Sealed, st.Keys().CurrentKeyID()); err != nil {
		return err
	}
	if n.Unreadable > 0 {
		return fmt.Errorf("%d sealed values did not open (moved between rows, changed, or sealed with a key not in --encryption-keys) and were left as they are; the webhooks and credentials holding them show why (secret_error) — set those secrets again", n.Unreadable)
	}
	return nil
}
