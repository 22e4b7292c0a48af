package dispatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/relay/internal/metric"
)

type metrics struct {
	attempts       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	firstLatency   prometheus.Histogram
	queue          *prometheus.GaugeVec
	oldestDue      prometheus.Gauge
	disabled       *prometheus.CounterVec
	recordFailures prometheus.Counter

	replicasAlive     prometheus.Gauge
	heartbeatFailures prometheus.Counter
	replicasReaped    prometheus.Counter
	reapedDeliveries  prometheus.Counter
	presumedDead      prometheus.Counter
	// taken counts deliveries taken into memory, by way: claim, or handoff (from the capture
	// leader in this process, handoff.go).
	taken *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	b := metric.NewBuilder(reg)
	m := &metrics{
		attempts: b.CounterVec(metric.Opts{
			Name: "walhook_delivery_attempts_total",
			Help: "Delivery attempts by outcome (succeeded, retry, failed) and result (2xx, 3xx, 410, 429, 4xx, 5xx, timeout, network, blocked, oauth, invalid, sealed, inactive).",
		}, "outcome", "result"),
		duration: b.HistogramVec(metric.Opts{
			Name: "walhook_delivery_attempt_duration_seconds",
			Help: "Duration of delivery attempts, by outcome.",
		}, []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30}, "outcome"),
		firstLatency: b.Histogram(metric.Opts{
			Name: "walhook_delivery_first_attempt_latency_seconds",
			Help: "Time from an event's capture (commit into walhook's tables) to the start of its delivery's first attempt.",
		}, []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
		queue: b.GaugeVec(metric.Opts{
			Name: "walhook_delivery_queue_depth",
			Help: "Pending deliveries: due (waiting for a worker), scheduled (a retry later), leased (being sent).",
		}, "state"),
		oldestDue: b.Gauge(metric.Opts{
			Name: "walhook_delivery_oldest_due_age_seconds",
			Help: "How long the oldest due pending delivery has been waiting.",
		}),
		disabled: b.CounterVec(metric.Opts{
			Name: "walhook_webhooks_disabled_total",
			Help: "Webhooks turned off by the relay, by reason (gone: the endpoint answered 410; failing: failing for too long).",
		}, "reason"),
		recordFailures: b.Counter(metric.Opts{
			Name: "walhook_delivery_record_failures_total",
			Help: "Batches of attempt results that could not be written (their deliveries are retried after the lease).",
		}),
		replicasAlive: b.Gauge(metric.Opts{
			Name: "walhook_dispatch_replicas_alive",
			Help: "Dispatcher replicas whose heartbeat is current, this one included, as of this replica's last heartbeat.",
		}),
		heartbeatFailures: b.Counter(metric.Opts{
			Name: "walhook_dispatch_heartbeat_failures_total",
			Help: "Heartbeats of this replica that failed (no new claims until one succeeds; past the heartbeat timeout other replicas release its claims).",
		}),
		replicasReaped: b.Counter(metric.Opts{
			Name: "walhook_dispatch_replicas_reaped_total",
			Help: "Dead replicas (heartbeat expired) whose claims this replica released.",
		}),
		reapedDeliveries: b.Counter(metric.Opts{
			Name: "walhook_dispatch_reaped_deliveries_total",
			Help: "Deliveries claimed by dead replicas that this replica released for sending.",
		}),
		presumedDead: b.Counter(metric.Opts{
			Name: "walhook_dispatch_presumed_dead_total",
			Help: "Times this replica found its claims released by another one (it was paused or cut off from the database past the heartbeat timeout).",
		}),
		taken: b.CounterVec(metric.Opts{
			Name: "walhook_dispatch_taken_total",
			Help: "Deliveries this replica took to send, by way: claim (from the table), or handoff (inserted already leased to it by the capture leader in its process, no claim).",
		}, "via"),
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("register dispatch metrics: %w", err)
	}
	metric.Preset(m.taken, "claim", "handoff")
	return m, nil
}
