/*
 * archive.h: the archive role: every record of every topic, as it is, in
 * S3 exactly once.  One consumer group member ([archive] group_id) on the
 * topics of [archive] topics_file (topics/main-topics, installed) and
 * every served family's raw and invalid topics; each record becomes one
 * line of archive_line.h, and the records of each aligned block of
 * [archive] flush_events offsets one object,
 *   archive/<topic>/date=YYYY-MM-DD/<topic>+<partition>+<firstOffset>.jsonl
 * written, rewritten and committed as the enricher's (consumer.c): the
 * object is named after the block's first record, rewritten whole at each
 * flush, and the offsets stored only after its PUT, so that a replay
 * rewrites the same object with the same bytes.
 *
 * The archive is a struct consumer: consumer_stop(), consumer_stopped()
 * and consumer_free() of consumer.h apply, with the same teardown order.
 */
#ifndef COLLECTORD_ARCHIVE_H
#define COLLECTORD_ARCHIVE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct consumer;
struct registry;
struct s3;

/* Topic names in the order first seen, each once. */
struct archive_topics {
	char **names;
	size_t n, cap;
};

/*
 * Add NAME to T unless it is there; false when out of memory.
 */
bool archive_topics_add(struct archive_topics *t, const char *name)
    __attribute__((warn_unused_result));

/*
 * Add the topics of TEXT, a topics file as topics/main-topics is
 * (NAME,PARTITIONS,REPLICAS[,KEY=VALUE...] a line; blank lines and '#'
 * comments), to T: the first field of each line.  -1 with
 * "FILE:LINE: what" in ERR (FILE is NAME) when a line's first field is
 * not a Kafka topic name (1-249 of [A-Za-z0-9._-], not "." or "..").
 */
int archive_topics_parse(struct archive_topics *t, const char *text, const char *name, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Free T's names and clear it.  NULL-safe. */
void archive_topics_free(struct archive_topics *t);

/*
 * The topics CFG's archive reads, into T (empty on entry): those of
 * [archive] topics_file (none when it is ""), then every served family's
 * raw and invalid topic.  -1 with ERR when the file cannot be read or
 * parsed.
 */
int archive_topics_of(const struct config *cfg, struct archive_topics *t, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Join [archive] group_id on archive_topics_of(CFG).  REGISTRY says which
 * framed values are a served family's schema (to decode them); S3 takes
 * the objects.  Both are borrowed and must outlive the archive.  A topic
 * that does not exist yet is no error: librdkafka reports it once and
 * assigns its partitions when a metadata refresh finds it.  NULL with ERR
 * on failure.
 */
struct consumer *archive_new(struct event_base *base, const struct config *cfg,
    struct registry *registry, struct s3 *s3, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
