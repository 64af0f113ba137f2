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
	struct codec_schema codec; /* fields, rules, message, table columns */
};

/* The I-th family of the table (the first is the default of POST
 * /collect), or NULL past the last. */
const struct family *family_at(size_t i);
/* The family called NAME, or NULL. */
const struct family *family_find(const char *name);

struct config;
/* CFG's [server] default_family (empty: the table's first), or NULL when
 * it names none. */
const struct family *family_default(const struct config *cfg);

/*
 * Settle CFG's families: every [family.NAME] must name a family of the
 * table, [server] default_family too (empty: the first).  The default
 * family's topics and subject end up in [topics] raw, dead_letter and
 * [registry] subject: its [family.NAME] keys win, then what [topics] and
 * [registry] give, then the descriptor's own.  For now a process serves
 * its default family only, so only that one may have a port.  0, or -1
 * with ERR.
 */
int family_config_defaults(struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
