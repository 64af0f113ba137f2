-- 003_dedup.sql: the ledger of first sightings that keeps a client's retry
-- of an event out of every sink.  Idempotent, applied on each (re)connect.
--
-- Every family may declare a dedup key, the client's own id of an event
-- (src/families/, dedup_path).  Before a flush writes its rows, the
-- enricher calls collectord_dedup() with the flush's records (offset, key,
-- correlationId).  For each key the ledger keeps the first record that
-- carried it on the raw topic: (partition, offset, correlation_id).  A
-- record is first iff the ledger names its own partition and offset; any
-- other record with the key is a duplicate, lands in no sink (no row, no
-- line in S3, no enriched record, no unique user), and gets a row in
-- collectord_duplicates.
--
-- Deterministic under replays: the first record of a key, once in the
-- ledger, stays it, so a block that is read again after a crash or a
-- rebalance comes out the same.  Two enrichers racing on one key (the
-- retry went to another partition) are ordered by the primary key: the
-- second waits for the first's transaction and then sees its row.
-- Within one call, the lowest offset of a key wins.
--
-- The window is forever.  Rows may be pruned, but only those older than
-- the raw topic's retention, or a block replayed after a prune could
-- count a duplicate as first:
--   DELETE FROM collectord_dedup WHERE first_seen < now() - interval '30 days';

CREATE TABLE IF NOT EXISTS collectord_dedup (
	topic TEXT NOT NULL,
	dedup_key TEXT NOT NULL,
	partition INTEGER NOT NULL,
	"offset" BIGINT NOT NULL,
	correlation_id UUID NOT NULL,
	first_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (topic, dedup_key)
);

-- Which correlationId repeated which: one row per duplicate record of the
-- raw topic (a replay of it adds nothing).
CREATE TABLE IF NOT EXISTS collectord_duplicates (
	topic TEXT NOT NULL,
	partition INTEGER NOT NULL,
	"offset" BIGINT NOT NULL,
	dedup_key TEXT NOT NULL,
	correlation_id UUID NOT NULL,
	first_partition INTEGER NOT NULL,
	first_offset BIGINT NOT NULL,
	first_correlation_id UUID NOT NULL,
	seen_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (topic, partition, "offset")
);

CREATE INDEX IF NOT EXISTS collectord_duplicates_first_idx
	ON collectord_duplicates (first_correlation_id);

-- The offsets among P_OFFSETS (records of P_TOPIC/P_PARTITION with keys
-- P_KEYS and correlationIds P_CORRS, arrays of one length) that are
-- duplicates, each with the first record of its key.  Keys are taken in
-- key order, so two calls sharing keys wait for each other instead of
-- deadlocking.
CREATE OR REPLACE FUNCTION collectord_dedup(p_topic text, p_partition integer,
	p_offsets bigint[], p_keys text[], p_corrs uuid[])
RETURNS TABLE (dup_offset bigint, first_partition integer, first_offset bigint)
LANGUAGE plpgsql
AS $$
DECLARE
	firsts bigint;
BEGIN
	WITH ins AS (
		INSERT INTO collectord_dedup AS l (topic, dedup_key, partition, "offset", correlation_id)
		SELECT DISTINCT ON (r.k) p_topic, r.k, p_partition, r.o, r.c
		  FROM unnest(p_offsets, p_keys, p_corrs) AS r(o, k, c)
		 ORDER BY r.k, r.o
		ON CONFLICT DO NOTHING
		RETURNING 1)
	SELECT count(*) INTO firsts FROM ins;

	-- Every record the first of its key (the usual case): no duplicates,
	-- nothing to look up.
	IF firsts = cardinality(p_offsets) THEN
		RETURN;
	END IF;

	INSERT INTO collectord_duplicates (topic, partition, "offset", dedup_key,
		correlation_id, first_partition, first_offset, first_correlation_id)
	SELECT p_topic, p_partition, r.o, r.k, r.c, l.partition, l."offset", l.correlation_id
	  FROM unnest(p_offsets, p_keys, p_corrs) AS r(o, k, c)
	  JOIN collectord_dedup l ON l.topic = p_topic AND l.dedup_key = r.k
	 WHERE (l.partition, l."offset") <> (p_partition, r.o)
	 ORDER BY r.o
	ON CONFLICT DO NOTHING;

	RETURN QUERY
	SELECT r.o, l.partition, l."offset"
	  FROM unnest(p_offsets, p_keys) AS r(o, k)
	  JOIN collectord_dedup l ON l.topic = p_topic AND l.dedup_key = r.k
	 WHERE (l.partition, l."offset") <> (p_partition, r.o)
	 ORDER BY r.o;
END
$$;
