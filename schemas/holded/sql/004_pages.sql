-- 004_pages.sql: the indexes of the read-back API's pages of events
-- (GET /events?family=holded, README "Read-back API"): newest first by
-- timestamp_stamp, the correlation id breaking ties, so that a page goes on
-- from the last row of the one before (keyset pagination) with an index
-- range scan, whatever the depth.  With type= the second one: the type
-- first, then the same order.  Idempotent, like every file here.

CREATE INDEX IF NOT EXISTS events_timestamp_stamp_correlation_id_idx
	ON events (timestamp_stamp, correlation_id);
CREATE INDEX IF NOT EXISTS events_type_timestamp_stamp_correlation_id_idx
	ON events (type, timestamp_stamp, correlation_id);
