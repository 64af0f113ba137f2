-- 003_pages.sql: the indexes of the read-back API's pages of events
-- (GET /events?family=clickstream, README "Read-back API"): newest first by
-- event_timestamp, the correlation id breaking ties (keyset pagination: a
-- page goes on from the last row of the one before with an index range
-- scan); with type=, the type first.  Idempotent, like every file here.

CREATE INDEX IF NOT EXISTS clickstream_events_event_timestamp_correlation_id_idx
	ON clickstream_events (event_timestamp, correlation_id);
CREATE INDEX IF NOT EXISTS clickstream_events_type_event_timestamp_correlation_id_idx
	ON clickstream_events (type, event_timestamp, correlation_id);
