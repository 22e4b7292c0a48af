package main

import (
	"flag"

	"github.com/walhook/walhook/relay/retention"
)

// registerRetention registers the history retention flags of serve and relay.
func registerRetention(fs *flag.FlagSet, c *retention.Config) {
	durationVar(fs, &c.MaxAge, "retention-max-age", retention.DefaultMaxAge,
		"delete finished deliveries, their attempts and unreferenced events older than this; 0 keeps history forever")
	durationVar(fs, &c.Interval, "retention-interval", retention.DefaultInterval, "time between two retention runs")
	fs.IntVar(&c.BatchSize, "retention-batch-size", retention.DefaultBatchSize, "rows deleted per statement (each its own short transaction)")
	durationVar(fs, &c.Pause, "retention-pause", retention.DefaultPause, "pause between two retention batches")
}
