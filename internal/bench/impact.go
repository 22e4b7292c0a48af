package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// applicationImpact is the cost a user pays on the primary: the application's single-row commit
// rate (the single-row load: singleRows rows from 8 connections) with walhook capturing and
// delivering it ÷ the same load with no relay running (the slot exists, nothing reads it), in
// each deployment.
//
// One pair of runs is at the mercy of a shared machine: another process's burst during one run
// moves a ratio by tens of percent. So the scenario runs impactRounds rounds per deployment and
// alternates: a round is three runs — without the relay, with a decoding-only reader in its
// place (decodeonly.go: what any logical-replication consumer costs the primary), with the
// relay — in that order in even rounds and the reverse in odd ones, and with both modes the
// deployments' rounds interleave (round r starts with deployment r mod 2), so a drift of the
// machine's load falls on every side and on both modes. The figure is the median of the rounds'
// ratios, with ÷ without (a round's runs are next to each other in time); decoding_only_ratio is
// the median of decoding-only ÷ without; commit_rate_* are the medians of the runs, ratio_min
// and ratio_max the spread. With both modes, two-databases' result also has vs_one_database: its
// median ratio ÷ one-database's, measured in the same minutes. WAL, database time and CPU per
// delivery are those of the runs with the relay (each from its first commit until its
// deliveries are recorded); CPUWithout is the CPU of the runs without it.
func (e *env) applicationImpact(ctx context.Context) ([]Result, error) {
	rounds := e.sizes.impactRounds
	type tally struct {
		without, with, ratios    []float64
		decoding, decodingRatios []float64
		latencies                []time.Duration
		res                      Result
		// cpuWithout, cpuDecoding: µs by category, summed over the runs without the relay
		cpuWithout, cpuDecoding map[string]float64
	}
	ts := make([]*tally, len(e.deps))
	for i, d := range e.deps {
		ts[i] = &tally{cpuWithout: map[string]float64{}, cpuDecoding: map[string]float64{}}
		// The relay has run once: its slot and publication (which the decoding-only reader
		// reads) exist.
		if err := e.use(ctx, d); err != nil {
			return nil, err
		}
		if _, err := e.setupCompany(ctx, companyID("impact-bare"), "item.created", nil); err != nil {
			return nil, err
		}
		if err := e.markStats(ctx); err != nil {
			return nil, err
		}
	}
	for r := range rounds {
		for k := range e.deps {
			i := (k + r) % len(e.deps)
			d, t := e.deps[i], ts[i]
			arms := []arm{armWithout, armDecoding, armRelay}
			if r%2 == 1 {
				slices.Reverse(arms)
			}
			var rate [3]float64
			for _, a := range arms {
				var err error
				switch a {
				case armRelay:
					rate[a], err = e.impactWith(ctx, d, r, &t.res, &t.latencies)
				case armDecoding:
					rate[a], err = e.impactAlone(ctx, d, true, t.cpuDecoding)
				default:
					rate[a], err = e.impactAlone(ctx, d, false, t.cpuWithout)
				}
				if err != nil {
					return nil, err
				}
			}
			t.without, t.with, t.decoding = append(t.without, rate[armWithout]), append(t.with, rate[armRelay]), append(t.decoding, rate[armDecoding])
			t.ratios = append(t.ratios, rate[armRelay]/rate[armWithout])
			t.decodingRatios = append(t.decodingRatios, rate[armDecoding]/rate[armWithout])
		}
	}
	out := make([]Result, 0, len(e.deps))
	for i, d := range e.deps {
		t := ts[i]
		res := t.res
		res.Scenario, res.Mode = "application-impact", d.mode
		res.Figure, res.Unit = median(t.ratios), fmt.Sprintf("× (with/without relay, median of %d alternated rounds)", rounds)
		res.Figures = map[string]float64{
			"commit_rate_without": median(t.without), "commit_rate_with": median(t.with),
			"ratio_min": slices.Min(t.ratios), "ratio_max": slices.Max(t.ratios), "rounds": float64(rounds),
			"commit_rate_decoding_only": median(t.decoding), "decoding_only_ratio": median(t.decodingRatios),
			"p50_ms": pct(t.latencies, 50), "p99_ms": pct(t.latencies, 99),
		}
		met := res.Figure >= 0.9
		res.Target = "≥ 0.9"
		if d.mode == ModeTwo {
			met, res.Target = res.Figure >= 0.97, "≥ 0.97"
		}
		res.Met = &met
		e.deployment = d
		if err := e.addDBFigures(ctx, &res); err != nil {
			res.Failures = append(res.Failures, err.Error())
		}
		rows := float64(rounds * e.sizes.singleRows)
		res.CPUWithout, res.CPUDecoding = perRow(t.cpuWithout, rows), perRow(t.cpuDecoding, rows)
		// What the table shows of the CPU: the application's backends per row without and
		// with the relay, and the walsender's decoding per row with the relay and alone.
		if res.CPU != nil && res.CPUWithout != nil {
			res.Figures["app_cpu_us_without"] = res.CPUWithout["app:application"]
			res.Figures["app_cpu_us_with"] = res.CPU["app:application"]
			res.Figures["walsender_cpu_us"] = res.CPU["app:walsender"]
			res.Figures["walsender_cpu_us_decoding_only"] = res.CPUDecoding["app:walsender"]
		}
		out = append(out, res)
	}
	if len(out) == 2 {
		out[1].Figures["vs_one_database"] = out[1].Figure / out[0].Figure
	}
	// The next scenario starts the relay it needs (Run's use).
	return out, nil
}

// arm is one of application-impact's three runs in a round.
type arm int

const (
	armWithout  arm = iota // no relay, nothing reads the slot
	armDecoding            // no relay, a decoding-only reader (decodeonly.go) on a slot of its own
	armRelay               // the relay
)

// impactAlone runs the load in d with no relay — with a decoding-only reader when decoding — and
// returns its commit rate; the CPU time of the application's cluster and of this process is
// added to cpu by category.
func (e *env) impactAlone(ctx context.Context, d *deployment, decoding bool, cpu map[string]float64) (float64, error) {
	if err := e.stopOthers(nil); err != nil {
		return 0, err
	}
	e.deployment = d
	var r *decodeOnly
	if decoding {
		var err error
		if r, err = e.startDecodeOnly(ctx); err != nil {
			return 0, err
		}
	}
	start, err := readProcs(ctx, d.srcStats, true)
	var c *commits
	if err == nil {
		c, err = e.loadSingle(ctx, companyID("impact-bare"), e.sizes.singleRows, 8, 0)
	}
	if r != nil {
		// The reader receives the run's WAL before the CPU is read: its decoding counts.
		if serr := e.stopDecodeOnly(ctx, r); err == nil {
			err = serr
		}
	}
	if err != nil {
		return 0, err
	}
	end, err := readProcs(ctx, d.srcStats, true)
	if err != nil {
		return 0, err
	}
	for cat, us := range cpuSince(end, start) {
		cpu[cpuKey(d.srcStats.name, cat)] += us
	}
	return float64(c.n) / c.last.Sub(c.first).Seconds(), nil
}

// impactWith runs the load in d with its relay running (caught up first, so the run does not
// share the machine with reading the runs without it), to a company of round r's with one
// webhook, waits for the deliveries and checks the history into res; it returns the commit rate.
func (e *env) impactWith(ctx context.Context, d *deployment, r int, res *Result, latencies *[]time.Duration) (float64, error) {
	if err := e.use(ctx, d); err != nil {
		return 0, err
	}
	n := e.sizes.singleRows
	company := companyID(fmt.Sprintf("impact-%d", r))
	if _, err := e.setupCompany(ctx, company, "item.created", e.paths(company, 1)); err != nil {
		return 0, err
	}
	done := e.rc.reset(n, true)
	if err := e.openWindow(ctx); err != nil {
		return 0, err
	}
	c, err := e.loadSingle(ctx, company, n, 8, 0)
	if err != nil {
		return 0, err
	}
	rate := float64(c.n) / c.last.Sub(c.first).Seconds()
	s := e.received(ctx, res, done, n)
	res.Received += s.unique
	res.Seconds += s.last.Sub(c.first).Seconds()
	*latencies = append(*latencies, s.latencies...)
	var sub Result
	e.verify(ctx, &sub, company, n)
	res.Expected += sub.Expected
	res.Recorded += sub.Recorded
	res.Failures = append(res.Failures, sub.Failures...)
	if err := e.closeWindow(ctx); err != nil {
		return 0, err
	}
	return rate, nil
}

// perRow divides CPU times by rows (nil when there are none).
func perRow(cpu map[string]float64, rows float64) map[string]float64 {
	var out map[string]float64
	for k, us := range cpu {
		if out == nil {
			out = map[string]float64{}
		}
		out[k] = us / rows
	}
	return out
}

// median is the middle of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// waitCaughtUp waits until the capture has confirmed the WAL written so far (at most a minute).
func (e *env) waitCaughtUp(ctx context.Context) error {
	var target string
	if err := e.srcHarness.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		return fmt.Errorf("read wal position: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		err := e.srcHarness.QueryRow(ctx, `SELECT coalesce(bool_or(confirmed_flush_lsn >= $1::pg_lsn), false) FROM pg_replication_slots WHERE slot_name = $2`, target, e.slot).Scan(&ok)
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
	s := e.received(ctx, &res, done, n)
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
