-- 001_clickstream_events.sql: the clickstream family's table (seed 002),
-- partitioned by day on event_timestamp, and its daily partitions, created
-- on demand.  Idempotent: the daemon applies every file of this directory,
-- in name order, on each (re)connect, and compose's init applies them once
-- on an empty database.
--
-- One row per accepted event.  Columns are taken from the enriched event
-- (schemas/clickstream/README.md, "PostgreSQL"): the scalar fields as typed
-- columns so that the usual questions need no JSON operator, and the whole
-- enriched event in data.  Optional fields of the event (customer_id,
-- page, query, referrer, product, position) are NULL when the client sent
-- null or nothing; customer_id NULL is an anonymous visitor.  The CHECKs
-- repeat the collector's ranges: a record put on the raw topic by another
-- producer of the schema fails here as data (SQLSTATE 23514), and the sink
-- dead-letters that row alone instead of storing it.

CREATE TABLE IF NOT EXISTS clickstream_events (
	correlation_id UUID NOT NULL,
	id BIGINT NOT NULL CHECK (id BETWEEN 0 AND 9007199254740991),
	type TEXT NOT NULL,
	package_id TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	ip INET NOT NULL,
	customer_id BIGINT CHECK (customer_id BETWEEN 0 AND 9007199254740991),
	event_timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
	page TEXT,
	query TEXT,
	referrer TEXT,
	product BIGINT CHECK (product BETWEEN 0 AND 9007199254740991),
	position BIGINT CHECK (position BETWEEN 0 AND 9007199254740991),
	data JSONB NOT NULL
)
PARTITION BY RANGE (event_timestamp);

-- Replays (at-least-once delivery from Kafka) carry the same correlation_id
-- and event_timestamp, so INSERT ... ON CONFLICT DO NOTHING stores each
-- event once.  A unique index on a partitioned table must contain the
-- partition key; this one does.  correlation_id leads, so it also serves
-- the range scan that finds every event of one request (README,
-- "PostgreSQL").
CREATE UNIQUE INDEX IF NOT EXISTS clickstream_events_correlation_id_event_timestamp_key
	ON clickstream_events (correlation_id, event_timestamp);

-- "How many page_view / search / ... in this window": the partition prunes
-- the days, the index the type and the time within them.
CREATE INDEX IF NOT EXISTS clickstream_events_type_idx
	ON clickstream_events (type, event_timestamp);

-- "What did this customer do (that day)": anonymous events, often the
-- majority of a clickstream, have nothing to find and stay out of it.
CREATE INDEX IF NOT EXISTS clickstream_events_customer_id_idx
	ON clickstream_events (customer_id, event_timestamp)
	WHERE customer_id IS NOT NULL;

-- clickstream_events_ensure_partition(ts) makes sure the partition holding
-- TS exists and returns its name: clickstream_events_YYYYMMDD for the UTC
-- day of TS, bounds [day 00:00 UTC, next day 00:00 UTC).  The sink calls
-- it, inside the batch's transaction and before the batch's INSERT, for
-- every day of the batch it has not ensured yet on its connection.
--
-- The work, race-safe between enrichers, is
-- collectord_ensure_daily_partition() of sql/000_partitions.sql, which
-- [pg] sql_dir applies before this file.

CREATE OR REPLACE FUNCTION clickstream_events_ensure_partition(ts timestamptz)
RETURNS text
LANGUAGE sql
AS $$
	SELECT collectord_ensure_daily_partition('clickstream_events', ts)
$$;
