-- An attempt's request body is NULL when it is the event's envelope (Raw data on, POST, PUT or
-- PATCH: the commonest case), so each attempt does not write the envelope walhook.event already
-- holds a second time; the history reads it back from the event (issue 15). Any other body (the
-- selected parameters) is kept as sent; GET and DELETE have '' (no body).
ALTER TABLE walhook.attempt ALTER COLUMN request_body DROP NOT NULL;
