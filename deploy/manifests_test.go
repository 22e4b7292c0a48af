package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
)

// obj is one parsed Kubernetes object.
type obj = map[string]any

// get walks a parsed YAML tree by map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func labels(v any, path ...any) map[string]string {
	out := map[string]string{}
	m, _ := get(v, path...).(map[string]any)
	for k, x := range m {
		out[k], _ = x.(string)
	}
	return out
}

// matches reports whether selector selects labels.
func matches(selector, lbls map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if lbls[k] != v {
			return false
		}
	}
	return true
}

// loadManifests parses every document of every YAML file under deploy/kubernetes.
func loadManifests(t *testing.T) map[string][]obj {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	byKind := map[string][]obj{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue // not an object; checked on its own
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o obj
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s parses", f)
			if o == nil {
				continue
			}
			require.NotEmpty(t, str(o, "apiVersion"), "%s: apiVersion", f)
			require.NotEmpty(t, str(o, "metadata", "name"), "%s: metadata.name", f)
			byKind[str(o, "kind")] = append(byKind[str(o, "kind")], o)
		}
	}
	return byKind
}

// portOf returns the port of a host:port listen address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, "listen address %q", addr)
	return port
}

// TestKubernetesManifests parses every manifest and checks that what they name exists: each
// container's subcommand, every WALHOOK_* variable (in that subcommand's --help), its port (the
// one WALHOOK_ADDR listens on), probe ports and paths (served by a real walhook process), the
// Secret keys and ConfigMaps they reference (the catalog parses), Services and budgets selecting
// real pods, the ServiceMonitor's port and path, and at least two relay replicas.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	buildBinary(t)
	c := describe(t)
	m := loadManifests(t)

	kust := loadManifestFile(t, "kubernetes/kustomization.yaml")
	for _, r := range list(kust, "resources") {
		_, err := os.Stat(filepath.Join("kubernetes", r.(string)))
		require.NoError(t, err, "kustomization resource %v exists", r)
	}

	secrets := map[string]obj{}
	for _, s := range m["Secret"] {
		secrets[str(s, "metadata", "name")] = s
	}
	configMaps := map[string]obj{}
	for _, cm := range m["ConfigMap"] {
		configMaps[str(cm, "metadata", "name")] = cm
		if cat := str(cm, "data", "catalog.yaml"); cat != "" {
			_, err := catalog.Parse([]byte(cat))
			require.NoError(t, err, "the catalog in ConfigMap %s parses", str(cm, "metadata", "name"))
		}
	}

	probePaths := map[string]bool{}
	podPorts := map[string][]string{} // deployment → its containers' port names
	commands := map[string]bool{}
	require.NotEmpty(t, m["Deployment"])
	for _, d := range m["Deployment"] {
		name := str(d, "metadata", "name")
		require.True(t, matches(labels(d, "spec", "selector", "matchLabels"), labels(d, "spec", "template", "metadata", "labels")),
			"%s: selector matches its pod template", name)
		for _, ct := range list(d, "spec", "template", "spec", "containers") {
			args := list(ct, "args")
			require.NotEmpty(t, args, "%s: the container names a subcommand", name)
			cmd := args[0].(string)
			require.True(t, c.commands[cmd], "%s: walhook has a %q subcommand", name, cmd)
			commands[cmd] = true
			if cmd == "relay" {
				require.GreaterOrEqual(t, get(d, "spec", "replicas"), 2, "%s: two or more relays, so one takes over capture", name)
			}
			addr := ""
			for _, e := range list(ct, "env") {
				env := str(e, "name")
				if env == goMemLimit {
					continue
				}
				require.True(t, c.hasEnv(cmd, env), "%s: `walhook %s` reads no variable %s", name, cmd, env)
				if env == "WALHOOK_ADDR" {
					addr = str(e, "value")
				}
				if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
					s, ok := secrets[str(ref, "name")]
					require.True(t, ok, "%s: %s from a Secret that exists", name, env)
					require.NotNil(t, get(s, "stringData", str(ref, "key")), "%s: Secret key %s", name, str(ref, "key"))
				}
			}
			require.NotEmpty(t, addr, "%s: WALHOOK_ADDR set (the default listens on loopback only)", name)
			ports := map[string]int{}
			for _, p := range list(ct, "ports") {
				ports[str(p, "name")] = get(p, "containerPort").(int)
				podPorts[name] = append(podPorts[name], str(p, "name"))
			}
			require.Len(t, ports, 1, "%s: one port", name)
			for pname, p := range ports {
				require.Equal(t, portOf(t, addr), strconv.Itoa(p), "%s: port %s is the one WALHOOK_ADDR listens on", name, pname)
			}
			for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
				pr := get(ct, probe)
				if pr == nil {
					continue
				}
				path := str(pr, "httpGet", "path")
				require.NotEmpty(t, path, "%s: %s is an HTTP probe", name, probe)
				_, ok := ports[str(pr, "httpGet", "port")]
				require.True(t, ok, "%s: %s port names a container port", name, probe)
				probePaths[path] = true
			}
			require.Equal(t, "/healthz", str(ct, "livenessProbe", "httpGet", "path"), "%s: liveness on /healthz", name)
			require.Equal(t, "/readyz", str(ct, "readinessProbe", "httpGet", "path"), "%s: readiness on /readyz", name)
		}
		for _, v := range list(d, "spec", "template", "spec", "volumes") {
			if cm := str(v, "configMap", "name"); cm != "" {
				_, ok := configMaps[cm]
				require.True(t, ok, "%s: ConfigMap %s exists", name, cm)
			}
		}
	}
	require.True(t, commands["relay"] && commands["admin"], "a relay and an admin Deployment")

	selects := func(sel map[string]string) []string {
		var out []string
		for _, d := range m["Deployment"] {
			if matches(sel, labels(d, "spec", "template", "metadata", "labels")) {
				out = append(out, str(d, "metadata", "name"))
			}
		}
		return out
	}
	svcPorts := map[string][]string{}
	for _, s := range m["Service"] {
		name := str(s, "metadata", "name")
		deps := selects(labels(s, "spec", "selector"))
		require.NotEmpty(t, deps, "Service %s selects pods", name)
		for _, p := range list(s, "spec", "ports") {
			tp := get(p, "targetPort")
			for _, d := range deps {
				if tps, ok := tp.(string); ok {
					require.Contains(t, podPorts[d], tps, "Service %s targetPort %s is a port of %s", name, tps, d)
				}
			}
			svcPorts[name] = append(svcPorts[name], str(p, "name"))
		}
	}
	require.Len(t, m["PodDisruptionBudget"], 2)
	for _, b := range m["PodDisruptionBudget"] {
		require.NotEmpty(t, selects(labels(b, "spec", "selector", "matchLabels")), "PDB %s selects pods", str(b, "metadata", "name"))
	}
	require.NotEmpty(t, m["ServiceMonitor"])
	for _, sm := range m["ServiceMonitor"] {
		var monitored []string
		for _, s := range m["Service"] {
			if matches(labels(sm, "spec", "selector", "matchLabels"), labels(s, "metadata", "labels")) {
				monitored = append(monitored, str(s, "metadata", "name"))
			}
		}
		require.NotEmpty(t, monitored, "ServiceMonitor selects Services")
		for _, ep := range list(sm, "spec", "endpoints") {
			for _, s := range monitored {
				require.Contains(t, svcPorts[s], str(ep, "port"), "ServiceMonitor port on Service %s", s)
			}
			probePaths[str(ep, "path")] = true
		}
	}

	// Every probed path is really served: ask a running `walhook serve`.
	p := xtest.Serve(t, serveEnv(xtest.DatabaseURL(t), crypt.GenerateKeySpec("k1")), "serve")
	for path := range probePaths {
		p.WaitStatus(t, path, 200, time.Minute)
	}
}

func loadManifestFile(t *testing.T, path string) obj {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var o obj
	require.NoError(t, yaml.Unmarshal(data, &o))
	return o
}

// unit is a parsed systemd unit: section → key → values (keys may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q is key=value", path, line)
			require.NotEmpty(t, section, "%s: %q outside a section", path, line)
			u[section][k] = append(u[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// goMemLimit is the one variable the units and manifests set that is not walhook's: the Go
// runtime's soft memory limit.
const goMemLimit = "GOMEMLIMIT"

var envAssign = regexp.MustCompile(`^(WALHOOK_[A-Z0-9_]+)=`)

// TestSystemdUnits checks both units: ExecStart runs a real subcommand, every WALHOOK_* they or
// the example environment file set is one that subcommand reads, the hardening is there, and —
// where systemd-analyze exists — systemd itself finds nothing wrong with them.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	c := describe(t)
	files, err := filepath.Glob("systemd/*.service")
	require.NoError(t, err)
	require.Len(t, files, 2)
	seen := map[string]bool{}
	for _, f := range files {
		u := parseUnit(t, f)
		svc := u["Service"]
		require.Len(t, svc["ExecStart"], 1, f)
		argv := strings.Fields(svc["ExecStart"][0])
		require.Equal(t, "/usr/local/bin/walhook", argv[0], f)
		cmd := argv[1]
		require.True(t, c.commands[cmd], "%s: walhook has a %q subcommand", f, cmd)
		seen[cmd] = true
		for _, e := range svc["Environment"] {
			if strings.HasPrefix(e, goMemLimit+"=") {
				continue
			}
			mm := envAssign.FindStringSubmatch(e)
			require.NotNil(t, mm, "%s: Environment=%s sets a WALHOOK_ variable", f, e)
			require.True(t, c.hasEnv(cmd, mm[1]), "%s: `walhook %s` reads no variable %s", f, cmd, mm[1])
		}
		for k, want := range map[string]string{
			"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
			"PrivateDevices": "yes", "DynamicUser": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes",
			"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "KillSignal": "SIGTERM",
		} {
			require.Equal(t, []string{want}, svc[k], "%s: %s=%s", f, k, want)
		}
		require.NotEmpty(t, u["Install"]["WantedBy"], f)

		if sa, err := exec.LookPath("systemd-analyze"); err == nil {
			// Verify a copy that points at the test binary (verify checks ExecStart exists).
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			text := strings.ReplaceAll(string(data), "/usr/local/bin/walhook", bin)
			text = strings.ReplaceAll(text, "EnvironmentFile=/", "EnvironmentFile=-/")
			cp := filepath.Join(t.TempDir(), filepath.Base(f))
			require.NoError(t, os.WriteFile(cp, []byte(text), 0o600))
			out, err := exec.Command(sa, "verify", cp).CombinedOutput()
			require.NoError(t, err, "systemd-analyze verify %s: %s", f, out)
			require.NotContains(t, string(out), filepath.Base(f), "systemd-analyze verify finds nothing: %s", out)
		}
	}
	require.True(t, seen["relay"] && seen["admin"], "a unit for the relay and one for the admin service")

	for line := range strings.SplitSeq(readFile(t, "deploy/systemd/walhook.env.example"), "\n") {
		if mm := envAssign.FindStringSubmatch(line); mm != nil {
			require.True(t, c.hasEnv("relay", mm[1]) && c.hasEnv("admin", mm[1]), "walhook.env.example: %s is read by relay and admin", mm[1])
		}
	}
}

// dockerfile is the parsed Dockerfile: instructions with continuation lines joined.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	var out [][2]string
	var cur strings.Builder
	for line := range strings.SplitSeq(readFile(t, "deploy/Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		instr, rest, _ := strings.Cut(cur.String(), " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(rest)})
		cur.Reset()
	}
	return out
}

// TestDockerfile checks the image recipe without a Docker engine: the Go version matches go.mod,
// every COPY source exists and the build context (after Dockerfile.dockerignore) keeps every
// package and embedded file the binary needs, the binary builds static (buildBinary), and the
// variables, port, user, entrypoint and health check name what the binary really has.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	buildBinary(t)
	c := describe(t)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, "go.mod"))[1]

	var copied []string
	var env []string
	var user, expose, healthcheck, entrypoint, cmd string
	for _, in := range dockerfile(t) {
		switch in[0] {
		case "ARG":
			if v, ok := strings.CutPrefix(in[1], "GO_VERSION="); ok {
				require.Equal(t, goVersion, v, "ARG GO_VERSION matches go.mod's go directive")
			}
		case "COPY":
			if strings.HasPrefix(in[1], "--from=") {
				continue
			}
			f := strings.Fields(in[1])
			for _, src := range f[:len(f)-1] {
				_, err := os.Stat(filepath.Join(root, src))
				require.NoError(t, err, "COPY source %s exists", src)
				copied = append(copied, strings.TrimSuffix(src, "/"))
			}
		case "ENV":
			for _, kv := range strings.Fields(in[1]) {
				if mm := envAssign.FindStringSubmatch(kv); mm != nil {
					env = append(env, mm[1])
					if mm[1] == "WALHOOK_ADDR" {
						expose = portOf(t, strings.TrimPrefix(kv, "WALHOOK_ADDR="))
					}
				}
			}
		case "USER":
			user = in[1]
		case "EXPOSE":
			require.Equal(t, expose, in[1], "EXPOSE is the port WALHOOK_ADDR listens on")
		case "HEALTHCHECK":
			_, healthcheck, _ = strings.Cut(in[1], "CMD ")
		case "ENTRYPOINT":
			entrypoint = in[1]
		case "CMD":
			cmd = in[1]
		}
	}
	for _, e := range env {
		require.True(t, c.hasEnv("serve", e), "ENV %s is read by walhook serve", e)
	}
	require.Regexp(t, `^[1-9][0-9]*:[1-9][0-9]*$`, user, "USER is a numeric non-root uid:gid")
	require.Equal(t, `["/usr/local/bin/walhook"]`, entrypoint)
	require.Equal(t, `["serve"]`, cmd)
	require.Equal(t, `["/usr/local/bin/walhook", "healthcheck", "--url", "http://127.0.0.1:`+expose+`/healthz"]`, healthcheck)
	require.True(t, c.commands["healthcheck"])
	require.Contains(t, c.flags["healthcheck"], "url")

	// Every package of the module the binary needs, and every file they embed, is in the context.
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if eq .Module.Path "github.com/walhook/walhook"}}{{.Dir}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "../cmd/walhook").Output()
	require.NoError(t, err)
	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	ignore := readFile(t, "deploy/Dockerfile.dockerignore")
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		dir, embeds, _ := strings.Cut(line, "|")
		rel, err := filepath.Rel(abs, dir)
		require.NoError(t, err)
		top := strings.Split(rel, string(filepath.Separator))[0]
		require.True(t, slices.Contains(copied, top), "package dir %s is COPYed into the build stage", rel)
		require.Contains(t, ignore, "!"+top+"/", "Dockerfile.dockerignore keeps %s/", top)
		for e := range strings.SplitSeq(embeds, ",") {
			if e == "" {
				continue
			}
			require.False(t, strings.HasSuffix(e, "_test.go") || strings.Contains(e, "testdata/"),
				"%s/%s is embedded but excluded by Dockerfile.dockerignore", rel, e)
		}
	}
}

// TestPostgreSQLSettings: every setting walhook needs is there, each with the reason above it.
func TestPostgreSQLSettings(t *testing.T) {
	t.Parallel()
	lines := strings.Split(readFile(t, "deploy/postgresql/walhook.conf"), "\n")
	for _, setting := range []string{"wal_level = logical", "max_replication_slots", "max_wal_senders", "max_slot_wal_keep_size", "max_locks_per_transaction"} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, setting) })
		require.Positive(t, i, "walhook.conf sets %s", setting)
		require.True(t, strings.HasPrefix(lines[i-1], "# "), "%s has its reason in a comment above it", setting)
	}
}
