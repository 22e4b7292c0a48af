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

// bench is what a limiter test watches: a logger writing to a buffer, and a hand-moved clock for
// the limiters it makes.
type bench struct {
	buf   bytes.Buffer
	log   zerolog.Logger
	clock time.Time
}

func newBench() *bench {
	b := &bench{clock: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	b.log = zerolog.New(&b.buf)
	return b
}

// limiter is a Limiter of interval every on b's clock.
func (b *bench) limiter(every time.Duration) *Limiter {
	return &Limiter{Every: every, now: func() time.Time { return b.clock }}
}

func (b *bench) advance(d time.Duration) { b.clock = b.clock.Add(d) }

// lines are the log lines written so far.
func (b *bench) lines() []string {
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

func TestLimiterWritesOncePerInterval(t *testing.T) {
	t.Parallel()
	b := newBench()
	l := b.limiter(time.Minute)

	l.Msg(b.log.Warn().Int("n", 1), "first")
	b.advance(30 * time.Second)
	l.Msg(b.log.Warn().Int("n", 2), "suppressed")
	b.advance(29 * time.Second) // 59 s after the first
	l.Msg(b.log.Warn().Int("n", 3), "suppressed")
	b.advance(time.Second) // a minute after the first written: the suppressed ones do not count
	l.Msg(b.log.Warn().Int("n", 4), "second")
	b.advance(time.Second)
	l.Msg(b.log.Warn().Int("n", 5), "suppressed")

	require.Equal(t, []string{
		`{"level":"warn","n":1,"message":"first"}`,
		`{"level":"warn","n":4,"message":"second"}`,
	}, b.lines())
}

func TestLimiterZeroValueUsesDefaultEvery(t *testing.T) {
	t.Parallel()
	b := newBench()
	l := b.limiter(0)

	l.Msg(b.log.Error(), "a")
	b.advance(9*time.Second + 999*time.Millisecond)
	l.Msg(b.log.Error(), "b")
	b.advance(time.Millisecond) // 10 s after a
	l.Msg(b.log.Error(), "c")

	require.Equal(t, []string{`{"level":"error","message":"a"}`, `{"level":"error","message":"c"}`}, b.lines())
}

func TestLimiterDisabledLevelDoesNotCount(t *testing.T) {
	t.Parallel()
	b := newBench()
	log := b.log.Level(zerolog.ErrorLevel)
	l := b.limiter(time.Minute)

	l.Msg(log.Warn(), "below the level: nil event")
	b.advance(time.Second)
	l.Msg(log.Error(), "written")
	b.advance(time.Second)
	l.Msg(log.Error(), "suppressed")

	require.Equal(t, []string{`{"level":"error","message":"written"}`}, b.lines())
}

func TestLimitersAreIndependent(t *testing.T) {
	t.Parallel()
	b := newBench()
	l1, l2 := b.limiter(time.Minute), b.limiter(time.Minute)

	l1.Msg(b.log.Info(), "a1")
	l2.Msg(b.log.Info(), "b1")
	l1.Msg(b.log.Info(), "a2")
	l2.Msg(b.log.Info(), "b2")

	require.Equal(t, []string{`{"level":"info","message":"a1"}`, `{"level":"info","message":"b1"}`}, b.lines())
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
