package leader

// SetAfterAttempt sets the test signal run after each attempt to acquire the lease while
// following. Set it before Run.
func SetAfterAttempt(e *Elector, f func(ok bool, err error)) { e.afterAttempt = f }
