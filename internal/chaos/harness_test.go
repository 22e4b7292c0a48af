package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/internal/xtest"
	"github.com/walhook/walhook/relay/catalog"
	"github.com/walhook/walhook/relay/crypt"
	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

func TestMain(m *testing.M) { xtest.Main(m) }

// full reports whether the full sizes run (make chaos).
func full() bool { return os.Getenv("WALHOOK_CHAOS_FULL") == "1" }

// size picks the reduced or the full size.
func size(reduced, fullSize int) int {
	if full() {
		return fullSize
	}
	return reduced
}

// proc is one walhook process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	err  error

	mu  sync.Mutex
	log strings.Builder
}

var listeningLine = regexp.MustCompile(`"addr":"([^"]+)".*admin listening`)

// spawn starts `walhook <args> --addr 127.0.0.1:0 --log-format json` with env added, without
// waiting for it. The process is killed at the end of the test.
func spawn(t *testing.T, env []string, args ...string) (*proc, <-chan string) {
	t.Helper()
	args = append(args, "--addr", "127.0.0.1:0", "--log-format", "json")
	p := &proc{cmd: exec.Command(xtest.Walhook(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p, addrc
}

// start runs walhook and returns once it listens.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p, addrc := spawn(t, env, args...)
	select {
	case p.addr = <-addrc:
		return p
	case <-p.done:
		t.Fatalf("walhook %v exited before listening: %v\n%s", args, p.err, p.logs())
	case <-time.After(2 * time.Minute):
		t.Fatalf("walhook %v did not listen within 2m\n%s", args, p.logs())
	}
	return nil
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// metric reads one unlabelled sample from the process's /metrics.
func (p *proc) metric(t *testing.T, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// receiver is an HTTP endpoint that de-duplicates deliveries by webhook-id and counts
// duplicates. While down, its listener is closed (connection refused).
type receiver struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *http.Server
	seen   map[string]int // webhook-id → requests
	events map[string]bool
	dups   int
	last   time.Time
	delay  time.Duration // each answer waits this long (a slow endpoint)
}

// slow makes every answer wait d.
func (r *receiver) slow(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &receiver{t: t, addr: ln.Addr().String(), seen: map[string]int{}, events: map[string]bool{}}
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	var env struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&env)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.seen[id]++
	if r.seen[id] > 1 {
		r.dups++
	}
	r.events[env.ID] = true
	r.last = time.Now()
	delay := r.delay
	r.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// down closes the listener and every connection: requests are refused until up.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same address.
func (r *receiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	require.NoError(r.t, err)
	r.serve(ln)
}

// counts returns distinct webhook-ids, distinct envelope ids and duplicate requests.
func (r *receiver) counts() (unique, events, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), len(r.events), r.dups
}

func (r *receiver) lastAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// fixture is one test's database: the demo contacts table and its catalog, company "1", and
// the store that created them (its keys are the relay's).
type fixture struct {
	t    *testing.T
	url  string
	pool *pgxpool.Pool
	st   *store.Store
	spec string
	slot string
}

var slotSeq sync.Mutex
var slotN int

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	ctx := xtest.Context(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	spec := crypt.GenerateKeySpec("chaos")
	keys, err := crypt.ParseKeyring(spec)
	require.NoError(t, err)
	st := store.New(pool, keys)
	_, err = st.MigrateUp(ctx)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.contacts (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, company_id text NOT NULL, name text NOT NULL,
		email text, created_at timestamptz NOT NULL DEFAULT now());
		ALTER TABLE public.contacts REPLICA IDENTITY FULL`)
	require.NoError(t, err)
	cat, err := catalog.Load("../../cmd/walhook/devdata/catalog.yaml")
	require.NoError(t, err)
	require.NoError(t, cat.Sync(ctx, st, st))
	for _, c := range []string{"1", "2"} {
		_, err = st.CompanyCreate(ctx, c, "Company "+c)
		require.NoError(t, err)
	}
	slotSeq.Lock()
	slotN++
	slot := fmt.Sprintf("chaos_%d_%d", os.Getpid(), slotN)
	slotSeq.Unlock()
	return &fixture{t: t, url: url, pool: pool, st: st, spec: spec, slot: slot}
}

// webhook creates an active contact.created webhook of company to url.
func (f *fixture) webhook(company, url string) webhook.Webhook {
	f.t.Helper()
	w, err := f.st.WebhookCreate(xtest.Context(f.t), webhook.Webhook{CompanyID: company, Name: "hook " + url,
		URL: url, Method: webhook.MethodPost, EventKeys: []string{"contact.created"}, RawData: true, Active: true}, nil)
	require.NoError(f.t, err)
	return w
}

// env is the environment of a relay on this fixture.
func (f *fixture) env() []string {
	return []string{"WALHOOK_DATABASE_URL=" + f.url, "WALHOOK_ENCRYPTION_KEYS=" + f.spec,
		"WALHOOK_SLOT=" + f.slot, "WALHOOK_PUBLICATION=" + f.slot, "WALHOOK_ALLOW_PRIVATE_CIDRS=127.0.0.0/8"}
}

// relayArgs are the flags every chaos relay runs with: short timeouts so a killed relay's leases
// come back quickly, and a retry schedule that fits a test.
func relayArgs(id string, extra ...string) []string {
	return append([]string{"relay", "--instance-id", id, "--attempt-timeout", "2s", "--dispatch-lease", "8s",
		"--dispatch-poll-interval", "200ms", "--retry-schedule", "0s,500ms,1s,1s,2s,2s,2s,2s,2s,2s,2s,2s",
		"--retry-jitter", "-1", "--capture-status-interval", "200ms"}, extra...)
}

// insert inserts n contacts of company from index from, 100 single-row transactions per batch.
func (f *fixture) insert(ctx context.Context, company string, from, n int) error {
	for i := from; i < from+n; i += 100 {
		b := &pgx.Batch{}
		for j := i; j < min(i+100, from+n); j++ {
			b.Queue(`INSERT INTO contacts (company_id, name) VALUES ($1, $2)`, company, fmt.Sprint("c", j))
		}
		if err := f.pool.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("insert contacts: %w", err)
		}
	}
	return nil
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// waitDelivered waits until n events exist and every delivery has succeeded, and the receiver
// saw n distinct deliveries; it fails if a relay in ps exits meanwhile.
func (f *fixture) waitDelivered(r *receiver, n int, within time.Duration, ps ...*proc) {
	f.t.Helper()
	f.waitReceived(r, n, n, within, ps...)
}

// waitFirst waits until the receiver got at least one delivery, failing after within with the
// same account as waitDelivered.
func (f *fixture) waitFirst(r *receiver, n int, within time.Duration, ps ...*proc) {
	f.t.Helper()
	f.waitReceived(r, n, 1, within, ps...)
}

// waitReceived waits until the receiver counted want distinct deliveries (all n, with the
// history complete, when want == n).
func (f *fixture) waitReceived(r *receiver, n, want int, within time.Duration, ps ...*proc) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var events, pending, succeeded, failed int
		err := f.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM walhook.event),
			count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'succeeded'),
			count(*) FILTER (WHERE state = 'failed') FROM walhook.delivery`).Scan(&events, &pending, &succeeded, &failed)
		unique, _, _ := r.counts()
		if want < n && unique >= want {
			return
		}
		if err == nil && events == n && pending == 0 && succeeded == n && unique == n {
			return
		}
		require.Zero(f.t, failed, "deliveries failed")
		for _, p := range ps {
			if p.exited() {
				f.t.Fatalf("relay exited: %v\n%s", p.err, p.logs())
			}
		}
		if time.Now().After(deadline) {
			logs := ""
			for _, p := range ps {
				logs += p.logs()
			}
			f.t.Fatalf("after %v, waiting for %d received: events %d/%d, pending %d (%s), succeeded %d, received %d (err %v); attempts that did not succeed: %s\n%s",
				within, want, events, n, pending, f.pendingBreakdown(), succeeded, unique, err, f.failedAttempts(), tail(logs, 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pendingBreakdown says why pending deliveries are not delivered yet: due and free to claim,
// leased (being sent, or left by a killed relay), or scheduled for a later retry.
func (f *fixture) pendingBreakdown() string {
	var due, leased, scheduled int
	var nextIn float64
	err := f.pool.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())),
		count(*) FILTER (WHERE lease_until >= now()),
		count(*) FILTER (WHERE next_attempt_at > now() AND (lease_until IS NULL OR lease_until < now())),
		coalesce(extract(epoch FROM max(next_attempt_at) - now()), 0)::float8
		FROM walhook.delivery WHERE state = 'pending'`).Scan(&due, &leased, &scheduled, &nextIn)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("due and unleased %d, leased %d, scheduled later %d (last due in %.1fs)", due, leased, scheduled, nextIn)
}

// failedAttempts counts the attempts that did not succeed, by status and error.
func (f *fixture) failedAttempts() string {
	rows, err := f.pool.Query(context.Background(), `SELECT coalesce(response_status::text, '-'),
		coalesce(left(regexp_replace(error, '[0-9]+', 'N', 'g'), 100), ''), count(*)
		FROM walhook.attempt WHERE outcome <> 'succeeded' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	out := "none"
	for i := 0; rows.Next(); i++ {
		var status, msg string
		var n int
		if err := rows.Scan(&status, &msg, &n); err != nil {
			return err.Error()
		}
		if i == 0 {
			out = ""
		} else {
			out += "; "
		}
		out += fmt.Sprintf("%d× status %s %q", n, status, msg)
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// report logs a figure, and prints it on stdout in full runs so `make chaos` shows it.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	if full() {
		fmt.Printf("FIGURE %s: %s\n", t.Name(), fmt.Sprintf(format, args...))
	}
}
