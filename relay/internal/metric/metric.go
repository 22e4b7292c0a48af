// Package metric builds the relay parts' Prometheus collectors and registers each on the registry
// the part was given (never a global one): one call a metric, one error check a part.
package metric

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Opts names and describes one metric. Name is the full name (walhook_…): deploy's alerts,
// dashboard and tests, and the docs, find metrics by it.
type Opts struct {
	Name string
	Help string
	// Shared makes a collector that every instance of a part in one process uses: when one of
	// the same kind is already registered under Name, it is returned instead of failing.
	Shared bool
}

// Builder builds collectors and registers each on one registry as it is built, in order. After
// the first registration that fails it registers nothing more, and Err returns that error: a
// part defines all its metrics, then checks once.
type Builder struct {
	reg prometheus.Registerer
	err error
}

// NewBuilder returns a Builder that registers on reg.
func NewBuilder(reg prometheus.Registerer) *Builder {
	return &Builder{reg: reg}
}

// Err returns the first registration's error (nil: every collector is registered), unwrapped:
// the part says whose metrics they were.
func (b *Builder) Err() error {
	return b.err
}

// Counter builds and registers a counter.
func (b *Builder) Counter(o Opts) prometheus.Counter {
	return register(b, o, prometheus.NewCounter(prometheus.CounterOpts{Name: o.Name, Help: o.Help}))
}

// CounterVec builds and registers a counter with labels.
func (b *Builder) CounterVec(o Opts, labels ...string) *prometheus.CounterVec {
	return register(b, o, prometheus.NewCounterVec(prometheus.CounterOpts{Name: o.Name, Help: o.Help}, labels))
}

// Gauge builds and registers a gauge.
func (b *Builder) Gauge(o Opts) prometheus.Gauge {
	return register(b, o, prometheus.NewGauge(prometheus.GaugeOpts{Name: o.Name, Help: o.Help}))
}

// GaugeVec builds and registers a gauge with labels.
func (b *Builder) GaugeVec(o Opts, labels ...string) *prometheus.GaugeVec {
	return register(b, o, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: o.Name, Help: o.Help}, labels))
}

// GaugeFunc builds and registers a gauge whose value is f's, called at each scrape.
func (b *Builder) GaugeFunc(o Opts, f func() float64) prometheus.GaugeFunc {
	return register(b, o, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: o.Name, Help: o.Help}, f))
}

// Histogram builds and registers a histogram with buckets (upper bounds, increasing).
func (b *Builder) Histogram(o Opts, buckets []float64) prometheus.Histogram {
	return register(b, o, prometheus.NewHistogram(prometheus.HistogramOpts{Name: o.Name, Help: o.Help, Buckets: buckets}))
}

// HistogramVec builds and registers a histogram with buckets (upper bounds, increasing) and labels.
func (b *Builder) HistogramVec(o Opts, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(b, o, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: o.Name, Help: o.Help, Buckets: buckets}, labels))
}

// register registers c unless an earlier registration failed, and returns it, or with o.Shared
// the collector of its kind already registered under its name.
func register[C prometheus.Collector](b *Builder, o Opts, c C) C {
	if b.err != nil {
		return c
	}
	err := b.reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if o.Shared && errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	b.err = err
	return c
}

// Preset exports each of values of v's one label at zero from the start, so that the series
// exist, for rate() and alerts, before their first increment.
func Preset(v *prometheus.CounterVec, values ...string) {
	for _, value := range values {
		v.WithLabelValues(value)
	}
}
