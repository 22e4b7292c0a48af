// Package lograte rate-limits the logs of a loop: a loop that fails on every turn (a database
// that is down, a receiver that answers garbage) logs the failure at most once per interval
// instead of once per turn, so an outage neither floods the log nor hides other lines in it.
package lograte

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultEvery is the interval of a Limiter whose Every is zero.
const DefaultEvery = 10 * time.Second

// Limiter writes a log event at most once per Every and discards the others. The zero value is
// ready to use (DefaultEvery); a Limiter is safe for concurrent use and must not be copied after
// first use. Give each kind of failure its own Limiter when one must not hide another.
type Limiter struct {
	// Every is the shortest time between two events written; zero means DefaultEvery.
	Every time.Duration

	mu   sync.Mutex
	last time.Time        // when the last event was written; zero: never
	now  func() time.Time // the clock; nil: time.Now (tests set it)
}

// Msg writes e with msg when the last event written by l is at least Every old, and discards e
// otherwise: either way it finishes e, as zerolog's Msg does (zerolog pools events), hence the
// name, which zerologlint also counts as finishing it. A nil e (its level is disabled) writes
// nothing and does not count, so it cannot hide an event of an enabled level that shares l.
//
//	var failed lograte.Limiter
//	failed.Msg(log.Error().Err(err), "claim deliveries")
func (l *Limiter) Msg(e *zerolog.Event, msg string) {
	if e == nil {
		return
	}
	if !l.allow() {
		e.Discard()
		return
	}
	e.Msg(msg)
}

// allow reports whether an event may be written now, and if so counts it as written.
func (l *Limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	t := now()
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	if !l.last.IsZero() && t.Sub(l.last) < every {
		return false
	}
	l.last = t
	return true
}
