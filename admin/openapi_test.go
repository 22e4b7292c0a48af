package admin

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRouter compares the router's routes with the document both ways and checks
// the document: every operation has responses (401 for the API, 403 where a permission is
// needed), every path parameter is declared, and every $ref resolves.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(openAPI, &doc))
	require.True(t, strings.HasPrefix(fmt.Sprint(doc["openapi"]), "3."), "an OpenAPI 3 document")
	require.NotEmpty(t, doc["info"].(map[string]any)["title"])

	srv := &Server{}
	routes := map[string]route{}
	for _, rt := range srv.routes() {
		routes[rt.method+" "+rt.path] = rt
	}
	ops := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /openapi.yaml": true, "POST /v1/login": true}
	for k := range routes {
		ops[k] = true
	}

	documented := map[string]bool{}
	paramRE := regexp.MustCompile(`\{([a-z_]+)\}`)
	for path, item := range doc["paths"].(map[string]any) {
		pi := item.(map[string]any)
		for method, op := range pi {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			o := op.(map[string]any)
			responses, _ := o["responses"].(map[string]any)
			require.NotEmpty(t, responses, "%s has responses", key)
			if rt, ok := routes[key]; ok {
				require.Contains(t, responses, "401", "%s documents 401", key)
				if rt.access != accessMember {
					require.Contains(t, responses, "403", "%s documents 403", key)
				}
			}
			// Every {param} of the path is declared at the path or the operation.
			declared := map[string]bool{}
			for _, list := range []any{pi["parameters"], o["parameters"]} {
				ps, _ := list.([]any)
				for _, p := range ps {
					pm := resolve(t, doc, p.(map[string]any))
					if pm["in"] == "path" {
						declared[pm["name"].(string)] = true
					}
				}
			}
			for _, m := range paramRE.FindAllStringSubmatch(path, -1) {
				require.True(t, declared[m[1]], "%s declares path parameter %s", key, m[1])
			}
		}
	}
	var missing, extra []string
	for k := range ops {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !ops[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	require.Empty(t, missing, "routes missing from openapi.yaml")
	require.Empty(t, extra, "operations in openapi.yaml without a route")

	// Every $ref resolves.
	var walk func(v any)
	n := 0
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				n++
				resolvePointer(t, doc, ref)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	require.Greater(t, n, 100)
}

func resolve(t *testing.T, doc, m map[string]any) map[string]any {
	t.Helper()
	if ref, ok := m["$ref"].(string); ok {
		return resolvePointer(t, doc, ref)
	}
	return m
}

func resolvePointer(t *testing.T, doc map[string]any, ref string) map[string]any {
	t.Helper()
	require.True(t, strings.HasPrefix(ref, "#/"), "local $ref %s", ref)
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		require.True(t, ok, "$ref %s resolves", ref)
		cur, ok = m[part]
		require.True(t, ok, "$ref %s resolves", ref)
	}
	out, ok := cur.(map[string]any)
	require.True(t, ok, "$ref %s points to an object", ref)
	return out
}
