package retention

import "time"

// SetNow makes r read the time from now (a test moves retention's clock, not the database's).
func SetNow(r *Retention, now func() time.Time) { r.now = now }
