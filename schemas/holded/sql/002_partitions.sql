-- 002_partitions.sql: daily partitions of events, created on demand.
--
-- events_ensure_partition(ts) makes sure the partition holding TS exists and
-- returns its name: events_YYYYMMDD for the UTC day of TS, bounds
-- [day 00:00 UTC, next day 00:00 UTC).  The sink calls it, inside the
-- batch's transaction and before the batch's INSERT, for every day of the
-- batch it has not ensured yet on its connection.  The work, race-safe
-- between enrichers, is collectord_ensure_daily_partition() of
-- sql/000_partitions.sql, which [pg] sql_dir applies before this file.

CREATE OR REPLACE FUNCTION events_ensure_partition(ts timestamptz)
RETURNS text
LANGUAGE sql
AS $$
	SELECT collectord_ensure_daily_partition('events', ts)
$$;
