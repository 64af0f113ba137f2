-- 003_requests.sql: find every event of one request (package) from any one
-- of its correlation ids.
--
-- A correlationId is the request's batch UUIDv7 with its last 4 bytes (the
-- last 8 hex digits) replaced by the event's index in the package, big
-- endian.  All events of a package therefore share the first 12 bytes and
-- the package is the uuid range [prefix || 00000000, prefix || ffffffff]:
--
--   SELECT *
--     FROM events
--    WHERE correlation_id BETWEEN overlay($1::text PLACING '00000000' FROM 29)::uuid
--                             AND overlay($1::text PLACING 'ffffffff' FROM 29)::uuid
--    ORDER BY correlation_id;
--
-- (uuid text is 8-4-4-4-12 hex digits; the last 8 digits start at character
-- 29.)  It is an index range scan on correlation_id, the leading column of
-- the unique index events_correlation_id_timestamp_stamp_key, in every
-- partition: uuid order is byte order, so the range is contiguous.  The
-- events' own timestamps are the producer's, not the request's, so the
-- query cannot prune partitions by itself; add a timestamp_stamp condition
-- when the time window is known.
--
-- Usage:  SELECT * FROM events_of_request('019aa0f3-7c21-7d3e-9a41-5b2e00000003');

CREATE OR REPLACE FUNCTION events_of_request(correlation uuid)
RETURNS SETOF events
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
	SELECT *
	  FROM events
	 WHERE correlation_id BETWEEN overlay(correlation::text PLACING '00000000' FROM 29)::uuid
	                          AND overlay(correlation::text PLACING 'ffffffff' FROM 29)::uuid
	 ORDER BY correlation_id
$$;
