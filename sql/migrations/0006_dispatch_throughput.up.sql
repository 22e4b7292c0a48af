-- Dispatch throughput (issue 6). Every delivery is written three times: inserted by capture,
-- leased by a claim, and finished by the recorder with its attempt.
--
-- The claim changes only lease_until and leased_by, which no index covers: with free space on the
-- page the new row version stays on it as a heap-only tuple, and none of the table's five indexes
-- gets an entry. At the default fillfactor (100) capture fills every page, so each claim wrote
-- five index entries. 70 leaves room for the lease update.
ALTER TABLE walhook.delivery SET (fillfactor = 70);

-- No query reads attempts by start time (history reads them by delivery, retention deletes them
-- through the delivery's ON DELETE CASCADE, which uses attempt_delivery_idx): the index only cost
-- an entry per attempt.
DROP INDEX walhook.attempt_started_idx;
