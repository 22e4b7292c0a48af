package xtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The one way tests run walhook as a real process: Start (or Serve, which also waits for the
// admin listener) runs the binary Walhook built, with the test's environment plus env. The
// process's standard output and standard error go to one bounded log (Logs), which WaitLog
// watches line by line. A process still running when its test ends is killed with SIGKILL; when
// the test failed, its exit and the end of its log are logged.

// Log bounds: the first logHead bytes of a process's output are kept (how it started), and the
// last logTail bytes (what it did lately); what lies between is dropped and counted. A line
// longer than maxLine is cut.
const (
	logHead = 64 << 10
	logTail = 1 << 20
	maxLine = 64 << 10
)

// listening is the admin listener's log line (JSON logs): `{"addr":"127.0.0.1:…",…"admin listening"}`.
var listening = regexp.MustCompile(`"addr":"([^"]+)".*admin listening|admin listening.*"addr":"([^"]+)"`)

// Proc is one walhook process started by a test.
type Proc struct {
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, once done is closed

	addrMu sync.Mutex
	addr   string

	mu       sync.Mutex
	head     []string // the first lines, up to logHead bytes
	headN    int
	tail     []string // the last lines, up to logTail bytes
	tailN    int
	dropped  int // lines dropped between head and tail
	partial  []byte
	watchers []*watcher
}

// watcher is a WaitLog waiting for a line matching re.
type watcher struct {
	re  *regexp.Regexp
	got chan []string
}

// Start starts walhook with args, its environment the test's plus env, and returns without
// waiting for anything. The process is killed (SIGKILL) when the test ends, if it still runs
// (StopAtEnd stops it with SIGTERM instead).
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{args: args, done: make(chan struct{})}
	// No test context: t.Context() is cancelled before cleanups run, and StopAtEnd's must still
	// find the process running to stop it gently. The cleanup below ends it.
	p.cmd = exec.CommandContext(context.Background(), Walhook(t), args...) //nolint:gosec // the binary is our own build
	p.cmd.Env = append(os.Environ(), env...)
	// One writer for both: exec then shares one pipe, so lines keep their order.
	w := &procWriter{p: p}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	// A child that hands the pipe on (walhook dev's PostgreSQL) must not hold up Wait.
	p.cmd.WaitDelay = 10 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("xtest: start walhook %v: %v", args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.flush()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("walhook %v (pid %d): %s; its log ends:\n%s", p.args, p.cmd.Process.Pid, p.exit(), Tail(p.Logs(), 4000))
		}
	})
	return p
}

// Serve starts walhook with args plus `--addr 127.0.0.1:0 --log-format json` and returns once its
// admin listener is up (Addr), failing if it exits first or does not listen within two minutes.
func Serve(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := Start(t, env, ServeArgs(args...)...)
	p.WaitListening(t, 2*time.Minute)
	return p
}

// ServeArgs is args plus the flags Serve adds: a free port on 127.0.0.1 and JSON logs (which
// WaitListening reads).
func ServeArgs(args ...string) []string {
	return append(args[:len(args):len(args)], "--addr", "127.0.0.1:0", "--log-format", "json")
}

// Run runs walhook with args to its end (within two minutes, else it is killed and the test
// fails) and returns its exit code and its output, standard output and standard error together.
func Run(t testing.TB, env []string, args ...string) (int, string) {
	t.Helper()
	p := Start(t, env, args...)
	code := p.Wait(t, 2*time.Minute)
	return code, p.Logs()
}

// WaitListening waits for the admin listener's log line, within, and sets Addr from it.
func (p *Proc) WaitListening(t testing.TB, within time.Duration) string {
	t.Helper()
	m := p.WaitLog(t, listening, within)
	p.addrMu.Lock()
	p.addr = m[1] + m[2]
	p.addrMu.Unlock()
	return p.Addr()
}

// Addr is the admin listener's address (host:port), once WaitListening (or Serve) saw it.
func (p *Proc) Addr() string {
	p.addrMu.Lock()
	defer p.addrMu.Unlock()
	return p.addr
}

// WaitLog waits until a line of the process's output (one seen already, or a new one) matches
// re, and returns the submatches. It fails the test if the process exits first or no line
// matches within.
func (p *Proc) WaitLog(t testing.TB, re *regexp.Regexp, within time.Duration) []string {
	t.Helper()
	w := &watcher{re: re, got: make(chan []string, 1)}
	p.mu.Lock()
	for _, lines := range [][]string{p.head, p.tail} {
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
	}
	p.watchers = append(p.watchers, w)
	p.mu.Unlock()
	defer p.unwatch(w)
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case m := <-w.got:
		return m
	case <-p.done:
		select { // the line may have been the last one
		case m := <-w.got:
			return m
		default:
		}
		t.Fatalf("walhook %v %s before a line matched %q\n%s", p.args, p.exit(), re, Tail(p.Logs(), 6000))
	case <-timer.C:
		t.Fatalf("walhook %v: no line matched %q within %v\n%s", p.args, re, within, Tail(p.Logs(), 6000))
	}
	return nil
}

func (p *Proc) unwatch(w *watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.watchers {
		if x == w {
			p.watchers = append(p.watchers[:i], p.watchers[i+1:]...)
			return
		}
	}
}

// Logs returns the process's output so far: its first 64 KiB and its last MiB, with a line
// saying how many lines were dropped between them, if any.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.head {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if p.dropped > 0 {
		fmt.Fprintf(&b, "[xtest: %d lines dropped]\n", p.dropped)
	}
	for _, l := range p.tail {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// line records one line of output and hands it to the watchers it matches.
func (p *Proc) line(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.headN+len(l) <= logHead && p.dropped == 0 && len(p.tail) == 0 {
		p.head = append(p.head, l)
		p.headN += len(l) + 1
	} else {
		p.tail = append(p.tail, l)
		p.tailN += len(l) + 1
		for p.tailN > logTail && len(p.tail) > 1 {
			p.tailN -= len(p.tail[0]) + 1
			p.tail = p.tail[1:]
			p.dropped++
		}
	}
	for i := 0; i < len(p.watchers); {
		w := p.watchers[i]
		if m := w.re.FindStringSubmatch(l); m != nil {
			w.got <- m
			p.watchers = append(p.watchers[:i], p.watchers[i+1:]...)
			continue
		}
		i++
	}
}

// flush records a last line that had no newline.
func (p *Proc) flush() {
	p.mu.Lock()
	rest := string(p.partial)
	p.partial = nil
	p.mu.Unlock()
	if rest != "" {
		p.line(rest)
	}
}

// procWriter splits the process's output into lines. exec calls Write from one goroutine.
type procWriter struct{ p *Proc }

func (w *procWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		w.p.mu.Lock()
		if i < 0 {
			w.p.partial = append(w.p.partial, b[:min(len(b), max(0, maxLine-len(w.p.partial)))]...)
			w.p.mu.Unlock()
			break
		}
		l := string(append(w.p.partial, b[:min(i, max(0, maxLine-len(w.p.partial)))]...))
		w.p.partial = w.p.partial[:0]
		w.p.mu.Unlock()
		w.p.line(l)
		b = b[i+1:]
	}
	return n, nil
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's end as exec reports it: nil while it runs or when it exited 0.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// exit describes how the process ended, or that it is still running.
func (p *Proc) exit() string {
	if !p.Exited() {
		return "still running"
	}
	if p.err == nil {
		return "exited 0"
	}
	return "exited: " + p.err.Error()
}

// Signal sends sig to the process.
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("xtest: signal %v to walhook %v: %v", sig, p.args, err)
	}
}

// Wait waits, within, for the process to exit and returns its exit code (-1 when a signal ended
// it). It fails the test if the process still runs after within.
func (p *Proc) Wait(t testing.TB, within time.Duration) int {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		t.Fatalf("walhook %v did not exit within %v\n%s", p.args, within, Tail(p.Logs(), 6000))
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) && !errors.Is(p.err, exec.ErrWaitDelay) {
		t.Fatalf("walhook %v: %v\n%s", p.args, p.err, Tail(p.Logs(), 6000))
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and returns the exit code once the process has exited. If it still runs
// after within, it is killed with SIGKILL and the test fails.
func (p *Proc) Stop(t testing.TB, within time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("xtest: SIGTERM to walhook %v: %v", p.args, err)
	}
	return p.Wait(t, within)
}

// StopAtEnd makes the end of the test stop the process with SIGTERM (Stop, within) rather than
// kill it: for a process with children of its own, such as walhook dev's PostgreSQL, which
// SIGKILL would leave running. The test fails if the process then exits other than with 0. It
// does nothing if the process has exited by then.
func (p *Proc) StopAtEnd(t testing.TB, within time.Duration) {
	t.Cleanup(func() {
		if p.Exited() {
			return
		}
		if code := p.Stop(t, within); code != 0 {
			t.Errorf("walhook %v exited %d after SIGTERM, want 0", p.args, code)
		}
	})
}

// Kill kills the process with SIGKILL and waits for it to be gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("xtest: kill walhook %v: %v", p.args, err)
	}
	<-p.done
}

// Get GETs path (with its query) on the process's admin listener and returns the status and
// the body (its first MiB). An error is a request that got no answer.
func (p *Proc) Get(ctx context.Context, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr()+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// Status GETs path and returns the status code, 0 when no answer came.
func (p *Proc) Status(t testing.TB, path string) int {
	code, _, err := p.Get(t.Context(), path)
	if err != nil {
		return 0
	}
	return code
}

// WaitStatus polls path until it answers want, failing if the process exits first or within
// passes.
func (p *Proc) WaitStatus(t testing.TB, path string, want int, within time.Duration) {
	t.Helper()
	last := 0
	Eventually(t, within, 20*time.Millisecond, func() error {
		if p.Exited() {
			return Stop(fmt.Errorf("walhook %s while waiting for %s to answer %d", p.exit(), path, want))
		}
		if last = p.Status(t, path); last != want {
			return fmt.Errorf("%s answers %d, want %d", path, last, want)
		}
		return nil
	})
}

// Metric reads one sample from the process's /metrics: name is the series as exposed, with its
// labels (`walhook_x_total{reason="y"}`). It fails the test if the series is absent.
func (p *Proc) Metric(t testing.TB, name string) float64 {
	t.Helper()
	code, body, err := p.Get(t.Context(), "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("xtest: GET /metrics: %d %v", code, err)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("xtest: metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("xtest: metric %s not found", name)
	return 0
}
