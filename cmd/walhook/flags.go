package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Every flag can also be set by an environment variable: --database-url is WALHOOK_DATABASE_URL.
// A flag given on the command line wins over its variable.

func envName(flagName string) string {
	return "WALHOOK_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its environment variable.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), serr)
			}
		}
	})
	return err
}

// parseFlags parses args, then the environment, and prints usage with each flag's variable. Flags
// may come before, between or after the command's arguments (`migrate up --database-url U` and
// `migrate --database-url U up` are the same); after "--" everything is an argument. The
// arguments, in order, are fs.Args().
func parseFlags(fs *flag.FlagSet, args []string, synopsis string) error {
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "%s\n\nFlags (each also read from the environment variable shown):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// The flag package stops at the first argument, or just after a "--" it consumed.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parse again with only "--" and the arguments, so fs.Args() returns them; the flags set above
	// stay set.
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return err
	}
	return applyEnv(fs)
}

// parseFlagsOnly is parseFlags for a command that takes flags and no arguments.
func parseFlagsOnly(fs *flag.FlagSet, args []string, synopsis string) error {
	if err := parseFlags(fs, args, synopsis); err != nil {
		return err
	}
	return noArgs(fs)
}

// noArgs is the error for a command that takes flags only but was given arguments.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	return fmt.Errorf("unexpected argument(s) %q: this command takes flags only (see --help)", fs.Args())
}

// durationVar registers a duration flag.
func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	fs.DurationVar(p, name, def, usage)
}

// newFlagSet is a flag set that returns errors instead of exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return fs
}
