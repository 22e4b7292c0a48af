package metric_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/internal/metric"
)

// scrape returns reg's metrics as a scrape of /metrics shows them (the text format).
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.String()
}

func TestBuilderRegistersEveryKind(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := metric.NewBuilder(reg)
	b.Counter(metric.Opts{Name: "walhook_test_counter_total", Help: "A counter."}).Add(2)
	b.CounterVec(metric.Opts{Name: "walhook_test_counter_vec_total", Help: "A counter by a and b."}, "a", "b").WithLabelValues("x", "y").Inc()
	b.Gauge(metric.Opts{Name: "walhook_test_gauge", Help: "A gauge."}).Set(3)
	b.GaugeVec(metric.Opts{Name: "walhook_test_gauge_vec", Help: "A gauge by a."}, "a").WithLabelValues("x").Set(4)
	b.GaugeFunc(metric.Opts{Name: "walhook_test_gauge_func", Help: "A computed gauge."}, func() float64 { return 5 })
	b.Histogram(metric.Opts{Name: "walhook_test_histogram_seconds", Help: "A histogram."}, []float64{1, 2}).Observe(1.5)
	b.HistogramVec(metric.Opts{Name: "walhook_test_histogram_vec_seconds", Help: "A histogram by a."}, []float64{0.5}, "a").WithLabelValues("x").Observe(1)
	require.NoError(t, b.Err())

	got := scrape(t, reg)
	for _, line := range []string{
		"# HELP walhook_test_counter_total A counter.",
		"# TYPE walhook_test_counter_total counter",
		"walhook_test_counter_total 2",
		"# TYPE walhook_test_counter_vec_total counter",
		`walhook_test_counter_vec_total{a="x",b="y"} 1`,
		"# HELP walhook_test_gauge A gauge.",
		"# TYPE walhook_test_gauge gauge",
		"walhook_test_gauge 3",
		`walhook_test_gauge_vec{a="x"} 4`,
		"# HELP walhook_test_gauge_func A computed gauge.",
		"# TYPE walhook_test_gauge_func gauge",
		"walhook_test_gauge_func 5",
		"# HELP walhook_test_histogram_seconds A histogram.",
		"# TYPE walhook_test_histogram_seconds histogram",
		`walhook_test_histogram_seconds_bucket{le="1"} 0`,
		`walhook_test_histogram_seconds_bucket{le="2"} 1`,
		"# TYPE walhook_test_histogram_vec_seconds histogram",
		`walhook_test_histogram_vec_seconds_bucket{a="x",le="0.5"} 0`,
		`walhook_test_histogram_vec_seconds_bucket{a="x",le="+Inf"} 1`,
	} {
		require.Contains(t, got, line+"\n")
	}
}

func TestBuilderStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "walhook_test_taken_total", Help: "Taken."})))

	b := metric.NewBuilder(reg)
	b.Counter(metric.Opts{Name: "walhook_test_before_total", Help: "Before."})
	b.Counter(metric.Opts{Name: "walhook_test_taken_total", Help: "Taken."})
	b.Counter(metric.Opts{Name: "walhook_test_after_total", Help: "After."}).Inc() // built all the same

	require.ErrorAs(t, b.Err(), new(prometheus.AlreadyRegisteredError))
	got := scrape(t, reg)
	require.Contains(t, got, "walhook_test_before_total 0\n")
	require.NotContains(t, got, "walhook_test_after_total")
}

func TestSharedReturnsTheRegisteredCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	opts := metric.Opts{Name: "walhook_test_role", Help: "1 by role.", Shared: true}

	first := metric.NewBuilder(reg)
	g1 := first.GaugeVec(opts, "role")
	second := metric.NewBuilder(reg)
	g2 := second.GaugeVec(opts, "role")
	require.NoError(t, first.Err())
	require.NoError(t, second.Err())
	require.Same(t, g1, g2)

	unshared := metric.NewBuilder(reg)
	unshared.GaugeVec(metric.Opts{Name: opts.Name, Help: opts.Help}, "role")
	require.ErrorAs(t, unshared.Err(), new(prometheus.AlreadyRegisteredError), "without Shared a second registration fails")

	otherKind := metric.NewBuilder(reg)
	otherKind.CounterVec(opts, "role")
	require.ErrorAs(t, otherKind.Err(), new(prometheus.AlreadyRegisteredError), "a shared name held by another kind of collector fails")
}

func TestPresetExportsZeros(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := metric.NewBuilder(reg)
	v := b.CounterVec(metric.Opts{Name: "walhook_test_reasons_total", Help: "By reason."}, "reason")
	require.NoError(t, b.Err())
	require.NotContains(t, scrape(t, reg), "walhook_test_reasons_total", "a vector shows nothing before a label value is used")

	metric.Preset(v, "one", "two")
	got := scrape(t, reg)
	require.Contains(t, got, `walhook_test_reasons_total{reason="one"} 0`+"\n")
	require.Contains(t, got, `walhook_test_reasons_total{reason="two"} 0`+"\n")
}
