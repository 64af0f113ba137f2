/*
 * rejections.h: the enrich role's reader of the dead-letter topics.  Every
 * record of every served family's invalid topic becomes one row of the
 * PostgreSQL table rejections (sql/001_rejections.sql), so that "what was
 * refused and why" is one SQL query.  Its own consumer group member
 * ("<[enrich] group_id>-rejections"), its own offsets, committed by hand
 * only once the PostgreSQL sink confirmed the rows: with the table's
 * primary key and ON CONFLICT DO NOTHING, each refusal is stored once.
 *
 * A record becomes a row (rejections_row_build, pure):
 *   received_at     the record's Kafka timestamp (LogAppendTime)
 *   family          the family whose invalid topic it came from
 *   stage           "enrich" when it has a source-topic header (the
 *                   enricher's dead letters), else "collect"
 *   correlation_id  the key when it is a UUID, else the correlation-id
 *                   header when that is one, else NULL
 *   path, rule      stage collect: the error-path and error-rule headers
 *                   when present (an empty error-path is NULL), else the
 *                   error header split at its first ": ", the rule without
 *                   a trailing " (detail)"; path "payload" (a refusal of
 *                   the whole record) is NULL, and an error without ": " is
 *                   all rule.  Stage enrich: path NULL, rule one of
 *                   REJECTIONS_RULE_* below, from the error's first words.
 *                   No error header at all: rule "unknown".
 *   message         the error header, whole ("" when absent)
 *   event           the value when it is strict JSON (codec.h's rules:
 *                   UTF-8, no \u0000), else NULL and event_bytes has it
 *   kafka_*         the record's topic, partition, offset
 *   origin_*        the source-topic, -partition, -offset headers (NULL
 *                   when absent or, for the numbers, not a number)
 * Header text that is not valid UTF-8 has each bad byte replaced by
 * U+FFFD, so PostgreSQL never refuses a row for its encoding.
 */
#ifndef COLLECTORD_REJECTIONS_H
#define COLLECTORD_REJECTIONS_H

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct pg_sink;
struct pgsql_table;
struct rejections;

/* The enricher's refusals, by the first words of its error (consumer.c's
 * rec_dead reasons, consumer_flush.c's PostgreSQL refusals). */
#define REJECTIONS_RULE_KEY "no correlation id"		 /* "key: ...", metadata.correlationId */
#define REJECTIONS_RULE_TIMESTAMP "no timestamp"	 /* "record has no timestamp ..." */
#define REJECTIONS_RULE_FRAME "not Confluent framing"	 /* "frame: ..." */
#define REJECTIONS_RULE_SCHEMA "schema not accepted"	 /* "schema id N: ..." */
#define REJECTIONS_RULE_PAYLOAD "undecodable record"	 /* "payload: ..." */
#define REJECTIONS_RULE_ROW "incomplete row"		 /* "row: ..." */
#define REJECTIONS_RULE_POSTGRES "refused by PostgreSQL" /* "postgres: ..." */
#define REJECTIONS_RULE_OTHER "other"			 /* anything else */

/* The table's columns, in the order of rejections_table() and of a row's
 * values. */
enum rejections_column {
	REJECTIONS_COL_RECEIVED_AT,
	REJECTIONS_COL_FAMILY,
	REJECTIONS_COL_STAGE,
	REJECTIONS_COL_CORRELATION_ID,
	REJECTIONS_COL_PATH,
	REJECTIONS_COL_RULE,
	REJECTIONS_COL_MESSAGE,
	REJECTIONS_COL_EVENT,
	REJECTIONS_COL_EVENT_BYTES,
	REJECTIONS_COL_KAFKA_TOPIC,
	REJECTIONS_COL_KAFKA_PARTITION,
	REJECTIONS_COL_KAFKA_OFFSET,
	REJECTIONS_COL_ORIGIN_TOPIC,
	REJECTIONS_COL_ORIGIN_PARTITION,
	REJECTIONS_COL_ORIGIN_OFFSET,
	REJECTIONS_NCOLUMNS
};

/* The table descriptor for pg_sink_new (static, never freed). */
const struct pgsql_table *rejections_table(void);

/* ---- pure: a dead-letter record → a row ---- */

/* One dead-letter record, everything borrowed. */
struct rejections_record {
	const char *family; /* the family of TOPIC */
	const char *topic;
	int32_t partition;
	int64_t offset;
	int64_t ts_ms;	 /* its timestamp; < 0: none */
	const void *key; /* NULL: no key */
	size_t keylen;
	const rd_kafka_headers_t *headers; /* NULL: none */
	const void *value;		   /* NULL with LEN 0: empty */
	size_t len;
};

/* A row: VALUES[i] (malloc'd, NULL for SQL NULL) is the text of column i,
 * as a pg_row's; PARTITION_US is received_at. */
struct rejections_row {
	int64_t partition_us;
	char *values[REJECTIONS_NCOLUMNS];
};

/*
 * Build R's row into *ROW (the caller frees it with rejections_row_free,
 * also after a failure).  -1 with ERR when R cannot be a row: no
 * timestamp (received_at is NOT NULL and, taken from the clock, would make
 * every replay a new row), or out of memory.
 */
int rejections_row_build(const struct rejections_record *r, struct rejections_row *row, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Free the values and clear ROW.  NULL-safe. */
void rejections_row_free(struct rejections_row *row);

/* The REJECTIONS_RULE_* word for the enricher's error text ERROR. */
const char *rejections_enrich_rule(const char *error);

/* "\x" and the lower-case hex of DATA (LEN bytes): bytea input text.
 * Malloc'd; NULL when out of memory. */
char *rejections_bytea_hex(const void *data, size_t len) __attribute__((warn_unused_result));

/* ---- the reader, on the loop ---- */

/*
 * Join the group "<[enrich] group_id>-rejections" on the invalid topic of
 * every family CFG serves and write their records into table TABLE (an
 * index into the tables PG was created with: rejections_table()'s) of PG.
 * CFG and PG are borrowed and must outlive the reader.  Records are
 * written in batches of up to 500 or after 1 s; consumption pauses while
 * more than [enrich] max_pending rows wait in PG or 5000 of ours are not
 * confirmed.  A batch PG refuses as data is written again one row per
 * batch; a row refused alone with its event as JSON is tried once more
 * with the value in event_bytes instead, then given up on: logged with
 * its coordinates, counted, and its offset committed.  NULL with ERR on
 * failure.
 */
struct rejections *rejections_new(struct event_base *base, const struct config *cfg,
    struct pg_sink *pg, size_t table, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Begin a graceful stop: take nothing new, write what is batched, wait for
 * PG and the commits, leave the group.  rejections_stopped() turns true
 * when that is over. */
void rejections_stop(struct rejections *rj);
bool rejections_stopped(const struct rejections *rj);
/* NULL-safe; after rejections_stopped(), or at any time when dying.  Must
 * run before pg_sink_free(PG): the sink's later reports for our writes
 * (PG_SINK_ABORTED) then only free them. */
void rejections_free(struct rejections *rj);

#endif
