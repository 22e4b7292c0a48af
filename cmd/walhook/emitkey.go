package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/walhook/walhook/relay/capture"
)

// runEmitKey is `walhook emit-key rotate`: a new key for walhook.emit's signatures
// (docs/operations.md, "Who may emit").
func runEmitKey(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "Usage: walhook emit-key rotate [flags]\n\n" +
		"rotate  adds a new key that walhook.emit signs its logical messages with from now on, keeps\n" +
		"        the previous one (messages it signed may still wait in the slot) and deletes older\n" +
		"        ones. After a suspected leak, rotate twice, the second time once the slot has caught\n" +
		"        up (walhook slot status: lag_bytes near 0)."
	var common commonConfig
	fs := common.sourceToolFlags("emit-key")
	if err := parseFlags(fs, args, synopsis); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "rotate" {
		return usageError(synopsis, errors.New("want emit-key rotate"))
	}
	wh, pool, err := common.openTool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The keys live with walhook.emit, in the application's database.
	st, closeSrc, err := common.openToolSource(ctx, wh)
	if err != nil {
		return err
	}
	defer closeSrc()
	id, err := capture.RotateEmitKey(ctx, st)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "emit key %d signs from now on; key %d still verifies\n", id, id-1)
	return err
}
