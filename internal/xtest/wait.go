package xtest

import (
	"errors"
	"testing"
	"time"
)

// stopError is a condition's answer that waiting is pointless (Stop).
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }

// Stop wraps err so that Eventually fails at once with it instead of waiting on: the condition
// can no longer come true (a process exited, a delivery failed for good).
func Stop(err error) error { return stopError{err} }

// Eventually calls cond every tick until it returns nil, and fails the test with cond's last
// error if that has not happened within, or at once if cond returns an error made by Stop. cond
// says in its error what it saw, so that a failure shows how far things got. It is the bounded
// wait tests use instead of sleeping and then checking.
func Eventually(t testing.TB, within, tick time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		var stop stopError
		if errors.As(err, &stop) {
			t.Fatalf("%v", stop.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		select {
		case <-ticker.C:
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %v", err)
		}
	}
}
