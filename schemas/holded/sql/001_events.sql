-- 001_events.sql: the events table of the contract (seed 001), partitioned by
-- day on timestamp_stamp (partitions: 002_partitions.sql).  Idempotent: the
-- daemon applies every file of this directory, in name order, on each
-- (re)connect, and compose's init applies them once on an empty database.

CREATE TABLE IF NOT EXISTS events (
	timestamp_stamp TIMESTAMP WITH TIME ZONE NOT NULL,
	message_id_stamp UUID NOT NULL,
	correlation_id UUID NOT NULL,
	type TEXT NOT NULL,
	target_subscription TEXT NOT NULL,
	new_context_account_id UUID NOT NULL,
	new_context_user_id UUID NOT NULL,
	data JSONB NOT NULL
)
PARTITION BY RANGE (timestamp_stamp);

CREATE INDEX IF NOT EXISTS events_type_idx ON events (type);

-- Replays (at-least-once delivery from Kafka) carry the same correlation_id
-- and timestamp_stamp, so INSERT ... ON CONFLICT DO NOTHING stores each event
-- once.  A unique index on a partitioned table must contain the partition
-- key; this one does.  correlation_id leads, so it also serves the range
-- scan of events_of_request() (003_requests.sql).
CREATE UNIQUE INDEX IF NOT EXISTS events_correlation_id_timestamp_stamp_key
	ON events (correlation_id, timestamp_stamp);
