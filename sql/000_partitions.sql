-- 000_partitions.sql: the daily partitions of every family's table (and of
-- rejections), created on demand.  Applied first: [pg] sql_dir's files come
-- before any family's, and in name order.
--
-- collectord_ensure_daily_partition(parent, ts) makes sure the partition of
-- table PARENT holding TS exists and returns its name: PARENT_YYYYMMDD for
-- the UTC day of TS, bounds [day 00:00 UTC, next day 00:00 UTC).  Each
-- table's <table>_ensure_partition(ts), which the sink calls inside the
-- batch's transaction and before the batch's INSERT, for every day of the
-- batch it has not ensured yet on its connection, is this with its name.
--
-- Concurrency: several enrichers may race to create the same day.  The
-- common case (partition exists) takes no lock at all (to_regclass).  A
-- loser of the race either finds the table through IF NOT EXISTS once the
-- winner committed, or trips over the catalog's unique index while the
-- winner was still uncommitted; both errors are caught, so every caller
-- returns normally.  Creating a partition locks PARENT, so callers must
-- ensure partitions before inserting in the same transaction (the sink
-- does) to keep lock order the same everywhere.

CREATE OR REPLACE FUNCTION collectord_ensure_daily_partition(parent text, ts timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	day date := (ts AT TIME ZONE 'UTC')::date;
	part text := parent || '_' || to_char(day, 'YYYYMMDD');
	lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
	IF to_regclass(quote_ident(part)) IS NOT NULL THEN
		RETURN part;
	END IF;
	BEGIN
		EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I '
		    'FOR VALUES FROM (%L) TO (%L)', part, parent, lo, hi);
	EXCEPTION WHEN duplicate_table OR unique_violation THEN
		-- created concurrently by another session: that is all we wanted
		NULL;
	END;
	RETURN part;
END
$$;
