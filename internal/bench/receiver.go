package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// receiver is the webhook endpoint: HTTP/1.1 with keep-alive on loopback. It records the arrival
// time of each webhook-id once (a redelivery is counted as a duplicate) and, when asked, the
// commit → receipt latency from the envelope's occurred_at.
type receiver struct {
	srv  *http.Server
	ln   net.Listener
	addr string

	mu        sync.Mutex
	seen      map[string]struct{}
	first     time.Time
	last      time.Time
	dups      int
	latencies []time.Duration
	parse     bool
	want      int
	done      chan struct{}
	// hang, when not nil, makes requests whose path starts with hangPath wait until it closes or
	// the client gives up.
	hang     chan struct{}
	hangPath string
	hangHits int
}

func newReceiver(ctx context.Context) (*receiver, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen receiver: %w", err)
	}
	rc := &receiver{ln: ln, addr: ln.Addr().String(), seen: map[string]struct{}{}, done: make(chan struct{})}
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := rc.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("bench receiver: %v", err))
		}
	}()
	return rc, nil
}

// URL is the address of a path on the receiver.
func (rc *receiver) URL(path string) string { return "http://" + rc.addr + path }

// reset starts counting for a new scenario: want unique deliveries close done.
func (rc *receiver) reset(want int, parse bool) <-chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen = make(map[string]struct{}, want)
	rc.first, rc.last, rc.dups, rc.hangHits = time.Time{}, time.Time{}, 0, 0
	rc.latencies = rc.latencies[:0]
	rc.parse, rc.want = parse, want
	rc.done = make(chan struct{})
	if want == 0 {
		close(rc.done)
	}
	return rc.done
}

type envelopeTime struct {
	OccurredAt time.Time `json:"occurred_at"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	hang, hangPath := rc.hang, rc.hangPath
	rc.mu.Unlock()
	if hang != nil && len(r.URL.Path) >= len(hangPath) && r.URL.Path[:len(hangPath)] == hangPath {
		rc.mu.Lock()
		rc.hangHits++
		rc.mu.Unlock()
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
		now = time.Now()
	}
	var lat time.Duration
	rc.mu.Lock()
	parse := rc.parse
	rc.mu.Unlock()
	if parse {
		var e envelopeTime
		if json.Unmarshal(body, &e) == nil && !e.OccurredAt.IsZero() {
			lat = now.Sub(e.OccurredAt)
		}
	}
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	if _, dup := rc.seen[id]; dup {
		rc.dups++
	} else {
		rc.seen[id] = struct{}{}
		if rc.first.IsZero() {
			rc.first = now
		}
		if now.After(rc.last) {
			rc.last = now
		}
		if parse {
			rc.latencies = append(rc.latencies, lat)
		}
		if len(rc.seen) == rc.want {
			close(rc.done)
		}
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// snapshot is what the receiver saw since reset.
type snapshot struct {
	unique, dups int
	first, last  time.Time
	latencies    []time.Duration
}

func (rc *receiver) snapshot() snapshot {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return snapshot{unique: len(rc.seen), dups: rc.dups, first: rc.first, last: rc.last, latencies: append([]time.Duration(nil), rc.latencies...)}
}

func (rc *receiver) setHang(path string, on bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if on {
		rc.hang, rc.hangPath = make(chan struct{}), path
		return
	}
	if rc.hang != nil {
		close(rc.hang)
		rc.hang = nil
	}
}

func (rc *receiver) close() { _ = rc.srv.Close() }

func (rc *receiver) hangHitsNow() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hangHits
}
