package dispatch

import (
	"context"
	"time"
)

// The notifier: the LISTEN loop. It holds one connection listening on walhook_deliveries (new
// deliveries: wake the producer) and walhook_webhooks (a webhook changed: drop the webhook
// cache). Notifications are only a shortcut: while it is not connected, the poll finds every
// due delivery, and each (re)connect drops the whole cache, since changes may have been missed.

// listenLoop wakes the claim loop on walhook_deliveries and drops the webhook cache on
// walhook_webhooks, reconnecting after errors. Polling covers the gaps.
func (d *Dispatcher) listenLoop(ctx context.Context) {
	for ctx.Err() == nil {
		l, err := d.st.DispatchListen(ctx)
		if err == nil {
			d.forget()
			d.Wake() // whatever was notified while not listening
			for {
				ch, werr := l.Wait(ctx)
				if werr != nil {
					err = werr
					break
				}
				if ch == "walhook_webhooks" {
					d.forget()
				}
				d.Wake()
			}
			l.Close(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil {
			return
		}
		d.logs.listen.Msg(d.log.Warn().Err(err), "listen for deliveries; polling until reconnected")
		t := time.NewTimer(max(d.cfg.PollInterval, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
