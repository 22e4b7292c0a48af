package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

// Bootstrap commands create the first company, member and token of a fresh install; after that,
// owners use the API.

func runCompany(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var id, name string
	fs := flag.NewFlagSet("company", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&id, "id", "", "the application's company id (required)")
	fs.StringVar(&name, "name", "", "display name (required)")
	if err := parseFlags(fs, args, "Usage: walhook company create --id ID --name NAME"); err != nil {
		return err
	}
	if err := requireVerb(fs, "create", "want: company create --id ID --name NAME"); err != nil {
		return err
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
	if err := parseFlags(fs, args, "Usage: walhook member add --company ID --email EMAIL [--name N] [--owner]"); err != nil {
		return err
	}
	if err := requireVerb(fs, "add", "want: member add --company ID --email EMAIL"); err != nil {
		return err
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

// runToken makes an API token: a company member's, or with --platform the host application's
// platform token (for /v1/platform; not tied to a company). It expires after --ttl (default 90
// days, the server's default --token-max-lifetime); one that never expires is the operator's
// explicit choice, --no-expiry. `token list --platform` and `token revoke --platform --id N` list
// and revoke platform tokens (a member's tokens are listed and revoked in the API).
func runToken(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg commonConfig
	var company, email, name string
	var ttl time.Duration
	var noExpiry, platform bool
	var id int64
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	cfg.register(fs)
	fs.StringVar(&company, "company", "", "company id (required for a member's token)")
	fs.StringVar(&email, "email", "", "email of the member the token speaks for (required for a member's token)")
	fs.BoolVar(&platform, "platform", false, "make a platform token (whp_…) for the host application's /v1/platform calls instead of a member's")
	fs.StringVar(&name, "name", "cli", "a label for the token")
	durationVar(fs, &ttl, "ttl", defaultTokenLifetime, "token lifetime")
	fs.BoolVar(&noExpiry, "no-expiry", false, "make a token that never expires (instead of --ttl)")
	fs.Int64Var(&id, "id", 0, "revoke: the platform token's id (token list --platform shows it)")
	if err := parseFlags(fs, args, "Usage: walhook token create --company ID --email EMAIL [--name N] [--ttl 720h | --no-expiry]\n"+
		"       walhook token create --platform [--name N] [--ttl 720h | --no-expiry]\n"+
		"       walhook token list --platform\n"+
		"       walhook token revoke --platform --id N"); err != nil {
		return err
	}
	verb, err := verbOnly(fs)
	if err != nil {
		return err
	}
	switch {
	case (verb == "list" || verb == "revoke") && !platform:
		return errors.New("token " + verb + " is for platform tokens (--platform); a member's tokens are listed and revoked in the API (/v1/tokens)")
	case verb == "list":
		return withStore(ctx, cfg, func(st *store.Store) error { return listPlatformTokens(ctx, st, stdout) })
	case verb == "revoke":
		if id <= 0 {
			return errors.New("--id is required: the platform token's id (token list --platform)")
		}
		return withStore(ctx, cfg, func(st *store.Store) error {
			if err := st.PlatformTokenRevoke(ctx, id); err != nil {
				return fmt.Errorf("revoke platform token %d: %w", id, err)
			}
			_, err := fmt.Fprintf(stdout, "platform token %d revoked\n", id)
			return err
		})
	case verb != "create":
		return errors.New("want: token create --company ID --email EMAIL, token create --platform, token list --platform or token revoke --platform --id N")
	}
	switch {
	case platform && (company != "" || email != ""):
		return errors.New("a platform token belongs to no company: give --platform without --company and --email")
	case !platform && (company == "" || email == ""):
		return errors.New("--company and --email are required (or --platform for a platform token)")
	}
	if ttl <= 0 && !noExpiry {
		return errors.New("--ttl must be positive; a token that never expires needs --no-expiry")
	}
	if platform {
		return withStore(ctx, cfg, func(st *store.Store) error {
			token, _, err := st.PlatformTokenCreate(ctx, name, tokenExpiry(ttl, noExpiry))
			if err != nil {
				return fmt.Errorf("create platform token: %w", err)
			}
			_, err = fmt.Fprintln(stdout, token)
			return err
		})
	}
	return withStore(ctx, cfg, func(st *store.Store) error {
		m, err := st.MemberGetByEmail(ctx, company, email)
		if err != nil {
			return fmt.Errorf("find member %q of company %q: %w", email, company, err)
		}
		token, _, err := st.APITokenCreate(ctx, company, m.ID, name, tokenExpiry(ttl, noExpiry))
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		_, err = fmt.Fprintln(stdout, token)
		return err
	})
}

// tokenExpiry is when a token made now expires: after ttl, or never (nil) with --no-expiry.
func tokenExpiry(ttl time.Duration, noExpiry bool) *time.Time {
	if noExpiry {
		return nil
	}
	t := time.Now().Add(ttl)
	return &t
}

// listPlatformTokens prints one line per platform token: id, prefix, name and its times.
func listPlatformTokens(ctx context.Context, st *store.Store, stdout io.Writer) error {
	ts, err := st.PlatformTokenList(ctx)
	if err != nil {
		return fmt.Errorf("list platform tokens: %w", err)
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPREFIX\tNAME\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range ts {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Prefix, t.Name, at(&t.CreatedAt), at(t.ExpiresAt), at(t.LastUsedAt), at(t.RevokedAt))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write platform tokens: %w", err)
	}
	return nil
}

func runKeygen(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	id := fs.String("id", "k1", "key id")
	if err := parseFlagsOnly(fs, args, "Usage: walhook keygen [--id k1]\n\nPrints a new encryption key spec for --encryption-keys."); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, crypt.GenerateKeySpec(*id))
	return err
}

// verbOnly returns a bootstrap command's verb, its one argument (before or after the flags).
func verbOnly(fs *flag.FlagSet) (string, error) {
	if fs.NArg() > 1 {
		return "", fmt.Errorf("unexpected arguments %q after %q", fs.Args()[1:], fs.Arg(0))
	}
	return fs.Arg(0), nil
}

// requireVerb checks that a bootstrap command's one argument (verbOnly) is verb, and answers
// the error want otherwise.
func requireVerb(fs *flag.FlagSet, verb, want string) error {
	got, err := verbOnly(fs)
	if err != nil {
		return err
	}
	if got != verb {
		return errors.New(want)
	}
	return nil
}

// withStore opens the store (no migrations) for a bootstrap command. Companies, members and tokens
// hold no sealed secrets, so it needs no keyring; --encryption-keys, when given, is still checked.
func withStore(ctx context.Context, cfg commonConfig, fn func(*store.Store) error) error {
	var keys *crypt.Keyring
	if cfg.EncryptionKeys != "" {
		var err error
		if keys, err = cfg.keyring(); err != nil {
			return err
		}
	}
	pool, _, err := cfg.connectLogged(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool, keys)
	if err := st.MovedCheck(ctx); err != nil {
		return err
	}
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
	if err := parseFlags(fs, args, "Usage: walhook keys reseal [--batch-size 500]\n\nRe-seals every secret with the first key of --encryption-keys, bound to its row."); err != nil {
		return err
	}
	if err := requireVerb(fs, "reseal", "want: keys reseal"); err != nil {
		return err
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
	if err := st.MovedCheck(ctx); err != nil {
		return err
	}
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
