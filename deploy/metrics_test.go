package deploy_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	metricName   = regexp.MustCompile(`Name:\s*"(walhook_[a-z0-9_]+)"`)
	namespaceLit = regexp.MustCompile(`Namespace:\s*"([a-z0-9_]+)"`)
	subsystemLit = regexp.MustCompile(`Subsystem:\s*"([a-z0-9_]+)"`)
	shortName    = regexp.MustCompile(`Name:\s*"([a-z0-9_]+)"`)
	referenced   = regexp.MustCompile(`walhook_[a-z0-9_]+`)
)

// definedMetrics greps the Go source (tests excluded) for the metrics walhook registers: a
// `Name: "walhook_…"` in a collector's options, or a Namespace "walhook" with its Subsystem and
// Name in the same file.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	defined := map[string]bool{}
	for _, dir := range []string{"relay", "admin", "cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			src := string(b)
			for _, m := range metricName.FindAllStringSubmatch(src, -1) {
				defined[m[1]] = true
			}
			if ns := namespaceLit.FindStringSubmatch(src); ns != nil && ns[1] == "walhook" {
				subs := []string{""}
				for _, s := range subsystemLit.FindAllStringSubmatch(src, -1) {
					subs = append(subs, s[1]+"_")
				}
				for _, n := range shortName.FindAllStringSubmatch(src, -1) {
					for _, s := range subs {
						defined["walhook_"+s+n[1]] = true
					}
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	require.NotEmpty(t, defined)
	return defined
}

// base maps a histogram's series (_bucket, _count, _sum) to its metric when that is defined.
func base(name string, defined map[string]bool) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if b, ok := strings.CutSuffix(name, suffix); ok && defined[b] {
			return b
		}
	}
	return name
}

// TestAlertsAndDashboardUseRealMetrics fails when an alert rule, an alert test or a dashboard
// panel names a walhook_* metric the code does not define, and when a metric the code defines
// has no dashboard panel.
func TestAlertsAndDashboardUseRealMetrics(t *testing.T) {
	t.Parallel()
	defined := definedMetrics(t)
	for _, f := range []string{"deploy/prometheus/alerts.yaml", "deploy/prometheus/alerts_test.yaml", "deploy/grafana/walhook.json"} {
		for _, name := range referenced.FindAllString(readFile(t, f), -1) {
			require.True(t, defined[base(name, defined)], "%s names %s, which walhook does not export", f, name)
		}
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal([]byte(readFile(t, "deploy/grafana/walhook.json")), &dash))
	shown := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has a query", p.Title)
		for _, tg := range p.Targets {
			for _, name := range referenced.FindAllString(tg.Expr, -1) {
				shown[base(name, defined)] = true
			}
		}
	}
	var missing []string
	for name := range defined {
		if !shown[name] {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	require.Empty(t, missing, "metrics without a panel in deploy/grafana/walhook.json")
}
