package lograte

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// clock is a hand-moved clock for a Limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) advance(d time.Duration)      { c.t = c.t.Add(d) }
func newClock() *clock                        { return &clock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)} }
func logger(buf *bytes.Buffer) zerolog.Logger { return zerolog.New(buf) }

// lines are the log lines written to buf.
func lines(buf *bytes.Buffer) []string {
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func TestLimiterWritesOncePerInterval(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logger(&buf)
	c := newClock()
	l := &Limiter{Every: time.Minute, now: c.now}

	l.Msg(log.Warn().Int("n", 1), "first")
	c.advance(30 * time.Second)
	l.Msg(log.Warn().Int("n", 2), "suppressed")
	c.advance(29 * time.Second) // 59 s after the first
	l.Msg(log.Warn().Int("n", 3), "suppressed")
	c.advance(time.Second) // a minute after the first written: the suppressed ones do not count
	l.Msg(log.Warn().Int("n", 4), "second")
	c.advance(time.Second)
	l.Msg(log.Warn().Int("n", 5), "suppressed")

	require.Equal(t, []string{
		`{"level":"warn","n":1,"message":"first"}`,
		`{"level":"warn","n":4,"message":"second"}`,
	}, lines(&buf))
}

func TestLimiterZeroValueUsesDefaultEvery(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logger(&buf)
	c := newClock()
	l := &Limiter{now: c.now}

	l.Msg(log.Error(), "a")
	c.advance(9*time.Second + 999*time.Millisecond)
	l.Msg(log.Error(), "b")
	c.advance(time.Millisecond) // 10 s after a
	l.Msg(log.Error(), "c")

	require.Equal(t, []string{`{"level":"error","message":"a"}`, `{"level":"error","message":"c"}`}, lines(&buf))
}

func TestLimiterDisabledLevelDoesNotCount(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logger(&buf).Level(zerolog.ErrorLevel)
	c := newClock()
	l := &Limiter{Every: time.Minute, now: c.now}

	l.Msg(log.Warn(), "below the level: nil event")
	c.advance(time.Second)
	l.Msg(log.Error(), "written")
	c.advance(time.Second)
	l.Msg(log.Error(), "suppressed")

	require.Equal(t, []string{`{"level":"error","message":"written"}`}, lines(&buf))
}

func TestLimitersAreIndependent(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logger(&buf)
	c := newClock()
	a := &Limiter{Every: time.Minute, now: c.now}
	b := &Limiter{Every: time.Minute, now: c.now}

	a.Msg(log.Info(), "a1")
	b.Msg(log.Info(), "b1")
	a.Msg(log.Info(), "a2")
	b.Msg(log.Info(), "b2")

	require.Equal(t, []string{`{"level":"info","message":"a1"}`, `{"level":"info","message":"b1"}`}, lines(&buf))
}

// TestLimiterConcurrent logs from many goroutines at once (run with -race): one line is written.
func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := zerolog.New(&buf)
	var l Limiter // the real clock: an hour does not pass during the test
	l.Every = time.Hour
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				l.Msg(log.Warn(), "once")
			}
		})
	}
	wg.Wait()
	require.Equal(t, `{"level":"warn","message":"once"}`+"\n", buf.String())
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
