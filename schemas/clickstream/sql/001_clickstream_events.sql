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
-- Concurrency, exactly as events_ensure_partition (schemas/holded/sql/002_partitions.sql):
-- several enrichers may race to create the same day.  The common case
-- (partition exists) takes no lock at all (to_regclass).  A loser of the
-- race either finds the table through IF NOT EXISTS once the winner
-- committed, or trips over the catalog's unique index while the winner was
-- still uncommitted; both errors are caught, so every caller returns
-- normally.  Creating a partition locks clickstream_events, so callers must
-- ensure partitions before inserting in the same transaction (the sink
-- does) to keep lock order the same everywhere.

CREATE OR REPLACE FUNCTION clickstream_events_ensure_partition(ts timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	day date := (ts AT TIME ZONE 'UTC')::date;
	part text := 'clickstream_events_' || to_char(day, 'YYYYMMDD');
	lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
	IF to_regclass(quote_ident(part)) IS NOT NULL THEN
		RETURN part;
	END IF;
	BEGIN
		EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF clickstream_events '
		    'FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
	EXCEPTION WHEN duplicate_table OR unique_violation THEN
		-- created concurrently by another session: that is all we wanted
		NULL;
	END;
	RETURN part;
END
$$;
