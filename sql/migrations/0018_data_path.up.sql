-- Fewer index entries per delivery and event (issue 14). Every delivery wrote an entry into
-- delivery_created_idx twice (its insert, and the finishing update, which is not HOT: it changes
-- state, a column of delivery_due_idx's predicate), and every event one into event_captured_idx.
-- Only retention reads them, to find rows older than its cutoff; rows are appended in time order,
-- so a BRIN index (one summary per 128 pages, no entry per row) finds the old ones as well.
-- Retention no longer orders its batches (RetentionDeleteDeliveries, RetentionDeleteEvents): it
-- deletes whatever is past the cutoff, a batch at a time.
DROP INDEX walhook.delivery_created_idx;
CREATE INDEX delivery_created_brin ON walhook.delivery USING brin (created_at);
DROP INDEX walhook.event_captured_idx;
CREATE INDEX event_captured_brin ON walhook.event USING brin (captured_at);
