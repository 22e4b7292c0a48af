package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walhook/walhook/relay/store"
)

// runQuarantine is `walhook quarantine list|show|retry|drop`: the operator's hands on the events
// capture set aside because PostgreSQL refused their data (walhook.capture_quarantine; see
// docs/operations.md). Capture itself never waits for them.
func runQuarantine(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "Usage: walhook quarantine list|show ID|retry ID|drop ID [flags]\n\n" +
		"list      lists the events capture set aside, oldest first: id, position, company, event, reason\n" +
		"show ID   shows one, with its envelope as capture built it\n" +
		"retry ID  runs its fan-out again (the event and its deliveries); once the cause is fixed it is\n" +
		"          stored and leaves the quarantine, otherwise it stays with attempts+1 and the new reason\n" +
		"drop ID   deletes it for good: the event is never delivered"
	subs := map[string]bool{"list": false, "show": true, "retry": true, "drop": true}
	var common commonConfig
	var after int64
	var limit int
	fs := flag.NewFlagSet("quarantine", flag.ContinueOnError)
	common.registerTool(fs)
	fs.Int64Var(&after, "after", 0, "list: only ids above this one (paging)")
	fs.IntVar(&limit, "limit", 100, "list: at most this many rows")
	// The command and the id may come before, between or after the flags.
	if err := parseFlags(fs, args, synopsis); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(synopsis, errors.New("want quarantine list, show, retry or drop"))
	}
	sub, positional := fs.Arg(0), fs.Args()[1:]
	wantID, ok := subs[sub]
	if !ok {
		return usageError(synopsis, fmt.Errorf("unknown quarantine command %q: want list, show, retry or drop", sub))
	}
	if len(positional) > 1 || (!wantID && len(positional) > 0) {
		return fmt.Errorf("quarantine %s: unexpected arguments %q", sub, positional)
	}
	var idText string
	if len(positional) == 1 {
		idText = positional[0]
	}
	var id int64
	if wantID {
		var err error
		if id, err = strconv.ParseInt(idText, 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("quarantine %s: want a quarantine id (a positive number), got %q", sub, idText)
		}
	}
	st, pool, err := common.openTool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := st.MovedCheck(ctx); err != nil {
		return err
	}
	switch sub {
	case "list":
		rows, err := st.CaptureQuarantineList(ctx, after, limit)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			_, err := fmt.Fprintln(stdout, "no quarantined events")
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tPOSITION\tCOMPANY\tEVENT\tATTEMPTS\tFIRST SEEN\tREASON")
		for _, r := range rows {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.SourceKey, r.CompanyID, r.EventKey, r.Attempts,
				r.FirstSeen.UTC().Format(time.RFC3339), oneLine(r.Reason, 100))
		}
		return w.Flush()
	case "show":
		q, err := st.CaptureQuarantineGet(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no quarantined event %d", id)
		}
		if err != nil {
			return fmt.Errorf("read quarantined event %d: %w", id, err)
		}
		occurred := "-"
		if q.OccurredAt != nil {
			occurred = q.OccurredAt.UTC().Format(time.RFC3339Nano)
		}
		_, err = fmt.Fprintf(stdout, "id          %d\nposition    %s\ncompany     %s\nevent       %s\noccurred_at %s\n"+
			"first_seen  %s\nlast_tried  %s\nattempts    %d\nsqlstate    %s\nreason      %s\npayload     %s\n",
			q.ID, q.SourceKey, q.CompanyID, q.EventKey, occurred, q.FirstSeen.UTC().Format(time.RFC3339),
			q.LastTried.UTC().Format(time.RFC3339), q.Attempts, q.SQLState, q.Reason, showPayload(q.Payload))
		return err
	case "retry":
		res, err := st.CaptureQuarantineRetry(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no quarantined event %d", id)
		}
		if err != nil {
			return fmt.Errorf("still refused, kept in the quarantine: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "quarantined event %d stored: %d new event, %d deliveries\n", id, res.Events, res.Deliveries)
		return err
	default:
		if err := st.CaptureQuarantineDrop(ctx, id); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no quarantined event %d", id)
		} else if err != nil {
			return fmt.Errorf("drop quarantined event %d: %w", id, err)
		}
		_, err := fmt.Fprintf(stdout, "quarantined event %d dropped\n", id)
		return err
	}
}

// oneLine shortens s to n characters on one line, for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// showPayload prints the stored envelope as text when it is UTF-8 (JSON that PostgreSQL refused
// is still readable text), else as Go-quoted bytes, so a terminal never receives raw control
// bytes.
func showPayload(b []byte) string {
	if json.Valid(b) {
		return string(b)
	}
	return strconv.Quote(string(b))
}
