package main

import (
	"flag"

	"github.com/walhook/walhook/relay/retention"
)

// registerRetention registers the history retention flags of serve and relay.
func registerRetention(fs *flag.FlagSet, c *retention.Config) {
	durationVar(fs, &c.MaxAge, "retention-max-age", retention.DefaultMaxAge,
		"keep history this long by the event's time: a week of events, deliveries and attempts is dropped once its end is this old (pending deliveries are kept); 0 keeps history forever (partitions are still created ahead)")
	durationVar(fs, &c.Interval, "retention-interval", retention.DefaultInterval, "time between two retention runs")
	fs.IntVar(&c.BatchSize, "retention-batch-size", retention.DefaultBatchSize, "rows deleted per statement from the default partitions (each its own short transaction)")
	durationVar(fs, &c.Pause, "retention-pause", retention.DefaultPause, "pause between two retention batches")
}
