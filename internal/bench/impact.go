package bench

import (
	"context"
	"fmt"
	"time"
)

// applicationImpact is the cost a user pays on the primary: the single-row load (as single-row)
// once with no relay running, then with walhook capturing and delivering it; the figure is the
// ratio of the application's commit rates. The WAL and database time are those of the second run.
func (e *env) applicationImpact(ctx context.Context) (Result, error) {
	n := e.sizes.singleRows
	bare := companyID("impact-bare")
	if _, err := e.setupCompany(ctx, bare, "item.created", nil); err != nil {
		return Result{}, err
	}
	if e.stopRelay != nil {
		if err := e.stopRelay(); err != nil {
			return Result{}, err
		}
		e.stopRelay = nil
	}
	defer func() {
		if e.stopRelay == nil {
			_ = e.startRelay(ctx)
		}
	}()
	c0, err := e.loadSingle(ctx, bare, n, 8, 0)
	if err != nil {
		return Result{}, err
	}
	without := float64(n) / c0.last.Sub(c0.first).Seconds()
	if err := e.startRelay(ctx); err != nil {
		return Result{}, err
	}
	// The relay reads the first run's rows from the slot (they have no webhook): wait until it
	// has, so that the second run does not share the machine with that catch-up.
	if err := e.waitCaughtUp(ctx); err != nil {
		return Result{}, err
	}
	if err := e.markStats(ctx); err != nil {
		return Result{}, err
	}
	company := companyID("impact")
	if _, err := e.setupCompany(ctx, company, "item.created", e.paths(company, 1)); err != nil {
		return Result{}, err
	}
	done := e.rc.reset(n, true)
	c1, err := e.loadSingle(ctx, company, n, 8, 0)
	if err != nil {
		return Result{}, err
	}
	with := float64(n) / c1.last.Sub(c1.first).Seconds()
	var res Result
	if err := waitReceived(ctx, done, n); err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	s := e.rc.snapshot()
	res.Received, res.Seconds = s.unique, s.last.Sub(c1.first).Seconds()
	res.Figure, res.Unit = with/without, "× (with/without relay)"
	res.Figures = map[string]float64{
		"commit_rate_without": without, "commit_rate_with": with,
		"p50_ms": pct(s.latencies, 50), "p99_ms": pct(s.latencies, 99),
	}
	met := res.Figure >= 0.9
	res.Met, res.Target = &met, "≥ 0.9"
	e.verify(ctx, &res, company, n)
	return res, nil
}

// waitCaughtUp waits until the capture has confirmed the WAL written so far (at most a minute).
func (e *env) waitCaughtUp(ctx context.Context) error {
	var target string
	if err := e.app.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		return fmt.Errorf("read wal position: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		err := e.app.QueryRow(ctx, `SELECT coalesce(bool_or(confirmed_flush_lsn >= $1::pg_lsn), false) FROM pg_replication_slots WHERE slot_name = 'walhook'`, target).Scan(&ok)
		if err != nil {
			return fmt.Errorf("read slot: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("capture did not confirm %s within a minute", target)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for capture: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// largeTransaction commits largeTxRows rows in one transaction and measures the first delivery's
// latency after the commit (the commit timestamp in the replication stream, as latency/*): how
// long the whole transaction takes to be captured before anything is sent.
func (e *env) largeTransaction(ctx context.Context) (Result, error) {
	company := companyID("large-transaction")
	if _, err := e.setupCompany(ctx, company, "item.created", e.paths(company, 1)); err != nil {
		return Result{}, err
	}
	n := e.sizes.largeTxRows
	done := e.rc.reset(n, true)
	c, err := e.loadBatches(ctx, loadTable, company, n, n, 1)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if err := waitReceived(ctx, done, n); err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	s := e.rc.snapshot()
	res.Received, res.Seconds = s.unique, s.last.Sub(c.first).Seconds()
	first := pct(s.latencies, 0)
	res.Figure, res.Unit = first, "ms to first delivery"
	res.Figures = map[string]float64{
		"rows": float64(n), "first_ms": first, "p50_ms": pct(s.latencies, 50), "last_ms": pct(s.latencies, 100),
		"delivery_rate": float64(s.unique) / max(s.last.Sub(s.first).Seconds(), 1e-3),
	}
	met := first <= 200
	res.Met, res.Target = &met, "first delivery ≤ 200 ms after commit"
	e.verify(ctx, &res, company, n)
	return res, nil
}

// noisyNeighbour: company B sends 100 events/s to one fast endpoint, first alone, then while
// company A floods its 50 webhooks, whose endpoints hang until the attempt timeout. B's p99
// commit → receipt and delivery rate are compared with B alone. A's endpoints recover at the
// end, so A's deliveries drain and are checked too.
func (e *env) noisyNeighbour(ctx context.Context) (Result, error) {
	const bRate, aHooks = 100.0, 50
	hang, err := newReceiver(ctx)
	if err != nil {
		return Result{}, err
	}
	defer hang.close()
	nB := int(bRate * e.sizes.noisy.Seconds())
	nA := int(e.sizes.noisyARate * e.sizes.noisy.Seconds())
	var res Result
	res.Figures = map[string]float64{}
	// runB sends B's load and waits for its deliveries, at most noisy + 10 s when A hangs (then
	// A's endpoints recover, below, and the rest of B's arrive after): B's p99 and rate are over
	// all of B's deliveries, the late ones included. It returns the commits and the receiver's
	// done channel.
	runB := func(company string) (*commits, <-chan struct{}, error) {
		if _, err := e.setupCompany(ctx, company, "item.created", e.paths(company, 1)); err != nil {
			return nil, nil, err
		}
		done := e.rc.reset(nB, true)
		c, err := e.loadSingle(ctx, company, nB, 4, bRate)
		return c, done, err
	}
	// bFigures waits for all of B's deliveries and returns their p99 and rate (deliveries / first
	// commit → last receipt).
	bFigures := func(c *commits, done <-chan struct{}) (float64, float64) {
		if err := waitReceived(ctx, done, nB); err != nil {
			res.Failures = append(res.Failures, "company B: "+err.Error())
		}
		s := e.rc.snapshot()
		res.Received += s.unique
		return pct(s.latencies, 99), float64(s.unique) / s.last.Sub(c.first).Seconds()
	}
	check := func(company string, want int) {
		var sub Result
		e.verify(ctx, &sub, company, want)
		res.Expected += sub.Expected
		res.Recorded += sub.Recorded
		res.Failures = append(res.Failures, sub.Failures...)
	}
	start := time.Now()
	c, done, err := runB(companyID("noisy-b-alone"))
	if err != nil {
		return Result{}, err
	}
	aloneP99, aloneRate := bFigures(c, done)
	check(companyID("noisy-b-alone"), nB)

	a := companyID("noisy-a")
	urls := make([]string, aHooks)
	for i := range urls {
		urls[i] = hang.URL(fmt.Sprintf("/hang/%d", i))
	}
	if _, err := e.setupCompany(ctx, a, "item.created", urls); err != nil {
		return Result{}, err
	}
	hang.setHang("/", true)
	doneA := hang.reset(nA*aHooks, false)
	aErr := make(chan error, 1)
	go func() {
		_, err := e.loadSingle(ctx, a, nA, 2, e.sizes.noisyARate)
		aErr <- err
	}()
	c, done, err = runB(companyID("noisy-b"))
	if lerr := <-aErr; err == nil && lerr != nil {
		err = lerr
	}
	if err == nil {
		// A hangs until B has everything or for 10 s more, whichever is first.
		t := time.NewTimer(10 * time.Second)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	res.Figures["b_received_while_a_hung"] = float64(e.rc.snapshot().unique)
	res.Figures["a_hung_requests"] = float64(hang.hangHitsNow())
	hang.setHang("/", false) // A's endpoints recover: its deliveries drain too
	if err != nil {
		return Result{}, err
	}
	withP99, withRate := bFigures(c, done)
	if err := waitReceived(ctx, doneA, nA*aHooks); err != nil {
		res.Failures = append(res.Failures, "company A: "+err.Error())
	}
	res.Received += hang.snapshot().unique
	check(companyID("noisy-b"), nB)
	check(a, nA*aHooks)
	res.Seconds = time.Since(start).Seconds()
	res.Figures["b_p99_ms_alone"], res.Figures["b_p99_ms_with_a"] = aloneP99, withP99
	res.Figures["b_rate_alone"], res.Figures["b_rate_with_a"] = aloneRate, withRate
	res.Figures["b_rate_ratio"] = withRate / aloneRate
	res.Figures["a_deliveries"] = float64(nA * aHooks)
	res.Figure, res.Unit = withP99, "ms B p99 with A"
	met := withP99 <= 50 && withRate >= 0.95*aloneRate
	res.Met, res.Target = &met, "B p99 ≤ 50 ms and rate ≥ 0.95 × alone"
	return res, nil
}
