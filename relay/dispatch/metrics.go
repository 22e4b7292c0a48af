package dispatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_delivery_attempts_total",
			Help: "Delivery attempts by outcome (succeeded, retry, failed) and result (2xx, 3xx, 410, 429, 4xx, 5xx, timeout, network, blocked, oauth, invalid, sealed, inactive).",
		}, []string{"outcome", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "walhook_delivery_attempt_duration_seconds",
			Help:    "Duration of delivery attempts, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"outcome"}),
		firstLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walhook_delivery_first_attempt_latency_seconds",
			Help:    "Time from an event's capture (commit into walhook's tables) to the start of its delivery's first attempt.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "walhook_delivery_queue_depth",
			Help: "Pending deliveries: due (waiting for a worker), scheduled (a retry later), leased (being sent).",
		}, []string{"state"}),
		oldestDue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walhook_delivery_oldest_due_age_seconds",
			Help: "How long the oldest due pending delivery has been waiting.",
		}),
		disabled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_webhooks_disabled_total",
			Help: "Webhooks turned off by the relay, by reason (gone: the endpoint answered 410; failing: failing for too long).",
		}, []string{"reason"}),
		recordFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_delivery_record_failures_total",
			Help: "Batches of attempt results that could not be written (their deliveries are retried after the lease).",
		}),
		replicasAlive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walhook_dispatch_replicas_alive",
			Help: "Dispatcher replicas whose heartbeat is current, this one included, as of this replica's last heartbeat.",
		}),
		heartbeatFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_dispatch_heartbeat_failures_total",
			Help: "Heartbeats of this replica that failed (no new claims until one succeeds; past the heartbeat timeout other replicas release its claims).",
		}),
		replicasReaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_dispatch_replicas_reaped_total",
			Help: "Dead replicas (heartbeat expired) whose claims this replica released.",
		}),
		reapedDeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_dispatch_reaped_deliveries_total",
			Help: "Deliveries claimed by dead replicas that this replica released for sending.",
		}),
		presumedDead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_dispatch_presumed_dead_total",
			Help: "Times this replica found its claims released by another one (it was paused or cut off from the database past the heartbeat timeout).",
		}),
		taken: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_dispatch_taken_total",
			Help: "Deliveries this replica took to send, by way: claim (from the table), or handoff (inserted already leased to it by the capture leader in its process, no claim).",
		}, []string{"via"}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.firstLatency, m.queue, m.oldestDue, m.disabled, m.recordFailures,
		m.replicasAlive, m.heartbeatFailures, m.replicasReaped, m.reapedDeliveries, m.presumedDead, m.taken} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dispatch metrics: %w", err)
		}
	}
	for _, via := range []string{"claim", "handoff"} {
		m.taken.WithLabelValues(via)
	}
	return m, nil
}
