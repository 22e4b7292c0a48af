-- The function goes: a walhook from before this migration writes the counts out in its listing's
-- statements and calls nothing.
DROP FUNCTION walhook.webhook_counts(bigint);
