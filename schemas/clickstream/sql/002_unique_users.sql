-- 002_unique_users.sql: the exact number of distinct customers per UTC day
-- of event.timestamp (seed 002's unique users by day), kept in PostgreSQL
-- so that it survives restarts and is shared by every enrich process.
-- Idempotent, applied on each (re)connect after 001_clickstream_events.sql.
--
--   clickstream_unique_users          the set: one row per (day, customer)
--   clickstream_unique_users_daily    its size per day, kept with the set
--   clickstream_unique_users_per_day  the view to read: (day, unique_users)
--
-- The enricher publishes each day's count to the family's daily topic
-- (acme.clickstream.unique.users, src/daily.c): the daily table's column
-- published is the count the topic last got for the day (NULL: none yet),
-- written by the publisher after Kafka acknowledged the record, and only
-- upwards.  A day whose published differs from unique_users is dirty:
-- the partial index clickstream_unique_users_daily_dirty holds exactly
-- those, so the publisher finds them without reading every day.  The
-- trigger below never touches published; a count that grows makes its
-- day dirty again by itself.
--
-- Exact, not an estimate: a customer counts once per day however often,
-- however late and through however many processes its events arrive.
-- Anonymous events (customer_id NULL) are not counted, and a day with only
-- anonymous events has no row (read it as 0).
--
-- Both tables are maintained by a statement trigger on clickstream_events,
-- in the transaction that inserts the rows, from the rows that statement
-- really inserted (its transition table):
-- - a replay, skipped by ON CONFLICT DO NOTHING on the events' unique
--   index, is not in the transition table, so it changes nothing;
-- - a customer already in the set that day is skipped by ON CONFLICT DO
--   NOTHING on the set's primary key; a concurrent transaction adding the
--   same (day, customer) waits for the first one's outcome there, so the
--   pair is counted by exactly one of them;
-- - the count grows by the pairs the set really took, under the day row's
--   lock, so it always equals the set's size once committed, and it never
--   decreases: of two counts read for one day, the larger is the newer.
-- Whatever inserts the rows (a batch, the sink's row-by-row retry, a
-- manual backfill) keeps the state exact.  Statement triggers fire for the
-- table an INSERT names: insert through clickstream_events, never into a
-- partition directly, or the rows are not counted.
--
-- Lock order: rows of the set and of the daily table are taken in (day,
-- customer_id) and day order, so two transactions whose batches share
-- customers or days wait for each other instead of deadlocking.  A
-- transaction that inserts events in several statements takes day rows
-- once per statement; two such transactions can still deadlock (40P01,
-- which the sink retries like any transient error), so insert a batch in
-- one statement.
--
-- Rebuild (after restoring the events from elsewhere, say), in one
-- transaction:
--   TRUNCATE clickstream_unique_users, clickstream_unique_users_daily;
--   INSERT INTO clickstream_unique_users (day, customer_id)
--     SELECT DISTINCT (event_timestamp AT TIME ZONE 'UTC')::date, customer_id
--       FROM clickstream_events WHERE customer_id IS NOT NULL;
--   INSERT INTO clickstream_unique_users_daily (day, unique_users, updated_at)
--     SELECT day, count(*), clock_timestamp() FROM clickstream_unique_users GROUP BY day;
-- (published starts NULL again: every day is published once more, and a
-- rebuilt count lower than the topic's last record replaces it there.)
-- Dropping old partitions of clickstream_events changes neither table.
--
-- Check (empty when exact):
--   SELECT day, count(*) FROM clickstream_unique_users GROUP BY day
--   EXCEPT SELECT day, unique_users FROM clickstream_unique_users_per_day;

CREATE TABLE IF NOT EXISTS clickstream_unique_users (
	day DATE NOT NULL,
	customer_id BIGINT NOT NULL,
	PRIMARY KEY (day, customer_id)
);

-- updated_at: when the count last changed, and never earlier than the
-- change before (greatest of the two, whatever the clocks of concurrent
-- transactions say): the "updatedAt" of the day's record on
-- acme.clickstream.unique.users.
CREATE TABLE IF NOT EXISTS clickstream_unique_users_daily (
	day DATE PRIMARY KEY,
	unique_users BIGINT NOT NULL CHECK (unique_users > 0),
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- published: see the header.  Added by ALTER so that a database made
-- before it gets it too.
ALTER TABLE clickstream_unique_users_daily ADD COLUMN IF NOT EXISTS published BIGINT;
-- The publisher's query says the same predicate word for word, which is
-- what lets the planner use this index.
CREATE INDEX IF NOT EXISTS clickstream_unique_users_daily_dirty
	ON clickstream_unique_users_daily (day)
	WHERE published IS DISTINCT FROM unique_users;

CREATE OR REPLACE VIEW clickstream_unique_users_per_day (day, unique_users) AS
	SELECT day, unique_users
	  FROM clickstream_unique_users_daily;

CREATE OR REPLACE FUNCTION clickstream_unique_users_track()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	WITH added AS (
		INSERT INTO clickstream_unique_users AS u (day, customer_id)
		SELECT DISTINCT (n.event_timestamp AT TIME ZONE 'UTC')::date, n.customer_id
		  FROM clickstream_events_inserted n
		 WHERE n.customer_id IS NOT NULL
		 ORDER BY 1, 2
		ON CONFLICT DO NOTHING
		RETURNING u.day
	)
	INSERT INTO clickstream_unique_users_daily AS d (day, unique_users, updated_at)
	SELECT a.day, count(*), clock_timestamp()
	  FROM added a
	 GROUP BY a.day
	 ORDER BY a.day
	ON CONFLICT (day) DO UPDATE
	   SET unique_users = d.unique_users + EXCLUDED.unique_users,
	       updated_at = greatest(d.updated_at, EXCLUDED.updated_at);
	RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER clickstream_unique_users_track
	AFTER INSERT ON clickstream_events
	REFERENCING NEW TABLE AS clickstream_events_inserted
	FOR EACH STATEMENT
	EXECUTE FUNCTION clickstream_unique_users_track();
