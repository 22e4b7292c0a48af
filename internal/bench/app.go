package bench

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// appSchema is the application's table: rows of about 1 KiB, each an item.created event.
const appSchema = `
CREATE TABLE IF NOT EXISTS bench_item (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id text   NOT NULL,
    n          integer NOT NULL,
    body       text   NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)`

const catalogYAML = `
events:
  - key: item.created
    description: A bench item was inserted
    table: public.bench_item
    operations: [insert]
    tenant_column: company_id
  - key: item.emitted
    description: An event emitted through walhook.emit or the outbox table
    source: outbox
`

// body is ~1 KiB of row text, so an envelope is about 1.1 KiB.
var body = strings.Repeat("walhook bench payload ", 46)

// replaceDatabase returns a PostgreSQL URL naming database db instead.
func replaceDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

// loadMode is how the application emits an event.
type loadMode int

const (
	loadTable  loadMode = iota // INSERT into bench_item (a mapped table)
	loadEmit                   // SELECT walhook.emit(...)
	loadOutbox                 // INSERT into walhook.outbox
)

func (m loadMode) sql() string {
	switch m {
	case loadEmit:
		return `SELECT count(walhook.emit($1, 'item.emitted', jsonb_build_object('n', g, 'body', $2::text))) FROM generate_series($3::int, $4::int) g`
	case loadOutbox:
		return `INSERT INTO walhook.outbox (company_id, event_key, payload) SELECT $1, 'item.emitted', jsonb_build_object('n', g, 'body', $2::text) FROM generate_series($3::int, $4::int) g`
	default:
		return `INSERT INTO bench_item (company_id, n, body) SELECT $1, g, $2 FROM generate_series($3::int, $4::int) g`
	}
}

// commits records the client-side times of the first and last commit of a load.
type commits struct {
	mu          sync.Mutex
	first, last time.Time
	n           int
}

func (c *commits) add(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() || t.Before(c.first) {
		c.first = t
	}
	if t.After(c.last) {
		c.last = t
	}
	c.n++
}

// commitEach runs commit for every job from conns goroutines (a connection each) at once, noting
// the time of each commit; an error stops its goroutine, and the first is returned once all are
// done.
func commitEach[J any](conns int, jobs <-chan J, commit func(J) error) (*commits, error) {
	var c commits
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := commit(j); err != nil {
					errs <- err
					return
				}
				c.add(time.Now())
			}
		}()
	}
	wg.Wait()
	close(errs)
	return &c, <-errs
}

// loadBatches commits rows events for company in transactions of perTx rows, from conns
// connections at once, as fast as the database takes them.
func (e *env) loadBatches(ctx context.Context, mode loadMode, company string, rows, perTx, conns int) (*commits, error) {
	type span struct{ from, to int }
	jobs := make(chan span)
	go func() {
		defer close(jobs)
		for from := 1; from <= rows; from += perTx {
			select {
			case jobs <- span{from, min(from+perTx-1, rows)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return commitEach(conns, jobs, func(s span) error {
		if _, err := e.app.Exec(ctx, mode.sql(), company, body, s.from, s.to); err != nil {
			return fmt.Errorf("load rows: %w", err)
		}
		return nil
	})
}

// loadSingle commits n single-row transactions; with rate > 0 at that pace (events/s), else as
// fast as the database takes them from conns connections.
func (e *env) loadSingle(ctx context.Context, company string, n, conns int, rate float64) (*commits, error) {
	jobs := make(chan int, conns)
	go func() {
		defer close(jobs)
		if rate <= 0 {
			for i := 1; i <= n; i++ {
				select {
				case jobs <- i:
				case <-ctx.Done():
					return
				}
			}
			return
		}
		start := time.Now()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		sent := 0
		for sent < n {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				due := min(int(now.Sub(start).Seconds()*rate)+1, n)
				for ; sent < due; sent++ {
					jobs <- sent + 1
				}
			}
		}
	}()
	return commitEach(conns, jobs, func(i int) error {
		if _, err := e.app.Exec(ctx, `INSERT INTO bench_item (company_id, n, body) VALUES ($1, $2, $3)`, company, i, body); err != nil {
			return fmt.Errorf("insert row: %w", err)
		}
		return nil
	})
}
