package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/walhook/walhook/relay/store"
)

// runSlot is `walhook slot status|drop`: the operator's view of capture's replication slot.
func runSlot(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "Usage: walhook slot status|drop [flags]\n\n" +
		"status  shows the replication slot: active, confirmed position, lag in bytes\n" +
		"drop    drops it (with --yes; stop every relay first). The next start creates a new slot\n" +
		"        at the current position: changes written in between are not captured."
	if len(args) == 0 || (args[0] != "status" && args[0] != "drop") {
		fmt.Fprintln(os.Stderr, synopsis)
		return errors.New("want slot status or slot drop")
	}
	sub := args[0]
	var common commonConfig
	var slot string
	var yes bool
	fs := flag.NewFlagSet("slot", flag.ContinueOnError)
	fs.StringVar(&common.DatabaseURL, "database-url", "", "PostgreSQL connection URL (required)")
	fs.StringVar(&common.LogLevel, "log-level", "warn", "log level: debug, info, warn, error")
	fs.StringVar(&common.LogFormat, "log-format", "auto", "log format: json, console, or auto")
	fs.StringVar(&slot, "slot", "walhook", "logical replication slot name")
	fs.BoolVar(&yes, "yes", false, "drop: really drop the slot")
	if err := parseFlags(fs, args[1:], synopsis); err != nil {
		return err
	}
	log, err := common.logger(os.Stderr)
	if err != nil {
		return err
	}
	common.ConnectTimeout = 10e9
	pool, err := common.connect(ctx, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool, nil)
	s, err := st.CaptureSlotStatus(ctx, slot)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no replication slot %q", slot)
	}
	if err != nil {
		return fmt.Errorf("read slot %s: %w", slot, err)
	}
	switch sub {
	case "status":
		pid := "-"
		if s.ActivePID != nil {
			pid = fmt.Sprint(*s.ActivePID)
		}
		_, err := fmt.Fprintf(stdout, "slot            %s\nplugin          %s (%s)\ndatabase        %s\nactive          %t (pid %s)\n"+
			"restart_lsn     %s\nconfirmed_flush %s\ncurrent_lsn     %s\nlag_bytes       %d\nwal_status      %s\n",
			s.Name, s.Plugin, s.Type, s.Database, s.Active, pid, s.RestartLSN, s.ConfirmedFlushLSN, s.CurrentLSN, s.LagBytes, s.WALStatus)
		return err
	default:
		if !yes {
			return errors.New("dropping the slot loses the changes not yet captured; add --yes")
		}
		if s.Active {
			return fmt.Errorf("slot %s is in use: stop every relay first", slot)
		}
		if err := st.CaptureSlotDrop(ctx, slot); err != nil {
			return fmt.Errorf("drop slot %s: %w", slot, err)
		}
		_, err := fmt.Fprintf(stdout, "dropped replication slot %s\n", slot)
		return err
	}
}
