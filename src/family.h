/* family.h: event families.  A family is one const struct family (in
 * src/families/<name>.c): the only place that names its fields, topics,
 * subject and table.  family.c holds the table of families, like tmux's
 * command table: every other module takes a family and asks it. */
#ifndef COLLECTORD_FAMILY_H
#define COLLECTORD_FAMILY_H

#include <stddef.h>

#include "codec.h"

/*
 * A count of distinct values per UTC day that the family's SQL keeps
 * exact in PostgreSQL (a trigger on its table, in the rows' transaction)
 * and the enricher publishes, one record per change of a day's count, to
 * a compacted topic keyed by the day.
 */
struct family_daily {
	const char *name;   /* what is counted: the JSON key of the count ("uniqueUsers") */
	const char *field;  /* the counted field, a codec path ("event.customer_id") */
	const char *window; /* the timestamp field whose UTC day is the window */
	const char *topic;  /* default topic; [family.NAME] daily_topic overrides */
	/* The table of its SQL with one row per day: day DATE, COUNT (the
	 * column named COUNT_COLUMN) BIGINT, updated_at TIMESTAMPTZ, and
	 * published BIGINT (what the topic last got, NULL: nothing yet). */
	const char *table;
	const char *count_column;
};

struct family {
	const char *name;	   /* route /collect/<name> */
	const char *proto;	   /* the .proto text, registered as is */
	const char *subject;	   /* Schema Registry subject of the raw topic */
	const char *raw_topic;	   /* valid events, Confluent Protobuf framing */
	const char *invalid_topic; /* invalid events as JSON, header "error" */
	const char *s3_prefix;	   /* before its S3 keys; NULL: "<name>/" */
	/* The text column of its table that GET /events?type= filters on
	 * (one of codec.columns, with an index leading with it, then the
	 * partition column, then the correlation id), or NULL for none. */
	const char *type_column;
	struct codec_schema codec; /* fields, rules, message, table columns */
	/* Enriched events on Kafka: the Confluent message index of the
	 * proto's Enriched message (the raw message's fields with their
	 * numbers, and metadata = 15), or -1 when it has none; and the
	 * enriched topic by default, NULL for none unless [family.NAME]
	 * enriched_topic names one. */
	int enriched_index;
	const char *enriched_topic;
	/* The client's own id of an event (a codec path): its dedup key, or
	 * NULL for none. */
	const char *dedup_path;
	/* The per-day distinct count it keeps, or NULL. */
	const struct family_daily *daily;
};

/* The I-th family of the table (the first is the default of POST
 * /collect), or NULL past the last. */
const struct family *family_at(size_t i);
/* The family called NAME, or NULL. */
const struct family *family_find(const char *name);

/* F's S3 key prefix: its s3_prefix, or "<name>/". */
const char *family_s3_prefix(const struct family *f, char *buf, size_t size);

struct pgsql_table;
struct pgsql_column;
struct config_family;
/* The table of served family FC (its settled [family.NAME] table) as the
 * PostgreSQL sink takes it, the columns (at most CODEC_ROW_MAX) in COLS,
 * in the codec's column order so that a codec_row's values are a
 * pg_row's.  Names are borrowed from FC and its descriptor. */
void family_pg_table(
    const struct config_family *fc, struct pgsql_table *t, struct pgsql_column *cols);

struct config;
/* CFG's [server] default_family (empty: the table's first), or NULL when
 * it names none. */
const struct family *family_default(const struct config *cfg);

/*
 * Settle CFG's families: every [family.NAME] and every name of [server]
 * families (empty: the whole table) must name a family of the table,
 * [server] default_family too (empty: the first served one), and the
 * default must be served.  Each served family gets a section with served
 * set, its descriptor, and its topics, subject and sql_dir settled: its
 * [family.NAME] keys win, then, for the default family only, what [topics]
 * raw, dead_letter and [registry] subject give (which then hold the
 * default family's settled names), then the descriptor's own; sql_dir
 * defaults to schemas/NAME/sql beside [pg] sql_dir.  enriched_topic and
 * daily_topic: "none" is none (settled ""), "" the descriptor's; a
 * family without an Enriched message or a daily count cannot have one;
 * enriched_subject defaults to "<enriched_topic>-value".  Ports: only served
 * families may have one, no two the same, none [server] port.  0, or -1
 * with ERR.
 */
int family_config_defaults(struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The I-th family CFG serves, in the order of its sections (after
 * family_config_defaults), or NULL past the last. */
const struct config_family *family_served(const struct config *cfg, size_t i);

#endif
