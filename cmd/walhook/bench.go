package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/bench"
)

// benchSynopsis is bench's usage text. It lists the scenarios from the benchmark's own table
// (bench.ScenarioNames), so it names every one that runs.
func benchSynopsis() string {
	var b strings.Builder
	b.WriteString("Usage: walhook bench [flags]\n\nStarts a private PostgreSQL, a loopback receiver and the relay, runs these scenarios in\norder (--only picks some), prints a table and writes JSON:\n")
	line := " "
	for i, name := range bench.ScenarioNames() {
		if i > 0 {
			line += ","
		}
		if len(line)+1+len(name) > 96 {
			b.WriteString(line + "\n")
			line = " "
		}
		line += " " + name
	}
	b.WriteString(line)
	b.WriteString("\nWith --two-databases (or --modes two|both) walhook's database is in a second private cluster.")
	return b.String()
}

// runBench runs the benchmark (package internal/bench documents the scenarios). With the
// bench.ChildEnv variable set it is the backlog scenario's child relay instead.
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if os.Getenv(bench.ChildEnv) != "" {
		return bench.RunChild(ctx)
	}
	if len(args) > 0 && args[0] == "history" {
		return runBenchHistory(ctx, args[1:], stdout)
	}
	var cfg bench.Config
	var out, only, cpuprofile, modes string
	var two bool
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&cfg.Quick, "quick", false, "run every scenario small (about a minute in total)")
	fs.BoolVar(&two, "two-databases", false, "run every scenario with walhook's own database in a second private cluster, the application's database only the capture's source (same as --modes two)")
	fs.StringVar(&modes, "modes", "", "the deployments to run in: one (walhook in the application's database; the default), two (as --two-databases) or both (each scenario in each; application-impact alternates between them)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL (wal_level=logical) to use instead of private clusters; the bench's databases (walhook_bench, walhook_bench_own) are created and dropped in it")
	fs.StringVar(&cfg.SourceDatabaseURL, "source-database-url", "", "with --database-url and two databases: the application's server (walhook_bench_app is created in it; default: the --database-url server)")
	fs.StringVar(&cfg.Dir, "dir", "", "where the private PostgreSQL cluster lives (default: a temporary directory, removed)")
	fs.StringVar(&out, "out", "", "write the results as JSON to this file (default bench-results/<time>.json)")
	fs.StringVar(&only, "only", "", "run only these scenarios, comma-separated (e.g. throughput-cdc,latency/100)")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of this process (receiver, load and relay) to this file")
	if err := parseFlagsOnly(fs, args, benchSynopsis()); err != nil {
		return err
	}
	switch {
	case two && modes != "" && modes != "two":
		return errors.New("--two-databases and --modes " + modes + " disagree")
	case two:
		cfg.Modes = []bench.Mode{bench.ModeTwo}
	case modes != "":
		m, err := bench.ParseModes(modes)
		if err != nil {
			return err
		}
		cfg.Modes = m
	}
	if only != "" {
		cfg.Only = strings.Split(only, ",")
		for _, name := range cfg.Only {
			if !slices.Contains(bench.ScenarioNames(), name) {
				return fmt.Errorf("--only: no scenario %q; the scenarios are %s", name, strings.Join(bench.ScenarioNames(), ", "))
			}
		}
	}
	if out == "" {
		out = "bench-results/" + time.Now().UTC().Format("20060102T150405Z") + ".json"
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find executable: %w", err)
	}
	cfg.Exe, cfg.ExeArgs = exe, []string{"bench"}
	cfg.Log = zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	cfg.Progress = os.Stderr
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		if werr := rep.WriteTable(stdout); werr != nil {
			return werr
		}
		if werr := rep.WriteJSON(out); werr != nil {
			return werr
		}
		fmt.Fprintf(stdout, "results: %s\n", out)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return errors.New("some scenarios failed")
	}
	return nil
}

// runBenchHistory runs `walhook bench history`: history at scale in the weekly partitions of
// migration 0029 and in the layout before it (bench.RunHistory).
func runBenchHistory(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg bench.HistoryConfig
	var out, layouts string
	fs := flag.NewFlagSet("bench history", flag.ContinueOnError)
	fs.Int64Var(&cfg.Deliveries, "deliveries", 1_000_000, "deliveries of history to build (two per event, 1.2 attempts each)")
	fs.IntVar(&cfg.Days, "days", 60, "days the history spans, ending today (at least 7: retention removes the first week)")
	fs.IntVar(&cfg.Companies, "companies", 300, "companies (three webhooks each)")
	fs.Int64Var(&cfg.Pending, "pending", 5000, "newest deliveries left pending and due")
	fs.StringVar(&layouts, "layouts", "plain,partitioned", "layouts to measure, comma-separated: plain (before migration 0029), partitioned (the migrations' weekly partitions)")
	fs.IntVar(&cfg.Samples, "samples", 200, "timed runs of each claim and history query")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL to use instead of a private cluster; a database walhook_bench_history is created and dropped in it")
	fs.StringVar(&cfg.Dir, "dir", "", "where the private PostgreSQL cluster lives (default: a temporary directory, removed)")
	fs.BoolVar(&cfg.Keep, "keep", false, "with --database-url: leave the last layout's database walhook_bench_history in place")
	fs.StringVar(&out, "out", "", "write the results as JSON to this file (default bench-results/history-<time>.json)")
	if err := parseFlagsOnly(fs, args, "Usage: walhook bench history [flags]\n\nBuilds history (events, deliveries, attempts) in the migrations' weekly partitions and in the\nlayout before them (migration 0029 reverted) on a private PostgreSQL, and measures on each a\nretention run removing the first week (time, WAL, the vacuum it leaves), claims and history\nreads; prints a table and writes JSON."); err != nil {
		return err
	}
	cfg.Layouts = strings.Split(layouts, ",")
	if out == "" {
		out = "bench-results/history-" + time.Now().UTC().Format("20060102T150405Z") + ".json"
	}
	cfg.Progress = os.Stderr
	rep, err := bench.RunHistory(ctx, cfg)
	if rep != nil && len(rep.Results) > 0 {
		if werr := rep.WriteTable(stdout); werr != nil {
			return werr
		}
		if werr := rep.WriteJSON(out); werr != nil {
			return werr
		}
		fmt.Fprintf(stdout, "results: %s\n", out)
	}
	return err
}
