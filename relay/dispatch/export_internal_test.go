package dispatch

// SendsTo reports whether the dispatcher's webhook cache would still send to webhook id: it holds
// the webhook, active, loaded in the current epoch. Tests wait on it where the recorder turns a
// webhook off: the database says so at commit, the cache a moment later.
func (d *Dispatcher) SendsTo(id int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.cache[id]
	return ok && e.epoch == d.cacheEpoch && e.w != nil && e.w.Active
}

// Held is how many deliveries the dispatcher holds in memory (running and queued).
func (d *Dispatcher) Held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// OnRecordTry sets a test signal run after each try of the recorder to write a batch of results,
// with its error. Set it before Run.
func (d *Dispatcher) OnRecordTry(f func(err error)) { d.recordTried = f }
