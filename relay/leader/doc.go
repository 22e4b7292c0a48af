// Package leader elects one replica for a singleton role — the capture leader, which alone reads
// the replication slot — through a lease row in walhook.lease. PostgreSQL is the only
// coordinator: expiry is computed with the database's clock, so replicas' clocks do not matter.
//
// # The state machine
//
// Every replica runs an Elector. It is in one of two states:
//
//	          acquire ok                                   renew failed for longer than TTL-Renew,
//	┌──────────┐  ────────────────────────────►  ┌────────┐ or the lease was taken, or lead returned
//	│ follower │                                  │ leader │ ───────────────────────────────┐
//	└──────────┘  ◄────────────────────────────  └────────┘                                 │
//	  │   ▲         lead stopped, lease released                                             │
//	  └───┘ every Renew: try to acquire                                                      │
//	        (succeeds only when the lease is free or expired)   ◄────────────────────────────┘
//
// In words:
//
//   - follower: every Renew interval it runs LeaseAcquire, an upsert that succeeds only when the
//     lease is free, expired (expires_at < now()), or already its own.
//   - leader: it runs lead(ctx) in a goroutine and renews the lease every Renew interval (the
//     same upsert, which extends expires_at by TTL). It steps down — cancels lead's context and
//     waits for lead to return — when a renewal finds the lease held by someone else, when
//     renewals have failed for longer than TTL minus Renew (so it stops before a standby can
//     take over), or when lead returns (its error is logged and it tries again later).
//   - On ctx cancellation (graceful stop) the leader stops lead, then deletes the lease row so a
//     standby takes over at its next attempt instead of waiting for expiry.
//
// Takeover time after a leader dies without releasing (kill -9): at most TTL + Renew (defaults
// 6 s + 2 s = 8 s). Two leaders at once would need a leader to keep working after its lease
// expired; a leader steps down once it cannot renew for TTL−Renew, and the replication slot itself
// admits a single reader, so a late step-down costs a retry, never a double read.
//
// The gauge walhook_leader{role} is 1 on the replica that leads the role.
package leader
