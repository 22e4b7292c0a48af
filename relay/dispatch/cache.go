package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/walhook/walhook/relay/store"
	"github.com/walhook/walhook/relay/webhook"
)

// The webhook cache: the claims and the workers read webhooks (and their OAuth credentials)
// through it. An entry lasts WebhookCacheTTL; a change notification (walhook_webhooks, see
// notifier.go) starts a new epoch, and an entry of an older epoch is loaded again before it is
// used (current, in worker.go).

// cached is one webhook as loaded, with its credential.
type cached struct {
	w      *webhook.Webhook // nil: deleted
	cred   *webhook.OAuthCredential
	loaded time.Time
	epoch  int64
}

// webhooks returns the claimed deliveries' webhooks (and OAuth credentials) from the cache,
// loading what is missing or stale in one query each.
func (d *Dispatcher) webhooks(ctx context.Context, claimed []store.Claimed) (map[int64]*cached, error) {
	now := time.Now()
	out := make(map[int64]*cached, 4)
	var load []int64
	d.mu.Lock()
	epoch := d.cacheEpoch
	for _, c := range claimed {
		if _, seen := out[c.WebhookID]; seen {
			continue
		}
		e := d.cache[c.WebhookID]
		if e != nil && e.epoch == epoch && now.Sub(e.loaded) < d.cfg.WebhookCacheTTL {
			out[c.WebhookID] = e
			continue
		}
		out[c.WebhookID] = nil
		load = append(load, c.WebhookID)
	}
	d.mu.Unlock()
	if len(load) == 0 {
		return out, nil
	}
	ws, err := d.st.DispatchWebhooks(ctx, load)
	if err != nil {
		return nil, fmt.Errorf("load webhooks: %w", err)
	}
	var credIDs []int64
	for _, w := range ws {
		if w.OAuthID != nil {
			credIDs = append(credIDs, *w.OAuthID)
		}
	}
	creds := map[int64]*webhook.OAuthCredential{}
	if len(credIDs) > 0 {
		cs, err := d.st.DispatchOAuthCredentials(ctx, credIDs)
		if err != nil {
			return nil, fmt.Errorf("load oauth credentials: %w", err)
		}
		for i := range cs {
			creds[cs[i].ID] = &cs[i]
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) > 4*d.cfg.Workers+1024 {
		for id, e := range d.cache {
			if now.Sub(e.loaded) >= d.cfg.WebhookCacheTTL {
				delete(d.cache, id)
			}
		}
	}
	for _, id := range load {
		out[id] = &cached{loaded: now, epoch: epoch}
	}
	for i := range ws {
		w := ws[i]
		e := &cached{w: &w, loaded: now, epoch: epoch}
		if w.OAuthID != nil {
			e.cred = creds[*w.OAuthID]
		}
		out[w.ID] = e
	}
	for _, id := range load {
		d.cache[id] = out[id]
	}
	return out, nil
}

// forget drops cached webhooks: all of them (a change notification) or some.
func (d *Dispatcher) forget(ids ...int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ids) == 0 {
		d.cacheEpoch++
		return
	}
	for _, id := range ids {
		delete(d.cache, id)
	}
}
