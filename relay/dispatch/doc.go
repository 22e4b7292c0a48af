// Package dispatch delivers webhook requests: it claims due deliveries from the delivery table
// (the queue and the history at once), sends each as one HTTP attempt, and records the attempt
// and what it means for the delivery and the webhook.
//
// # The delivery state machine
//
//	            claim (lease)              2xx
//	pending ──────────────────► in flight ───────► succeeded
//	(due)  ◄───────────────────  │  │  │
//	   ▲   408/425/429/5xx,      │  │  └─ 3xx, other 4xx, SSRF refusal ──► failed
//	   │   timeout, network,     │  └──── 410 ─► failed, webhook turned off
//	   │   token error: retry    └─────── last attempt of the schedule ──► failed
//	   │   at next_attempt_at
//	   └── resync (admin API), dead replica (claims released), lease expiry,
//	       shutdown (lease given back)
//
// Pending covers waiting, in flight and scheduled for retry; a delivery is in flight while
// lease_until is in the future. Claiming is one statement (Store.DispatchClaim): the earliest due
// deliveries whose lease is free or expired, a bounded share per webhook and per company (see Fair
// shares), locked FOR UPDATE SKIP
// LOCKED so replicas never share one, leased for Config.Lease under a claim token, and joined with
// their event's envelope. A replica that dies leaves claims that its heartbeat no longer covers;
// another replica releases them within seconds and claims them again (see Replicas; the lease
// is the last resort), at-least-once: an attempt may be repeated, never lost. Fresh deliveries of
// the capture leader in the same process skip the claim: the fan-out inserts them already leased
// to this dispatcher and hands them over in memory (handoff.go). A delivery held in memory starts
// its attempt only while its lease has room for it (an attempt and the writing of its result:
// Lease − 2 × AttemptTimeout from the claim); one that waited longer (for a rate-limit token,
// behind its webhook's slow requests, for a send slot) is given back unsent and claimed again,
// rather than sent after its lease may have passed to another replica that sends it too. Before
// its attempt a held delivery also takes its webhook as configured now (the cache, dropped by a
// change notification): one whose webhook was turned off, or whose company was disabled, while it
// waited fails without a request; one whose webhook was deleted is given back.
//
// Results are written in batches by one statement (Store.DispatchRecord): an attempt row each
// holding the request as it went on the wire (method; URL with its query, credential values
// masked by redact.URL; headers, secret ones masked; the body, stored as NULL when it is the
// event's envelope, which walhook.event already holds), the delivery's state (only while the
// claim token still holds the lease, so a resync or a takeover wins over a late result), and the
// webhook's last_sent_at, last_status and failing_since — taken from the newest attempt, and
// only when it is newer than the stored last_sent_at, so batches written out of order by several
// replicas cannot leave a stale status beside a newer time. A GET or DELETE whose URL would pass
// MaxQueryURLLen is not sent and fails at once. A
// webhook whose endpoint answers 410, or whose attempts have all failed for DisableAfter (default
// five days), is turned off with a reason. Deliveries of a webhook that is off are failed without
// a request ("not sent: the webhook is turned off").
//
// # Replicas
//
// Every dispatcher is a replica with an id of its own, new for each process (Config.InstanceID,
// a dot, 8 random hex digits), and its claim tokens are "<replica id>:<n>". It keeps a row in
// walhook.replica alive: every Heartbeat (2 s) it sets expires_at = now + HeartbeatTimeout (8 s),
// by the database's clock, from a goroutine of its own whose statements last at most Heartbeat
// and never wait for a send or a result, so a replica whose endpoints are slow keeps its claims
// however long their requests take. Every Heartbeat each replica also deletes the rows that have
// expired (never its own) and, in the same transaction, releases the claims they name
// (lease_until = NULL; Store.ReplicaReap), then wakes the dispatchers: a killed replica's
// deliveries are claimed again within about HeartbeatTimeout + Heartbeat of its last heartbeat
// instead of Lease. A restarted process is a new replica and releases its predecessor's claims
// like any other. Claims whose token names no row (a version before heartbeats, during a rolling
// upgrade) are left to their lease.
//
//	          beat ok                       no beat for HeartbeatTimeout
//	alive ───────────► alive  ────────────────────────────────────────────► dead: row deleted,
//	  │  claims, sends                                                       claims released
//	  │ beat failing: no claims, no sends after HeartbeatTimeout/2            │
//	  └──────────────────────────────────────────────────────────────────────┘
//	   comes back (was paused): "presumed dead", registers again, fences its claims so far
//
// Safety when the replica was not dead but frozen (SIGSTOP, a long GC or VM pause), or cut off
// from the database: it claims only while its last successful heartbeat is younger than
// HeartbeatTimeout/2, and its workers wait for that too before sending anything queued. When it
// comes back, its next heartbeat finds its row gone (the reaper deletes it with the release) and
// fences every claim made so far: what is still queued is given back unsent. What was on the
// wire when it froze may be sent twice (once by it, once by the replica that claimed it since);
// its result is written only while its claim token still holds the delivery (DispatchRecord),
// and the reaper keeps leased_by, so a late result of a delivery nobody claimed since still
// counts. A replica that regains the database after an outage waits HeartbeatTimeout/2 of good
// heartbeats before judging others, who were cut off too. A clean stop gives back what is left
// and deletes the row (Store.ReplicaLeave). Config.Heartbeat and Config.HeartbeatTimeout are
// the knobs; each replica is judged by its own timeout (stored in its row). The reaper scans
// only the due range of delivery_due_idx and only when a replica has died: claims and results,
// the hot path, do no extra work.
//
// # Retries
//
// Config.Schedule is the delay before each attempt: immediately, 5 s, 30 s, 2 m, 10 m, 30 m, 1 h,
// 3 h, 6 h, 12 h, 24 h by default, each ±Jitter (20 %). A Retry-After (seconds or a date) on a
// retryable answer postpones the next attempt to at least that, capped at RetryAfterMax. After
// the last attempt the delivery is failed. 4xx answers other than 408, 410, 425 and 429 fail at
// once: the endpoint says the request is wrong, and the same bytes cannot become right; the user
// fixes the webhook or the endpoint and resyncs. SSRF refusals fail at once too.
//
// A resync puts a delivery back to pending (any state). Migration 0003 records attempts_base and
// resync_at when a finished delivery becomes pending again, so it gets a fresh schedule; its
// attempts are marked trigger='resync'. The payload and the webhook-id stay the same.
//
// # The request
//
// The body is the event envelope (raw data on) or the webhook's selected parameters as one JSON
// object in their order (raw data off; see Select). GET and DELETE carry the same fields as query
// parameters (strings as they are, other scalars as JSON text, objects and arrays JSON-encoded)
// and no body, and so no Content-Type. Headers: the webhook's custom headers (none that
// webhook.ReservedHeader reserves: the API refuses those and the sender leaves them out, so a
// saved header is sent as saved), Content-Type: application/json, User-Agent: walhook/<version>,
// Standard Webhooks webhook-id (the delivery's public id "msg_…", stable across retries, resyncs
// and key rotations, see store.PublicIDs), webhook-timestamp and webhook-signature (the current
// secret and, during a rotation, the previous one), and Authorization: Bearer <token> with an
// OAuth credential; on a 401 the token is fetched again and the request sent once more, within
// the same attempt. A webhook or credential whose stored secret did not open (moved in from
// another row, or sealed with a key no longer configured) sends nothing: the attempt fails with
// the reason and retries. Redirects are never followed. History keeps the request with the values
// of secret and credential-looking headers masked (webhook.Header.Masked, webhook.Mask), up to
// MaxResponseBody (16 KiB) of the answer's body and MaxStoredHeaderBytes (8 KiB) of its headers
// (an endpoint sending more than MaxResponseHeaderBytes, 64 KiB, of headers fails the attempt),
// on the attempt only: the delivery's request as last built is its latest attempt's (the body is
// written once per attempt, not again on the delivery).
//
// # Isolation and throughput
//
// At most Workers requests are in flight, and at most PerWebhook for one webhook. Up to MaxClaimed
// claimed deliveries are held in memory, queued behind their webhook's running requests. Each
// webhook's share of them is adaptive: what it observably sends in a quarter of the lease (at
// least a few rounds of PerWebhook, so that a hanging endpoint's queue is still sent within its
// lease, at most half of MaxClaimed). A webhook holding half its share or more is skipped by the
// claims, and a worker wakes the claim loop when its webhook's queue drops to half: the next batch
// is claimed while the current one is being sent, so a fast webhook is fed by a claim of hundreds
// of deliveries every few tens of milliseconds while a hanging one holds only its own. Results are
// recorded likewise: whatever gathered from all workers while the previous statement ran goes in
// the next one (typed arrays, up to RecordBatch). At most one statement's worth waits: beyond it
// the workers wait for the recorder, so what a crash sends twice (sent, not yet recorded) stays
// near one statement's worth, and a restart into a backlog cannot run further ahead. Connections per
// host are bounded and kept alive. Every connection goes through the netguard SSRF check at dial
// time. Webhook configuration is cached for WebhookCacheTTL and dropped on a walhook_webhooks
// notification. New deliveries start at once: capture calls Wake in-process, and other replicas
// hear NOTIFY walhook_deliveries; PollInterval is the floor for retries and expired leases.
//
// # Fair shares
//
// Workers and MaxClaimed are shared by every company, and no company's endpoints may slow another
// company's deliveries: each company gets a fair share of both, and each webhook one within its
// company, and a share nobody uses goes to whoever is busy (work-conserving).
//
// Send slots (fairSlots): a request takes a slot at once while more than the reserve (Workers/8,
// at least 1) is free. Otherwise it waits in its webhook's FIFO, and each freed slot goes to the
// waiting company with the fewest requests in flight (max-min fairness: a company below an equal
// part of Workers is served first; equal weights — a weight per company would divide the count,
// as in weighted fair queuing) and, within it, to its waiting webhooks in turn (round robin; each
// webhook still at most PerWebhook). The reserve goes only to a company holding fewer than the
// reserve in flight, or to a webhook whose recent attempts averaged under quickSend (AttemptTimeout
// /10, at most 1 s), whose slot therefore comes back soon. So a company whose endpoints hang holds
// at most Workers minus the reserve, and another company's first requests start at once instead
// of after the hanging ones time out; as slots free, the newcomer is served first until the two
// hold equal parts. A single busy company with quick endpoints uses every slot. Requests already
// on the wire are never cut short to make room: a slot taken is held until the attempt ends.
//
// Claims: a company may hold (running and queued in memory) three quarters of MaxClaimed while it
// is the only one holding any — the last quarter is kept for the company whose deliveries come due
// next — and an equal part of MaxClaimed (at least one webhook's claim) when several do. A
// company with less room than a claim's threshold (ClaimBatch/8, or a quarter of its share when
// that is smaller) is left out of the claim (skip_company_ids, like webhooks at theirs), so the
// claim finds the other companies' deliveries however many of its own are due before them, and a
// company near its share is fed by claims of a useful size rather than one delivery per freed slot
// (a statement each: that was the fan-out cost of the first version, docs/benchmarks.md). While
// every company holding work is left out, a worker finishing does not start a claim (only new
// deliveries, announced by Wake or NOTIFY, or the poll do: nothing else could be found). Each
// claim takes at most its remaining room per company (a second window over the claim's
// candidates, after the per-webhook one), so one claim cannot overshoot either. Within a company,
// the share is divided between its n busy webhooks by weight — each one's adaptive share, what it
// sends in shareWindow (at least claimPerWebhook) — counting one more webhook of average weight:
// a webhook may hold share × weight / (sum of weights × (n+1)/n), at least PerWebhook, besides
// its own adaptive share. With equal weights that is share/(n+1). So its hanging webhooks' queues
// cannot fill the company's share and leave its other webhooks out of every claim, a hanging
// webhook among fast ones is held to about PerWebhook, and the fast ones keep the parts they had
// without it (an equal share/(n+1) cut nine fast webhooks' parts by a tenth when a tenth hung;
// docs/benchmarks.md, isolation). n counts the webhooks busy at claim time, so webhooks claimed while
// few were busy (a first claim of a flood may give each claimPerWebhook) can hold more than their
// later cap, and together the whole share; so when new deliveries are announced and a claim would
// be held back (by MaxClaimed, or its company at its share), the queued — never the running —
// deliveries of webhooks over their current cap are given back (released unsent, the last claimed
// first), and the announced deliveries' webhooks find room (giveBackOverCap). That window costs
// a sort (a claim of 1,024 took 48 instead of 34 ms in a test), so it is a statement of its own
// (Store.DispatchClaim runs DispatchClaimFair) used only while some company is at its share or
// has less than half a claim of room (and is not the only company holding work); otherwise the
// claim is made smaller instead, and the statement is the plain one, unchanged. The cost left:
// the due rows of a skipped company or webhook are still walked (and filtered) by the claim's
// scan of delivery_due_idx, so a large backlog of a skipped one is read by every claim. A due
// index per company (company_id, next_attempt_at), scanned per company through LATERAL, would
// remove that; it is not there because it adds an index entry to every delivery write, the hot
// path (docs/benchmarks.md).
//
// Room left for what comes next. Per-entity ordering (deliveries of one row key in commit order,
// different keys in parallel) adds a third level below the webhook: the claim takes, for an
// ordered webhook, only the earliest pending delivery of each key not already held (DISTINCT ON
// the key, or a per-key window like the per-webhook one), the webhook's FIFO becomes one FIFO per
// key, and a key's next delivery is queued only once the previous one is finished or its retry
// is scheduled (a retry holds the key back). The slot hand-out is unchanged: it serves companies,
// then webhooks, then a webhook's ready keys in turn.
//
// # Rate limits
//
// A webhook's optional RateLimit (requests per second, 1 to webhook.MaxRateLimit) holds across
// replicas. Each limited webhook has a token bucket in PostgreSQL (walhook.rate_bucket, UNLOGGED:
// a crash only refills it), refilled by time at the rate up to a burst of a tenth of a second's
// worth (at least 1). A replica takes tokens in small batches (Store.DispatchRateTake: at most a
// burst, and no more than it holds deliveries of the webhook; the row lock serialises replicas)
// and spends them in memory (rateLimits): a worker takes a token before it takes a send slot,
// so a limited webhook waiting for its turn holds no slot, and one worker per webhook asks the
// bucket again when its next token is due. Tokens unspent after a second are dropped, so a
// replica cannot save them for a later burst. The deliveries wait under their claim, pending,
// with no attempt counted — they do not fail; a limited webhook's claims hold no more than its
// limit sends in an eighth of the lease (Config.rateShare), so what waits is sent within the
// lease even when several replicas share the tokens; should the wait still outlast the lease
// (many replicas, a limit lowered while deliveries wait), the wait ends with the lease's room
// for an attempt, without a token, and the delivery is given back unsent. The claim statements are unchanged: the
// dispatcher knows the limited webhooks (Store.DispatchRateLimits, reloaded with the webhook
// cache) and passes their smaller shares like any other. webhook.Webhook.Queued is true for a
// limited webhook: its deliveries must go through the delivery table and the claims (a path
// that hands fresh deliveries to the dispatcher in memory must leave them to the queue).
package dispatch
