-- 001_rejections.sql: the events collectord refused, for every family, so that
-- "what was refused and why" is one SQL query (issue 8, "Rejection reasons
-- queryable").  A proposal for sql/ (it names no family): the enricher
-- consumes every family's dead-letter topic (events.dead.letter,
-- retail.transactions.rejected, ...) and inserts one row per record; the
-- collector itself still needs no PostgreSQL.  Partitioned by day of
-- received_at like events; idempotent like every file of sql/.
--
-- One row per dead-letter record, whoever refused it:
--   stage 'collect': the collector refused the event as sent (a rule of the
--     family); the record's value is the event's JSON and its error header
--     the "<path>: <rule>" text;
--   stage 'enrich': the enricher could not resolve or decode a record of a
--     raw topic (unknown schema id, corrupt payload); the value is the raw
--     record, kept in event_bytes when it is not JSON, and origin_* say
--     where it came from (its source-topic, -partition, -offset headers).
--
-- Replays: the enricher reads the dead-letter topics at least once, so the
-- same record may arrive again after a restart or a rebalance.  Its
-- coordinates (kafka_topic, kafka_partition, kafka_offset) name it, and its
-- timestamp (received_at, the topic's LogAppendTime) is the same on every
-- read, so the primary key makes INSERT ... ON CONFLICT DO NOTHING store
-- each refusal once.  An event that a client sent twice and that was
-- refused twice is two records, two refusals and two rows.

CREATE TABLE IF NOT EXISTS rejections (
	-- The dead-letter record's timestamp: when the refusal reached Kafka,
	-- within milliseconds of the collector receiving the event (stage
	-- collect) or of the enricher reading it (stage enrich).
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	family TEXT NOT NULL,
	stage TEXT NOT NULL,
	-- The event's correlationId (the record's key); NULL when the record
	-- has none that is a UUID.
	correlation_id UUID,
	-- Where and what, as the family reported them: path as the client wrote
	-- it ("lines[2].quantity"), rule from the family's fixed list ("not a
	-- positive integer"), message the whole text, detail included
	-- ("total: not the currency's number of decimal places (EUR has 2)").
	-- path is NULL for a refusal of the whole record ("payload: ...").
	path TEXT,
	rule TEXT NOT NULL,
	message TEXT NOT NULL,
	-- The event as the client sent it (stage collect), or NULL when the
	-- record's value is not JSON; then event_bytes holds it.
	event JSONB,
	event_bytes BYTEA,
	kafka_topic TEXT NOT NULL,
	kafka_partition INTEGER NOT NULL,
	kafka_offset BIGINT NOT NULL,
	origin_topic TEXT,
	origin_partition INTEGER,
	origin_offset BIGINT,
	CONSTRAINT rejections_stage_check CHECK (stage IN ('collect', 'enrich')),
	CONSTRAINT rejections_pkey
		PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset, received_at)
)
PARTITION BY RANGE (received_at);

-- "what did family F refuse, and why, over these days": the time condition
-- prunes partitions; (family, rule, received_at) answers counts per rule
-- from the index alone.
CREATE INDEX IF NOT EXISTS rejections_family_received_at_idx
	ON rejections (family, received_at);
CREATE INDEX IF NOT EXISTS rejections_family_rule_received_at_idx
	ON rejections (family, rule, received_at);
-- The refusals of one request: correlationIds of a request are one uuid
-- range (see schemas/holded/sql/003_requests.sql).
CREATE INDEX IF NOT EXISTS rejections_correlation_id_idx
	ON rejections (correlation_id)
	WHERE correlation_id IS NOT NULL;

-- rejections_ensure_partition(ts): the daily partition rejections_YYYYMMDD
-- holding TS (UTC day), created on demand and race-safe by
-- collectord_ensure_daily_partition() (000_partitions.sql); called before
-- the INSERT in the same transaction.
CREATE OR REPLACE FUNCTION rejections_ensure_partition(ts timestamptz)
RETURNS text
LANGUAGE sql
AS $$
	SELECT collectord_ensure_daily_partition('rejections', ts)
$$;

-- Examples.
--
-- 1. What was refused and why, per family and rule, over the last 7 days:
--
--   SELECT family, rule, count(*) AS refused,
--          min(received_at) AS first, max(received_at) AS last
--     FROM rejections
--    WHERE received_at >= now() - interval '7 days'
--    GROUP BY family, rule
--    ORDER BY refused DESC;
--
-- 2. Per day (UTC) and field, what the retail tills get wrong:
--
--   SELECT (received_at AT TIME ZONE 'UTC')::date AS day, path, rule, count(*)
--     FROM rejections
--    WHERE family = 'retail' AND stage = 'collect'
--      AND received_at >= date_trunc('month', now())
--    GROUP BY 1, 2, 3
--    ORDER BY 1, 4 DESC;
--
--   (path holds line indexes, "lines[2].quantity"; group by
--   regexp_replace(path, '\[[0-9]+\]', '[]', 'g') to count by field.)
--
-- 3. The latest events refused for one rule, with what was sent, to show a
--    client's developers:
--
--   SELECT received_at, correlation_id, message,
--          event ->> 'total' AS total, event -> 'lines' AS lines
--     FROM rejections
--    WHERE family = 'retail' AND rule = 'not the sum of the lines'
--      AND received_at >= now() - interval '1 day'
--    ORDER BY received_at DESC
--    LIMIT 20;
--
-- 4. Everything refused from one request, from any of its correlationIds:
--
--   SELECT correlation_id, message
--     FROM rejections
--    WHERE correlation_id BETWEEN overlay(:id::text PLACING '00000000' FROM 29)::uuid
--                             AND overlay(:id::text PLACING 'ffffffff' FROM 29)::uuid
--    ORDER BY correlation_id;
