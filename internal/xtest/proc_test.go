package xtest

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/crypt"
)

func TestMain(m *testing.M) { Main(m) }

// TestProcLogBounded: a process's log keeps its first 64 KiB and its last MiB, says how many
// lines it dropped between them, cuts a line longer than 64 KiB, and keeps a last line without
// a newline.
func TestProcLogBounded(t *testing.T) {
	t.Parallel()
	p := &Proc{done: make(chan struct{})}
	w := &procWriter{p: p}
	line := strings.Repeat("x", 1000)
	const lines = 3000 // about 3 MB
	for i := range lines {
		// Lines split across writes, as pipes deliver them.
		s := fmt.Sprintf("%05d %s\n", i, line)
		_, _ = w.Write([]byte(s[:10]))
		_, _ = w.Write([]byte(s[10:]))
	}
	_, _ = w.Write([]byte(strings.Repeat("y", 100<<10) + "\nlast"))
	p.flush()

	logs := p.Logs()
	require.True(t, strings.HasPrefix(logs, "00000 x"), "the first line is kept")
	require.Contains(t, logs, "\n00063 x", "the first 64 KiB are kept")
	require.NotContains(t, logs, "\n01000 x", "the middle is dropped")
	require.Contains(t, logs, "\n02999 x", "the end is kept")
	require.Regexp(t, `\n\[xtest: \d+ lines dropped\]\n`, logs)
	require.Contains(t, logs, "\n"+strings.Repeat("y", maxLine)+"\n", "a long line is cut at 64 KiB")
	require.NotContains(t, logs, strings.Repeat("y", maxLine+1))
	require.True(t, strings.HasSuffix(logs, "\nlast\n"), "a last line without a newline is kept")
	require.Less(t, len(logs), logHead+logTail+maxLine+100)
}

// TestProcWaitLogSeesEveryLine: WaitLog finds a line already seen and a line still to come,
// and a line matched by a waiter is handed over once.
func TestProcWaitLogSeesEveryLine(t *testing.T) {
	t.Parallel()
	p := &Proc{done: make(chan struct{})}
	w := &procWriter{p: p}
	_, _ = w.Write([]byte("{\"addr\":\"127.0.0.1:1234\",\"message\":\"admin listening\"}\n"))
	require.Equal(t, "127.0.0.1:1234", p.WaitListening(t, time.Second))
	go func() { _, _ = w.Write([]byte("later: 42\n")) }()
	require.Equal(t, []string{"later: 42", "42"}, p.WaitLog(t, regexp.MustCompile(`later: (\d+)`), time.Minute))
	p.mu.Lock()
	require.Empty(t, p.watchers, "a satisfied waiter is removed")
	p.mu.Unlock()
}

// TestRunAndServe runs the real binary: `walhook help` to its end, and `walhook serve` on a test
// database until it listens, serves its metrics, and stops on SIGTERM with exit code 0; a second
// serve is killed with SIGKILL and reports the signal's exit.
func TestRunAndServe(t *testing.T) {
	t.Parallel()
	code, out := Run(t, nil, "help")
	require.Zero(t, code, out)
	require.Contains(t, out, "  serve")
	code, out = Run(t, nil, "no-such-command")
	require.Equal(t, 2, code, out)

	env := []string{"WALHOOK_DATABASE_URL=" + DatabaseURL(t), "WALHOOK_ENCRYPTION_KEYS=" + crypt.GenerateKeySpec("k1")}
	p := Serve(t, env, "serve")
	require.Regexp(t, `^127\.0\.0\.1:\d+$`, p.Addr())
	p.WaitStatus(t, "/readyz", http.StatusOK, time.Minute)
	require.Positive(t, p.Metric(t, "go_goroutines"))
	require.False(t, p.Exited())
	require.NoError(t, p.Err(), "no error while it runs")
	require.Zero(t, p.Stop(t, time.Minute), "exit code after SIGTERM\n%s", p.Logs())
	require.True(t, p.Exited())

	k := Serve(t, env, "serve")
	k.Kill(t)
	require.True(t, k.Exited())
	require.Error(t, k.Err())
	require.Equal(t, -1, k.Wait(t, time.Second), "ended by a signal")
}

// TestEventuallyStops: Eventually returns once the condition holds, and a Stop error ends the
// wait at once (checked on a fake testing.TB that records the failure).
func TestEventuallyStops(t *testing.T) {
	t.Parallel()
	n := 0
	Eventually(t, time.Minute, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	require.Equal(t, 3, n)

	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(ft, time.Hour, time.Millisecond, func() error { return Stop(errors.New("gone for good")) })
	}()
	<-done
	require.Equal(t, "gone for good", ft.msg, "failed with the Stop error, without waiting the hour")
}

// fatalTB records the message of Fatalf and ends the goroutine, as testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
