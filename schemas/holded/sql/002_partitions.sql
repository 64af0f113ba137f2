-- 002_partitions.sql: daily partitions of events, created on demand.
--
-- events_ensure_partition(ts) makes sure the partition holding TS exists and
-- returns its name: events_YYYYMMDD for the UTC day of TS, bounds
-- [day 00:00 UTC, next day 00:00 UTC).  The sink calls it, inside the
-- batch's transaction and before the batch's INSERT, for every day of the
-- batch it has not ensured yet on its connection.
--
-- Concurrency: several enrichers may race to create the same day.  The
-- common case (partition exists) takes no lock at all (to_regclass).  A
-- loser of the race either finds the table through IF NOT EXISTS once the
-- winner committed, or trips over the catalog's unique index while the
-- winner was still uncommitted; both errors are caught, so every caller
-- returns normally.  Creating a partition locks events, so callers must
-- ensure partitions before inserting in the same transaction (the sink does)
-- to keep lock order the same everywhere.

CREATE OR REPLACE FUNCTION events_ensure_partition(ts timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	day date := (ts AT TIME ZONE 'UTC')::date;
	part text := 'events_' || to_char(day, 'YYYYMMDD');
	lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
	IF to_regclass(quote_ident(part)) IS NOT NULL THEN
		RETURN part;
	END IF;
	BEGIN
		EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events '
		    'FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
	EXCEPTION WHEN duplicate_table OR unique_violation THEN
		-- created concurrently by another session: that is all we wanted
		NULL;
	END;
	RETURN part;
END
$$;
