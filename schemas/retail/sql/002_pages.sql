-- 002_pages.sql: the index of the read-back API's pages of transactions
-- (GET /events?family=retail, README "Read-back API"): newest first by
-- occurred_at, the correlation id breaking ties (keyset pagination: a page
-- goes on from the last row of the one before with an index range scan).
-- Idempotent, like every file here.

CREATE INDEX IF NOT EXISTS retail_transactions_occurred_at_correlation_id_idx
	ON retail_transactions (occurred_at, correlation_id);
