/* family.h: event families.  A family is one const struct family (in
 * src/families/<name>.c): the only place that names its fields, topics,
 * subject and table.  family.c holds the table of families, like tmux's
 * command table: every other module takes a family and asks it. */
#ifndef COLLECTORD_FAMILY_H
#define COLLECTORD_FAMILY_H

#include <stddef.h>

#include "codec.h"

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
 * defaults to schemas/NAME/sql beside [pg] sql_dir.  Ports: only served
 * families may have one, no two the same, none [server] port.  0, or -1
 * with ERR.
 */
int family_config_defaults(struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The I-th family CFG serves, in the order of its sections (after
 * family_config_defaults), or NULL past the last. */
const struct config_family *family_served(const struct config *cfg, size_t i);

#endif
