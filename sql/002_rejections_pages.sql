-- 002_rejections_pages.sql: the indexes of the read-back API's pages of
-- refusals (GET /rejections, README "Read-back API"): newest first by
-- received_at, then the record's Kafka topic, partition and offset, which
-- with received_at are the primary key, so that a page goes on from the
-- last row of the one before (keyset pagination) with an index range scan:
-- over every family, for one family, and for one family's rule.  The last
-- two lead like rejections_family_received_at_idx and
-- rejections_family_rule_received_at_idx of 001_rejections.sql and could
-- answer those indexes' questions too; dropping the older ones is left to
-- the operator (a DROP INDEX here would take every enricher's lock on
-- rejections at its next connect).  Idempotent, like every file of sql/.

CREATE INDEX IF NOT EXISTS rejections_received_at_key_idx
	ON rejections (received_at, kafka_topic, kafka_partition, kafka_offset);
CREATE INDEX IF NOT EXISTS rejections_family_received_at_key_idx
	ON rejections (family, received_at, kafka_topic, kafka_partition, kafka_offset);
CREATE INDEX IF NOT EXISTS rejections_family_rule_received_at_key_idx
	ON rejections (family, rule, received_at, kafka_topic, kafka_partition, kafka_offset);
