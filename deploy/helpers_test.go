package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// root is the repository root, relative to this package's directory.
const root = ".."

// buildBinary builds walhook the way the image does (static, CGO_ENABLED=0; xtest.Walhook) and
// checks it really is static: no program interpreter, no shared libraries.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := xtest.Walhook(t)

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary must be static (no ELF interpreter)")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "the binary must not need shared libraries")
	return bin
}

// cli is what the binary says about itself: its subcommands, and each one's flags with their
// environment variables.
type cli struct {
	commands map[string]bool
	flags    map[string]map[string]string // command → flag name → WALHOOK_ variable
}

var (
	commandLine = regexp.MustCompile(`^  ([a-z][a-z-]*)\s+\S`)
	flagLine    = regexp.MustCompile(`^  --([a-z0-9-]+)  \[(WALHOOK_[A-Z0-9_]+)\]$`)
)

// describe runs `walhook help` and `walhook <command> --help` for every command.
func describe(t *testing.T, bin string) cli {
	t.Helper()
	out, err := exec.Command(bin, "help").Output()
	require.NoError(t, err)
	c := cli{commands: map[string]bool{}, flags: map[string]map[string]string{}}
	inCommands := false
	for line := range strings.SplitSeq(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Commands:"):
			inCommands = true
		case inCommands && line == "":
			inCommands = false
		case inCommands:
			if m := commandLine.FindStringSubmatch(line); m != nil {
				c.commands[m[1]] = true
			}
		}
	}
	require.True(t, c.commands["serve"], "walhook help lists serve:\n%s", out)
	for name := range c.commands {
		// --help exits 0 with the flags on stderr; commands without flags print nothing useful.
		cmd := exec.Command(bin, name, "--help")
		var buf strings.Builder
		cmd.Stdout, cmd.Stderr = &buf, &buf
		_ = cmd.Run()
		flags := map[string]string{}
		for line := range strings.SplitSeq(buf.String(), "\n") {
			if m := flagLine.FindStringSubmatch(line); m != nil {
				flags[m[1]] = m[2]
			}
		}
		c.flags[name] = flags
	}
	require.NotEmpty(t, c.flags["serve"]["database-url"], "serve --help lists --database-url")
	return c
}

// hasEnv reports whether command reads the environment variable env.
func (c cli) hasEnv(command, env string) bool {
	for _, v := range c.flags[command] {
		if v == env {
			return true
		}
	}
	return false
}

// proc is a walhook process under test.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	err  error // Wait's result, once done is closed

	mu  sync.Mutex
	log strings.Builder
}

var listeningLine = regexp.MustCompile(`"addr":"([^"]+)".*admin listening|admin listening.*"addr":"([^"]+)"`)

// start runs `walhook <args> --addr 127.0.0.1:0 --log-format json` with env added, and returns
// once it listens.
func start(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	args = append(args, "--addr", "127.0.0.1:0", "--log-format", "json")
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1] + m[2]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.addr = <-addrc:
		return p
	case <-p.done:
		t.Fatalf("walhook %v exited before listening: %v\n%s", args, p.err, p.logs())
	case <-time.After(90 * time.Second):
		t.Fatalf("walhook %v did not listen within 90s\n%s", args, p.logs())
	}
	return nil
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(s))
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("walhook did not exit within 90s\n%s", p.logs())
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	require.ErrorAs(t, p.err, &ee, "%s", p.logs())
	return ee.ExitCode()
}

// status GETs path on the process; 0 when the connection fails.
func (p *proc) status(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitStatus polls path until it answers want, or the process exits, or a minute passes.
func (p *proc) waitStatus(t *testing.T, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	last := 0
	for time.Now().Before(deadline) {
		if last = p.status(path); last == want {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("walhook exited (%v) while waiting for %s to answer %d (last %d)\n%s", p.err, path, want, last, p.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not answer %d within a minute (last %d)\n%s", path, want, last, p.logs())
}

// serveEnv is the environment a walhook process needs for a database and a key spec.
func serveEnv(databaseURL, keySpec string) []string {
	return []string{"WALHOOK_DATABASE_URL=" + databaseURL, "WALHOOK_ENCRYPTION_KEYS=" + keySpec}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	require.NoError(t, err)
	return string(b)
}
