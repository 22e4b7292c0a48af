package xtest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Sample reads a metric from a registry, for a test that holds the registry it gave a
// component: the sum of the values (counter, gauge or untyped) of name's samples that carry every
// one of values among their label values. No values: the one sample of a metric without labels
// (all of name's samples, for a vector), and a name the registry does not hold fails the test.
// With values, nothing counted yet reads 0: a vector shows no sample, not even its name, until a
// label value is first used.
func Sample(t testing.TB, g prometheus.Gatherer, name string, values ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("xtest: gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
	samples:
		for _, m := range mf.GetMetric() {
			var have []string
			for _, l := range m.GetLabel() {
				have = append(have, l.GetValue())
			}
			for _, v := range values {
				if !slices.Contains(have, v) {
					continue samples
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
		return sum
	}
	if len(values) == 0 {
		t.Fatalf("xtest: no metric %s", name)
	}
	return 0
}
