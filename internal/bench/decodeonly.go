package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walhook/walhook/relay/capture"
)

// decodeSlot is the decoding-only reader's temporary slot (dropped when its session ends).
const decodeSlot = "walhook_bench_decode"

// decodeOnly is the least any logical-replication consumer costs the application's primary: a
// replication session on a temporary pgoutput slot over walhook's publication (the same options
// as capture: protocol 2, messages on) that reads every change and acknowledges what it received,
// storing nothing. application-impact runs the load with it in place of the relay, so that its
// figure can be split into what decoding costs (the walsender, on the primary in every
// deployment) and what the rest of walhook costs on this machine.
type decodeOnly struct {
	conn     *pgconn.PgConn
	cancel   context.CancelFunc
	done     chan error
	received atomic.Uint64 // the end of the last WAL data received
}

// startDecodeOnly opens the session on the current deployment's source and starts reading.
func (e *env) startDecodeOnly(ctx context.Context) (*decodeOnly, error) {
	cfg := e.app.Config().ConnConfig.Config.Copy()
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "bench-decode-only"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open decoding-only connection: %w", err)
	}
	slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, decodeSlot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("create decoding-only slot: %w", err)
	}
	start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("decoding-only slot: %w", err)
	}
	err = pglogrepl.StartReplication(ctx, conn, decodeSlot, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '2'", "publication_names 'walhook'", "messages 'true'"},
	})
	if err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("start decoding-only replication: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	d := &decodeOnly{conn: conn, cancel: cancel, done: make(chan error, 1)}
	d.received.Store(uint64(start))
	go func() { d.done <- d.read(rctx) }()
	return d, nil
}

// read receives until ctx ends, reporting the received position every second (and when asked).
func (d *decodeOnly) read(ctx context.Context) error {
	next := time.Now().Add(time.Second)
	for {
		if !time.Now().Before(next) {
			pos := pglogrepl.LSN(d.received.Load())
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, d.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos}); err != nil {
				return fmt.Errorf("send standby status: %w", err)
			}
			next = time.Now().Add(time.Second)
		}
		r, err := capture.Receive(ctx, d.conn, next)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch {
		case r.Keepalive:
			d.advance(r.KeepaliveMsg.ServerWALEnd)
			if r.KeepaliveMsg.ReplyRequested {
				next = time.Time{}
			}
		case r.XLog:
			d.advance(r.XLogMsg.WALStart + pglogrepl.LSN(len(r.XLogMsg.WALData)))
		}
	}
}

func (d *decodeOnly) advance(lsn pglogrepl.LSN) {
	for {
		cur := d.received.Load()
		if uint64(lsn) <= cur || d.received.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// stop waits until the reader has received the WAL written so far (at most a minute), then ends
// the session (the temporary slot goes with it).
func (e *env) stopDecodeOnly(ctx context.Context, d *decodeOnly) error {
	var target string
	err := e.srcHarness.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target)
	var lsn pglogrepl.LSN
	if err == nil {
		lsn, err = pglogrepl.ParseLSN(target)
	}
	deadline := time.Now().Add(time.Minute)
	var rerr error
	ended := false
	for err == nil && !ended && pglogrepl.LSN(d.received.Load()) < lsn {
		if time.Now().After(deadline) {
			err = fmt.Errorf("the reader did not receive %s within a minute", lsn)
			break
		}
		select {
		case rerr = <-d.done:
			ended = true
			if rerr == nil {
				rerr = errors.New("the reader ended early")
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.cancel()
	if !ended {
		rerr = <-d.done
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = d.conn.Close(cctx)
	if err != nil {
		return fmt.Errorf("decoding only: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("decoding only: %w", rerr)
	}
	return nil
}
