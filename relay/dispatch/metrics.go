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
	}
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.firstLatency, m.queue, m.oldestDue, m.disabled, m.recordFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dispatch metrics: %w", err)
		}
	}
	return m, nil
}
