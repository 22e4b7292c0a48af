// Package chaos holds walhook's process-level fault tests. It has no code of its own: its tests
// build the walhook binary once per test binary, run `walhook relay` as real processes against a
// real private PostgreSQL and real HTTP receivers (httptest, 127.0.0.1 only), and then break
// things — kill -9 of the relay at random moments, PostgreSQL restarted with fast and immediate
// shutdowns, the receiver down for a while, the capture leader killed under a standby, the
// database unreachable at start, hostile receivers (slow-loris, endless bodies, a redirect to the
// metadata address, a TLS handshake that never finishes) — and check that nothing is lost,
// nothing is stuck, and the process's goroutines and memory come back to their baseline.
//
// Both modes: by default walhook's database is the application's; with
// WALHOOK_TEST_TWO_DATABASES=1 (xtest.TwoDatabases) the application's rows, walhook.emit and
// walhook.outbox are in a database of their own and the relays run with --source-database-url —
// on a second private cluster where a test restarts PostgreSQL (each side is restarted in turn)
// or lets it invalidate the slot. TestCells runs two walhook databases ("cells") with a relay,
// a slot and a publication each over one application's database.
//
// Receivers de-duplicate by the webhook-id header (the delivery's public id) and count
// duplicates, which at-least-once delivery allows and the tests report.
//
// Sizes: `go test ./internal/chaos` runs reduced sizes that fit `make test` (2 kills during 2,000
// events); WALHOOK_CHAOS_FULL=1 (`make chaos`) runs the full ones (10 kills during 20,000 events)
// and prints the figures docs/reliability.md quotes, in both modes, one after the other. `make
// test-two` runs the tests that capture with two databases at reduced sizes.
package chaos
