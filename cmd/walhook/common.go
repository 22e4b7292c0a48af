package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
)

// commonConfig is what every subcommand that touches the database needs.
type commonConfig struct {
	// DatabaseURL is the PostgreSQL connection URL of walhook's own database (queue, history,
	// configuration, leases). Required.
	DatabaseURL string
	// SourceDatabaseURL is the application's database when walhook keeps its own apart: the
	// replication slot, the publication, the catalog's tables, walhook.emit and walhook.outbox.
	// Default empty: the application's database is walhook's (one database). Registered by the
	// commands that act on the source (registerSource).
	SourceDatabaseURL string
	// EncryptionKeys seal secrets at rest: "id:base64-32-bytes[,id:key…]", first is current.
	EncryptionKeys string
	// OpenUnboundSecrets opens secrets sealed before walhook bound them to their row (version 1).
	// Default true, for the upgrade; turn it off once `walhook keys reseal` has run.
	OpenUnboundSecrets bool
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// LogFormat is json, console or auto (console on a terminal). Default auto.
	LogFormat string
	// MaxConns caps the connection pool. Default 20.
	MaxConns int
	// ConnectTimeout bounds how long start-up keeps retrying an unreachable database. Default 2m.
	ConnectTimeout time.Duration
	// applicationName names the sessions in pg_stat_activity (not a flag). Default "walhook".
	applicationName string
}

func (c *commonConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL connection URL (required)")
	fs.StringVar(&c.EncryptionKeys, "encryption-keys", "", "keys sealing secrets at rest: id:base64(32 bytes)[,id:key...]; the first seals, all open (required)")
	fs.BoolVar(&c.OpenUnboundSecrets, "open-unbound-secrets", true, "open secrets sealed before they were bound to their row (walhook before row binding); turn off once 'walhook keys reseal' has run, so such a value copied into another row cannot open")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "log format: json, console, or auto (console on a terminal)")
	fs.IntVar(&c.MaxConns, "max-conns", 20, "maximum PostgreSQL connections in the pool")
	durationVar(fs, &c.ConnectTimeout, "connect-timeout", 2*time.Minute, "how long start-up retries an unreachable database before giving up")
}

// registerSource registers --source-database-url, for the commands that act on the application's
// database (serve, relay, admin, migrate, slot, emit-key).
func (c *commonConfig) registerSource(fs *flag.FlagSet) {
	fs.StringVar(&c.SourceDatabaseURL, "source-database-url", "", "the application's PostgreSQL when walhook keeps its own database apart (--database-url): "+
		"the replication slot, the publication, the catalog's tables, walhook.emit and walhook.outbox live there (default: the same database as --database-url)")
}

// registerTool registers the flags of an operator's one-shot command over the database (slot,
// quarantine, emit-key): the URL and the logging, quieter than a server's.
func (c *commonConfig) registerTool(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL connection URL (required)")
	fs.StringVar(&c.LogLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "log format: json, console, or auto")
}

// sourceToolFlags makes the flag set of an operator's one-shot command that acts on the
// application's database as well as walhook's (migrate, split, slot, emit-key): registerTool's
// flags and registerSource's.
func (c *commonConfig) sourceToolFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.registerTool(fs)
	c.registerSource(fs)
	return fs
}

// usageError prints a command's synopsis on stderr and returns err: the answer to a missing or
// unknown subcommand.
func usageError(synopsis string, err error) error {
	fmt.Fprintln(os.Stderr, synopsis)
	return err
}

// openTool connects a one-shot command (see registerTool) to the database, giving an unreachable
// one 10 s, and returns a store without a keyring (such a command opens no secret).
func (c *commonConfig) openTool(ctx context.Context) (*store.Store, *pgxpool.Pool, error) {
	c.ConnectTimeout = 10 * time.Second
	pool, _, err := c.connectLogged(ctx)
	if err != nil {
		return nil, nil, err
	}
	return store.New(pool, nil), pool, nil
}

// connectLogged is connect with the logger the flags ask for, which it returns too.
func (c *commonConfig) connectLogged(ctx context.Context) (*pgxpool.Pool, zerolog.Logger, error) {
	log, err := c.logger(os.Stderr)
	if err != nil {
		return nil, log, err
	}
	pool, err := c.connect(ctx, log)
	return pool, log, err
}

// openSource connects to the application's database (--source-database-url) and returns a store
// over it with st's keyring, and a close function. Without the flag the source is st itself and
// close does nothing.
func (c *commonConfig) openSource(ctx context.Context, log zerolog.Logger, st *store.Store) (*store.Store, func(), error) {
	if c.SourceDatabaseURL == "" {
		return st, func() {}, nil
	}
	pool, err := c.connectURL(ctx, log, c.SourceDatabaseURL, "--source-database-url", sourceSearchPath)
	if err != nil {
		return nil, nil, err
	}
	src := store.New(pool, st.Keys())
	// The same database under two URLs would run the one-database installation as if it were
	// two, and record it so (CaptureSourceCheck).
	if same, err := store.SameDatabase(ctx, src, st); err != nil || same {
		pool.Close()
		if err == nil {
			err = errors.New("--source-database-url names walhook's own database (--database-url): leave it empty when walhook lives in the application's database")
		}
		return nil, nil, err
	}
	return src, pool.Close, nil
}

// openToolSource is openSource for a tool subcommand, logging as its flags say.
func (c *commonConfig) openToolSource(ctx context.Context, st *store.Store) (*store.Store, func(), error) {
	log, err := c.logger(os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	return c.openSource(ctx, log, st)
}

// sourceSearchPath gives walhook's sessions on the application's database (and the replication
// connection copied from them) the search_path pg_catalog, pg_temp: every name walhook uses there
// is schema-qualified, and roles of the application may create objects in its schemas (public).
// A function or operator of theirs that matched a call more exactly than pg_catalog's would run
// as walhook, which reads walhook.emit_key (TestCatalogLookupNotHijacked shows one). A
// search_path in the URL wins. (split's own connection to the database it moves keeps the
// default: it runs the main migration set there.)
func sourceSearchPath(cfg *pgxpool.Config) {
	if _, set := cfg.ConnConfig.RuntimeParams["search_path"]; !set {
		cfg.ConnConfig.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	}
}

func (c *commonConfig) logger(w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(c.LogLevel)
	if err != nil || c.LogLevel == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", c.LogLevel)
	}
	console := false
	switch c.LogFormat {
	case "console":
		console = true
	case "json":
	case "auto":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			console = true
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format: want json, console or auto, got %q", c.LogFormat)
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func (c *commonConfig) keyring() (*crypt.Keyring, error) {
	if c.EncryptionKeys == "" {
		return nil, errors.New("--encryption-keys (WALHOOK_ENCRYPTION_KEYS) is required; make one with `walhook keygen`")
	}
	k, err := crypt.ParseKeyring(c.EncryptionKeys)
	if err != nil {
		return nil, err
	}
	if !c.OpenUnboundSecrets {
		k.RefuseUnbound()
	}
	return k, nil
}

// connect opens a pool and waits for the database, retrying with capped exponential backoff so a
// database that is still starting does not crash-loop the process.
func (c *commonConfig) connect(ctx context.Context, log zerolog.Logger) (*pgxpool.Pool, error) {
	if c.DatabaseURL == "" {
		return nil, errors.New("--database-url (WALHOOK_DATABASE_URL) is required")
	}
	return c.connectURL(ctx, log, c.DatabaseURL, "--database-url")
}

// connectURL is connect for url, named flag in errors; each of tune adjusts the pool's settings.
func (c *commonConfig) connectURL(ctx context.Context, log zerolog.Logger, url, flag string, tune ...func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if c.MaxConns > 0 {
		cfg.MaxConns = int32(min(c.MaxConns, 1000))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	// walhook's statements are short and frequent: compiling one with LLVM (on when the planner's
	// estimate passes jit_above_cost, as the claim's can on a table without statistics yet) costs
	// more than it saves, up to seconds on a small machine. A jit setting in the URL wins.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	// walhook's sessions are named, so operators see them in pg_stat_activity and `walhook split`
	// can tell that no walhook process still runs on the database it moves. A name in the URL wins.
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set {
		cfg.ConnConfig.RuntimeParams["application_name"] = cmp.Or(c.applicationName, "walhook")
	}
	for _, f := range tune {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	deadline := time.Now().Add(c.ConnectTimeout)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			return pool, nil
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			pool.Close()
			return nil, fmt.Errorf("connect to PostgreSQL (gave up after %d attempts): %w", attempt, err)
		}
		log.Warn().Err(err).Str("database", flag).Int("attempt", attempt).Dur("retry_in", backoff).Msg("PostgreSQL unreachable, retrying")
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("connect to PostgreSQL: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// open connects and returns a store.
func (c *commonConfig) open(ctx context.Context, log zerolog.Logger) (*store.Store, *pgxpool.Pool, error) {
	keys, err := c.keyring()
	if err != nil {
		return nil, nil, err
	}
	pool, err := c.connect(ctx, log)
	if err != nil {
		return nil, nil, err
	}
	return store.New(pool, keys), pool, nil
}
